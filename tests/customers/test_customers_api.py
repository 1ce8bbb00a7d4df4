"""POST/GET/DELETE /customers (spec §3): upsert, validation, filters, tenancy, soft delete."""

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connection

from billing.models import OutboxEvent
from billing.services import api_key_create, billing_entity_create
from customers.models import Customer, Subscription
from tests.conftest import client_for
from tests.customers.factories import SubscriptionFactory
from tests.plans.factories import CouponFactory, TaxFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 1, 15, 10, 0, tzinfo=dt.UTC)


def upsert(api, **fields):
    return api.post("/api/v1/customers", {"customer": fields}, format="json")


def create(api, external_id="cust_1", **fields):
    response = upsert(api, external_id=external_id, **fields)
    assert response.status_code == 200, response.json()
    return response.json()["customer"]


def errors_of(response):
    assert response.status_code == 422, response.json()
    assert response.json()["code"] == "validation_errors"
    return response.json()["error_details"]


# --- create, render, upsert ------------------------------------------------------------------


def test_create_renders_the_whole_lago_customer_object(api, organization):
    TaxFactory(organization=organization, code="vat_fr", name="TVA", rate="20.00")
    with time_machine.travel(NOW, tick=False):
        body = create(
            api,
            external_id="acme",
            name="Acme Corp",
            firstname="Jane",
            lastname="Doe",
            customer_type="company",
            legal_name="Acme Corporation SAS",
            legal_number="123 456 789",
            email="billing@acme.example,cfo@acme.example",
            phone="+33 1 23 45 67 89",
            url="https://acme.example",
            logo_url="https://acme.example/logo.png",
            address_line1="5 rue de la Paix",
            address_line2="Bâtiment B",
            city="Paris",
            state="Île-de-France",
            zipcode="75002",
            country="fr",
            shipping_address={"address_line1": "1 quai de Seine", "city": "Rouen",
                              "zipcode": "76000", "country": "FR"},
            currency="EUR",
            timezone="Europe/Paris",
            tax_identification_number="FR12345678901",
            net_payment_term=30,
            finalize_zero_amount_invoice="skip",
            billing_configuration={
                "invoice_grace_period": 3,
                "document_locale": "fr",
                "subscription_invoice_issuing_date_anchor": "current_period_end",
                "subscription_invoice_issuing_date_adjustment": "keep_anchor",
            },
            metadata=[{"key": "crm_id", "value": "42", "display_in_invoice": True}],
            tax_codes=["vat_fr"],
        )  # fmt: skip
    customer = Customer.objects.get(external_id="acme")
    metadata = customer.metadata.get()
    tax = customer.taxes.get()
    assert body == {
        "lago_id": str(customer.pk),
        "billing_entity_code": "default",
        "external_id": "acme",
        "account_type": "customer",
        "name": "Acme Corp",
        "firstname": "Jane",
        "lastname": "Doe",
        "customer_type": "company",
        "sequential_id": 1,
        "slug": f"{organization.document_number_prefix}-001",
        "created_at": "2026-01-15T10:00:00Z",
        "updated_at": "2026-01-15T10:00:00Z",
        "country": "FR",
        "address_line1": "5 rue de la Paix",
        "address_line2": "Bâtiment B",
        "state": "Île-de-France",
        "zipcode": "75002",
        "email": "billing@acme.example,cfo@acme.example",
        "city": "Paris",
        "url": "https://acme.example",
        "phone": "+33 1 23 45 67 89",
        "logo_url": "https://acme.example/logo.png",
        "legal_name": "Acme Corporation SAS",
        "legal_number": "123 456 789",
        "currency": "EUR",
        "tax_identification_number": "FR12345678901",
        "timezone": "Europe/Paris",
        "applicable_timezone": "Europe/Paris",
        "net_payment_term": 30,
        "finalize_zero_amount_invoice": "skip",
        "billing_configuration": {
            "invoice_grace_period": 3,
            "payment_provider": None,
            "payment_provider_code": None,
            "document_locale": "fr",
            "subscription_invoice_issuing_date_anchor": "current_period_end",
            "subscription_invoice_issuing_date_adjustment": "keep_anchor",
        },
        "shipping_address": {
            "address_line1": "1 quai de Seine",
            "address_line2": None,
            "city": "Rouen",
            "zipcode": "76000",
            "state": None,
            "country": "FR",
        },
        "skip_invoice_custom_sections": False,
        "metadata": [
            {
                "lago_id": str(metadata.pk),
                "key": "crm_id",
                "value": "42",
                "display_in_invoice": True,
                "created_at": "2026-01-15T10:00:00Z",
            }
        ],
        "taxes": [
            {
                "lago_id": str(tax.pk),
                "name": "TVA",
                "code": "vat_fr",
                "rate": 20.0,
                "description": None,
                "applied_to_organization": False,
                "created_at": tax.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ],
        "integration_customers": [],
        "applicable_invoice_custom_sections": [],
    }


def test_minimal_customer_renders_unset_fields_as_null(api):
    body = create(api, external_id="bare")
    assert body["name"] is None
    assert body["currency"] is None
    assert body["customer_type"] is None
    assert body["net_payment_term"] is None
    assert body["metadata"] == []
    assert body["finalize_zero_amount_invoice"] == "inherit"


def test_billing_configuration_without_payment_provider_leaves_out_the_provider_keys(api):
    # Lago's V1::CustomerSerializer adds the provider keys only for a payment provider.
    body = create(api, external_id="bare", billing_configuration={"sync": True})
    assert body["billing_configuration"] == {
        "invoice_grace_period": None,
        "payment_provider": None,
        "payment_provider_code": None,
        "document_locale": None,
        "subscription_invoice_issuing_date_anchor": None,
        "subscription_invoice_issuing_date_adjustment": None,
    }


def test_billing_configuration_with_stripe_answers_the_provider_keys_but_not_sync(api):
    config = {
        "payment_provider": "stripe",
        "payment_provider_code": "stripe-eu-1",
        "provider_customer_id": "cus_12345",
        "sync": True,
        "sync_with_provider": True,
        "provider_payment_methods": ["card", "sepa_debit"],
    }
    body = create(api, external_id="striped", billing_configuration=config)
    answered = body["billing_configuration"]
    assert "sync" not in answered
    assert (
        answered["provider_customer_id"],
        answered["sync_with_provider"],
        answered["provider_payment_methods"],
    ) == ("cus_12345", True, ["card", "sepa_debit"])


def test_billing_configuration_with_gocardless_has_no_payment_methods(api):
    config = {"payment_provider": "gocardless", "provider_customer_id": "CU123"}
    body = create(api, external_id="gc", billing_configuration=config)
    assert body["billing_configuration"]["provider_customer_id"] == "CU123"
    assert "provider_payment_methods" not in body["billing_configuration"]


def test_customers_get_organization_wide_sequential_ids_and_slugs(api, organization):
    first, second = create(api, external_id="a"), create(api, external_id="b")
    prefix = organization.document_number_prefix
    assert (first["sequential_id"], first["slug"]) == (1, f"{prefix}-001")
    assert (second["sequential_id"], second["slug"]) == (2, f"{prefix}-002")


def test_upsert_updates_the_customer_with_the_same_external_id(api):
    created = create(api, external_id="acme", name="Acme")
    updated = create(api, external_id="acme", name="Acme Corp", city="Lyon")
    assert updated["lago_id"] == created["lago_id"]
    assert updated["sequential_id"] == created["sequential_id"]
    assert (updated["name"], updated["city"]) == ("Acme Corp", "Lyon")
    assert Customer.objects.filter(external_id="acme").count() == 1


def test_upsert_leaves_fields_absent_from_the_payload_unchanged(api):
    create(api, external_id="acme", name="Acme", email="a@acme.example", net_payment_term=15)
    updated = create(api, external_id="acme", city="Lyon")
    assert updated["name"] == "Acme"
    assert updated["email"] == "a@acme.example"
    assert updated["net_payment_term"] == 15


def test_upsert_clears_a_field_sent_as_null(api):
    create(api, external_id="acme", name="Acme", legal_name="Acme SAS")
    assert create(api, external_id="acme", legal_name=None)["legal_name"] is None


def test_creation_and_update_are_announced_through_the_outbox(api):
    created = create(api, external_id="acme")
    create(api, external_id="acme", name="Acme")
    events = OutboxEvent.objects.filter(object_type="customer").order_by("id")
    assert [(e.event_type, e.object_id) for e in events] == [
        ("customer.created", created["lago_id"]),
        ("customer.updated", created["lago_id"]),
    ]


def test_a_refused_upsert_writes_nothing(api):
    upsert(api, external_id="acme", country="XX", metadata=[{"key": "a", "value": "1"}])
    assert not Customer.objects.exists()
    assert not OutboxEvent.objects.exists()


def test_retrieve_answers_the_customer_by_external_id(api):
    created = create(api, external_id="acme", name="Acme")
    response = api.get("/api/v1/customers/acme")
    assert response.status_code == 200
    assert response.json()["customer"] == created


def test_retrieve_of_an_unknown_customer_is_404_customer_not_found(api):
    response = api.get("/api/v1/customers/nobody")
    assert response.status_code == 404
    assert response.json() == {"status": 404, "error": "Not Found", "code": "customer_not_found"}


# --- validation -------------------------------------------------------------------------------


def test_missing_root_key_is_a_400(api):
    response = api.post("/api/v1/customers", {"external_id": "x"}, format="json")
    assert response.status_code == 400


def test_missing_external_id_is_value_is_mandatory(api):
    assert errors_of(upsert(api, name="Nobody")) == {"external_id": ["value_is_mandatory"]}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"country": "XX"}, {"country": ["not_a_valid_country_code"]}, id="country"),
        pytest.param(
            {"shipping_address": {"country": "Narnia"}},
            {"shipping_country": ["not_a_valid_country_code"]},
            id="shipping-country",
        ),
        pytest.param({"email": "not-an-email"}, {"email": ["invalid_email_format"]}, id="email"),
        pytest.param(
            {"email": "ok@acme.example, nope"}, {"email": ["invalid_email_format"]}, id="emails"
        ),
        pytest.param({"timezone": "Mars/Olympus"}, {"timezone": ["invalid_timezone"]}, id="tz"),
        pytest.param({"currency": "ZZZ"}, {"currency": ["value_is_invalid"]}, id="currency"),
        pytest.param({"customer_type": "robot"}, {"customer_type": ["value_is_invalid"]},
                     id="customer-type"),
        pytest.param({"account_type": "vip"}, {"account_type": ["value_is_invalid"]},
                     id="account-type"),
        pytest.param(
            {"finalize_zero_amount_invoice": "maybe"},
            {"finalize_zero_amount_invoice": ["invalid_value"]},
            id="zero-amount",
        ),
        pytest.param({"net_payment_term": -1}, {"net_payment_term": ["value_is_out_of_range"]},
                     id="net-payment-term"),
        pytest.param(
            {"billing_configuration": {"invoice_grace_period": -2}},
            {"invoice_grace_period": ["value_is_out_of_range"]},
            id="grace-period",
        ),
        pytest.param(
            {"billing_configuration": {"document_locale": "xx"}},
            {"document_locale": ["not_a_valid_language_code"]},
            id="document-locale",
        ),
        pytest.param(
            {"billing_configuration": {"subscription_invoice_issuing_date_anchor": "someday"}},
            {"subscription_invoice_issuing_date_anchor": ["value_is_invalid"]},
            id="issuing-anchor",
        ),
        pytest.param(
            {"billing_configuration": {"payment_provider": "piggybank"}},
            {"payment_provider": ["value_is_invalid"]},
            id="payment-provider",
        ),
        pytest.param({"name": "n" * 256}, {"name": ["value_is_too_long"]}, id="name-too-long"),
        pytest.param({"net_payment_term": "soon"}, {"net_payment_term": ["value_is_invalid"]},
                     id="not-an-integer"),
    ],
)  # fmt: skip
def test_invalid_customer_values_are_422_with_lago_codes(api, fields, expected):
    assert errors_of(upsert(api, external_id="acme", **fields)) == expected
    assert not Customer.objects.exists()


