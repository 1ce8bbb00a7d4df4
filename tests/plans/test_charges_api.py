"""Charges, charge filters and fixed charges: nested in `PUT /plans` and as sub-resources."""

import pytest

from plans.models import BillableMetricFilter, Charge, ChargeFilter, FixedCharge
from tests.plans.factories import (
    AddOnFactory,
    BillableMetricFactory,
    ChargeFactory,
    FixedChargeFactory,
    PlanFactory,
    TaxFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def plan(organization):
    return PlanFactory(organization=organization, code="p")


@pytest.fixture
def metric(organization):
    metric = BillableMetricFactory(organization=organization, code="compute")
    BillableMetricFilter.objects.create(
        organization=organization, billable_metric=metric, key="region", values=["eu", "us"]
    )
    BillableMetricFilter.objects.create(
        organization=organization, billable_metric=metric, key="tier", values=["gold", "silver"]
    )
    return metric


@pytest.fixture
def charge(organization, plan, metric):
    return ChargeFactory(organization=organization, plan=plan, billable_metric=metric, code="c")


def put_charges(api, charges: list[dict]) -> list[dict]:
    response = api.put("/api/v1/plans/p", {"plan": {"charges": charges}}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["plan"]["charges"]


# --- charges nested in PUT /plans ---------------------------------------------------------------


def test_plan_update_updates_a_charge_named_by_id(api, charge):
    (rendered,) = put_charges(
        api, [{"id": str(charge.id), "charge_model": "standard", "properties": {"amount": "9"}}]
    )
    assert rendered["lago_id"] == str(charge.id)
    assert rendered["properties"] == {"amount": "9"}


def test_plan_update_updates_a_charge_named_by_code(api, charge):
    (rendered,) = put_charges(
        api, [{"code": "c", "charge_model": "standard", "properties": {"amount": "4"}}]
    )
    assert rendered["lago_id"] == str(charge.id)


def test_plan_update_removes_missing_charges_softly(api, charge, metric):
    (rendered,) = put_charges(
        api,
        [{"billable_metric_id": str(metric.id), "charge_model": "standard",
          "properties": {"amount": "1"}}],
    )  # fmt: skip
    assert rendered["lago_id"] != str(charge.id)
    charge.refresh_from_db()
    assert charge.deleted_at is not None


def test_plan_update_without_charges_keeps_them(api, charge):
    response = api.put("/api/v1/plans/p", {"plan": {"name": "Renamed"}}, format="json")
    assert [c["lago_id"] for c in response.json()["plan"]["charges"]] == [str(charge.id)]


def test_plan_update_with_empty_charges_removes_them_all(api, charge):
    assert put_charges(api, []) == []


def test_charge_update_without_properties_takes_the_model_defaults(api, charge):
    (rendered,) = put_charges(api, [{"id": str(charge.id), "charge_model": "package"}])
    assert rendered["properties"] == {"amount": "0", "free_units": 0, "package_size": 1}


def test_charge_code_defaults_to_the_metric_code_then_a_suffix(api, plan, metric):
    payload = {"billable_metric_id": str(metric.id), "charge_model": "standard",
               "properties": {"amount": "1"}}  # fmt: skip
    codes = [c["code"] for c in put_charges(api, [payload, payload, payload])]
    assert codes == ["compute", "compute_2", "compute_3"]


def test_plan_update_refuses_two_charges_with_one_code(api, plan, metric):
    payload = {"billable_metric_id": str(metric.id), "charge_model": "standard", "code": "x",
               "properties": {"amount": "1"}}  # fmt: skip
    response = api.put("/api/v1/plans/p", {"plan": {"charges": [payload, payload]}}, format="json")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"code": ["value_already_exist"]}
    assert not Charge.objects.exists()


def test_charge_create_refuses_a_code_used_in_the_plan(api, charge, metric):
    payload = {"billable_metric_id": str(metric.id), "charge_model": "standard", "code": "c",
               "properties": {"amount": "1"}}  # fmt: skip
    response = api.post("/api/v1/plans/p/charges", {"charge": payload}, format="json")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"code": ["value_already_exist"]}


