"""Pre-aggregation of the PostgreSQL store: the pre-aggregated read equals the raw scan.

Random event streams (several batches, out of order, on hour and window boundaries, numbers and
non-numbers, add/remove operations, groups and filters) are written through `write_batch`; each
aggregation type is then read both ways and must give the same results.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from metering.models import EventPropertyState, EventRollup
from metering.store import AggregationQuery, EventInput, PostgresEventStore
from metering.store.aggregation import aggregate_postgres
from metering.store.rollups import aggregate_with_rollups, rebuild_rollups, rollup_rows

PERIOD_FROM = datetime(2023, 8, 1, 0, 20, 0, 500000, tzinfo=UTC)
PERIOD_TO = datetime(2023, 8, 2, 13, 45, 10, tzinfo=UTC)
STARTED_AT = datetime(2023, 7, 31, 10, 30, tzinfo=UTC)
NOW = datetime(2023, 9, 1, tzinfo=UTC)
SPAN = int((PERIOD_TO - STARTED_AT).total_seconds()) + 4 * 3600
# instants where rollups and raw edges meet
BOUNDARIES = [
    STARTED_AT,
    PERIOD_FROM,
    PERIOD_FROM - timedelta(microseconds=1),
    PERIOD_TO,
    PERIOD_TO + timedelta(microseconds=1),
    datetime(2023, 8, 1, 1, tzinfo=UTC),
    datetime(2023, 8, 2, 13, tzinfo=UTC),
    datetime(2023, 8, 2, 14, tzinfo=UTC) - timedelta(microseconds=1),
]

instants = st.one_of(
    st.sampled_from(BOUNDARIES),
    st.builds(
        lambda seconds, micros: (
            STARTED_AT - timedelta(hours=2) + timedelta(seconds=seconds, microseconds=micros)
        ),
        st.integers(0, SPAN),
        st.sampled_from([0, 0, 250000, 999999]),
    ),
)
numbers = st.sampled_from(
    [1, 2, 5, -3, 0, "4.5", "0.000000000000000000001", "abc", True, 10**24, "1e3", 7.25]
)
labels = st.sampled_from(["u1", "u2", "u3", 4, "5"])


@st.composite
def events(draw, unique: bool):
    properties = {}
    value = draw(labels if unique else numbers) if draw(st.integers(0, 9)) else None
    if value is not None:
        properties["v"] = value
    region = draw(st.sampled_from(["eu", "us", "", None, "missing"]))
    if region != "missing":
        properties["region"] = region
    if unique and draw(st.booleans()):
        properties["operation_type"] = draw(st.sampled_from(["add", "remove", "remove"]))
    if draw(st.integers(0, 4)) == 0:
        properties["tier"] = draw(st.sampled_from(["a", "b"]))
    stored_value = None
    if (
        not unique
        and isinstance(value, int)
        and not isinstance(value, bool)
        and draw(st.booleans())
    ):
        stored_value = Decimal(value)
    amount = draw(st.sampled_from([Decimal(0), Decimal("1.5"), Decimal(100)]))
    return draw(instants), properties, stored_value, amount


def streams(unique: bool = False):
    return st.lists(st.lists(events(unique), min_size=1, max_size=8), min_size=1, max_size=5)


_IDS = itertools.count(1)


def write(
    organization, batches, *, field_name="v", sub="sub_1", code="metric", aggregation_type=None
):
    """Each batch through `write_batch`, as ingestion writes the events of a metric of
    `aggregation_type` (unique counts keep their property states)."""
    store = PostgresEventStore()
    for batch in batches:
        result = store.write_batch(
            organization.id,
            [
                EventInput(
                    transaction_id=f"tx_{next(_IDS)}",
                    external_subscription_id=sub,
                    code=code,
                    timestamp=timestamp,
                    properties=properties,
                    value=value,
                    precise_total_amount_cents=amount,
                    field_name=field_name,
                    aggregation_type=aggregation_type,
                )
                for timestamp, properties, value, amount in batch
            ],
            now=NOW,
        )
        assert result.written


SHAPES = {
    "plain": {},
    "grouped": {"group_by": ["region"]},
    "two_groups": {"group_by": ["region", "tier"]},
    "filtered": {"filters": {"region": ["eu", "us"]}},
    "default_bucket": {"exclude_filters": [{"region": ["eu"]}, {"tier": ["a"]}]},
}
CASES = [
    ("count_agg", None, {}),
    ("sum_agg", "v", {}),
    ("sum_agg", "v", {"recurring": True}),
    ("sum_agg", "v", {"recurring": True, "subscription_started_at": None}),
    ("max_agg", "v", {}),
    ("latest_agg", "v", {}),
    ("unique_count_agg", "v", {}),
    ("unique_count_agg", "v", {"recurring": True}),
    ("weighted_sum_agg", "v", {"period_duration_days": 31}),
    ("weighted_sum_agg", "v", {"period_duration_days": 31, "recurring": True}),
    ("sum_agg", "v", {"recurring": True, "prorated": True, "period_duration_days": 31}),
    (
        "sum_agg",
        "v",
        {"recurring": True, "prorated": True, "period_duration_days": 30, "timezone": "Asia/Tokyo"},
    ),
]


def query_for(organization, aggregation_type, field_name, shape, **fields):
    values = {
        "organization_id": organization.id,
        "external_subscription_id": "sub_1",
        "code": "metric",
        "from_datetime": PERIOD_FROM,
        "to_datetime": PERIOD_TO,
        "subscription_started_at": STARTED_AT,
        **SHAPES[shape],
        **fields,
    }
    return AggregationQuery(aggregation_type=aggregation_type, field_name=field_name, **values)


@pytest.fixture
def rolled_back(db):
    """Each Hypothesis example in a savepoint rolled back after it."""

    def run(body):
        with transaction.atomic():
            body()
            transaction.set_rollback(True)

    return run


@pytest.mark.parametrize(
    ("aggregation_type", "field_name", "fields"),
    CASES,
    ids=[f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[2].items()) or 'period'}" for c in CASES],
)
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_pre_aggregated_equals_raw_scan(
    organization, rolled_back, aggregation_type, field_name, fields, data
):
    batches = data.draw(streams(unique=aggregation_type == "unique_count_agg"))
    shape = data.draw(st.sampled_from(list(SHAPES)))
    query = query_for(organization, aggregation_type, field_name, shape, **fields)

    def body():
        write(organization, batches, aggregation_type=aggregation_type)
        # another subscription: not read
        write(organization, batches[:1], sub="sub_2", aggregation_type=aggregation_type)
        answered = rollup_rows(query) is not None
        event(f"pre-aggregated: {answered}")
        # a unique-count value seen before, in and after the window is read from the events
        assert answered or aggregation_type == "unique_count_agg"
        assert aggregate_with_rollups(query) == aggregate_postgres(query)

    rolled_back(body)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=streams(), initial=st.sampled_from([Decimal(0), Decimal(7), Decimal("-2.5")]))
def test_weighted_sum_with_a_carried_total_equals_raw_scan(
    organization, rolled_back, batches, initial
):
    plain = query_for(
        organization, "weighted_sum_agg", "v", "plain",
        period_duration_days=31, recurring=True, initial_value=initial,
    )  # fmt: skip
    grouped = query_for(
        organization, "weighted_sum_agg", "v", "grouped",
        period_duration_days=31, recurring=True,
        grouped_initial_values={("eu",): initial, (None,): Decimal(3)},
    )  # fmt: skip

    def body():
        write(organization, batches)
        for query in (plain, grouped):
            assert rollup_rows(query) is not None
            assert aggregate_with_rollups(query) == aggregate_postgres(query)

    rolled_back(body)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batches=streams(),
    unknown=streams(),
    case=st.sampled_from(CASES),
)
def test_events_ingested_without_the_field_fall_back_to_the_raw_scan(
    organization, rolled_back, batches, unknown, case
):
    """Events written before their metric existed (no field) are still counted exactly."""
    aggregation_type, field_name, fields = case
    query = query_for(organization, aggregation_type, field_name, "plain", **fields)

    def body():
        write(organization, batches, aggregation_type=aggregation_type)
        write(organization, unknown, field_name=None, code="metric", sub="sub_1")
        assert aggregate_with_rollups(query) == aggregate_postgres(query)

    rolled_back(body)


@pytest.mark.parametrize(("aggregation_type", "field_name", "fields"), CASES)
def test_rebuild_gives_back_the_rows_ingestion_kept(
    organization, aggregation_type, field_name, fields
):
    stream = [
        [(at, {"v": i % 3, "region": "eu"}, None, Decimal(1)) for i, at in enumerate(BOUNDARIES)],
        [(BOUNDARIES[1] + timedelta(minutes=90), {"v": "u1", "operation_type": "remove"}, None,
          Decimal(0))],
    ]  # fmt: skip
    write(organization, stream, aggregation_type=aggregation_type)
    query = query_for(organization, aggregation_type, field_name, "plain", **fields)
    before = aggregate_with_rollups(query)
    columns = ("bucket", "n", "sv", "tv", "n_prop", "n_stateless")
    kept = sorted(EventRollup.objects.values_list(*columns))
    states = sorted(EventPropertyState.objects.values_list("prop", "first_ts", "last_ts"))
    rebuild_rollups(
        organization.id, {"metric": "v"}, aggregation_types={"metric": aggregation_type}
    )
    assert sorted(EventRollup.objects.values_list(*columns)) == kept
    assert sorted(EventPropertyState.objects.values_list("prop", "first_ts", "last_ts")) == states
    assert aggregate_with_rollups(query) == before == aggregate_postgres(query)


def test_unique_count_reads_the_last_operation_of_each_value(organization):
    write(
        organization,
        [[
            (datetime(2023, 8, 1, 5, tzinfo=UTC), {"v": "u1"}, None, Decimal(0)),
            (datetime(2023, 8, 1, 6, tzinfo=UTC), {"v": "u2"}, None, Decimal(0)),
            (datetime(2023, 8, 1, 7, tzinfo=UTC), {"v": "u2", "operation_type": "remove"}, None,
             Decimal(0)),
            (datetime(2023, 8, 1, 8, tzinfo=UTC), {"v": "u3", "operation_type": "remove"}, None,
             Decimal(0)),
        ]],
        aggregation_type="unique_count_agg",
    )  # fmt: skip
    query = query_for(organization, "unique_count_agg", "v", "plain")
    assert [row["units"] for row in rollup_rows(query)] == [1]
    assert aggregate_with_rollups(query) == aggregate_postgres(query)


def test_a_late_event_corrects_its_hour(organization):
    write(organization, [[(datetime(2023, 8, 1, 5, 10, tzinfo=UTC), {"v": 2}, None, Decimal(0))]])
    query = query_for(organization, "sum_agg", "v", "plain")
    assert aggregate_with_rollups(query)[0].units == 2
    # a week later, an event of the same hour arrives
    write(organization, [[(datetime(2023, 8, 1, 5, 50, tzinfo=UTC), {"v": 3}, None, Decimal(0))]])
    assert EventRollup.objects.get(bucket=datetime(2023, 8, 1, 5, tzinfo=UTC)).n == 2
    assert aggregate_with_rollups(query)[0].units == 5


def test_a_refused_batch_leaves_no_pre_aggregated_row(organization):
    store = PostgresEventStore()
    first = EventInput(
        transaction_id="t1", external_subscription_id="sub_1", code="metric",
        timestamp=datetime(2023, 8, 1, 5, tzinfo=UTC), properties={"v": 1}, field_name="v",
        aggregation_type="unique_count_agg",
    )  # fmt: skip
    assert store.write_batch(organization.id, [first], now=NOW).written
    second = EventInput(
        transaction_id="t2", external_subscription_id="sub_1", code="metric",
        timestamp=datetime(2023, 8, 1, 6, tzinfo=UTC), properties={"v": 5}, field_name="v",
        aggregation_type="unique_count_agg",
    )  # fmt: skip
    refused = store.write_batch(organization.id, [second, first], now=NOW)
    assert refused.duplicate_indexes == (1,)
    assert list(EventRollup.objects.values_list("n", "sv")) == [(1, Decimal(1))]
    assert EventPropertyState.objects.count() == 1


def test_discarded_events_leave_the_pre_aggregated_rows(organization):
    store = PostgresEventStore()
    write(
        organization,
        [[(datetime(2023, 8, 1, 5, tzinfo=UTC), {"v": 4}, None, Decimal(0))]],
        aggregation_type="unique_count_agg",
    )
    assert EventPropertyState.objects.exists()
    store.discard_events(organization.id, code="metric", now=NOW)
    assert not EventRollup.objects.exists()
    assert not EventPropertyState.objects.exists()
    # the code is reused by a new metric: only its events count
    write(organization, [[(datetime(2023, 8, 1, 7, tzinfo=UTC), {"v": 1}, None, Decimal(0))]])
    query = query_for(organization, "sum_agg", "v", "plain")
    assert aggregate_with_rollups(query)[0].units == 1 == aggregate_postgres(query)[0].units


def test_a_unique_value_seen_again_after_the_window_is_read_from_the_events(organization):
    """Its state's last event is after the window: which operation was last inside is not
    kept, so the raw scan answers."""
    write(
        organization,
        [[
            (datetime(2023, 8, 1, 5, tzinfo=UTC), {"v": "u1"}, None, Decimal(0)),
            (datetime(2023, 8, 1, 6, tzinfo=UTC), {"v": "u2"}, None, Decimal(0)),
            (datetime(2023, 8, 1, 7, tzinfo=UTC), {"v": "u2", "operation_type": "remove"}, None,
             Decimal(0)),
            (PERIOD_TO + timedelta(hours=5), {"v": "u1"}, None, Decimal(0)),
            (PERIOD_TO + timedelta(hours=5), {"v": "u2"}, None, Decimal(0)),
        ]],
        aggregation_type="unique_count_agg",
    )  # fmt: skip
    query = query_for(organization, "unique_count_agg", "v", "plain")
    assert rollup_rows(query) is None
    assert aggregate_with_rollups(query)[0].units == 1 == aggregate_postgres(query)[0].units


# --------------------------------------------------------------------------------------------
# Property states: kept for the events of unique-count metrics only


def _at(hour: int, minute: int = 0) -> datetime:
    return datetime(2023, 8, 1, hour, minute, tzinfo=UTC)


def _stateless() -> tuple[int, int]:
    """(events carrying the field, those whose state was not kept) over every rollup row."""
    rows = list(EventRollup.objects.values_list("n_prop", "n_stateless"))
    return sum(row[0] for row in rows), sum(row[1] for row in rows)


@pytest.mark.parametrize(
    ("aggregation_type", "field_name"),
    [
        ("count_agg", None),
        ("sum_agg", "v"),
        ("max_agg", "v"),
        ("latest_agg", "v"),
        ("weighted_sum_agg", "v"),
        (None, None),  # the metric is unknown
    ],
)
def test_a_batch_of_another_metric_type_upserts_no_state(
    organization, aggregation_type, field_name
):
    batch = [
        (_at(5), {"v": 3, "region": "eu"}, None, Decimal(0)),
        (_at(6), {"v": "u1"}, None, Decimal(0)),
        (_at(6, 30), {"region": "us"}, None, Decimal(0)),
    ]
    write(organization, [batch], field_name=field_name, aggregation_type=aggregation_type)
    assert not EventPropertyState.objects.exists()
    assert EventRollup.objects.exists()
    carrying = 2 if field_name else 0
    assert _stateless() == (carrying, carrying)


def test_a_unique_count_batch_keeps_the_states_of_its_values(organization):
    def event(tx, code, at, properties, aggregation_type):
        return EventInput(
            transaction_id=tx, external_subscription_id="sub_1", code=code, timestamp=at,
            properties=properties, field_name="v", aggregation_type=aggregation_type,
        )  # fmt: skip

    batch = [
        event("t1", "metric", _at(5), {"v": "u1", "region": "eu"}, "unique_count_agg"),
        event("t2", "metric", _at(5, 30), {"v": "u1", "region": "eu"}, "unique_count_agg"),
        event("t3", "metric", _at(6), {"v": "u2"}, "unique_count_agg"),
        event("t4", "metric", _at(6, 10), {"region": "us"}, "unique_count_agg"),  # no value
        event("t5", "other", _at(6), {"v": 4}, "sum_agg"),  # another metric of the batch
    ]
    assert PostgresEventStore().write_batch(organization.id, batch, now=NOW).written
    states = EventPropertyState.objects.values_list("code", "prop", "first_ts", "last_ts")
    assert sorted(states) == [
        ("metric", "u1", _at(5), _at(5, 30)),
        ("metric", "u2", _at(6), _at(6)),
    ]
    assert list(EventRollup.objects.filter(code="metric").values_list("n_stateless")) == [(0,)] * 3
    assert EventRollup.objects.get(code="other").n_stateless == 1
    query = query_for(organization, "unique_count_agg", "v", "plain")
    assert rollup_rows(query) is not None
    assert aggregate_with_rollups(query)[0].units == 2 == aggregate_postgres(query)[0].units


def test_a_metric_ingested_as_a_sum_then_read_as_a_unique_count_reads_the_events(organization):
    """The metric became a unique count: the events ingested before kept no state."""
    write(
        organization,
        [[(_at(5), {"v": "u1"}, None, Decimal(0)), (_at(6), {"v": "u2"}, None, Decimal(0))]],
        aggregation_type="sum_agg",
    )
    write(
        organization,
        [[(_at(7), {"v": "u3"}, None, Decimal(0))]],
        aggregation_type="unique_count_agg",
    )
    query = query_for(organization, "unique_count_agg", "v", "plain")
    assert rollup_rows(query) is None
    assert aggregate_with_rollups(query)[0].units == 3 == aggregate_postgres(query)[0].units


@pytest.mark.parametrize(
    ("at", "field_name", "aggregation_type"),
    [
        (PERIOD_TO - timedelta(minutes=5), "v", "sum_agg"),  # the last, partial hour
        (PERIOD_FROM + timedelta(minutes=1), "v", "max_agg"),  # the first one
        (PERIOD_TO - timedelta(minutes=5), "w", "unique_count_agg"),  # another field
        (PERIOD_FROM, None, None),
    ],
)
def test_a_unique_count_sees_the_rollup_rows_of_its_partial_hours(
    organization, at, field_name, aggregation_type
):
    """The states answer for the partial hours too: an event there without its state (or
    pre-aggregated with another field) makes the read fall back, though the raw events give
    these hours' counts."""
    write(
        organization,
        [[(_at(5), {"v": "u1"}, None, Decimal(0))]],
        aggregation_type="unique_count_agg",
    )
    write(
        organization,
        [[(at, {"v": "u9"}, None, Decimal(0))]],
        field_name=field_name,
        aggregation_type=aggregation_type,
    )
    for recurring in (False, True):
        query = query_for(organization, "unique_count_agg", "v", "plain", recurring=recurring)
        assert rollup_rows(query) is None
        assert aggregate_with_rollups(query)[0].units == 2 == aggregate_postgres(query)[0].units