def test_unknown_billing_entity_code_is_404_billing_entity_not_found(api):
    response = upsert(api, external_id="acme", billing_entity_code="nowhere")
    assert response.status_code == 404
    assert response.json()["code"] == "billing_entity_not_found"


def test_billing_entity_code_attaches_the_customer_to_that_entity(api, organization):
    billing_entity_create(organization=organization, code="us", name="Acme US",
                          timezone="America/New_York")  # fmt: skip
    body = create(api, external_id="acme", billing_entity_code="us")
    assert body["billing_entity_code"] == "us"
    assert body["applicable_timezone"] == "America/New_York"  # customer > entity > org


def test_customer_without_billing_entity_code_goes_to_the_default_entity(api):
    assert create(api, external_id="acme")["billing_entity_code"] == "default"


def test_currency_is_frozen_once_the_customer_has_a_subscription(api, organization):
    create(api, external_id="acme", currency="EUR")
    SubscriptionFactory(organization=organization, customer=Customer.objects.get())
    assert errors_of(upsert(api, external_id="acme", currency="USD")) == {
        "currency": ["currencies_does_not_match"]
    }
    assert Customer.objects.get().currency == "EUR"


def test_currency_is_frozen_once_a_fixed_coupon_is_applied(api, organization):
    create(api, external_id="acme")
    CouponFactory(organization=organization, code="ten", amount_currency="EUR")
    payload = {"applied_coupon": {"external_customer_id": "acme", "coupon_code": "ten"}}
    assert api.post("/api/v1/applied_coupons", payload, format="json").status_code == 200
    assert errors_of(upsert(api, external_id="acme", currency="USD")) == {
        "currency": ["currencies_does_not_match"]
    }


