"""The three stores give the same results on the same random event streams.

Hypothesis draws a stream of events (ties at one instant, local-day and period boundaries,
adds and removes, numbers as JSON numbers or text, values that are not numbers, missing
properties and groups) and aggregation queries over it (every aggregation type, recurring,
prorated, grouped, filtered, with per-event values, carried initial values, a subscription
starting or terminated inside the period, several timezones). The stream is written to
PostgreSQL (read by the SQL store and the portable store) and to the ClickHouse store
(embedded, chdb), and every query must return the same results on the three.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metering.store import (
    AggregationQuery,
    EventInput,
    PortableEventStore,
    PostgresEventStore,
)

from .conftest import NOW

pytest.importorskip("chdb", reason="the clickhouse extra is not installed")
pytest.importorskip("clickhouse_connect", reason="the clickhouse extra is not installed")

from metering.store.clickhouse import TABLE, ClickHouseEventStore

pytestmark = pytest.mark.django_db

JULY = datetime(2023, 7, 1, tzinfo=UTC)
AUGUST = datetime(2023, 8, 1, tzinfo=UTC)
END_OF_AUGUST = datetime(2023, 8, 31, 23, 59, 59, tzinfo=UTC)
TIMEZONES = ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]
# instants in a day that sit on (or next to) a day's or a local day's boundary
SECONDS_IN_DAY = [0, 1, 3 * 3600, 4 * 3600 + 1800, 12 * 3600, 22 * 3600, 86399]

values = st.one_of(
    st.integers(min_value=-5, max_value=100),
    st.sampled_from(["2.5", "-0.125", "1e2", " 7 ", "abc", "", "NaN", True, None]),
    st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False).map(str),
)


@st.composite
def instants(draw: st.DrawFn, first: datetime = JULY, days: int = 62) -> datetime:
    """An instant of July-August 2023, often on a day boundary, often shared by events."""
    day = draw(st.integers(min_value=0, max_value=days - 1))
    second = draw(st.one_of(st.sampled_from(SECONDS_IN_DAY), st.integers(0, 86399)))
    micro = draw(st.sampled_from([0, 0, 0, 500_000, 999_999]))
    return first + timedelta(days=day, seconds=second, microseconds=micro)


@st.composite
def events(draw: st.DrawFn) -> list[tuple[datetime, dict, Decimal]]:
    """(timestamp, properties, amount) of up to 20 events, a few sharing their instant."""
    moments = draw(st.lists(instants(), min_size=1, max_size=6))
    stream = []
    for _ in range(draw(st.integers(min_value=0, max_value=20))):
        properties = {}
        if draw(st.integers(0, 9)):  # now and then the metric's field is missing
            properties["v"] = draw(values)
        region = draw(st.sampled_from(["eu", "us", "", None, "missing"]))
        if region != "missing":
            properties["region"] = region
        operation = draw(st.sampled_from(["add", "remove", "missing"]))
        if operation != "missing":
            properties["operation_type"] = operation
        timestamp = draw(st.one_of(st.sampled_from(moments), instants()))
        amount = draw(st.decimals(min_value=0, max_value=100, places=2, allow_nan=False))
        stream.append((timestamp, properties, amount))
    return stream


@st.composite
def queries(draw: st.DrawFn) -> dict:
    """The fields of an aggregation query over August (sub and organization added later)."""
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
    fields: dict = {"aggregation_type": kind, "field_name": None if kind == "count_agg" else "v"}
    fields["from_datetime"] = AUGUST
    fields["to_datetime"] = draw(
        st.one_of(st.just(END_OF_AUGUST), instants(first=AUGUST, days=31))  # or terminated
    )
    fields["subscription_started_at"] = draw(
        st.one_of(st.none(), st.just(JULY), instants(first=JULY, days=40))
    )
    if (
        fields["subscription_started_at"]
        and fields["subscription_started_at"] > (fields["to_datetime"])
    ):
        fields["subscription_started_at"] = AUGUST
    if kind in {"sum_agg", "unique_count_agg", "weighted_sum_agg"}:
        fields["recurring"] = draw(st.booleans())
    if fields.get("recurring") and kind != "weighted_sum_agg":
        fields["prorated"] = draw(st.booleans())
    if kind == "weighted_sum_agg" or fields.get("prorated"):
        fields["period_duration_days"] = 31
    if fields.get("prorated"):
        fields["timezone"] = draw(st.sampled_from(TIMEZONES))
    fields["group_by"] = draw(st.sampled_from([[], ["region"]]))
    scope = draw(st.sampled_from(["all", "eu", "not eu"]))
    if scope == "eu":
        fields["filters"] = {"region": ["eu"]}
    elif scope == "not eu":
        fields["exclude_filters"] = ({"region": ["eu"]},)
    if kind == "weighted_sum_agg" and fields["recurring"] and draw(st.booleans()):
        carried = draw(st.decimals(min_value=-50, max_value=50, places=2, allow_nan=False))
        if fields["group_by"]:
            fields["grouped_initial_values"] = {("eu",): carried, (None,): carried * 2}
        else:
            fields["initial_value"] = carried
    return fields


@pytest.fixture
def clickhouse(chdb_connection):
    store = ClickHouseEventStore(chdb_connection)  # creates the table when missing
    chdb_connection.command(f"TRUNCATE TABLE {TABLE}")
    return store


def _write_to_both(organization, clickhouse, stream) -> str:
    """Write (timestamp, properties, amount) events as one batch, `tx_0`, `tx_1`... in stream
    order, to PostgreSQL and ClickHouse; returns the subscription's external id."""
    sub = f"sub_{uuid4().hex}"  # each example has its own subscription (the tables are shared)
    batch = [
        EventInput(
            transaction_id=f"tx_{index}",
            external_subscription_id=sub,
            code="metric",
            timestamp=timestamp,
            properties=properties,
            precise_total_amount_cents=amount,
        )
        for index, (timestamp, properties, amount) in enumerate(stream)
    ]
    assert PostgresEventStore().write_batch(organization.id, batch, now=NOW).written
    assert clickhouse.write_batch(organization.id, batch, now=NOW).written
    return sub


