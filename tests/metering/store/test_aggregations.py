"""Aggregation formulas through write_batch + aggregate (spec §4.3, vectors A and C)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from metering.store import AggregationQuery, EventInput
from metering.store.aggregation import aggregation_statement
from plans.charge_models import apply_rounding

from .conftest import NOW, at, units

ON_CLICKHOUSE = True  # these tests also run on the ClickHouse store (conftest)

pytestmark = pytest.mark.django_db

MARCH_2022 = {
    "from_datetime": datetime(2022, 3, 1, tzinfo=UTC),
    "to_datetime": datetime(2022, 3, 31, 23, 59, 59, tzinfo=UTC),
}
V1_EVENTS = [
    ("2022-03-16T10:00", {"tracked_user_id": "1234-5678-9098-7654", "pageviews": 10}),
    ("2022-03-17T10:00", {"tracked_user_id": "1234-5678-9098-7654", "pageviews": 20}),
]
V6_EVENTS = [  # value deltas, 2023-08-01
    ("2023-08-01T00:00", {"v": 2}),
    ("2023-08-01T01:00", {"v": 3}),
    ("2023-08-01T01:30", {"v": 1}),
    ("2023-08-01T02:00", {"v": -4}),
    ("2023-08-01T04:00", {"v": -2}),
    ("2023-08-01T05:00", {"v": 10}),
    ("2023-08-01T05:30", {"v": -10}),
]


def five(value: Decimal) -> Decimal:
    """Units shown with 5 decimals in the vectors (half up)."""
    return apply_rounding(value, "round", 5)


# --------------------------------------------------------------------------------------------
# Section A vectors


@pytest.mark.parametrize(
    ("aggregation_type", "field_name", "expected"),
    [
        pytest.param("count_agg", None, Decimal(2), id="V1-count"),
        pytest.param("sum_agg", "pageviews", Decimal(30), id="V1-sum"),
        pytest.param("max_agg", "pageviews", Decimal(20), id="V1-max"),
        pytest.param("unique_count_agg", "tracked_user_id", Decimal(1), id="V1-unique-count"),
    ],
)
def test_v1_same_two_events_per_aggregation_type(
    write_events, aggregate, aggregation_type, field_name, expected
):
    write_events(V1_EVENTS)
    (result,) = aggregate(aggregation_type, field_name, **MARCH_2022)
    assert result.units == expected
    assert result.events_count == 2


@pytest.mark.parametrize(
    ("aggregation_type", "expected"),
    [
        pytest.param("latest_agg", Decimal(10), id="V2-latest"),
        pytest.param("max_agg", Decimal(20), id="V2-max"),
        pytest.param("sum_agg", Decimal(30), id="V2-sum"),
    ],
)
def test_v2_latest_is_the_value_of_the_most_recent_event(
    write_events, aggregate, aggregation_type, expected
):
    # written newest first: "latest" is by timestamp, not by insertion
    write_events([("2022-03-17", {"total_requests": 10}), ("2022-03-16", {"total_requests": 20})])
    assert units(aggregate(aggregation_type, "total_requests", **MARCH_2022)) == expected


@pytest.mark.parametrize(
    ("values", "expected_units"),
    [
        pytest.param([5], Decimal(5), id="V4-after-first"),
        pytest.param([5, 20], Decimal(20), id="V4-after-second"),
        pytest.param([5, 20, 3], Decimal(20), id="V4-after-third"),
    ],
)
def test_v4_max_keeps_the_highest_value(write_events, aggregate, values, expected_units):
    write_events([(f"2023-08-0{i + 1}", {"v": v}) for i, v in enumerate(values)])
    (result,) = aggregate("max_agg", "v")
    assert (result.units, result.events_count) == (expected_units, len(values))


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param(
            [("2023-08-16", {"request_id": "id_1"}), ("2023-08-17", {"request_id": "id_1"})],
            Decimal(1),
            id="V5-added-twice",
        ),
        pytest.param(
            [
                ("2023-08-16", {"request_id": "id_1"}),
                ("2023-08-17", {"request_id": "id_1"}),
                ("2023-08-18", {"request_id": "id_1", "operation_type": "remove"}),
            ],
            Decimal(0),
            id="V5-then-removed",
        ),
    ],
)
def test_v5_unique_count_with_remove(write_events, aggregate, events, expected):
    write_events(events)
    assert units(aggregate("unique_count_agg", "request_id")) == expected


def test_v6_weighted_sum_of_seven_events_in_a_31_day_month(write_events, aggregate):
    write_events(V6_EVENTS)
    (result,) = aggregate("weighted_sum_agg", "v", period_duration_days=31)
    assert result.units == (Decimal(59400) / Decimal(2678400)).quantize(
        Decimal("1e-20"), "ROUND_CEILING"
    )
    assert five(result.units) == Decimal("0.02218")
    assert result.events_count == 7
    assert result.total_aggregated_units == Decimal(0)  # metered: the variation (2+3+1-4-2+10-10)


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        pytest.param([("2023-08-01T00:00", {"v": 1000})], Decimal(1000), id="V7-single-event"),
        pytest.param(
            [("2023-08-01T00:00", {"v": 3}), ("2023-08-01T00:00", {"v": 3})],
            Decimal(6),
            id="V7-same-timestamp",
        ),
        pytest.param([], Decimal(0), id="V7-no-event"),
    ],
)
def test_v7_weighted_sum_edge_cases(write_events, aggregate, events, expected):
    if events:
        write_events(events)
    assert units(aggregate("weighted_sum_agg", "v", period_duration_days=31)) == expected


def test_v8_weighted_sum_per_region(write_events, aggregate):
    write_events(
        [
            ("2023-08-01T00:00", {"v": 2, "region": "eu"}),
            ("2023-08-01T01:00", {"v": 3, "region": "us"}),
            ("2023-08-01T02:00", {"v": -1, "region": "eu"}),
        ]
    )
    results = aggregate("weighted_sum_agg", "v", period_duration_days=31, group_by=["region"])
    assert {r.group["region"]: five(r.units) for r in results} == {
        "eu": Decimal("1.00269"),
        "us": Decimal("2.99597"),
    }
    # spec §7.13: count/sum/weighted-sum breakdowns add up to the ungrouped units
    ungrouped = units(aggregate("weighted_sum_agg", "v", period_duration_days=31))
    assert sum(r.units for r in results) == ungrouped


def test_v9_weighted_sum_gb_seconds(write_events, aggregate):
    write_events([("2022-03-16", {"gb": 20}), ("2022-03-17", {"gb": 10})])
    result = units(aggregate("weighted_sum_agg", "gb", period_duration_days=31, **MARCH_2022))
    assert five(result) == Decimal("15.16129")
    assert result == (Decimal(40608000) / Decimal(2678400)).quantize(
        Decimal("1e-20"), "ROUND_CEILING"
    )


@pytest.mark.parametrize(
    ("function", "precision", "expected"),
    [
        pytest.param("round", None, Decimal(123), id="V11-round"),
        pytest.param("round", 2, Decimal("123.46"), id="V11-round-2"),
        pytest.param("round", -1, Decimal(120), id="V11-round-minus-1"),
        pytest.param("ceil", None, Decimal(124), id="V11-ceil"),
        pytest.param("floor", None, Decimal(123), id="V11-floor"),
    ],
)
def test_v11_sum_keeps_decimals_exactly_for_rounding(
    write_events, aggregate, function, precision, expected
):
    write_events([("2023-08-02", {"v": "100.4567"}), ("2023-08-03", {"v": 23})])
    result = units(aggregate("sum_agg", "v"))
    assert result == Decimal("123.4567")
    assert apply_rounding(result, function, precision) == expected


# --------------------------------------------------------------------------------------------
# Section C vectors (aggregation part)


def test_v52_recurring_unique_count_carries_seats_to_later_periods(write_events, aggregate):
    started = at("2024-06-05T00:00")
    write_events([(f"2024-06-{10 + i}", {"seat": f"s{i}"}) for i in range(5)])
    july = {
        "from_datetime": at("2024-07-01"),
        "to_datetime": at("2024-07-31T23:59:59"),
        "recurring": True,
        "subscription_started_at": started,
    }
    (result,) = aggregate("unique_count_agg", "seat", **july)
    assert (result.units, result.events_count) == (Decimal(5), 0)
    write_events([("2024-08-03", {"seat": "s5"}), ("2024-08-04", {"seat": "s6"})])
    august = {**july, "from_datetime": at("2024-08-01"), "to_datetime": at("2024-08-31T23:59:59")}
    assert units(aggregate("unique_count_agg", "seat", **august)) == Decimal(7)


@pytest.mark.parametrize(
    ("aggregation_type", "properties"),
    [
        pytest.param("sum_agg", {"seats": 1}, id="V54-sum"),
        pytest.param("unique_count_agg", {"seats": "seat-1"}, id="V54-unique-count"),
    ],
)
def test_v54_prorated_seat_added_on_july_10(write_events, aggregate, aggregation_type, properties):
    write_events([("2023-07-10T09:00", properties)])
    (result,) = aggregate(
        aggregation_type,
        "seats",
        from_datetime=at("2023-07-01"),
        to_datetime=at("2023-07-31T23:59:59"),
        recurring=True,
        prorated=True,
        subscription_started_at=at("2023-06-01"),
        period_duration_days=31,
    )
    assert result.units == Decimal("0.70968")  # 22/31, ceiled to 5 decimals
    assert result.full_units == Decimal(1)
    assert apply_rounding(result.units * 10, "round", 2) == Decimal("7.10")  # $10 x 22/31


# --------------------------------------------------------------------------------------------
# Formulas beyond the vectors


def test_sum_accepts_negative_values(write_events, aggregate):
    write_events([("2023-08-02", {"v": 10}), ("2023-08-03", {"v": -4}), ("2023-08-04", {"v": -9})])
    assert units(aggregate("sum_agg", "v")) == Decimal(-3)


def test_latest_clamps_a_negative_value_to_zero(write_events, aggregate):
    write_events([("2023-08-02", {"v": 10}), ("2023-08-03", {"v": -4})])
    assert units(aggregate("latest_agg", "v")) == Decimal(0)


@pytest.mark.parametrize(
    "aggregation_type", ["count_agg", "sum_agg", "max_agg", "latest_agg", "unique_count_agg"]
)
def test_no_event_aggregates_to_zero(aggregate, aggregation_type):
    (result,) = aggregate(aggregation_type, None if aggregation_type == "count_agg" else "v")
    assert (result.group, result.units, result.events_count) == ({}, Decimal(0), 0)
    assert result.precise_total_amount_cents == Decimal(0)


def test_max_of_negative_values_is_the_highest_negative(write_events, aggregate):
    write_events([("2023-08-02", {"v": -10}), ("2023-08-03", {"v": -4})])
    assert units(aggregate("max_agg", "v")) == Decimal(-4)


def test_latest_takes_the_last_written_of_two_events_at_the_same_instant(write_events, aggregate):
    write_events([("2023-08-02T10:00", {"v": 1})])
    write_events([("2023-08-02T10:00", {"v": 7})])
    assert units(aggregate("latest_agg", "v")) == Decimal(7)


def _send(store, organization, events):
    """One batch of (transaction id, timestamp, properties), in this order."""
    batch = [
        EventInput(
            transaction_id=transaction_id,
            external_subscription_id="sub_1",
            code="metric",
            timestamp=at(timestamp),
            properties=properties,
        )
        for transaction_id, timestamp, properties in events
    ]
    assert store.write_batch(organization.id, batch, now=NOW).written


def test_latest_takes_the_later_sent_of_two_events_at_one_instant_in_a_batch(
    store, organization, aggregate
):
    # the transaction ids sort the other way round: the order sent decides, not the ids
    _send(
        store,
        organization,
        [("tx_b", "2023-08-02T10:00", {"v": 1}), ("tx_a", "2023-08-02T10:00", {"v": 7})],
    )
    assert units(aggregate("latest_agg", "v")) == Decimal(7)


@pytest.mark.parametrize(
    ("operations", "expected"),
    [
        pytest.param(("add", "remove"), Decimal(0), id="add-then-remove"),
        pytest.param(("remove", "add"), Decimal(1), id="remove-then-add"),
    ],
)
def test_unique_count_takes_the_later_sent_of_two_operations_at_one_instant_in_a_batch(
    store, organization, aggregate, operations, expected
):
    first, second = operations
    _send(
        store,
        organization,
        [
            ("tx_b", "2023-08-02T10:00", {"user": "u1", "operation_type": first}),
            ("tx_a", "2023-08-02T10:00", {"user": "u1", "operation_type": second}),
        ],
    )
    (result,) = aggregate("unique_count_agg", "user")
    assert (result.units, result.events_count) == (expected, 2)


@pytest.mark.parametrize(
    "bad_value",
    [
        pytest.param("ten", id="text"),
        pytest.param(True, id="boolean"),
        pytest.param({"a": 1}, id="object"),
        pytest.param("NaN", id="nan"),
        pytest.param("1e999999", id="huge-exponent"),
        pytest.param(None, id="null"),
    ],
)
def test_non_numeric_values_are_ignored_not_fatal(write_events, aggregate, bad_value):
    write_events([("2023-08-02", {"v": 5}), ("2023-08-03", {"v": bad_value}), ("2023-08-04", {})])
    for aggregation_type, expected in [("sum_agg", 5), ("max_agg", 5), ("latest_agg", 5)]:
        (result,) = aggregate(aggregation_type, "v")
        assert (result.units, result.events_count) == (Decimal(expected), 1)
    assert units(aggregate("weighted_sum_agg", "v", period_duration_days=31)) > 0


@pytest.mark.parametrize(
    "text",
    ["12", "-3.5", "+2", "1e2", "1.5E-1", " 7 ", ".5", "4."],
)
def test_numeric_strings_are_read_as_numbers(write_events, aggregate, text):
    write_events([("2023-08-02", {"v": text})])
    assert units(aggregate("sum_agg", "v")) == Decimal(text.strip())


def test_json_numbers_keep_their_exact_decimal_value(write_events, aggregate):
    write_events([("2023-08-02", {"v": 0.1}), ("2023-08-03", {"v": 0.2})])
    assert units(aggregate("sum_agg", "v")) == Decimal("0.3")


def test_stored_value_is_preferred_over_the_property(write_events, aggregate):
    # the expression's result (spec §4.1) stored at ingestion
    write_events([("2023-08-02", {"v": 1})], value=Decimal("2.5"))
    assert units(aggregate("sum_agg", "v")) == Decimal("2.5")


def test_a_value_too_precise_for_the_column_is_read_from_the_property(write_events, aggregate):
    precise = "0.12345678901234567890"
    result = write_events([("2023-08-02", {"v": precise})], value=Decimal(precise))
    assert result.events[0].value is None
    assert units(aggregate("sum_agg", "v")) == Decimal(precise)


def test_unique_count_counts_stringified_values_once(write_events, aggregate):
    write_events(
        [
            ("2023-08-02", {"user": 1234}),
            ("2023-08-03", {"user": "1234"}),
            ("2023-08-04", {"user": "5678"}),
            ("2023-08-05", {"other": "x"}),  # no value: not counted
        ]
    )
    (result,) = aggregate("unique_count_agg", "user")
    assert (result.units, result.events_count) == (Decimal(2), 3)


def test_unique_count_value_removed_then_added_again_is_active(write_events, aggregate):
    write_events(
        [
            ("2023-08-02", {"user": "a"}),
            ("2023-08-03", {"user": "a", "operation_type": "remove"}),
            ("2023-08-04", {"user": "a", "operation_type": "add"}),
            ("2023-08-05", {"user": "b", "operation_type": "remove"}),  # never added
        ]
    )
    assert units(aggregate("unique_count_agg", "user")) == Decimal(1)


def test_metered_unique_count_forgets_values_of_earlier_periods(write_events, aggregate):
    write_events([("2023-07-20", {"user": "a"}), ("2023-08-02", {"user": "b"})])
    assert units(aggregate("unique_count_agg", "user")) == Decimal(1)


def test_precise_total_amount_cents_are_summed(write_events, aggregate):
    write_events([("2023-08-02", {"v": 7})], precise_total_amount_cents=Decimal("70"))
    write_events([("2023-08-03", {"v": 5})], precise_total_amount_cents=Decimal("55.5"))
    (result,) = aggregate("sum_agg", "v")
    assert (result.units, result.precise_total_amount_cents) == (Decimal(12), Decimal("125.5"))


# --------------------------------------------------------------------------------------------
# Selection (spec §4.2)


def test_selection_keeps_only_the_subscription_code_period_and_live_events(
    store, organization, other_organization, write_events, aggregate
):
    write_events([("2023-08-01T00:00", {}), ("2023-08-31T23:59:59.999", {})])  # both bounds
    write_events([("2023-07-31T23:59:59.999999", {}), ("2023-09-01T00:00", {})])  # outside
    write_events([("2023-08-10", {})], sub="sub_2")
    write_events([("2023-08-10", {})], code="other_metric")
    write_events([("2023-08-10", {})], organization_id=other_organization.id)
    write_events([("2023-08-10", {})], code="deleted_metric")
    store.discard_events(organization.id, code="deleted_metric", now=NOW)
    assert units(aggregate("count_agg")) == Decimal(2)
    assert units(aggregate("count_agg", code="deleted_metric")) == Decimal(0)


def test_events_before_the_subscription_start_are_ignored(write_events, aggregate):
    write_events([("2023-08-10T08:00", {}), ("2023-08-10T12:00", {})])
    started = at("2023-08-10T10:00")
    assert units(aggregate("count_agg", subscription_started_at=started)) == Decimal(1)


def test_a_subscription_starting_after_the_window_aggregates_nothing(write_events, aggregate):
    write_events([("2023-08-10", {"v": 1})])
    late = {"subscription_started_at": at("2023-09-05")}
    assert units(aggregate("weighted_sum_agg", "v", period_duration_days=31, **late)) == 0
    assert aggregate("sum_agg", "v", group_by=["region"], **late) == []


def test_termination_ends_the_window(write_events, aggregate):
    write_events([("2023-08-10", {"v": 1}), ("2023-08-20", {"v": 1})])
    assert units(aggregate("sum_agg", "v", to_datetime=at("2023-08-15T10:00"))) == Decimal(1)


# --------------------------------------------------------------------------------------------
# Recurring metrics


def test_recurring_sum_carries_earlier_periods(write_events, aggregate):
    write_events([("2023-06-10", {"v": 5}), ("2023-07-10", {"v": 3}), ("2023-08-10", {"v": -2})])
    write_events([("2023-05-01", {"v": 100})])  # before the subscription start
    (result,) = aggregate("sum_agg", "v", recurring=True, subscription_started_at=at("2023-06-01"))
    assert (result.units, result.events_count) == (Decimal(6), 1)


def test_recurring_unique_count_keeps_values_until_removed(write_events, aggregate):
    write_events(
        [
            ("2023-06-10", {"seat": "a"}),
            ("2023-06-11", {"seat": "b"}),
            ("2023-07-10", {"seat": "b", "operation_type": "remove"}),
            ("2023-08-10", {"seat": "c"}),
        ]
    )
    query = {"recurring": True, "subscription_started_at": at("2023-06-01")}
    assert units(aggregate("unique_count_agg", "seat", **query)) == Decimal(2)


def test_recurring_weighted_sum_starts_from_the_carried_value(write_events, aggregate):
    write_events([("2023-08-16T00:00", {"v": 10})])
    (result,) = aggregate(
        "weighted_sum_agg", "v", recurring=True, initial_value=Decimal(31), period_duration_days=31
    )
    # 31 for the whole month + 10 for the last 16 days
    assert result.units == Decimal("36.16129032258064516130")  # 36.161290322580645161290..
    assert result.total_aggregated_units == Decimal(41)  # next period's initial value


def test_recurring_weighted_sum_without_cached_value_sums_earlier_events(write_events, aggregate):
    write_events([("2023-06-10", {"v": 20}), ("2023-07-10", {"v": 11}), ("2023-08-16", {"v": 10})])
    (result,) = aggregate(
        "weighted_sum_agg",
        "v",
        recurring=True,
        subscription_started_at=at("2023-06-01"),
        period_duration_days=31,
    )
    assert result.units == Decimal("36.16129032258064516130")
    assert (result.total_aggregated_units, result.events_count) == (Decimal(41), 1)


def test_recurring_weighted_sum_with_no_event_in_the_period_bills_the_carried_value(aggregate):
    (result,) = aggregate(
        "weighted_sum_agg", "v", recurring=True, initial_value=Decimal(4), period_duration_days=31
    )
    assert (result.units, result.total_aggregated_units, result.events_count) == (4, 4, 0)


def test_weighted_sum_uses_the_full_period_length_for_a_partial_period(write_events, aggregate):
    # subscription started on Aug 16: 16 days of 31 at 31 units -> 16
    write_events([("2023-08-16T00:00", {"v": 31})])
    started = at("2023-08-16T00:00")
    result = units(
        aggregate(
            "weighted_sum_agg",
            "v",
            from_datetime=started,
            subscription_started_at=started,
            period_duration_days=31,
        )
    )
    assert result == Decimal(16)


def test_weighted_sum_is_ceiled_to_20_decimals(write_events, aggregate):
    write_events([("2023-08-31T23:59:59", {"v": 1})])  # 1 unit for 1 s of 2,678,400
    result = units(aggregate("weighted_sum_agg", "v", period_duration_days=31))
    assert result == Decimal("0.00000037335722819594")  # 3.7335722819593787e-07, ceiled


# --------------------------------------------------------------------------------------------
# Prorated (spec §7.15)


def prorated(aggregate, aggregation_type, field_name, **fields):
    values = {
        "recurring": True,
        "prorated": True,
        "subscription_started_at": at("2023-06-01"),
        "period_duration_days": 31,
        **fields,
    }
    return aggregate(aggregation_type, field_name, **values)


def test_prorated_sum_weighs_each_event_by_its_remaining_days(write_events, aggregate):
    write_events([("2023-06-15", {"v": 2})])  # carried over: the whole of August
    write_events([("2023-08-01T10:00", {"v": 3}), ("2023-08-31T22:00", {"v": -1})])
    (result,) = prorated(aggregate, "sum_agg", "v", with_event_values=True)
    # (2 x 31 + 3 x 31 - 1 x 1) / 31 = 4.9677419.., ceiled once on the total
    assert result.units == Decimal("4.96775")
    assert result.full_units == Decimal(4)
    assert result.events_count == 2
    assert result.per_event_values == [Decimal(2), Decimal(3), Decimal(-1)]
    assert [v.quantize(Decimal("1e-15")) for v in result.per_event_prorated_values] == [
        Decimal(2),
        Decimal(3),
        Decimal("-0.032258064516129"),  # -1 x 1 day / 31
    ]


def test_prorated_sum_counts_days_in_the_customer_timezone(write_events, aggregate):
    # 2023-08-10T23:30Z is Aug 11 in Paris: 21 days to Aug 31 instead of 22
    write_events([("2023-08-10T23:30", {"v": 31})])
    paris = {
        "from_datetime": at("2023-07-31T22:00"),
        "to_datetime": at("2023-08-31T21:59:59"),
        "timezone": "Europe/Paris",
    }
    assert units(prorated(aggregate, "sum_agg", "v", **paris)) == Decimal(21)
    assert units(prorated(aggregate, "sum_agg", "v")) == Decimal(22)


def test_prorated_sum_of_a_terminated_subscription_stops_at_termination(write_events, aggregate):
    write_events([("2023-06-15", {"v": 31}), ("2023-08-05", {"v": 31})])
    (result,) = prorated(aggregate, "sum_agg", "v", to_datetime=at("2023-08-10T12:00"))
    # carried 31 x 10/31 + 31 x 6/31 (Aug 5..10)
    assert (result.units, result.full_units) == (Decimal(16), Decimal(62))


def test_prorated_sum_is_ceiled_to_5_decimals(write_events, aggregate):
    write_events([("2023-08-31", {"v": 1})])
    assert units(prorated(aggregate, "sum_agg", "v")) == Decimal("0.03226")


def test_prorated_unique_count_weighs_active_days(write_events, aggregate):
    write_events(
        [
            ("2023-06-10", {"seat": "carried"}),  # whole August: 31 days
            ("2023-06-10", {"seat": "gone"}),
            ("2023-07-10", {"seat": "gone", "operation_type": "remove"}),  # 0 days
            ("2023-08-10T09:00", {"seat": "added"}),  # Aug 10..31: 22 days
            ("2023-08-05", {"seat": "short"}),
            ("2023-08-07", {"seat": "short", "operation_type": "remove"}),  # Aug 5..7: 3 days
            ("2023-06-10", {"seat": "left"}),
            ("2023-08-01", {"seat": "left", "operation_type": "remove"}),  # Aug 1: 1 day
        ]
    )
    (result,) = prorated(aggregate, "unique_count_agg", "seat")
    assert result.units == Decimal("1.83871")  # (31 + 22 + 3 + 1) / 31 = 1.8387096.., ceiled
    assert result.full_units == Decimal(2)  # carried + added are active at the end
    assert result.events_count == 4


def test_prorated_unique_count_counts_a_day_once_when_removed_and_added_again(
    write_events, aggregate
):
    write_events(
        [
            ("2023-08-27T08:00", {"seat": "a"}),
            ("2023-08-27T09:00", {"seat": "a", "operation_type": "remove"}),
            ("2023-08-27T10:00", {"seat": "a"}),
            ("2023-08-28T10:00", {"seat": "a", "operation_type": "remove"}),
            ("2023-08-30T10:00", {"seat": "a"}),
        ]
    )
    # active Aug 27-28 and Aug 30-31: 4 days
    assert units(prorated(aggregate, "unique_count_agg", "seat")) == Decimal("0.12904")


def test_per_event_values_follow_timestamp_order(write_events, aggregate):
    write_events([("2023-08-03", {"v": 3}), ("2023-08-01", {"v": 1}), ("2023-08-02", {"v": 2})])
    (result,) = aggregate("sum_agg", "v", with_event_values=True)
    assert result.per_event_values == [Decimal(1), Decimal(2), Decimal(3)]
    (counted,) = aggregate("count_agg", with_event_values=True)
    assert counted.per_event_values == [Decimal(1)] * 3


# --------------------------------------------------------------------------------------------
# Query validation


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param({"aggregation_type": "custom_agg"}, "unknown aggregation_type", id="type"),
        pytest.param({"field_name": None}, "needs a field_name", id="field"),
        pytest.param(
            {"aggregation_type": "max_agg", "recurring": True},
            "cannot be recurring",
            id="recurring",
        ),
        pytest.param({"aggregation_type": "weighted_sum_agg"}, "period_duration_days", id="days"),
        pytest.param(
            {"prorated": True, "period_duration_days": 31}, "prorated", id="prorated-metered"
        ),
        pytest.param({"to_datetime": datetime(2023, 8, 31)}, "aware", id="naive"),
        pytest.param({"filters": {"region": ["__ALL_FILTER_VALUES__"]}}, "ALL", id="all"),
        pytest.param({"timezone": "Mars/Olympus"}, "timezone", id="timezone"),
        pytest.param({"initial_value": Decimal(1)}, "weighted sums only", id="initial-for-sum"),
        pytest.param(
            {
                "aggregation_type": "weighted_sum_agg",
                "recurring": True,
                "period_duration_days": 31,
                "group_by": ["region"],
                "grouped_initial_values": {("eu", "aws"): Decimal(1)},
            },
            "match group_by",
            id="initial-group-key",
        ),
    ],
)
def test_query_refuses_inconsistent_parameters(organization, fields, message):
    values = {
        "organization_id": organization.id,
        "external_subscription_id": "sub_1",
        "code": "metric",
        "aggregation_type": "sum_agg",
        "field_name": "v",
        "from_datetime": datetime(2023, 8, 1, tzinfo=UTC),
        "to_datetime": datetime(2023, 8, 31, tzinfo=UTC),
        **fields,
    }
    with pytest.raises(ValueError, match=message):
        AggregationQuery(**values)


def test_event_input_defaults(organization, store):
    event = EventInput(
        transaction_id="t", external_subscription_id="s", code="c", timestamp=at("2023-08-01")
    )
    (stored,) = store.write_batch(organization.id, [event], now=NOW).events
    assert (stored.properties, stored.precise_total_amount_cents, stored.value) == ({}, 0, None)


# --------------------------------------------------------------------------------------------
# Index use


@pytest.mark.parametrize(
    ("aggregation_type", "field_name", "fields"),
    [
        pytest.param("count_agg", None, {}, id="count"),
        pytest.param("sum_agg", "v", {}, id="sum"),
        pytest.param("latest_agg", "v", {}, id="latest"),
        pytest.param("unique_count_agg", "v", {"group_by": ["region"]}, id="unique-grouped"),
        pytest.param("weighted_sum_agg", "v", {"period_duration_days": 31}, id="weighted"),
        pytest.param(
            "sum_agg",
            "v",
            {"recurring": True, "prorated": True, "period_duration_days": 31},
            id="prorated",
        ),
    ],
)
def test_aggregation_reads_one_subscription_through_the_index(
    store, store_name, organization, aggregation_type, field_name, fields
):
    if store_name == "clickhouse":
        pytest.skip("PostgreSQL's plan; ClickHouse reads by its sorting key")
    # 30 subscriptions x 2 codes x 2 months
    batch = [
        EventInput(
            transaction_id=f"tx_{sub}_{i}",
            external_subscription_id=f"sub_{sub}",
            code=("metric", "other")[i % 2],
            timestamp=at("2023-07-01") + timedelta(hours=3 * i),
            properties={"v": i, "region": "eu"},
        )
        for sub in range(30)
        for i in range(480)
    ]
    assert store.write_batch(organization.id, batch, now=NOW).written
    query = AggregationQuery(
        organization_id=organization.id,
        external_subscription_id="sub_7",
        code="metric",
        aggregation_type=aggregation_type,
        field_name=field_name,
        from_datetime=at("2023-08-01"),
        to_datetime=at("2023-08-31T23:59:59"),
        **fields,
    )
    statement = aggregation_statement(query)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_event")
        cursor.execute("EXPLAIN " + statement.sql, statement.params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "billing_event_aggregation_idx" in plan
    assert "Seq Scan on billing_event" not in plan
    assert store.aggregate(query)[0].units > 0
