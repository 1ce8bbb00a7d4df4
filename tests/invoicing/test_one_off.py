"""One-off invoices of add-ons: `POST /invoices` (spec §12.10)."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from billing.models import OutboxEvent
from billing.services import billing_entity_create, billing_entity_update
from invoicing.models import Invoice
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import vat
from tests.plans.factories import AddOnFactory, TaxFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 10, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def customer(organization):
    return CustomerFactory(organization=organization, external_id="globex", sequential_id=7)


@pytest.fixture
def add_on(organization):
    return AddOnFactory(
        organization=organization,
        code="setup",
        name="Setup",
        amount_cents=50000,
        amount_currency="EUR",
        description="Onboarding workshop",
    )


def create(api, **invoice):
    # the clock ticks: fees are listed in creation order
    with time_machine.travel(NOW, tick=True):
        return api.post("/api/v1/invoices", {"invoice": invoice}, format="json")


def test_one_off_invoice_is_finalized_and_numbered_at_once(api, organization, customer, add_on):
    entity = organization.default_billing_entity()
    billing_entity_update(
        billing_entity=entity, values={"net_payment_term": 15, "document_number_prefix": "ACM"}
    )
    response = create(
        api,
        external_customer_id="globex",
        fees=[{"add_on_code": "setup"}, {"add_on_code": "setup", "units": "2.5"}],
    )
    assert response.status_code == 200, response.json()
    body = response.json()["invoice"]
    assert body["invoice_type"] == "one_off"
    assert body["status"] == "finalized"
    assert body["number"] == "ACM-007-001"
    assert body["sequential_id"] == 1
    assert body["issuing_date"] == "2026-05-10"
    assert body["payment_due_date"] == "2026-05-25"
    assert body["net_payment_term"] == 15
    assert [f["amount_cents"] for f in body["fees"]] == [50000, 125000]
    assert [f["units"] for f in body["fees"]] == ["1.0", "2.5"]
    assert body["fees"][0]["description"] == "Onboarding workshop"
    assert body["fees"][0]["item"]["code"] == "setup"
    assert body["fees_amount_cents"] == 175000
    assert body["total_amount_cents"] == 175000
    assert body["payment_status"] == "pending"
    event = OutboxEvent.objects.get(event_type="invoice.one_off_created")
    assert event.object_id == body["lago_id"]


def test_unit_amount_display_name_period_and_fee_taxes(api, organization, customer, add_on):
    vat(organization, rate="20", code="vat_20")
    TaxFactory(organization=organization, code="reduced", name="Reduced", rate="5.5")
    response = create(
        api,
        external_customer_id="globex",
        fees=[
            {
                "add_on_code": "setup",
                "unit_amount_cents": 1999,
                "units": 3,
                "invoice_display_name": "Custom setup",
                "description": "Three sessions",
                "from_datetime": "2026-05-01T00:00:00Z",
                "to_datetime": "2026-05-31T23:59:59Z",
                "tax_codes": ["reduced", "vat_20"],
            }
        ],
    )
    assert response.status_code == 200, response.json()
    body = response.json()["invoice"]
    (fee,) = body["fees"]
    assert fee["amount_cents"] == 5997
    assert fee["precise_unit_amount"] == "19.99"
    assert fee["item"]["invoice_display_name"] == "Custom setup"
    assert fee["description"] == "Three sessions"
    assert fee["from_date"] == "2026-05-01T00:00:00Z"
    assert fee["to_date"] == "2026-05-31T23:59:59Z"
    assert fee["taxes_rate"] == 25.5
    # 5997 x 5.5% = 329.835 -> 330; 5997 x 20% = 1199.4 -> 1199; total rounded once: 1529.235
    assert sorted(t["amount_cents"] for t in fee["applied_taxes"]) == [330, 1199]
    assert body["taxes_amount_cents"] == 1529
    assert body["total_amount_cents"] == 5997 + 1529


def test_add_on_taxes_then_customer_then_billing_entity(api, organization, customer, add_on):
    tax = vat(organization, rate="10", code="ten")
    add_on.taxes.add(tax)
    body = create(api, external_customer_id="globex", fees=[{"add_on_code": "setup"}]).json()
    assert body["invoice"]["applied_taxes"][0]["tax_code"] == "ten"
    add_on.taxes.clear()
    customer.taxes.add(vat(organization, rate="7", code="seven"))
    body = create(api, external_customer_id="globex", fees=[{"add_on_code": "setup"}]).json()
    assert body["invoice"]["applied_taxes"][0]["tax_code"] == "seven"


def test_the_currency_is_set_on_a_customer_without_one(api, organization, add_on):
    CustomerFactory(organization=organization, external_id="fresh", currency="")
    response = create(
        api, external_customer_id="fresh", currency="USD", fees=[{"add_on_code": "setup"}]
    )
    assert response.status_code == 200
    assert response.json()["invoice"]["currency"] == "USD"
    assert response.json()["invoice"]["customer"]["currency"] == "USD"


def test_another_currency_than_the_customers_is_refused(api, customer, add_on):
    response = create(
        api, external_customer_id="globex", currency="USD", fees=[{"add_on_code": "setup"}]
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == {"currency": ["currencies_does_not_match"]}
    assert not Invoice.objects.exists()


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        pytest.param({"external_customer_id": "nobody"}, 404, "customer_not_found", id="customer"),
        pytest.param(
            {"external_customer_id": "globex", "fees": []}, 404, "fees_not_found", id="fees"
        ),
        pytest.param(
            {"external_customer_id": "globex", "fees": [{"add_on_code": "nope"}]},
            404,
            "add_on_not_found",
            id="add-on",
        ),
        pytest.param(
            {
                "external_customer_id": "globex",
                "fees": [{"add_on_code": "setup"}],
                "billing_entity_code": "nope",
            },
            404,
            "billing_entity_not_found",
            id="billing-entity",
        ),
    ],
)
def test_missing_things_are_not_found(api, customer, add_on, payload, status, code):
    response = create(api, **payload)
    assert response.status_code == status
    assert response.json()["code"] == code
    assert not Invoice.objects.exists()


@pytest.mark.parametrize(
    ("fee", "details"),
    [
        pytest.param({"add_on_code": "setup", "units": "-1"}, {"units": ["value_is_invalid"]}),
        pytest.param(
            {"add_on_code": "setup", "units": "abc"}, {"fees.0.units": ["value_is_invalid"]}
        ),
        pytest.param(
            {"add_on_code": "setup", "tax_codes": ["unknown"]}, {"tax_codes": ["tax_not_found"]}
        ),
        pytest.param({"units": 1}, {"fees.0.add_on_code": ["value_is_mandatory"]}),
    ],
)
def test_bad_fees_are_refused_without_a_partial_write(api, customer, add_on, fee, details):
    response = create(api, external_customer_id="globex", fees=[fee])
    assert response.status_code == 422
    assert response.json()["error_details"] == details
    assert not Invoice.objects.exists()


def test_the_invoice_of_another_billing_entity_uses_its_numbering(
    api, organization, customer, add_on
):
    billing_entity_create(
        organization=organization,
        code="eu",
        name="EU",
        document_number_prefix="EU",
        document_numbering="per_billing_entity",
        timezone="Europe/Paris",
    )
    response = create(
        api,
        external_customer_id="globex",
        billing_entity_code="eu",
        fees=[{"add_on_code": "setup"}],
    )
    assert response.status_code == 200, response.json()
    body = response.json()["invoice"]
    assert body["billing_entity_code"] == "eu"
    assert body["number"] == "EU-202605-001"


def test_the_issuing_date_is_the_customers_local_day(api, organization, add_on):
    CustomerFactory(organization=organization, external_id="tokyo", timezone="Asia/Tokyo")
    late = dt.datetime(2026, 5, 10, 20, 0, tzinfo=dt.UTC)  # already May 11 in Tokyo
    with time_machine.travel(late, tick=False):
        response = api.post(
            "/api/v1/invoices",
            {"invoice": {"external_customer_id": "tokyo", "fees": [{"add_on_code": "setup"}]}},
            format="json",
        )
    assert response.json()["invoice"]["issuing_date"] == "2026-05-11"


def test_a_free_add_on_is_finalized_and_paid(api, organization, customer, add_on):
    response = create(
        api,
        external_customer_id="globex",
        fees=[{"add_on_code": "setup", "unit_amount_cents": 0}],
    )
    body = response.json()["invoice"]
    assert body["status"] == "finalized"
    assert body["payment_status"] == "succeeded"
    assert body["total_amount_cents"] == 0


def test_an_idempotency_key_creates_one_invoice(api, customer, add_on):
    payload = {"invoice": {"external_customer_id": "globex", "fees": [{"add_on_code": "setup"}]}}
    with time_machine.travel(NOW, tick=False):
        first = api.post("/api/v1/invoices", payload, format="json", HTTP_IDEMPOTENCY_KEY="k1")
        second = api.post("/api/v1/invoices", payload, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.json() == second.json()
    assert Invoice.objects.count() == 1