@pytest.mark.parametrize(
    ("aggregation_type", "with_values", "expected_units", "expected_values"),
    [
        pytest.param("unique_count_agg", False, Decimal(0), None, id="unique-count"),
        pytest.param("latest_agg", False, Decimal(3), None, id="latest"),
        pytest.param("sum_agg", True, Decimal(5), [Decimal(2), Decimal(3)], id="event-values"),
    ],
)
def test_events_at_one_instant_resolve_in_the_order_sent_on_the_three_stores(
    organization, clickhouse, aggregation_type, with_values, expected_units, expected_values
):
    """The stream this test once found the stores disagreeing on: tx_0..tx_10 in one batch,
    tx_2 and tx_10 at the same instant. PostgreSQL numbered the rows in transaction id order
    (tx_10 before tx_2), ClickHouse in the order sent; every store now numbers them as sent."""
    instant = AUGUST + timedelta(days=3)
    stream = [(AUGUST + timedelta(days=1, hours=i), {}, Decimal(0)) for i in range(11)]
    stream[2] = (instant, {"v": 2, "operation_type": "add"}, Decimal(0))
    stream[10] = (instant, {"v": 3, "operation_type": "remove"}, Decimal(0))
    if aggregation_type == "unique_count_agg":  # the same value added then removed
        stream[10] = (instant, {"v": 2, "operation_type": "remove"}, Decimal(0))
    sub = _write_to_both(organization, clickhouse, stream)
    query = AggregationQuery(
        organization_id=organization.id,
        external_subscription_id=sub,
        code="metric",
        aggregation_type=aggregation_type,
        field_name="v",
        from_datetime=AUGUST,
        to_datetime=END_OF_AUGUST,
    )
    found = [
        store.aggregate(query, with_event_values=with_values)
        for store in (PostgresEventStore(), PortableEventStore(), clickhouse)
    ]
    (result,) = found[0]
    assert (result.units, result.events_count) == (expected_units, 2)
    assert result.per_event_values == expected_values
    assert found[1] == found[0]
    assert found[2] == found[0]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stream=events(), drawn=st.lists(queries(), min_size=1, max_size=4), with_values=st.booleans()
)
def test_sql_portable_and_clickhouse_stores_agree(
    organization, clickhouse, stream, drawn, with_values
):
    sub = _write_to_both(organization, clickhouse, stream)
    for fields in drawn:
        query = AggregationQuery(
            organization_id=organization.id, external_subscription_id=sub, code="metric", **fields
        )
        expected = PostgresEventStore().aggregate(query, with_event_values=with_values)
        assert PortableEventStore().aggregate(query, with_event_values=with_values) == expected
        assert clickhouse.aggregate(query, with_event_values=with_values) == expected
