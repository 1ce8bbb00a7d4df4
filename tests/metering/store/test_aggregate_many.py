"""`aggregate_many`: many queries at once (the refresh pass reads one charge of a whole batch
of subscriptions together), each answered exactly as `aggregate` answers it alone, on every
store; on PostgreSQL, one statement per shape of query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metering.store import AggregationQuery, EventInput, PostgresEventStore
from metering.store.rollups import rebuild_rollups

from .conftest import AUGUST_FROM, AUGUST_TO, NOW, at

ON_CLICKHOUSE = True  # these tests also run on the ClickHouse store and the rollups (conftest)

pytestmark = pytest.mark.django_db

# the metric code of each field, so that the pre-aggregated rows keep each one's values
FIELDS = {"calls": None, "bytes": "bytes", "users": "user_id", "seats": "seats"}
# and its metric's type: the events of the unique count keep their property states
KINDS = {
    "calls": "count_agg",
    "bytes": "sum_agg",
    "users": "unique_count_agg",
    "seats": "weighted_sum_agg",
}


def write(store, organization, sub: str, events: list[tuple[str, str, dict]]) -> None:
    """(timestamp, code, properties) events of `sub`, written through the store."""
    batch = [
        EventInput(
            transaction_id=f"tx_{sub}_{index}",
            external_subscription_id=sub,
            code=code,
            timestamp=at(timestamp),
            properties=properties,
            precise_total_amount_cents=Decimal(index),
            field_name=FIELDS[code],
            aggregation_type=KINDS[code],
        )
        for index, (timestamp, code, properties) in enumerate(events)
    ]
    assert store.write_batch(organization.id, batch, now=NOW).written


def query(organization, sub: str, kind: str, code: str, **fields) -> AggregationQuery:
    values = {"from_datetime": AUGUST_FROM, "to_datetime": AUGUST_TO, **fields}
    return AggregationQuery(
        organization_id=organization.id,
        external_subscription_id=sub,
        code=code,
        aggregation_type=kind,
        field_name=FIELDS[code],
        **values,
    )


def each_alone(store, queries, *, with_event_values=False):
    """Each query's results from `aggregate`; on PostgreSQL, also checks that the batch read
    of the raw events (not the pre-aggregated rows) gives them."""
    alone = [store.aggregate(q, with_event_values=with_event_values) for q in queries]
    if isinstance(store, PostgresEventStore):
        raw = PostgresEventStore(rollups=False)
        assert raw.aggregate_many(queries, with_event_values=with_event_values) == alone
    return alone


@pytest.fixture
def three_subscriptions(store, organization):
    """Three subscriptions with different usage of the four metrics."""
    write(store, organization, "sub_1", [
        ("2023-08-02T10:00", "calls", {}),
        ("2023-08-03T10:30", "calls", {}),
        ("2023-08-02T10:00", "bytes", {"bytes": 10, "region": "eu"}),
        ("2023-08-05T11:15", "bytes", {"bytes": "2.5", "region": "us"}),
        ("2023-08-04T00:00", "users", {"user_id": "u1"}),
        ("2023-08-06T00:00", "users", {"user_id": "u2"}),
        ("2023-08-10T12:00", "seats", {"seats": 3}),
    ])  # fmt: skip
    write(store, organization, "sub_2", [
        ("2023-07-20T08:00", "bytes", {"bytes": 100, "region": "eu"}),
        ("2023-08-20T08:00", "bytes", {"bytes": 7, "region": "eu"}),
        ("2023-08-21T09:00", "users", {"user_id": "u1"}),
        ("2023-08-22T09:00", "users", {"user_id": "u1", "operation_type": "remove"}),
        ("2023-07-25T00:00", "seats", {"seats": 5}),
        ("2023-08-15T00:00", "seats", {"seats": -2}),
    ])  # fmt: skip
    write(store, organization, "sub_3", [("2023-08-31T23:59:59", "calls", {})])
    if isinstance(store, PostgresEventStore) and store.rollups:
        rebuild_rollups(organization.id, FIELDS, aggregation_types=KINDS)
    return ["sub_1", "sub_2", "sub_3", "sub_without_events"]


def test_a_batch_of_subscriptions_gets_each_ones_own_results(
    store, organization, three_subscriptions
):
    queries = [
        query(organization, sub, kind, code, **fields)
        for sub in three_subscriptions
        for kind, code, fields in [
            ("count_agg", "calls", {}),
            ("sum_agg", "bytes", {"group_by": ["region"]}),
            ("sum_agg", "bytes", {"recurring": True, "subscription_started_at": at("2023-07-01")}),
            ("max_agg", "bytes", {"filters": {"region": ["eu"]}}),
            ("latest_agg", "bytes", {}),
            ("unique_count_agg", "users", {}),
            (
                "weighted_sum_agg",
                "seats",
                {
                    "recurring": True,
                    "period_duration_days": 31,
                    "subscription_started_at": at("2023-07-01"),
                },
            ),
            (
                "sum_agg",
                "bytes",
                {
                    "recurring": True,
                    "prorated": True,
                    "period_duration_days": 31,
                    "subscription_started_at": at("2023-07-01"),
                    "timezone": "Europe/Paris",
                },
            ),
        ]
    ]

    answered = store.aggregate_many(queries)

    assert answered == each_alone(store, queries)
    by_sub = {
        sub: answered[index * 8 : index * 8 + 8] for index, sub in enumerate(three_subscriptions)
    }
    assert [r.units for r in by_sub["sub_1"][0]] == [Decimal(2)]
    assert [(r.group, r.units) for r in by_sub["sub_1"][1]] == [
        ({"region": "eu"}, Decimal(10)),
        ({"region": "us"}, Decimal("2.5")),
    ]
    assert [r.units for r in by_sub["sub_2"][2]] == [Decimal(107)]  # carried over from July
    assert [r.units for r in by_sub["sub_2"][5]] == [Decimal(0)]  # removed again
    assert [r.units for r in by_sub["sub_3"][0]] == [Decimal(1)]
    assert [r.units for r in by_sub["sub_without_events"][0]] == [Decimal(0)]
    assert by_sub["sub_without_events"][1] == []  # grouped: no group without events


def test_windows_and_starts_differ_from_one_subscription_to_the_next(
    store, organization, three_subscriptions
):
    # anniversary periods, a start inside the period, a termination: each its own window
    queries = [
        query(organization, "sub_1", "count_agg", "calls", to_datetime=at("2023-08-02T23:59:59")),
        query(organization, "sub_2", "sum_agg", "bytes", subscription_started_at=at("2023-08-20")),
        query(organization, "sub_1", "sum_agg", "bytes", subscription_started_at=at("2023-08-03")),
        query(
            organization, "sub_3", "count_agg", "calls",
            from_datetime=at("2023-08-15"), to_datetime=at("2023-09-14T23:59:59"),
        ),
        query(
            organization, "sub_1", "count_agg", "calls", subscription_started_at=at("2023-09-05")
        ),
    ]  # fmt: skip

    answered = store.aggregate_many(queries)

    assert answered == each_alone(store, queries)
    assert [[r.units for r in results] for results in answered] == [
        [Decimal(1)],
        [Decimal(7)],
        [Decimal("2.5")],
        [Decimal(1)],
        [Decimal(0)],  # starts after the window
    ]


def test_per_event_values_come_back_per_subscription(store, organization, three_subscriptions):
    queries = [query(organization, sub, "sum_agg", "bytes") for sub in three_subscriptions]

    answered = store.aggregate_many(queries, with_event_values=True)

    assert answered == each_alone(store, queries, with_event_values=True)
    assert answered[0][0].per_event_values == [Decimal(10), Decimal("2.5")]
    assert answered[1][0].per_event_values == [Decimal(7)]


def test_no_query_no_result(store):
    assert store.aggregate_many([]) == []


@pytest.mark.parametrize("rollups", [False, True])
def test_postgresql_reads_one_charge_of_many_subscriptions_in_one_statement(organization, rollups):
    store = PostgresEventStore(rollups=rollups)
    subs = [f"sub_{n}" for n in range(40)]
    for n, sub in enumerate(subs):
        write(store, organization, sub, [("2023-08-02T10:00", "calls", {})] * (n % 3))
    queries = [query(organization, sub, "count_agg", "calls") for sub in subs]

    with CaptureQueriesContext(connection) as captured:
        answered = store.aggregate_many(queries)

    assert len(captured.captured_queries) == 1
    assert [results[0].units for results in answered] == [Decimal(n % 3) for n in range(40)]


def test_queries_the_rollups_cannot_answer_read_the_events(organization):
    store = PostgresEventStore(rollups=True)
    # written without the field: only counts are pre-aggregated, sums read the events
    for sub, value in (("sub_1", 3), ("sub_2", 4)):
        store.write_batch(
            organization.id,
            [
                EventInput(
                    transaction_id=f"tx_{sub}",
                    external_subscription_id=sub,
                    code="bytes",
                    timestamp=at("2023-08-02T10:00"),
                    properties={"bytes": value},
                )
            ],
            now=NOW,
        )
    queries = [
        query(organization, "sub_1", "sum_agg", "bytes"),
        query(organization, "sub_1", "count_agg", "bytes"),
        query(organization, "sub_2", "sum_agg", "bytes"),
    ]

    with CaptureQueriesContext(connection) as captured:
        answered = store.aggregate_many(queries)

    assert [results[0].units for results in answered] == [Decimal(3), Decimal(1), Decimal(4)]
    # the rollup reads in one statement per shape, then the two sums' events in one
    assert len(captured.captured_queries) == 3


# --------------------------------------------------------------------------------------------
# Random streams: a batch answers as each query alone


JULY = datetime(2023, 7, 1, tzinfo=UTC)
AUGUST = datetime(2023, 8, 1, tzinfo=UTC)
END_OF_AUGUST = datetime(2023, 8, 31, 23, 59, 59, tzinfo=UTC)

moments = st.builds(
    lambda day, second: JULY + timedelta(days=day, seconds=second),
    st.integers(0, 61),
    st.sampled_from([0, 1, 3600, 5400, 43200, 86399]),
)
streams = st.lists(
    st.tuples(
        moments,
        st.sampled_from([1, 2, "2.5", -1, "abc", None]),
        st.sampled_from(["eu", "us", None]),
        st.sampled_from(["add", "add", "remove"]),
    ),
    max_size=8,
)


@st.composite
def batch_queries(draw: st.DrawFn) -> dict:
    """Fields of a query for `bytes` (or `calls`), the window and start varying."""
    kind = draw(
        st.sampled_from(
            [
                "count_agg",
                "sum_agg",
                "max_agg",
                "latest_agg",
                "unique_count_agg",
                "weighted_sum_agg",
            ]
        )
    )
    fields: dict = {"aggregation_type": kind, "code": "calls" if kind == "count_agg" else "bytes"}
    fields["from_datetime"] = AUGUST
    fields["to_datetime"] = draw(st.sampled_from([END_OF_AUGUST, AUGUST + timedelta(days=9)]))
    fields["subscription_started_at"] = draw(
        st.sampled_from([None, JULY, AUGUST + timedelta(days=3, hours=5)])
    )
    if kind in {"sum_agg", "unique_count_agg", "weighted_sum_agg"}:
        fields["recurring"] = draw(st.booleans())
    if kind == "weighted_sum_agg":
        fields["period_duration_days"] = 31
    if fields.get("recurring") and kind == "sum_agg" and draw(st.booleans()):
        fields["prorated"] = True
        fields["period_duration_days"] = 31
        fields["timezone"] = draw(st.sampled_from(["UTC", "Asia/Kolkata"]))
    fields["group_by"] = draw(st.sampled_from([[], ["region"]]))
    if draw(st.booleans()):
        fields["filters"] = {"region": ["eu"]}
    return fields


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    streams=st.lists(streams, min_size=2, max_size=3),
    drawn=st.lists(batch_queries(), min_size=1, max_size=3),
    with_values=st.booleans(),
)
def test_any_batch_answers_as_each_query_alone(store, organization, streams, drawn, with_values):
    subs = [f"sub_{uuid4().hex}" for _ in streams]  # each example its own subscriptions
    for sub, stream in zip(subs, streams, strict=True):
        events = []
        for moment, value, region, operation in stream:
            properties = {"operation_type": operation}
            if value is not None:
                properties["bytes"] = value
            if region is not None:
                properties["region"] = region
            events += [
                (moment.isoformat(), "bytes", properties),
                (moment.isoformat(), "calls", {"region": region} if region else {}),
            ]
        if events:
            write(store, organization, sub, events)
    queries = [
        AggregationQuery(
            organization_id=organization.id,
            external_subscription_id=sub,
            field_name=FIELDS[fields["code"]],
            **fields,
        )
        for fields in drawn
        for sub in subs
    ]

    answered = store.aggregate_many(queries, with_event_values=with_values)

    assert answered == each_alone(store, queries, with_event_values=with_values)