def test_currency_can_change_while_nothing_is_attached(api):
    create(api, external_id="acme", currency="EUR")
    assert create(api, external_id="acme", currency="USD")["currency"] == "USD"


def test_resending_the_same_currency_is_accepted_once_frozen(api, organization):
    create(api, external_id="acme", currency="EUR")
    SubscriptionFactory(organization=organization, customer=Customer.objects.get())
    assert create(api, external_id="acme", currency="EUR", name="Acme")["name"] == "Acme"


def test_tax_codes_attach_the_taxes(api, organization):
    TaxFactory(organization=organization, code="vat_20")
    TaxFactory(organization=organization, code="vat_5")
    body = create(api, external_id="acme", tax_codes=["vat_20", "vat_5"])
    assert sorted(t["code"] for t in body["taxes"]) == ["vat_20", "vat_5"]
    assert [t["code"] for t in create(api, external_id="acme", tax_codes=[])["taxes"]] == []


def test_unknown_tax_code_is_lagos_404_and_creates_nothing(api, organization):
    response = upsert(api, external_id="acme", tax_codes=["nope"])
    assert (response.status_code, response.json()["code"]) == (404, "tax_not_found")
    assert not Customer.objects.filter(organization=organization, external_id="acme").exists()


# --- metadata ---------------------------------------------------------------------------------