@pytest.mark.parametrize(
    ("aggregation_type", "field_name", "shape"),
    [
        ("sum_agg", "v", "plain"),
        ("sum_agg", "v", "filtered"),
        ("max_agg", "v", "grouped"),
        ("unique_count_agg", "v", "filtered"),
        ("weighted_sum_agg", "v", "plain"),
        ("count_agg", None, "grouped"),
        ("count_agg", None, "filtered"),
    ],
)
def test_a_field_change_is_seen_on_the_rollup_rows(
    organization, aggregation_type, field_name, shape
):
    """Until 08:00 the metric's field was "region" (its rows' dims lack it: a filter or group
    on region must not hide them), then "v"."""
    early = [[(_at(5), {"v": "u4", "region": "eu"}, None, Decimal(0))]]
    write(organization, early, field_name="region", aggregation_type=aggregation_type)
    late = [[(_at(9), {"v": "u5", "region": "eu"}, None, Decimal(0))]]
    write(organization, late, field_name=field_name, aggregation_type=aggregation_type)
    fields = {"period_duration_days": 31} if aggregation_type == "weighted_sum_agg" else {}
    query = query_for(organization, aggregation_type, field_name, shape, **fields)
    assert rollup_rows(query) is None
    assert aggregate_with_rollups(query) == aggregate_postgres(query)