def test_properties_outside_the_model_are_dropped(api, plan, metric):
    (rendered,) = put_charges(
        api,
        [{"billable_metric_id": str(metric.id), "charge_model": "standard",
          "properties": {"amount": "1", "rate": "5", "grouped_by": ["region", ""]}}],
    )  # fmt: skip
    assert rendered["properties"] == {
        "amount": "1", "pricing_group_keys": ["region"], "grouped_by": ["region"]
    }  # fmt: skip
    assert Charge.objects.get().properties == {"amount": "1", "pricing_group_keys": ["region"]}


def test_plan_update_replaces_the_filters_of_a_charge(api, charge):
    kept = ChargeFilter.objects.create(
        organization=charge.organization, charge=charge, values={"region": ["eu"]},
        properties={"amount": "1"},
    )  # fmt: skip
    dropped = ChargeFilter.objects.create(
        organization=charge.organization, charge=charge, values={"region": ["us"]},
        properties={"amount": "2"},
    )  # fmt: skip
    (rendered,) = put_charges(
        api,
        [{"id": str(charge.id), "charge_model": "standard", "properties": {"amount": "1"},
          "filters": [
              {"values": {"region": ["eu"]}, "properties": {"amount": "5"}},
              {"values": {"tier": ["__ALL_FILTER_VALUES__"]}, "properties": {"amount": "6"},
               "invoice_display_name": "Any tier"},
          ]}],
    )  # fmt: skip
    assert rendered["filters"] == [
        {"invoice_display_name": None, "properties": {"amount": "5"},
         "values": {"region": ["eu"]}},
        {"invoice_display_name": "Any tier", "properties": {"amount": "6"},
         "values": {"tier": ["__ALL_FILTER_VALUES__"]}},
    ]  # fmt: skip
    kept.refresh_from_db()
    dropped.refresh_from_db()
    assert (kept.deleted_at, kept.properties) == (None, {"amount": "5"})
    assert dropped.deleted_at is not None


# --- /plans/{code}/charges ----------------------------------------------------------------------


def test_charges_list_newest_first(api, organization, plan, metric):
    ChargeFactory(organization=organization, plan=plan, billable_metric=metric, code="first")
    ChargeFactory(organization=organization, plan=plan, billable_metric=metric, code="second")
    body = api.get("/api/v1/plans/p/charges").json()
    assert [c["code"] for c in body["charges"]] == ["second", "first"]
    assert body["meta"]["total_count"] == 2


