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


def write(organization, batches, *, field_name="v", sub="sub_1", code="metric"):
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
        write(organization, batches)
        write(organization, batches[:1], sub="sub_2")  # another subscription: not read
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
        write(organization, batches)
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
    write(organization, stream)
    query = query_for(organization, aggregation_type, field_name, "plain", **fields)
    before = aggregate_with_rollups(query)
    kept = sorted(EventRollup.objects.values_list("bucket", "n", "sv", "tv", "n_prop"))
    rebuild_rollups(organization.id, {"metric": "v"})
    assert sorted(EventRollup.objects.values_list("bucket", "n", "sv", "tv", "n_prop")) == kept
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
    )  # fmt: skip
    assert store.write_batch(organization.id, [first], now=NOW).written
    second = EventInput(
        transaction_id="t2", external_subscription_id="sub_1", code="metric",
        timestamp=datetime(2023, 8, 1, 6, tzinfo=UTC), properties={"v": 5}, field_name="v",
    )  # fmt: skip
    refused = store.write_batch(organization.id, [second, first], now=NOW)
    assert refused.duplicate_indexes == (1,)
    assert list(EventRollup.objects.values_list("n", "sv")) == [(1, Decimal(1))]
    assert EventPropertyState.objects.count() == 1


def test_discarded_events_leave_the_pre_aggregated_rows(organization):
    store = PostgresEventStore()
    write(organization, [[(datetime(2023, 8, 1, 5, tzinfo=UTC), {"v": 4}, None, Decimal(0))]])
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
    )  # fmt: skip
    query = query_for(organization, "unique_count_agg", "v", "plain")
    assert rollup_rows(query) is None
    assert aggregate_with_rollups(query)[0].units == 1 == aggregate_postgres(query)[0].units


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