def test_a_count_reads_rows_of_any_field_when_it_neither_filters_nor_groups_on_them(
    organization,
):
    write(
        organization, [[(_at(5), {"v": 1, "region": "eu"}, None, Decimal(0))]], field_name="region"
    )
    write(organization, [[(_at(9), {"v": 2, "region": "eu"}, None, Decimal(0))]])
    query = query_for(organization, "count_agg", None, "plain")
    assert rollup_rows(query) is not None
    assert aggregate_with_rollups(query)[0].units == 2 == aggregate_postgres(query)[0].units


def test_a_rebuild_without_aggregation_types_keeps_every_state(organization):
    """Migration 0003 rebuilds so (on a table without `n_stateless`): every event carrying the
    field keeps its state, as ingestion did then, and unique counts may read them."""
    write(
        organization,
        [[(_at(5), {"v": "u1"}, None, Decimal(0)), (_at(6), {"v": "u2"}, None, Decimal(0))]],
        aggregation_type="sum_agg",
    )
    assert not EventPropertyState.objects.exists()
    rebuild_rollups(organization.id, {"metric": "v"})
    assert sorted(EventPropertyState.objects.values_list("prop", flat=True)) == ["u1", "u2"]
    assert _stateless() == (2, 0)
    query = query_for(organization, "unique_count_agg", "v", "plain")
    assert rollup_rows(query) is not None
    assert aggregate_with_rollups(query)[0].units == 2 == aggregate_postgres(query)[0].units