def _pairs(body):
    return [(m["key"], m["value"], m["display_in_invoice"]) for m in body["metadata"]]


def test_more_than_five_metadata_is_invalid_count(api):
    metadata = [{"key": f"k{i}", "value": "v"} for i in range(6)]
    assert errors_of(upsert(api, external_id="acme", metadata=metadata)) == {
        "metadata": ["invalid_count"]
    }


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        pytest.param({"key": "k" * 21, "value": "v"}, {"key": ["value_is_too_long"]}, id="key"),
        pytest.param({"key": "k", "value": "v" * 101}, {"value": ["value_is_too_long"]},
                     id="value"),
        pytest.param({"key": "", "value": "v"}, {"key": ["value_is_mandatory"]}, id="no-key"),
        pytest.param({"key": "k"}, {"value": ["value_is_mandatory"]}, id="no-value"),
    ],
)  # fmt: skip
def test_metadata_limits_are_enforced(api, item, expected):
    assert errors_of(upsert(api, external_id="acme", metadata=[item])) == expected


def test_metadata_at_the_length_limits_is_accepted(api):
    body = create(api, external_id="acme", metadata=[{"key": "k" * 20, "value": "v" * 100}])
    assert _pairs(body) == [("k" * 20, "v" * 100, False)]


def test_duplicate_metadata_keys_are_refused(api):
    metadata = [{"key": "k", "value": "1"}, {"key": "k", "value": "2"}]
    assert errors_of(upsert(api, external_id="acme", metadata=metadata)) == {
        "key": ["value_already_exist"]
    }


def test_metadata_update_replaces_the_whole_list_matching_items_by_id(api):
    body = create(
        api,
        external_id="acme",
        metadata=[{"key": "keep", "value": "1"}, {"key": "drop", "value": "2"}],
    )
    kept = next(m for m in body["metadata"] if m["key"] == "keep")
    updated = create(
        api,
        external_id="acme",
        metadata=[
            {"id": kept["lago_id"], "key": "keep", "value": "1b", "display_in_invoice": True},
            {"key": "new", "value": "3"},
        ],
    )
    assert _pairs(updated) == [("keep", "1b", True), ("new", "3", False)]
    assert (
        next(m for m in updated["metadata"] if m["key"] == "keep")["lago_id"] == (kept["lago_id"])
    )


def test_an_empty_metadata_list_removes_every_pair(api):
    create(api, external_id="acme", metadata=[{"key": "a", "value": "1"}])
    assert create(api, external_id="acme", metadata=[])["metadata"] == []


