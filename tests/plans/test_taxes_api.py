"""`/taxes` (spec §14) and the default taxes of billing entities."""

from datetime import UTC
from decimal import Decimal

import pytest

from billing.actors import SYSTEM
from billing.errors import Invalid
from plans.models import AddOn, BillingEntityTax, Tax
from plans.selectors import billing_entity_taxes
from plans.services.taxes import billing_entity_set_taxes, billing_entity_update_with_taxes
from tests.billing.factories import BillingEntityFactory
from tests.plans.factories import AddOnFactory, ChargeFactory, PlanFactory, TaxFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/taxes"


def iso(instant):
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create(api, **fields):
    payload = {"name": "TVA", "code": "fr_vat", "rate": 20, **fields}
    return api.post(URL, {"tax": payload}, format="json")


def errors_of(response):
    assert response.status_code == 422, response.json()
    return response.json()["error_details"]


def test_create_renders_the_whole_lago_object(api, organization):
    response = create(api, rate="5.5", description="French reduced VAT")
    assert response.status_code == 200
    tax = Tax.objects.get(organization=organization, code="fr_vat")
    assert response.json() == {
        "tax": {
            "lago_id": str(tax.id),
            "name": "TVA",
            "code": "fr_vat",
            "rate": 5.5,
            "description": "French reduced VAT",
            "applied_to_organization": False,
            "add_ons_count": 0,
            "customers_count": 0,
            "plans_count": 0,
            "charges_count": 0,
            "commitments_count": 0,
            "created_at": iso(tax.created_at),
        }
    }
    assert tax.rate == Decimal("5.5")


def test_rate_is_stored_without_binary_error(api, organization):
    create(api, rate=0.1)
    assert Tax.objects.get(organization=organization).rate == Decimal("0.1")


def test_counters_count_live_attachments(api, organization):
    tax = TaxFactory(organization=organization, code="vat")
    AddOnFactory(organization=organization).taxes.add(tax)
    deleted = AddOnFactory(organization=organization)
    deleted.taxes.add(tax)
    AddOn.objects.filter(pk=deleted.pk).update(deleted_at=deleted.created_at)
    PlanFactory(organization=organization).taxes.add(tax)
    ChargeFactory(organization=organization).taxes.add(tax)
    body = api.get(f"{URL}/vat").json()["tax"]
    assert (body["add_ons_count"], body["plans_count"], body["charges_count"]) == (1, 1, 1)


def test_list_is_paginated_newest_first(api, organization):
    for n in range(3):
        TaxFactory(organization=organization, code=f"t{n}")
    body = api.get(URL, {"per_page": 2, "page": 2}).json()
    assert [t["code"] for t in body["taxes"]] == ["t0"]
    assert body["meta"] == {
        "current_page": 2,
        "next_page": None,
        "prev_page": 1,
        "total_pages": 2,
        "total_count": 3,
    }


def test_list_query_count_does_not_grow_with_rows(api, organization, django_assert_max_num_queries):
    for n in range(5):
        AddOnFactory(organization=organization).taxes.add(
            TaxFactory(organization=organization, code=f"t{n}")
        )
    with django_assert_max_num_queries(6):
        body = api.get(URL).json()
    assert {t["add_ons_count"] for t in body["taxes"]} == {1}


def test_update_changes_only_given_fields(api):
    create(api, description="standard")
    body = api.put(f"{URL}/fr_vat", {"tax": {"rate": "10"}}, format="json").json()["tax"]
    assert (body["rate"], body["name"], body["description"]) == (10.0, "TVA", "standard")


def test_update_can_change_the_code(api):
    create(api)
    response = api.put(f"{URL}/fr_vat", {"tax": {"code": "vat"}}, format="json")
    assert response.json()["tax"]["code"] == "vat"
    assert api.get(f"{URL}/vat").status_code == 200