def test_charge_create_answers_the_charge(api, plan, metric, organization):
    TaxFactory(organization=organization, code="vat")
    response = api.post(
        "/api/v1/plans/p/charges",
        {"charge": {"billable_metric_id": str(metric.id), "code": "eu_compute",
                    "charge_model": "volume", "invoice_display_name": "Compute",
                    "tax_codes": ["vat"],
                    "properties": {"volume_ranges": [
                        {"from_value": 0, "to_value": 10, "per_unit_amount": "2",
                         "flat_amount": "1"},
                        {"from_value": 11, "to_value": None, "per_unit_amount": "1",
                         "flat_amount": "0"}]}}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    charge = response.json()["charge"]
    assert (charge["code"], charge["charge_model"], charge["invoice_display_name"]) == (
        "eu_compute", "volume", "Compute"
    )  # fmt: skip
    assert [t["code"] for t in charge["taxes"]] == ["vat"]
    assert api.get("/api/v1/plans/p/charges/eu_compute").json() == response.json()


def test_charge_update_through_the_sub_resource(api, charge):
    response = api.put(
        "/api/v1/plans/p/charges/c",
        {"charge": {"charge_model": "percentage", "properties": {"rate": "2"}}},
        format="json",
    )
    assert response.json()["charge"]["properties"] == {"rate": "2"}
    assert response.json()["charge"]["charge_model"] == "percentage"


def test_charge_delete_is_soft_and_answers_the_charge(api, charge):
    response = api.delete("/api/v1/plans/p/charges/c")
    assert response.json()["charge"]["lago_id"] == str(charge.id)
    assert api.get("/api/v1/plans/p/charges/c").json()["code"] == "charge_not_found"
    assert Charge.objects.filter(pk=charge.pk, deleted_at__isnull=False).exists()


def test_charge_of_an_unknown_plan_is_plan_not_found(api):
    assert api.get("/api/v1/plans/nope/charges").json()["code"] == "plan_not_found"


def test_charge_sub_resource_of_another_tenant_is_not_found(other_api, charge):
    assert other_api.get("/api/v1/plans/p/charges/c").status_code == 404
    assert other_api.delete("/api/v1/plans/p/charges/c").status_code == 404
    assert Charge.objects.alive().filter(pk=charge.pk).exists()


# --- /plans/{code}/charges/{charge_code}/filters ------------------------------------------------


def test_filter_create_list_show_update_delete(api, charge):
    created = api.post(
        "/api/v1/plans/p/charges/c/filters",
        {"filter": {"invoice_display_name": "Europe", "properties": {"amount": "3"},
                    "values": {"region": ["eu"]}}},
        format="json",
    )  # fmt: skip
    assert created.status_code == 200, created.json()
    body = created.json()["filter"]
    assert body == {
        "lago_id": body["lago_id"], "charge_code": "c", "invoice_display_name": "Europe",
        "properties": {"amount": "3"}, "values": {"region": ["eu"]},
        "created_at": body["created_at"],
    }  # fmt: skip
    url = f"/api/v1/plans/p/charges/c/filters/{body['lago_id']}"
    assert api.get("/api/v1/plans/p/charges/c/filters").json()["filters"] == [body]
    assert api.get(url).json() == {"filter": body}
    updated = api.put(url, {"filter": {"properties": {"amount": "4"}}}, format="json")
    assert updated.json()["filter"]["properties"] == {"amount": "4"}
    assert updated.json()["filter"]["invoice_display_name"] == "Europe"
    assert api.delete(url).status_code == 200
    assert api.get(url).json()["code"] == "charge_filter_not_found"


@pytest.mark.parametrize(
    ("values", "details"),
    [
        pytest.param({}, {"values": ["value_is_mandatory"]}, id="no-values"),
        pytest.param({"colour": ["red"]}, {"values": ["value_is_invalid"]}, id="unknown-key"),
        pytest.param({"region": ["mars"]}, {"values": ["value_is_invalid"]}, id="unknown-value"),
    ],
)
def test_filter_values_must_be_declared_by_the_metric(api, charge, values, details):
    response = api.post(
        "/api/v1/plans/p/charges/c/filters",
        {"filter": {"properties": {"amount": "3"}, "values": values}},
        format="json",
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == details


def test_filter_properties_follow_the_charge_model(api, charge):
    response = api.post(
        "/api/v1/plans/p/charges/c/filters",
        {"filter": {"properties": {"amount": "-1"}, "values": {"region": ["eu"]}}},
        format="json",
    )
    assert response.json()["error_details"] == {"properties": ["invalid_amount"]}


def test_filter_id_that_is_not_a_uuid_is_not_found(api, charge):
    response = api.get("/api/v1/plans/p/charges/c/filters/not-a-uuid")
    assert response.json()["code"] == "charge_filter_not_found"


def test_filters_of_an_unknown_charge_are_charge_not_found(api, plan):
    assert api.get("/api/v1/plans/p/charges/nope/filters").json()["code"] == "charge_not_found"


# --- fixed charges --------------------------------------------------------------------------------


def test_fixed_charge_create_by_add_on_code(api, plan, organization):
    AddOnFactory(organization=organization, code="seats")
    response = api.post(
        "/api/v1/plans/p/fixed_charges",
        {"fixed_charge": {"add_on_code": "seats", "charge_model": "graduated", "units": 12,
                          "properties": {"graduated_ranges": [
                              {"from_value": 0, "to_value": 10, "per_unit_amount": "5",
                               "flat_amount": "0"},
                              {"from_value": 10, "to_value": None, "per_unit_amount": "4",
                               "flat_amount": "0"}]}}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    fixed = response.json()["fixed_charge"]
    assert (fixed["code"], fixed["add_on_code"], fixed["units"]) == ("seats", "seats", "12.0")
    assert api.get("/api/v1/plans/p/fixed_charges/seats").json() == response.json()
    assert api.get("/api/v1/plans/p/fixed_charges").json()["fixed_charges"] == [fixed]


def test_fixed_charge_refuses_a_usage_only_model(api, plan, organization):
    add_on = AddOnFactory(organization=organization)
    response = api.post(
        "/api/v1/plans/p/fixed_charges",
        {"fixed_charge": {"add_on_id": str(add_on.id), "charge_model": "package"}},
        format="json",
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == {"charge_model": ["value_is_invalid"]}


@pytest.mark.parametrize(
    ("payload", "details"),
    [
        pytest.param(
            {"charge_model": "standard", "properties": {"amount": "x"}},
            {"properties": ["invalid_amount"]},
            id="amount",
        ),
        pytest.param(
            {"charge_model": "volume", "properties": {"volume_ranges": [
                {"from_value": 5, "to_value": None, "per_unit_amount": "1",
                 "flat_amount": "0"}]}},
            {"properties": ["invalid_volume_ranges"]},
            id="volume-ranges",
        ),
        pytest.param(
            {"charge_model": "standard", "units": -1, "properties": {"amount": "1"}},
            {"units": ["value_is_invalid"]},
            id="negative-units",
        ),
    ],
)  # fmt: skip
def test_fixed_charge_properties_are_validated(api, plan, organization, payload, details):
    add_on = AddOnFactory(organization=organization)
    response = api.post(
        "/api/v1/plans/p/fixed_charges",
        {"fixed_charge": {"add_on_id": str(add_on.id), **payload}},
        format="json",
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == details


def test_fixed_charge_with_an_unknown_add_on_is_not_found(api, plan):
    response = api.post(
        "/api/v1/plans/p/fixed_charges",
        {"fixed_charge": {"add_on_code": "nope", "charge_model": "standard"}},
        format="json",
    )
    assert response.json()["code"] == "add_on_not_found"


def test_fixed_charge_update_changes_units_and_properties_not_timing(api, plan, organization):
    FixedChargeFactory(organization=organization, plan=plan, code="f", pay_in_advance=False)
    response = api.put(
        "/api/v1/plans/p/fixed_charges/f",
        {"fixed_charge": {"units": "2.5", "pay_in_advance": True, "charge_model": "standard",
                          "properties": {"amount": "20"}}},
        format="json",
    )  # fmt: skip
    fixed = response.json()["fixed_charge"]
    assert (fixed["units"], fixed["properties"], fixed["pay_in_advance"]) == (
        "2.5", {"amount": "20"}, False
    )  # fmt: skip


def test_fixed_charge_delete_is_soft(api, plan, organization):
    fixed = FixedChargeFactory(organization=organization, plan=plan, code="f")
    assert api.delete("/api/v1/plans/p/fixed_charges/f").status_code == 200
    assert api.get("/api/v1/plans/p/fixed_charges/f").json()["code"] == "fixed_charge_not_found"
    assert FixedCharge.objects.filter(pk=fixed.pk, deleted_at__isnull=False).exists()


def test_plan_update_replaces_fixed_charges(api, plan, organization):
    kept = FixedChargeFactory(organization=organization, plan=plan, code="kept")
    FixedChargeFactory(organization=organization, plan=plan, code="dropped")
    response = api.put(
        "/api/v1/plans/p",
        {"plan": {"fixed_charges": [{"id": str(kept.id), "charge_model": "standard",
                                     "units": 4, "properties": {"amount": "3"}}]}},
        format="json",
    )  # fmt: skip
    (fixed,) = response.json()["plan"]["fixed_charges"]
    assert (fixed["lago_id"], fixed["units"]) == (str(kept.id), "4.0")