def test_ingestion_keeps_the_states_of_unique_count_metrics_only(organization):
    from billing.actors import SYSTEM
    from metering.services.ingestion import event_create_batch
    from plans.models import BillableMetric

    for code, aggregation_type, field_name in (
        ("calls", "count_agg", ""),
        ("bytes", "sum_agg", "v"),
        ("users", "unique_count_agg", "v"),
    ):
        BillableMetric.objects.create(
            organization=organization, name=code, code=code, aggregation_type=aggregation_type,
            field_name=field_name,
        )  # fmt: skip
    payloads = [
        {"transaction_id": f"t_{code}", "external_subscription_id": "sub_1", "code": code,
         "timestamp": 1690873200, "properties": {"v": "7"}}
        for code in ("calls", "bytes", "users", "unknown")
    ]  # fmt: skip
    event_create_batch(organization=organization, payloads=payloads, actor=SYSTEM, now=NOW)
    assert list(EventPropertyState.objects.values_list("code", "prop")) == [("users", "7")]
    stateless = dict(EventRollup.objects.values_list("code", "n_stateless"))
    assert stateless == {"calls": 0, "bytes": 1, "users": 0, "unknown": 0}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batches=streams(unique=True),
    ingested=st.lists(
        st.sampled_from(
            [("unique_count_agg", "v")] * 3
            + [("sum_agg", "v"), ("unique_count_agg", "w"), (None, None)]
        ),
        min_size=5,
        max_size=5,
    ),
    shape=st.sampled_from(list(SHAPES)),
    recurring=st.booleans(),
)
def test_unique_counts_over_events_ingested_for_other_metrics_equal_raw_scan(
    organization, rolled_back, batches, ingested, shape, recurring
):
    """Between batches the metric changed type or field, or was unknown."""
    query = query_for(organization, "unique_count_agg", "v", shape, recurring=recurring)

    def body():
        for batch, (aggregation_type, field_name) in zip(batches, ingested, strict=False):
            write(organization, [batch], field_name=field_name, aggregation_type=aggregation_type)
        event(f"pre-aggregated: {rollup_rows(query) is not None}")
        assert aggregate_with_rollups(query) == aggregate_postgres(query)

    rolled_back(body)