def test_metadata_absent_from_an_update_is_kept(api):
    create(api, external_id="acme", metadata=[{"key": "a", "value": "1"}])
    assert _pairs(create(api, external_id="acme", name="Acme")) == [("a", "1", False)]


# --- list and filters -------------------------------------------------------------------------


@pytest.fixture
def three_customers(api, organization):
    billing_entity_create(organization=organization, code="us", name="Acme US")
    create(
        api,
        external_id="fr_company",
        name="Lumière SAS",
        email="compta@lumiere.example",
        country="FR",
        state="IDF",
        zipcode="75001",
        currency="EUR",
        customer_type="company",
        tax_identification_number="FR123",
        metadata=[{"key": "segment", "value": "smb"}],
    )
    create(
        api,
        external_id="us_partner",
        name="Northwind",
        legal_name="Northwind Traders Inc",
        country="US",
        state="NY",
        zipcode="10001",
        currency="USD",
        account_type="partner",
        billing_entity_code="us",
        metadata=[{"key": "segment", "value": "enterprise"}],
    )
    create(api, external_id="de_person", firstname="Anna", lastname="Schmidt", country="DE",
           zipcode="10115", currency="EUR", customer_type="individual")  # fmt: skip


def external_ids(api, query):
    response = api.get(f"/api/v1/customers?{query}")
    assert response.status_code == 200, response.json()
    return sorted(c["external_id"] for c in response.json()["customers"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("", ["de_person", "fr_company", "us_partner"], id="no-filter"),
        pytest.param("account_type[]=partner", ["us_partner"], id="account-type"),
        pytest.param("billing_entity_codes[]=us", ["us_partner"], id="billing-entity"),
        pytest.param("search_term=northwind traders", ["us_partner"], id="search-legal-name"),
        pytest.param("search_term=SCHMIDT", ["de_person"], id="search-lastname"),
        pytest.param("search_term=compta@", ["fr_company"], id="search-email"),
        pytest.param("search_term=_person", ["de_person"], id="search-external-id"),
        pytest.param("countries[]=FR&countries[]=DE", ["de_person", "fr_company"], id="countries"),
        pytest.param("states[]=NY", ["us_partner"], id="states"),
        pytest.param("zipcodes[]=75001&zipcodes[]=10115", ["de_person", "fr_company"],
                     id="zipcodes"),
        pytest.param("currencies[]=USD", ["us_partner"], id="currencies"),
        pytest.param("has_tax_identification_number=true", ["fr_company"], id="has-tax-id"),
        pytest.param("has_tax_identification_number=false", ["de_person", "us_partner"],
                     id="no-tax-id"),
        pytest.param("metadata[segment]=enterprise", ["us_partner"], id="metadata"),
        pytest.param("metadata[segment]=", ["de_person"], id="metadata-key-absent"),
        pytest.param("customer_type=individual", ["de_person"], id="customer-type"),
        pytest.param("has_customer_type=false", ["us_partner"], id="no-customer-type"),
        pytest.param("has_customer_type=true", ["de_person", "fr_company"],
                     id="has-customer-type"),
        pytest.param("countries[]=FR&currencies[]=USD", [], id="filters-combine"),
    ],
)  # fmt: skip
def test_list_filters(api, three_customers, query, expected):
    assert external_ids(api, query) == expected


def test_list_filter_on_an_unknown_billing_entity_is_404(api, three_customers):
    response = api.get("/api/v1/customers?billing_entity_codes[]=us&billing_entity_codes[]=xx")
    assert response.status_code == 404
    assert response.json()["code"] == "billing_entity_not_found"


def test_list_filter_with_an_invalid_country_is_422(api, three_customers):
    assert errors_of(api.get("/api/v1/customers?countries[]=ZZ")) == {
        "countries": ["value_is_invalid"]
    }


def test_list_is_newest_first_and_paginated(api, three_customers):
    body = api.get("/api/v1/customers?per_page=2&page=1").json()
    assert [c["external_id"] for c in body["customers"]] == ["de_person", "us_partner"]
    assert body["meta"] == {"current_page": 1, "next_page": 2, "prev_page": None,
                            "total_pages": 2, "total_count": 3}  # fmt: skip


def test_list_query_count_does_not_grow_with_customers(
    api, three_customers, django_assert_max_num_queries
):
    with django_assert_max_num_queries(7):
        assert len(api.get("/api/v1/customers").json()["customers"]) == 3


# --- tenancy ----------------------------------------------------------------------------------


