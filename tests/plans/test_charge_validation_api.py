"""Every §7.2 compatibility rule and §7.3 property rule answers 422 with Lago's codes, whether
the charge comes nested in `POST /plans` or through `POST /plans/{code}/charges`."""

import pytest

from plans.models import Charge, Plan
from tests.plans.factories import BillableMetricFactory, PlanFactory

pytestmark = pytest.mark.django_db

GRADUATED_OK = [
    {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
    {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "0"},
]


def ranges(*bounds: tuple, price: str = "per_unit_amount") -> list[dict]:
    return [
        {"from_value": low, "to_value": high, price: "1", "flat_amount": "0"}
        for low, high in bounds
    ]


# (metric traits, charge fields, expected error_details)
RULES = [
    # spec §7.2 compatibility matrix
    pytest.param({"aggregation_type": "max_agg"}, {"pay_in_advance": True},
                 {"pay_in_advance": ["invalid_aggregation_type_or_charge_model"]},
                 id="in-advance-max"),
    pytest.param({"aggregation_type": "latest_agg"}, {"pay_in_advance": True},
                 {"pay_in_advance": ["invalid_aggregation_type_or_charge_model"]},
                 id="in-advance-latest"),
    pytest.param({"aggregation_type": "weighted_sum_agg"}, {"pay_in_advance": True},
                 {"pay_in_advance": ["invalid_aggregation_type_or_charge_model"]},
                 id="in-advance-weighted-sum"),
    pytest.param({}, {"pay_in_advance": True, "charge_model": "volume",
                      "properties": {"volume_ranges": GRADUATED_OK}},
                 {"pay_in_advance": ["invalid_aggregation_type_or_charge_model"]},
                 id="in-advance-volume"),
    pytest.param({}, {"invoiceable": False},
                 {"invoiceable": ["must_be_true_unless_pay_in_advance"]},
                 id="not-invoiceable-in-arrears"),
    pytest.param({}, {"pay_in_advance": True, "regroup_paid_fees": "invoice"},
                 {"regroup_paid_fees": ["only_compatible_with_pay_in_advance_and_non_invoiceable"]},
                 id="regroup-invoiceable"),
    pytest.param({}, {"regroup_paid_fees": "weekly", "pay_in_advance": True, "invoiceable": False},
                 {"regroup_paid_fees": ["value_is_invalid"]}, id="regroup-unknown"),
    pytest.param({}, {"pay_in_advance": True, "min_amount_cents": 100},
                 {"min_amount_cents": ["not_compatible_with_pay_in_advance"]},
                 id="minimum-in-advance"),
    pytest.param({}, {"min_amount_cents": -1}, {"min_amount_cents": ["value_is_out_of_range"]},
                 id="minimum-negative"),
    pytest.param({}, {"prorated": True},
                 {"prorated": ["invalid_billable_metric_or_charge_model"]},
                 id="prorated-metered"),
    pytest.param({"recurring": True}, {"prorated": True, "charge_model": "package",
                                       "properties": {"amount": "1", "package_size": 10,
                                                      "free_units": 0}},
                 {"prorated": ["invalid_billable_metric_or_charge_model"]},
                 id="prorated-package"),
    pytest.param({"recurring": True}, {"prorated": True, "pay_in_advance": True,
                                       "charge_model": "graduated",
                                       "properties": {"graduated_ranges": GRADUATED_OK}},
                 {"prorated": ["invalid_billable_metric_or_charge_model"]},
                 id="prorated-graduated-in-advance"),
    pytest.param({"recurring": True, "aggregation_type": "weighted_sum_agg"}, {"prorated": True},
                 {"prorated": ["invalid_billable_metric_or_charge_model"]},
                 id="prorated-weighted-sum"),
    pytest.param({"aggregation_type": "count_agg", "field_name": None},
                 {"charge_model": "dynamic", "properties": {}},
                 {"charge_model": ["invalid_aggregation_type_or_charge_model"]},
                 id="dynamic-count"),
    pytest.param({"aggregation_type": "latest_agg"},
                 {"charge_model": "percentage", "properties": {"rate": "1"}},
                 {"billable_metric": ["invalid_value"]}, id="percentage-latest"),
    pytest.param({}, {"charge_model": "tiered"}, {"charge_model": ["value_is_invalid"]},
                 id="unknown-model"),
    pytest.param({}, {"charge_model": None}, {"charge_model": ["value_is_mandatory"]},
                 id="no-model"),
    # spec §7.3 properties
    pytest.param({}, {"properties": {"amount": "abc"}}, {"properties": ["invalid_amount"]},
                 id="standard-amount-text"),
    pytest.param({}, {"properties": {"amount": "-1"}}, {"properties": ["invalid_amount"]},
                 id="standard-amount-negative"),
    pytest.param({}, {"properties": {"amount": 5}}, {"properties": ["invalid_amount"]},
                 id="standard-amount-not-a-string"),
    pytest.param({}, {"properties": {"rate": "1"}}, {"properties": ["invalid_amount"]},
                 id="standard-amount-missing"),
    pytest.param({}, {"charge_model": "package",
                      "properties": {"amount": "1", "package_size": 0, "free_units": 0}},
                 {"properties": ["invalid_package_size"]}, id="package-size-zero"),
    pytest.param({}, {"charge_model": "package",
                      "properties": {"amount": "1", "package_size": 10, "free_units": -1}},
                 {"properties": ["invalid_free_units"]}, id="package-free-units"),
    pytest.param({}, {"charge_model": "package",
                      "properties": {"package_size": 10, "free_units": 0}},
                 {"properties": ["invalid_amount"]}, id="package-amount"),
    pytest.param({}, {"charge_model": "graduated",
                      "properties": {"graduated_ranges": ranges((1, 10), (11, None))}},
                 {"properties": ["invalid_graduated_ranges"]}, id="graduated-not-from-zero"),
    pytest.param({}, {"charge_model": "graduated",
                      "properties": {"graduated_ranges": ranges((0, 10), (15, None))}},
                 {"properties": ["invalid_graduated_ranges"]}, id="graduated-gap"),
    pytest.param({}, {"charge_model": "graduated",
                      "properties": {"graduated_ranges": ranges((0, 10), (10, 20))}},
                 {"properties": ["invalid_graduated_ranges"]}, id="graduated-closed-end"),
    pytest.param({}, {"charge_model": "graduated",
                      "properties": {"graduated_ranges": ranges((0, 10), (10, 5), (5, None))}},
                 {"properties": ["invalid_graduated_ranges"]}, id="graduated-backwards"),
    pytest.param({}, {"charge_model": "graduated", "properties": {"graduated_ranges": []}},
                 {"properties": ["missing_graduated_ranges"]}, id="graduated-empty"),
    pytest.param({}, {"charge_model": "graduated", "properties": {"graduated_ranges": [
                     {"from_value": 0, "to_value": None, "per_unit_amount": "x",
                      "flat_amount": "0"}]}},
                 {"properties": ["invalid_amount"]}, id="graduated-unit-price"),
    pytest.param({}, {"charge_model": "volume",
                      "properties": {"volume_ranges": ranges((0, 10), (12, None))}},
                 {"properties": ["invalid_volume_ranges"]}, id="volume-gap"),
    pytest.param({}, {"charge_model": "graduated_percentage",
                      "properties": {"graduated_percentage_ranges":
                                     ranges((0, 10), (20, None), price="rate")}},
                 {"properties": ["invalid_graduated_percentage_ranges"]},
                 id="graduated-percentage-gap"),
    pytest.param({}, {"charge_model": "graduated_percentage",
                      "properties": {"graduated_percentage_ranges": [
                          {"from_value": 0, "to_value": None, "rate": "-2",
                           "flat_amount": "0"}]}},
                 {"properties": ["invalid_rate"]}, id="graduated-percentage-rate"),
    pytest.param({}, {"charge_model": "percentage", "properties": {"fixed_amount": "1"}},
                 {"properties": ["invalid_rate"]}, id="percentage-rate-missing"),
    pytest.param({}, {"charge_model": "percentage",
                      "properties": {"rate": "1", "fixed_amount": "x"}},
                 {"properties": ["invalid_fixed_amount"]}, id="percentage-fixed-amount"),
    pytest.param({}, {"charge_model": "percentage",
                      "properties": {"rate": "1", "free_units_per_events": 0}},
                 {"properties": ["invalid_free_units_per_events"]},
                 id="percentage-free-events"),
    pytest.param({}, {"charge_model": "percentage",
                      "properties": {"rate": "1", "free_units_per_total_aggregation": "-5"}},
                 {"properties": ["invalid_free_units_per_total_aggregation"]},
                 id="percentage-free-total"),
    pytest.param({}, {"charge_model": "percentage",
                      "properties": {"rate": "1", "per_transaction_min_amount": "5",
                                     "per_transaction_max_amount": "2"}},
                 {"properties": ["per_transaction_max_lower_than_per_transaction_min"]},
                 id="percentage-min-above-max"),
    pytest.param({}, {"properties": {"amount": "1", "pricing_group_keys": "region"}},
                 {"properties": ["invalid_type"]}, id="group-keys-not-a-list"),
]  # fmt: skip

VALID = [
    pytest.param({"aggregation_type": "count_agg", "field_name": None},
                 {"pay_in_advance": True}, id="in-advance-count"),
    pytest.param({}, {"pay_in_advance": True, "invoiceable": False,
                      "regroup_paid_fees": "invoice"}, id="regrouped-paid-fees"),
    pytest.param({"recurring": True}, {"prorated": True, "pay_in_advance": True},
                 id="prorated-standard-in-advance"),
    pytest.param({"recurring": True}, {"prorated": True, "charge_model": "volume",
                                       "properties": {"volume_ranges": GRADUATED_OK}},
                 id="prorated-volume-in-arrears"),
    pytest.param({}, {"charge_model": "graduated", "properties": {"graduated_ranges": [
                     {"from_value": 0, "to_value": 2.5, "per_unit_amount": "1",
                      "flat_amount": "0"},
                     {"from_value": 2.5, "to_value": None, "per_unit_amount": "0.5",
                      "flat_amount": "0"}]}},
                 id="graduated-adjacent-decimal-bounds"),
    pytest.param({}, {"charge_model": "percentage",
                      "properties": {"rate": "0.5", "per_transaction_min_amount": "1",
                                     "per_transaction_max_amount": "10"}},
                 id="percentage-min-max"),
    pytest.param({}, {"min_amount_cents": 5000}, id="spending-minimum"),
]  # fmt: skip


def charge_payload(metric, fields: dict) -> dict:
    return {
        "billable_metric_id": str(metric.id),
        "charge_model": "standard",
        "properties": {"amount": "1"},
        **fields,
    }


def post_charge(api, organization, endpoint: str, metric, fields: dict):
    charge = charge_payload(metric, fields)
    if endpoint == "plan":
        plan = {"name": "P", "code": "p", "interval": "monthly", "amount_cents": 0,
                "amount_currency": "EUR", "charges": [charge]}  # fmt: skip
        return api.post("/api/v1/plans", {"plan": plan}, format="json")
    PlanFactory(organization=organization, code="p")
    return api.post("/api/v1/plans/p/charges", {"charge": charge}, format="json")


@pytest.fixture(params=["plan", "charges"], ids=["nested-in-plan", "charges-endpoint"])
def endpoint(request):
    return request.param


@pytest.mark.parametrize(("metric_traits", "fields", "details"), RULES)
def test_invalid_charge_is_refused_with_lagos_codes(
    api, organization, endpoint, metric_traits, fields, details
):
    metric = BillableMetricFactory(organization=organization, **metric_traits)
    response = post_charge(api, organization, endpoint, metric, fields)
    assert response.status_code == 422, response.json()
    assert response.json()["code"] == "validation_errors"
    assert response.json()["error_details"] == details
    assert not Charge.objects.exists()
    if endpoint == "plan":
        assert not Plan.objects.exists()  # all or nothing


@pytest.mark.parametrize(("metric_traits", "fields"), VALID)
def test_compatible_charge_is_accepted(api, organization, endpoint, metric_traits, fields):
    metric = BillableMetricFactory(organization=organization, **metric_traits)
    response = post_charge(api, organization, endpoint, metric, fields)
    assert response.status_code == 200, response.json()
    assert Charge.objects.count() == 1


def test_amounts_are_stored_as_the_strings_given(api, organization):
    metric = BillableMetricFactory(organization=organization)
    post_charge(api, organization, "plan", metric, {"properties": {"amount": "0.100"}})
    assert Charge.objects.get().properties == {"amount": "0.100"}