@pytest.mark.parametrize(
    ("aggregation_type", "fields", "with_event_values"),
    [
        (
            "sum_agg",
            {"recurring": True, "prorated": True, "period_duration_days": 31,
             "timezone": "Asia/Kolkata"},
            False,
        ),
        ("unique_count_agg", {"recurring": True, "prorated": True, "period_duration_days": 31},
         False),
        ("sum_agg", {}, True),
        ("count_agg", {"filters": {"v": ["1"]}}, False),
    ],
)  # fmt: skip
def test_what_is_not_pre_aggregated_reads_the_events(
    organization, aggregation_type, fields, with_event_values
):
    # 18:10 UTC: the hour 18-19 UTC spans midnight in Asia/Kolkata (UTC+5:30)
    write(organization, [[(datetime(2023, 8, 1, 18, 10, tzinfo=UTC), {"v": 1}, None, Decimal(0))]])
    field = None if aggregation_type == "count_agg" else "v"
    query = query_for(organization, aggregation_type, field, "plain", **fields)
    assert rollup_rows(query, with_event_values=with_event_values) is None
    assert aggregate_with_rollups(query, with_event_values=with_event_values) == (
        aggregate_postgres(query, with_event_values=with_event_values)
    )


def test_full_rescan_setting(organization, settings):
    write(organization, [[(datetime(2023, 8, 1, 5, tzinfo=UTC), {"v": 1}, None, Decimal(0))]])
    query = query_for(organization, "sum_agg", "v", "plain")
    EventRollup.objects.update(sv=Decimal(100))  # a wrong row shows which path answered
    settings.EVENT_STORE_ROLLUPS = False
    assert PostgresEventStore().aggregate(query)[0].units == 1
    assert PostgresEventStore(rollups=True).aggregate(query)[0].units == 100
    settings.EVENT_STORE_ROLLUPS = True
    assert PostgresEventStore().aggregate(query)[0].units == 100
    assert PostgresEventStore(rollups=False).aggregate(query)[0].units == 1
    assert connection.vendor == "postgresql"


