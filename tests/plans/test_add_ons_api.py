"""`/add_ons` (spec §16): catalogue items with taxes."""

from datetime import UTC

import pytest

from plans.models import AddOn, FixedCharge
from tests.plans.factories import AddOnFactory, FixedChargeFactory, TaxFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/add_ons"


def iso(instant):
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def create(api, **fields):
    payload = {"name": "Setup fee", "code": "setup", "amount_cents": 50000,
               "amount_currency": "EUR", **fields}  # fmt: skip
    return api.post(URL, {"add_on": payload}, format="json")


def errors_of(response):
    assert response.status_code == 422, response.json()
    return response.json()["error_details"]


def test_create_renders_the_whole_lago_object_with_taxes(api, organization):
    vat = TaxFactory(organization=organization, code="vat", name="VAT", rate="20")
    response = create(
        api, invoice_display_name="Setup (SF1)", description="One time", tax_codes=["vat"]
    )
    assert response.status_code == 200
    add_on = AddOn.objects.get(organization=organization, code="setup")
    assert response.json() == {
        "add_on": {
            "lago_id": str(add_on.id),
            "name": "Setup fee",
            "invoice_display_name": "Setup (SF1)",
            "code": "setup",
            "amount_cents": 50000,
            "amount_currency": "EUR",
            "created_at": iso(add_on.created_at),
            "description": "One time",
            "taxes": [
                {
                    "lago_id": str(vat.id),
                    "name": "VAT",
                    "code": "vat",
                    "rate": 20.0,
                    "description": None,
                    "applied_to_organization": False,
                    "add_ons_count": 1,
                    "customers_count": 0,
                    "plans_count": 0,
                    "charges_count": 0,
                    "commitments_count": 0,
                    "created_at": iso(vat.created_at),
                }
            ],
        }
    }


def test_blank_optional_texts_are_null(api):
    body = create(api).json()["add_on"]
    assert (body["invoice_display_name"], body["description"], body["taxes"]) == (None, None, [])


def test_unknown_tax_code_is_lagos_404_and_creates_nothing(api, organization, other_organization):
    TaxFactory(organization=other_organization, code="vat")
    response = create(api, tax_codes=["vat"])
    assert (response.status_code, response.json()["code"]) == (404, "tax_not_found")
    assert not AddOn.objects.filter(organization=organization).exists()


def test_update_replaces_taxes_when_given(api, organization):
    TaxFactory(organization=organization, code="vat")
    TaxFactory(organization=organization, code="gst")
    create(api, tax_codes=["vat"])
    body = api.put(f"{URL}/setup", {"add_on": {"tax_codes": ["gst"]}}, format="json").json()
    assert [t["code"] for t in body["add_on"]["taxes"]] == ["gst"]


def test_update_without_tax_codes_keeps_taxes(api, organization):
    TaxFactory(organization=organization, code="vat")
    create(api, tax_codes=["vat"])
    body = api.put(f"{URL}/setup", {"add_on": {"amount_cents": 100}}, format="json").json()
    assert (body["add_on"]["amount_cents"], [t["code"] for t in body["add_on"]["taxes"]]) == (
        100,
        ["vat"],
    )


def test_list_is_paginated_newest_first(api, organization):
    for n in range(3):
        AddOnFactory(organization=organization, code=f"a{n}")
    body = api.get(URL, {"per_page": 1}).json()
    assert [a["code"] for a in body["add_ons"]] == ["a2"]
    assert body["meta"]["total_pages"] == 3
    assert body["meta"]["next_page"] == 2


def test_list_query_count_does_not_grow_with_rows(api, organization, django_assert_max_num_queries):
    tax = TaxFactory(organization=organization)
    for n in range(5):
        AddOnFactory(organization=organization, code=f"a{n}").taxes.add(tax)
    with django_assert_max_num_queries(6):
        body = api.get(URL).json()
    assert {len(a["taxes"]) for a in body["add_ons"]} == {1}


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        pytest.param({"name": ""}, {"name": ["value_is_mandatory"]}, id="name"),
        pytest.param({"code": None}, {"code": ["value_is_mandatory"]}, id="code"),
        pytest.param({"amount_cents": None}, {"amount_cents": ["value_is_mandatory"]}, id="amount"),
        pytest.param({"amount_cents": -1}, {"amount_cents": ["value_is_invalid"]}, id="negative"),
        pytest.param({"amount_currency": "XXX"}, {"amount_currency": ["value_is_invalid"]},
                     id="currency"),
    ],
)  # fmt: skip
def test_invalid_add_on_is_refused(api, fields, details):
    assert errors_of(create(api, **fields)) == details


def test_code_must_be_unique_among_live_add_ons(api):
    create(api)
    assert errors_of(create(api)) == {"code": ["value_already_exist"]}
    api.delete(f"{URL}/setup")
    assert create(api).status_code == 200


def test_delete_is_soft_and_removes_fixed_charges(api, organization):
    add_on = AddOnFactory(organization=organization, code="seat")
    fixed_charge = FixedChargeFactory(organization=organization, add_on=add_on)
    response = api.delete(f"{URL}/seat")
    assert response.status_code == 200
    assert response.json()["add_on"]["code"] == "seat"
    add_on.refresh_from_db()
    assert add_on.deleted_at is not None
    assert FixedCharge.objects.get(pk=fixed_charge.pk).deleted_at is not None
    assert api.get(f"{URL}/seat").status_code == 404


def test_other_tenant_add_on_is_404(api, other_api, organization):
    AddOnFactory(organization=organization, code="seat")
    response = other_api.get(f"{URL}/seat")
    assert response.status_code == 404
    assert response.json()["code"] == "add_on_not_found"
    assert other_api.put(f"{URL}/seat", {"add_on": {"name": "x"}}, format="json").status_code == (
        404
    )
