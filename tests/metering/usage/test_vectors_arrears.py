"""Vectors A and B (spec vectors.md) through the whole chain: events posted to `/events`, then
aggregated by the store, priced by the charge model and read back from `current_usage`."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from plans.models import BillingEntityTax
from tests.plans.factories import TaxFactory

pytestmark = pytest.mark.django_db

MARCH_NOW = "2022-03-31T12:00:00"


@dataclass
class Case:
    aggregation_type: str
    field_name: str | None
    events: list[tuple[str, dict]]
    charge_model: str = "standard"
    properties: dict = field(default_factory=lambda: {"amount": "1"})
    metric: dict = field(default_factory=dict)
    charge: dict = field(default_factory=dict)
    now: str = MARCH_NOW
    units: str | None = None
    amount_cents: int | None = None
    events_count: int | None = None
    grouped: dict | None = None  # sorted grouped_by items -> (units, amount_cents)


def pageviews(n):
    return {"tracked_user_id": "1234-5678-9098-7654", "pageviews": n}


def run(billing, case: Case) -> dict:
    metric = billing.metric("metric", case.aggregation_type, case.field_name, **case.metric)
    charge = billing.charge(metric, case.charge_model, properties=case.properties, **case.charge)
    billing.send_many("metric", case.events)
    return billing.charge_usage(case.now, charge)


def check(usage: dict, case: Case) -> None:
    if case.units is not None:
        assert usage["units"] == case.units
    if case.amount_cents is not None:
        assert usage["amount_cents"] == case.amount_cents
    if case.events_count is not None:
        assert usage["events_count"] == case.events_count
    if case.grouped is not None:
        found = {
            tuple(sorted(g["grouped_by"].items())): (g["units"], g["amount_cents"])
            for g in usage["grouped_usage"]
        }
        assert found == case.grouped


V6_EVENTS = [
    ("2023-08-01T00:00:00", {"value": 2}),
    ("2023-08-01T01:00:00", {"value": 3}),
    ("2023-08-01T01:30:00", {"value": 1}),
    ("2023-08-01T02:00:00", {"value": -4}),
    ("2023-08-01T04:00:00", {"value": -2}),
    ("2023-08-01T05:00:00", {"value": 10}),
    ("2023-08-01T05:30:00", {"value": -10}),
]
ROUND_5 = {"rounding_function": "round", "rounding_precision": 5}

SECTION_A = [
    pytest.param(
        Case("count_agg", None, [("2022-03-16", pageviews(10)), ("2022-03-17", pageviews(20))],
             units="2.0", amount_cents=200, events_count=2),
        id="V1-count",
    ),
    pytest.param(
        Case("sum_agg", "pageviews", [("2022-03-16", pageviews(10)), ("2022-03-17", pageviews(20))],
             units="30.0", amount_cents=3000),
        id="V1-sum",
    ),
    pytest.param(
        Case("max_agg", "pageviews", [("2022-03-16", pageviews(10)), ("2022-03-17", pageviews(20))],
             units="20.0", amount_cents=2000),
        id="V1-max",
    ),
    pytest.param(
        Case("unique_count_agg", "tracked_user_id",
             [("2022-03-16", pageviews(10)), ("2022-03-17", pageviews(20))],
             units="1.0", amount_cents=100),
        id="V1-unique-count",
    ),
    pytest.param(
        Case("latest_agg", "total_requests",
             [("2022-03-16", {"total_requests": 20}), ("2022-03-17", {"total_requests": 10})],
             units="10.0", amount_cents=1000),
        id="V2-latest",
    ),
    pytest.param(
        Case("weighted_sum_agg", "value", V6_EVENTS, now="2023-08-31T12:00:00",
             metric={"weighted_interval": "seconds", **ROUND_5}, properties={"amount": "1000"},
             units="0.02218", amount_cents=2218, events_count=7),
        id="V6-weighted-sum-metered",
    ),
    pytest.param(
        Case("weighted_sum_agg", "value", [("2022-03-01T00:00:00", {"value": 1000})],
             metric={"weighted_interval": "seconds"}, units="1000.0", amount_cents=100000),
        id="V7-single-event-at-period-start",
    ),
    pytest.param(
        Case("weighted_sum_agg", "value",
             [("2022-03-01T00:00:00", {"value": 3}), ("2022-03-01T00:00:00", {"value": 3})],
             metric={"weighted_interval": "seconds"}, units="6.0", amount_cents=600),
        id="V7-same-timestamp-summed",
    ),
    pytest.param(
        Case("weighted_sum_agg", "value", [], metric={"weighted_interval": "seconds"},
             units="0.0", amount_cents=0, events_count=0),
        id="V7-no-event",
    ),
    pytest.param(
        Case("weighted_sum_agg", "value",
             [("2023-08-01T00:00:00", {"value": 2, "region": "eu"}),
              ("2023-08-01T01:00:00", {"value": 3, "region": "us"}),
              ("2023-08-01T02:00:00", {"value": -1, "region": "eu"})],
             now="2023-08-31T12:00:00", metric={"weighted_interval": "seconds", **ROUND_5},
             properties={"amount": "100", "pricing_group_keys": ["region"]},
             grouped={(("region", "eu"),): ("1.00269", 10027),
                      (("region", "us"),): ("2.99597", 29960)}),
        id="V8-weighted-sum-per-group",
    ),
    pytest.param(
        Case("weighted_sum_agg", "gb",
             [("2022-03-16", {"gb": 20}), ("2022-03-17", {"gb": 10})],
             metric={"weighted_interval": "seconds", **ROUND_5}, units="15.16129",
             amount_cents=1516),
        id="V9-weighted-sum-gb-seconds",
    ),
    pytest.param(
        Case("sum_agg", "value", [("2022-03-10", {"value": "123.4567"})],
             metric={"rounding_function": "round"}, units="123.0"),
        id="V11-round",
    ),
    pytest.param(
        Case("sum_agg", "value", [("2022-03-10", {"value": "123.4567"})],
             metric={"rounding_function": "round", "rounding_precision": 2}, units="123.46",
             amount_cents=12346),
        id="V11-round-2",
    ),
    pytest.param(
        Case("sum_agg", "value", [("2022-03-10", {"value": "123.4567"})],
             metric={"rounding_function": "round", "rounding_precision": -1}, units="120.0"),
        id="V11-round-minus-1",
    ),
    pytest.param(
        Case("sum_agg", "value", [("2022-03-10", {"value": "123.4567"})],
             metric={"rounding_function": "ceil"}, units="124.0"),
        id="V11-ceil",
    ),
    pytest.param(
        Case("sum_agg", "value", [("2022-03-10", {"value": "123.4567"})],
             metric={"rounding_function": "floor"}, units="123.0"),
        id="V11-floor",
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", SECTION_A)
def test_section_a_aggregations(billing, case):
    check(run(billing, case), case)


def graduated(*ranges):
    return {
        "graduated_ranges": [
            {"from_value": f, "to_value": t, "per_unit_amount": p, "flat_amount": fl}
            for f, t, p, fl in ranges
        ]
    }


def volume(*ranges):
    return {
        "volume_ranges": [
            {"from_value": f, "to_value": t, "per_unit_amount": p, "flat_amount": fl}
            for f, t, p, fl in ranges
        ]
    }


V22 = graduated((0, 10, "10", "2"), (11, 20, "5", "3"), (21, None, "5", "3"))
V26 = volume((0, 100, "2", "10"), (101, 200, "1", "0"), (201, None, "0.5", "50"))
V30 = {
    "graduated_percentage_ranges": [
        {"from_value": 0, "to_value": 10, "rate": "1", "flat_amount": "200"},
        {"from_value": 11, "to_value": 20, "rate": "2", "flat_amount": "300"},
        {"from_value": 21, "to_value": None, "rate": "3", "flat_amount": "400"},
    ]
}
V33_EVENTS = [("2022-03-10", {"amount": v}) for v in (50, 100, 250, 400)]
V35_EVENTS = [("2022-03-10", {"amount": v}) for v in (10, 80, 10000)]
V35 = {"rate": "2.99", "per_transaction_min_amount": "1.75", "per_transaction_max_amount": "12"}


def one(value, **extra):
    return [("2022-03-10", {"amount": value, **extra})]


def sum_case(units, properties, charge_model, **expected):
    return Case("sum_agg", "amount", one(units), charge_model=charge_model,
                properties=properties, **expected)  # fmt: skip


SECTION_B = [
    pytest.param(sum_case(10, {"amount": "5.12345"}, "standard", amount_cents=5123),
                 id="V13-standard-fractional-price"),
    pytest.param(Case("count_agg", None, [("2022-03-10", {})] * 4,
                      properties={"amount": "12.5"}, units="4.0", events_count=4,
                      amount_cents=5000), id="V14-standard-count"),
    pytest.param(Case("count_agg", None,
                      [("2022-03-10", {"region": "us"})] * 2 + [("2022-03-11", {"region": "eu"})],
                      properties={"amount": "10", "grouped_by": ["region"]}, units="3.0",
                      amount_cents=3000,
                      grouped={(("region", "us"),): ("2.0", 2000),
                               (("region", "eu"),): ("1.0", 1000)}),
                 id="V15-standard-pricing-group-keys"),
    pytest.param(sum_case(121, {"amount": "100", "package_size": 10, "free_units": 0}, "package",
                          amount_cents=130000), id="V18-package"),
    pytest.param(sum_case(121, {"amount": "100", "package_size": 10, "free_units": 10}, "package",
                          amount_cents=120000), id="V19-package-free-units"),
    pytest.param(sum_case(121, {"amount": "100", "package_size": 10, "free_units": 200},
                          "package", amount_cents=0), id="V19-package-all-free"),
    pytest.param(sum_case(201, {"amount": "5", "package_size": 100, "free_units": 100}, "package",
                          amount_cents=1000), id="V21-package-doc"),
    *[
        pytest.param(sum_case(u, V22, "graduated", amount_cents=c), id=f"V22-graduated-U{u}")
        for u, c in ((1, 1200), (10, 10200), (11, 11000), (12, 11500), (21, 16300))
    ],
    pytest.param(Case("sum_agg", "amount", [], charge_model="graduated", properties=V22,
                      units="0.0", amount_cents=200), id="V22-graduated-U0-first-flat"),
    pytest.param(sum_case("0.05", graduated((0, "0.1", "10", "0"), ("0.1", "1", "5", "0"),
                                            ("1", None, "2", "0")), "graduated", amount_cents=50),
                 id="V23-graduated-adjacent-0.05"),
    pytest.param(sum_case("0.5", graduated((0, "0.1", "10", "0"), ("0.1", "1", "5", "0"),
                                           ("1", None, "2", "0")), "graduated", amount_cents=300),
                 id="V23-graduated-adjacent-0.5"),
    *[
        pytest.param(sum_case(u, V26, "volume", amount_cents=c), id=f"V26-volume-U{u}")
        for u, c in ((1, 1200), (100, 21000), ("100.5", 10050), (101, 10100), (200, 20000),
                     (300, 20000))
    ],
    pytest.param(Case("sum_agg", "amount", [], charge_model="volume", properties=V26,
                      amount_cents=1000), id="V26-volume-U0-first-flat"),
    pytest.param(sum_case(65000, volume((0, 10000, "0.0010", "10"), (10001, 50000, "0.0008", "10"),
                                        (50001, 100000, "0.0006", "10"),
                                        (100001, None, "0.0004", "10")),
                          "volume", amount_cents=4900), id="V29-volume-doc"),
    *[
        pytest.param(sum_case(u, V30, "graduated_percentage", amount_cents=c),
                     id=f"V30-graduated-percentage-U{u}")
        for u, c in ((1, 20001), (10, 20010), (11, 50012), (12, 50014), (21, 90033))
    ],
    pytest.param(Case("sum_agg", "amount", V33_EVENTS, charge_model="percentage",
                      properties={"rate": "1.3", "fixed_amount": "2", "free_units_per_events": 3,
                                  "free_units_per_total_aggregation": "250"},
                      units="800.0", amount_cents=1115), id="V33-percentage-free-units"),
    pytest.param(Case("sum_agg", "amount", V33_EVENTS, charge_model="percentage",
                      properties={"rate": "1.3", "fixed_amount": "2", "free_units_per_events": 3},
                      amount_cents=720), id="V34-percentage-free-events-only"),
    pytest.param(Case("sum_agg", "amount", V33_EVENTS, charge_model="percentage",
                      properties={"rate": "1.3", "fixed_amount": "2"}, amount_cents=1840),
                 id="V34-percentage-no-free-units"),
    pytest.param(Case("sum_agg", "amount", V33_EVENTS, charge_model="percentage",
                      properties={"rate": "0", "fixed_amount": "2"}, amount_cents=800),
                 id="V34-percentage-rate-0"),
    pytest.param(sum_case(4, {"rate": "2.9"}, "percentage", amount_cents=12),
                 id="V34-percentage-small"),
    pytest.param(Case("sum_agg", "amount", [("2022-03-10", {"amount": 100})] * 4,
                      charge_model="percentage",
                      properties={"rate": "1.3", "fixed_amount": "2", "free_units_per_events": 5},
                      amount_cents=0), id="V34-percentage-more-free-events-than-events"),
    pytest.param(Case("sum_agg", "amount", V35_EVENTS, charge_model="percentage",
                      properties=V35, amount_cents=1614), id="V35-percentage-min-max"),
    pytest.param(Case("sum_agg", "amount", V35_EVENTS, charge_model="percentage",
                      properties={**V35, "fixed_amount": "2"}, amount_cents=1869),
                 id="V35-percentage-min-max-fixed"),
    pytest.param(Case("sum_agg", "amount", V35_EVENTS, charge_model="percentage",
                      properties={**V35, "free_units_per_events": 2}, amount_cents=1200),
                 id="V35-percentage-min-max-free-events"),
    pytest.param(Case("sum_agg", "amount", V35_EVENTS, charge_model="percentage",
                      properties={**V35, "free_units_per_total_aggregation": "30"},
                      amount_cents=1379), id="V35-percentage-min-max-free-amount"),
    pytest.param(Case("sum_agg", "amount", V35_EVENTS, charge_model="percentage",
                      properties={**V35, "free_units_per_events": 3,
                                  "free_units_per_total_aggregation": "10000"},
                      amount_cents=269), id="V35-percentage-min-max-both-free"),
    pytest.param(Case("sum_agg", "amount",
                      [("2022-03-10", {"amount": v}) for v in (200, 100, 100, 50)],
                      charge_model="percentage",
                      properties={"rate": "1.2", "fixed_amount": "0.10",
                                  "free_units_per_events": 3,
                                  "free_units_per_total_aggregation": "500"},
                      amount_cents=70), id="V40-percentage-doc"),
    pytest.param(Case("sum_agg", "amount", [], charge_model="dynamic", properties={},
                      amount_cents=0), id="V41-dynamic-no-units"),
]  # fmt: skip


@pytest.mark.parametrize("case", SECTION_B)
def test_section_b_charge_models(billing, case):
    check(run(billing, case), case)


def test_v41_dynamic_prices_with_the_events_own_amounts(billing):
    metric = billing.metric("metric", "sum_agg", "amount")
    charge = billing.charge(metric, "dynamic", properties={})
    billing.send("metric", "2022-03-10", properties={"amount": 20},
                 precise_total_amount_cents="40.2")  # fmt: skip
    usage = billing.charge_usage(MARCH_NOW, charge)
    assert (usage["units"], usage["amount_cents"]) == ("20.0", 40)


def test_v43_dynamic_doc_example(billing):
    metric = billing.metric("metric", "sum_agg", "units")
    charge = billing.charge(metric, "dynamic", properties={})
    for units, cents in ((7, "70"), (5, "55"), (10, "220")):
        billing.send("metric", "2022-03-10", properties={"units": units},
                     precise_total_amount_cents=cents)  # fmt: skip
    usage = billing.charge_usage(MARCH_NOW, charge)
    assert (usage["units"], usage["amount_cents"]) == ("22.0", 345)


def test_v17_standard_price_per_call(billing):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric, properties={"amount": "0.05"})
    for batch in range(10):
        events = [
            {"transaction_id": f"b{batch}_{i}", "external_subscription_id": "sub_1",
             "code": "calls", "timestamp": 1647000000}
            for i in range(100)
        ]  # fmt: skip
        response = billing.api.post("/api/v1/events/batch", {"events": events}, format="json")
        assert response.status_code == 200
    usage = billing.charge_usage(MARCH_NOW, charge)
    assert (usage["units"], usage["events_count"], usage["amount_cents"]) == ("1000.0", 1000, 5000)


def test_v4_max_after_each_event(billing):
    metric = billing.metric("metric", "max_agg", "value")
    charge = billing.charge(metric, properties={"amount": "10"})
    expected = [(5, "5.0", 5000, 1), (20, "20.0", 20000, 2), (3, "20.0", 20000, 3)]
    for value, units, cents, count in expected:
        billing.send("metric", "2022-03-10", properties={"value": value})
        usage = billing.charge_usage(MARCH_NOW, charge)
        assert (usage["units"], usage["amount_cents"], usage["events_count"]) == (
            units,
            cents,
            count,
        )


def test_v5_unique_count_remove(billing):
    metric = billing.metric("metric", "unique_count_agg", "request_id")
    charge = billing.charge(metric)
    billing.send("metric", "2022-03-16", properties={"request_id": "id_1"})
    billing.send("metric", "2022-03-17", properties={"request_id": "id_1"})
    assert billing.charge_usage(MARCH_NOW, charge)["units"] == "1.0"
    billing.send(
        "metric", "2022-03-18", properties={"request_id": "id_1", "operation_type": "remove"}
    )
    assert billing.charge_usage(MARCH_NOW, charge)["units"] == "0.0"


@pytest.fixture
def billing_entity_tax(billing):
    tax = TaxFactory(organization=billing.organization, rate="20")
    BillingEntityTax.objects.create(
        organization=billing.organization,
        billing_entity=billing.customer.billing_entity,
        tax=tax,
    )
    return tax


def test_v25_graduated_without_usage_bills_the_first_flat_fee_with_taxes(
    billing, billing_entity_tax
):
    metric = billing.metric("metric", "sum_agg", "amount")
    billing.charge(
        metric, "graduated", properties=graduated((0, 10, "2", "100"), (11, None, "1", "50"))
    )
    usage = billing.usage(MARCH_NOW)
    assert usage["charges_usage"][0]["units"] == "0.0"
    assert (usage["amount_cents"], usage["taxes_amount_cents"], usage["total_amount_cents"]) == (
        10000,
        2000,
        12000,
    )


def test_v25_prorated_recurring_graduated_without_usage(billing, billing_entity_tax):
    metric = billing.metric("metric", "sum_agg", "amount", recurring=True)
    billing.charge(
        metric,
        "graduated",
        prorated=True,
        properties=graduated((0, 10, "2", "100"), (11, None, "1", "50")),
    )
    usage = billing.usage(MARCH_NOW)
    assert (usage["amount_cents"], usage["total_amount_cents"]) == (10000, 12000)


def test_v36_percentage_free_events_then_fixed_fee_with_taxes(billing, billing_entity_tax):
    metric = billing.metric("metric", "sum_agg", "amount")
    billing.charge(
        metric,
        "percentage",
        properties={"rate": "1", "fixed_amount": "5", "free_units_per_events": 3},
    )
    for _ in range(3):
        billing.send("metric", "2022-03-10", properties={"amount": 10})
        assert billing.usage(MARCH_NOW)["amount_cents"] == 0
    billing.send("metric", "2022-03-10", properties={"amount": 10})
    usage = billing.usage(MARCH_NOW)
    assert (usage["amount_cents"], usage["total_amount_cents"]) == (510, 612)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(1, [None, None, None, (501, 601)], id="V38a-events-of-1"),
        pytest.param(10, [None, (505, 606), (1015, 1218)], id="V38b-events-of-10"),
    ],
)
def test_v38_percentage_both_free_limits(billing, billing_entity_tax, value, expected):
    metric = billing.metric("metric", "sum_agg", "amount")
    billing.charge(
        metric,
        "percentage",
        properties={
            "rate": "1",
            "fixed_amount": "5",
            "free_units_per_events": 3,
            "free_units_per_total_aggregation": "15",
        },
    )
    for totals in expected:
        billing.send("metric", "2022-03-10", properties={"amount": value})
        if totals is not None:
            usage = billing.usage(MARCH_NOW)
            assert (usage["amount_cents"], usage["total_amount_cents"]) == totals