def test_the_rebuild_command_restores_rows_lost_or_written_around_the_store(organization):
    from django.core.management import call_command

    from plans.models import BillableMetric

    BillableMetric.objects.create(
        organization=organization, name="m", code="metric", aggregation_type="sum_agg",
        field_name="v",
    )  # fmt: skip
    write(organization, [[(datetime(2023, 8, 1, 5, tzinfo=UTC), {"v": 4}, None, Decimal(0))]])
    EventRollup.objects.all().delete()
    EventPropertyState.objects.all().delete()
    query = query_for(organization, "sum_agg", "v", "plain")
    assert aggregate_with_rollups(query)[0].units == 0  # the lost rows show

    call_command("rebuild_event_rollups", organization.name)

    assert aggregate_with_rollups(query)[0].units == 4
    assert rollup_rows(query) is not None


def test_pre_aggregated_tables_leave_room_on_their_pages_for_updates(db):
    """fillfactor 50: a batch updating a row keeps the new version on its page (HOT)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s) ORDER BY relname",
            [[EventRollup._meta.db_table, EventPropertyState._meta.db_table]],
        )
        found = cursor.fetchall()
    assert found == [
        ("metering_event_property_state", ["fillfactor=50"]),
        ("metering_event_rollup", ["fillfactor=50"]),
    ]


def test_a_writer_that_does_not_say_the_type_keeps_the_states(organization):
    """Without an aggregation type (a script, a benchmark's bulk load) the store keeps every
    event's state, as before: a unique count then reads them instead of scanning events."""
    write(organization, [[(_at(5), {"v": "u1"}, None, Decimal(0))]], aggregation_type=None)
    assert EventPropertyState.objects.filter(prop="u1").exists()
    query = query_for(organization, "unique_count_agg", "v", "plain")
    assert rollup_rows(query) is not None
    assert aggregate_with_rollups(query)[0].units == 1 == aggregate_postgres(query)[0].units