def test_another_tenants_customer_is_404(api, other_api):
    create(other_api, external_id="globex_client")
    assert api.get("/api/v1/customers/globex_client").status_code == 404
    assert api.delete("/api/v1/customers/globex_client").status_code == 404
    assert external_ids(api, "") == []


def test_the_same_external_id_lives_in_two_tenants(api, other_api):
    ours, theirs = create(api, external_id="shared"), create(other_api, external_id="shared")
    assert ours["lago_id"] != theirs["lago_id"]
    assert ours["sequential_id"] == theirs["sequential_id"] == 1  # numbered per organization


def test_a_key_without_customer_write_permission_is_403(organization):
    _, raw = api_key_create(organization=organization, permissions={"customer": ["read"]})
    client = client_for(raw)
    assert upsert(client, external_id="acme").status_code == 403
    assert client.get("/api/v1/customers").status_code == 200


# --- soft delete ------------------------------------------------------------------------------


def test_delete_soft_deletes_and_answers_the_customer(api):
    created = create(api, external_id="acme", name="Acme")
    response = api.delete("/api/v1/customers/acme")
    assert response.status_code == 200
    assert response.json()["customer"]["lago_id"] == created["lago_id"]
    assert Customer.objects.get().deleted_at is not None
    assert api.get("/api/v1/customers/acme").status_code == 404
    assert external_ids(api, "") == []


def test_deleting_a_deleted_customer_is_404(api):
    create(api, external_id="acme")
    api.delete("/api/v1/customers/acme")
    assert api.delete("/api/v1/customers/acme").status_code == 404


def test_external_id_of_a_deleted_customer_can_be_reused(api):
    old = create(api, external_id="acme", name="Old")
    api.delete("/api/v1/customers/acme")
    new = create(api, external_id="acme", name="New")
    assert new["lago_id"] != old["lago_id"]
    assert new["sequential_id"] == 2  # numbers are never handed out twice
    assert Customer.objects.count() == 2


def test_delete_terminates_active_and_cancels_pending_subscriptions(api, organization):
    create(api, external_id="acme", currency="EUR")
    customer = Customer.objects.get()
    active = SubscriptionFactory(organization=organization, customer=customer)
    pending = SubscriptionFactory(
        organization=organization,
        customer=customer,
        status="pending",
        started_at=None,
        subscription_at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
    )
    api.delete("/api/v1/customers/acme")
    active.refresh_from_db()
    pending.refresh_from_db()
    assert active.status == Subscription.Status.TERMINATED
    assert active.terminated_at is not None
    assert pending.status == Subscription.Status.CANCELED


def test_delete_terminates_applied_coupons(api, organization):
    create(api, external_id="acme")
    CouponFactory(organization=organization, code="ten")
    payload = {"applied_coupon": {"external_customer_id": "acme", "coupon_code": "ten"}}
    api.post("/api/v1/applied_coupons", payload, format="json")
    api.delete("/api/v1/customers/acme")
    applied = Customer.objects.get().applied_coupons.get()
    assert applied.status == "terminated"
    assert applied.terminated_at is not None


# --- concurrency (PostgreSQL) -----------------------------------------------------------------


def run_in_threads(count, work):
    barrier = threading.Barrier(count)
    results, failures = [None] * count, []

    def run(index):
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as exc:  # surfaced by the assertion below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    return results


@pytest.mark.django_db(transaction=True)
def test_concurrent_creations_get_distinct_sequential_ids(api_key):
    statuses = run_in_threads(
        5, lambda i: upsert(client_for(api_key[1]), external_id=f"c{i}").status_code
    )
    assert statuses == [200] * 5
    assert sorted(Customer.objects.values_list("sequential_id", flat=True)) == [1, 2, 3, 4, 5]


@pytest.mark.django_db(transaction=True)
def test_concurrent_upserts_of_one_external_id_create_a_single_customer(api_key):
    statuses = run_in_threads(
        5, lambda i: upsert(client_for(api_key[1]), external_id="same", name=f"n{i}").status_code
    )
    assert statuses == [200] * 5
    assert Customer.objects.count() == 1


def test_the_outbox_event_of_an_api_creation_names_the_api_key(api, api_key):
    created = create(api, external_id="acme")
    event = OutboxEvent.objects.get(event_type="customer.created", object_id=created["lago_id"])
    assert (event.actor_type, event.actor_id, event.actor_name) == (
        "api_key",
        str(api_key[0].pk),
        str(api_key[0]),
    )