def test_delete_removes_the_tax_everywhere(api, organization):
    create(api)
    tax = Tax.objects.get(organization=organization)
    add_on = AddOnFactory(organization=organization)
    add_on.taxes.add(tax)
    response = api.delete(f"{URL}/fr_vat")
    assert response.status_code == 200
    assert response.json()["tax"]["lago_id"] == str(tax.id)
    assert not Tax.objects.filter(pk=tax.pk).exists()
    assert list(add_on.taxes.all()) == []


def test_code_must_be_unique(api):
    create(api)
    assert errors_of(create(api)) == {"code": ["value_already_exist"]}


@pytest.mark.parametrize("field", ["name", "code", "rate"])
def test_name_code_and_rate_are_mandatory(api, field):
    assert errors_of(create(api, **{field: None})) == {field: ["value_is_mandatory"]}


@pytest.mark.parametrize("rate", ["-1", "abc", "1.123456", "10000000"])
def test_rate_must_be_a_positive_decimal_that_fits(api, rate):
    assert errors_of(create(api, rate=rate)) == {"rate": ["value_is_invalid"]}


def test_other_tenant_tax_is_404(api, other_api):
    create(api)
    response = other_api.get(f"{URL}/fr_vat")
    assert response.status_code == 404
    assert response.json()["code"] == "tax_not_found"
    assert other_api.delete(f"{URL}/fr_vat").status_code == 404


def test_applied_to_organization_makes_it_a_default_entity_tax(api, organization):
    create(api, applied_to_organization=True)
    entity = organization.default_billing_entity()
    assert [t.code for t in billing_entity_taxes(billing_entity=entity)] == ["fr_vat"]
    api.put(f"{URL}/fr_vat", {"tax": {"applied_to_organization": False}}, format="json")
    assert billing_entity_taxes(billing_entity=entity) == []


# --- billing entity default taxes --------------------------------------------------------------


def test_billing_entity_set_taxes_replaces_the_set(organization):
    entity = BillingEntityFactory(organization=organization)
    for code in ("vat", "gst", "pst"):
        TaxFactory(organization=organization, code=code)
    billing_entity_set_taxes(billing_entity=entity, tax_codes=["vat", "gst"])
    billing_entity_set_taxes(billing_entity=entity, tax_codes=["gst", "pst"])
    assert {t.code for t in billing_entity_taxes(billing_entity=entity)} == {"gst", "pst"}
    assert BillingEntityTax.objects.filter(billing_entity=entity).count() == 2


def test_billing_entity_set_taxes_refuses_unknown_codes(organization, other_organization):
    TaxFactory(organization=other_organization, code="vat")
    with pytest.raises(Invalid) as refused:
        billing_entity_set_taxes(
            billing_entity=organization.default_billing_entity(), tax_codes=["vat"]
        )
    assert refused.value.details == {"tax_codes": ["tax_not_found"]}


def test_default_entity_taxes_drive_the_deprecated_flag(organization):
    TaxFactory(organization=organization, code="vat")
    billing_entity_set_taxes(
        billing_entity=organization.default_billing_entity(), tax_codes=["vat"]
    )
    assert Tax.objects.get(code="vat").applied_to_organization is True


def test_billing_entity_update_with_an_unknown_tax_code_changes_nothing(organization):
    entity = BillingEntityFactory(organization=organization, name="Acme FR")
    TaxFactory(organization=organization, code="vat")
    billing_entity_set_taxes(billing_entity=entity, tax_codes=["vat"])
    with pytest.raises(Invalid) as refused:
        billing_entity_update_with_taxes(
            billing_entity=entity, values={"name": "Renamed"}, tax_codes=["nope"], actor=SYSTEM
        )
    assert refused.value.details == {"tax_codes": ["tax_not_found"]}
    entity.refresh_from_db()
    assert entity.name == "Acme FR"
    assert [t.code for t in billing_entity_taxes(billing_entity=entity)] == ["vat"]


def test_organization_answer_lists_the_default_entity_taxes(api, organization):
    TaxFactory(organization=organization, code="vat")
    billing_entity_set_taxes(
        billing_entity=organization.default_billing_entity(), tax_codes=["vat"]
    )
    body = api.get("/api/v1/organizations").json()["organization"]
    assert [t["code"] for t in body["taxes"]] == ["vat"]
