"""Charge filters (spec §7.12) and pricing group keys (spec §7.13)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from metering.store import ALL_FILTER_VALUES, FilterScope, charge_filter_scopes

from .conftest import at, units

ON_CLICKHOUSE = True  # these tests also run on the ClickHouse store (conftest)

DECLARED = {"region": ["eu", "us", "asia"], "cloud": ["aws", "gcp"], "size": ["1", "2"]}


def count(aggregate, filters=None, exclude_filters=(), **fields):
    return units(
        aggregate(
            "count_agg",
            filters=filters,
            exclude_filters=exclude_filters,
            declared_filter_values=DECLARED,
            **fields,
        )
    )


def scoped_counts(aggregate, charge_filters):
    """Events counted by each charge filter, then by the default bucket."""
    return [
        count(aggregate, scope.filters, scope.exclude_filters)
        for scope in charge_filter_scopes(charge_filters, DECLARED)
    ]


REGIONAL_EVENTS = [
    {"region": "eu", "cloud": "aws"},
    {"region": "eu", "cloud": "gcp"},
    {"region": "eu"},
    {"region": "us", "cloud": "aws"},
    {"region": "asia", "cloud": "aws"},
    {"region": "mars", "cloud": "aws"},  # value not declared
    {"cloud": "aws"},
    {},
]


@pytest.fixture
def regional_events(write_events):
    # event i carries v = 2**i: a sum tells exactly which events a scope counted
    write_events(
        [(f"2023-08-0{i + 1}", {**props, "v": 2**i}) for i, props in enumerate(REGIONAL_EVENTS)]
    )


# --------------------------------------------------------------------------------------------
# Matching (spec §7.12)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({"region": ["eu"]}, 3, id="one-value"),
        pytest.param({"region": ["eu", "us"]}, 4, id="two-values"),
        pytest.param({"region": ["eu"], "cloud": ["aws"]}, 1, id="every-key-must-match"),
        pytest.param({"region": [ALL_FILTER_VALUES]}, 5, id="all-declared-values"),
        pytest.param({"region": ["EU"]}, 0, id="case-sensitive"),
        pytest.param({}, 8, id="no-filter"),
    ],
)
def test_event_matches_when_every_filter_key_has_one_of_its_values(
    regional_events, aggregate, filters, expected
):
    assert count(aggregate, filters) == expected


def test_filter_values_match_stringified_properties(write_events, aggregate):
    write_events([("2023-08-02", {"size": 1}), ("2023-08-03", {"size": "2"})])
    assert count(aggregate, {"size": ["1"]}) == 1


def test_exclusion_keeps_events_without_the_excluded_key(regional_events, aggregate):
    # events claimed by {cloud: aws} leave; those with no cloud property stay
    assert count(aggregate, {"region": ["eu"]}, [{"cloud": ["aws"]}]) == 2
    assert count(aggregate, None, [{"cloud": ["aws"]}]) == 3


def test_the_most_specific_filter_gets_the_event(regional_events, aggregate):
    charge_filters = [{"region": ["eu"]}, {"region": ["eu"], "cloud": ["aws"]}]
    assert scoped_counts(aggregate, charge_filters) == [2, 1, 5]


def test_identical_filters_give_the_events_to_the_oldest(regional_events, aggregate):
    assert scoped_counts(aggregate, [{"region": ["eu"]}, {"region": ["eu"]}]) == [3, 0, 5]


def test_a_named_value_wins_over_all(regional_events, aggregate):
    charge_filters = [{"region": [ALL_FILTER_VALUES]}, {"region": ["eu"]}]
    assert scoped_counts(aggregate, charge_filters) == [2, 3, 3]


@pytest.mark.parametrize(
    "charge_filters",
    [
        pytest.param([{"region": ["eu"]}, {"cloud": ["aws"]}], id="different-keys"),
        pytest.param([{"region": ["eu", "us"]}, {"region": ["us", "asia"]}], id="overlapping"),
        pytest.param(
            [
                {"region": [ALL_FILTER_VALUES]},
                {"region": ["eu"], "cloud": [ALL_FILTER_VALUES]},
                {"cloud": ["aws"]},
                {"region": ["eu", "us"], "cloud": ["aws"]},
                {"region": ["eu"]},
            ],
            id="many",
        ),
    ],
)
def test_every_event_is_counted_exactly_once(regional_events, aggregate, charge_filters):
    masks = [
        int(
            units(
                aggregate(
                    "sum_agg",
                    "v",
                    filters=scope.filters,
                    exclude_filters=scope.exclude_filters,
                    declared_filter_values=DECLARED,
                )
            )
        )
        for scope in charge_filter_scopes(charge_filters, DECLARED)
    ]
    assert sum(masks) == 2 ** len(REGIONAL_EVENTS) - 1  # every event counted...
    for i, first in enumerate(masks):
        assert all(first & other == 0 for other in masks[i + 1 :])  # ...by one scope only


def test_filters_apply_to_sums(write_events, aggregate):
    write_events(
        [("2023-08-02", {"region": "eu", "v": 10}), ("2023-08-03", {"region": "us", "v": 5})]
    )
    (eu, default) = charge_filter_scopes([{"region": ["eu"]}], DECLARED)
    sums = [
        units(
            aggregate("sum_agg", "v", filters=scope.filters, exclude_filters=scope.exclude_filters)
        )
        for scope in (eu, default)
    ]
    assert sums == [Decimal(10), Decimal(5)]


def test_filter_scopes_rank_keys_then_narrowness_then_age():
    scopes = charge_filter_scopes(
        [{"region": [ALL_FILTER_VALUES]}, {"region": ["eu"]}, {"region": ["us"], "cloud": ["aws"]}],
        DECLARED,
    )
    assert scopes == [
        FilterScope(
            filters={"region": [ALL_FILTER_VALUES]},
            exclude_filters=({"region": ["us"], "cloud": ["aws"]}, {"region": ["eu"]}),
        ),
        # {region: [us], cloud: [aws]} cannot match an eu event: not excluded
        FilterScope(filters={"region": ["eu"]}, exclude_filters=()),
        FilterScope(filters={"region": ["us"], "cloud": ["aws"]}, exclude_filters=()),
        FilterScope(
            filters=None,
            exclude_filters=(
                {"region": ["eu", "us", "asia"]},
                {"region": ["eu"]},
                {"region": ["us"], "cloud": ["aws"]},
            ),
        ),
    ]


# --------------------------------------------------------------------------------------------
# Pricing group keys (spec §7.13)


def test_v15_count_grouped_by_region(write_events, aggregate):
    write_events(
        [
            ("2023-08-02", {"region": "us"}),
            ("2023-08-03", {"region": "us"}),
            ("2023-08-04", {"region": "eu"}),
        ]
    )
    results = aggregate("count_agg", group_by=["region"])
    assert [(r.group, r.units, r.events_count) for r in results] == [
        ({"region": "eu"}, Decimal(1), 1),
        ({"region": "us"}, Decimal(2), 2),
    ]


def test_a_missing_or_empty_property_is_the_null_group(write_events, aggregate):
    write_events(
        [
            ("2023-08-02", {"region": "eu", "cloud": "aws"}),
            ("2023-08-03", {"region": "eu"}),
            ("2023-08-04", {"region": "eu", "cloud": ""}),
            ("2023-08-05", {"region": None}),
        ]
    )
    results = aggregate("count_agg", group_by=["region", "cloud"])
    assert {(r.group["region"], r.group["cloud"]): r.units for r in results} == {
        ("eu", "aws"): 1,
        ("eu", None): 2,
        (None, None): 1,
    }


@pytest.mark.parametrize(
    ("aggregation_type", "expected"),
    [
        pytest.param("sum_agg", {"eu": 12, "us": 7}, id="sum"),
        pytest.param("max_agg", {"eu": 10, "us": 7}, id="max"),
        pytest.param("latest_agg", {"eu": 2, "us": 7}, id="latest"),
        pytest.param("unique_count_agg", {"eu": 2, "us": 1}, id="unique-count"),
    ],
)
def test_each_group_is_aggregated_on_its_own(write_events, aggregate, aggregation_type, expected):
    write_events(
        [
            ("2023-08-02", {"region": "eu", "v": 10}),
            ("2023-08-03", {"region": "us", "v": 7}),
            ("2023-08-04", {"region": "eu", "v": 2}),
        ]
    )
    results = aggregate(aggregation_type, "v", group_by=["region"])
    assert {r.group["region"]: r.units for r in results} == expected


def test_groups_and_filters_combine(write_events, aggregate):
    write_events(
        [
            ("2023-08-02", {"cloud": "aws", "region": "eu"}),
            ("2023-08-03", {"cloud": "aws", "region": "us"}),
            ("2023-08-04", {"cloud": "gcp", "region": "us"}),
        ]
    )
    results = aggregate(
        "count_agg",
        filters={"cloud": ["aws"]},
        declared_filter_values=DECLARED,
        group_by=["region"],
    )
    assert {r.group["region"]: r.units for r in results} == {"eu": 1, "us": 1}


def test_grouped_aggregation_without_events_has_no_group(aggregate):
    assert aggregate("sum_agg", "v", group_by=["region"]) == []


def test_recurring_groups_carry_over_without_events_in_the_period(write_events, aggregate):
    write_events(
        [("2023-07-10", {"region": "eu", "v": 4}), ("2023-08-10", {"region": "us", "v": 1})]
    )
    results = aggregate(
        "sum_agg",
        "v",
        group_by=["region"],
        recurring=True,
        subscription_started_at=at("2023-07-01"),
    )
    assert [(r.group, r.units, r.events_count) for r in results] == [
        ({"region": "eu"}, Decimal(4), 0),
        ({"region": "us"}, Decimal(1), 1),
    ]


def test_recurring_weighted_sum_per_group_starts_from_each_groups_value(write_events, aggregate):
    write_events([("2023-08-16T00:00", {"region": "eu", "v": 31})])
    results = aggregate(
        "weighted_sum_agg",
        "v",
        group_by=["region"],
        recurring=True,
        grouped_initial_values={("eu",): Decimal(1), ("us",): Decimal(2), (None,): Decimal(3)},
        period_duration_days=31,
    )
    assert [(r.group["region"], r.units, r.total_aggregated_units) for r in results] == [
        ("eu", Decimal(17), Decimal(32)),  # 1 for 31 days + 31 for 16 of 31 days
        ("us", Decimal(2), Decimal(2)),
        (None, Decimal(3), Decimal(3)),
    ]


def test_prorated_sum_per_group(write_events, aggregate):
    write_events(
        [("2023-07-10", {"region": "eu", "v": 31}), ("2023-08-22", {"region": "us", "v": 31})]
    )
    results = aggregate(
        "sum_agg",
        "v",
        group_by=["region"],
        recurring=True,
        prorated=True,
        subscription_started_at=at("2023-07-01"),
        period_duration_days=31,
    )
    assert [(r.group["region"], r.units, r.full_units) for r in results] == [
        ("eu", Decimal(31), Decimal(31)),
        ("us", Decimal(10), Decimal(31)),  # Aug 22..31
    ]


def test_recurring_weighted_sum_per_group_recomputes_carried_values(write_events, aggregate):
    write_events(
        [
            ("2023-07-10", {"region": "eu", "v": 2}),
            ("2023-07-11", {"region": "us", "v": 5}),
            ("2023-07-12", {"region": "us", "v": -5}),
            ("2023-08-16T00:00", {"region": "eu", "v": 31}),
        ]
    )
    results = aggregate(
        "weighted_sum_agg",
        "v",
        group_by=["region"],
        recurring=True,
        subscription_started_at=at("2023-07-01"),
        period_duration_days=31,
    )
    assert [
        (r.group["region"], r.units, r.total_aggregated_units, r.events_count) for r in results
    ] == [
        ("eu", Decimal(18), Decimal(33), 1),  # 2 for 31 days + 31 for 16 of 31 days
        ("us", Decimal(0), Decimal(0), 0),
    ]
