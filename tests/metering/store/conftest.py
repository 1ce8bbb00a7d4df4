"""Helpers of the event store tests: write events, build aggregation queries."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from metering.store import (
    AggregationQuery,
    EventInput,
    PortableEventStore,
    PostgresEventStore,
    get_event_store,
)
from metering.store.rollups import rebuild_rollups

# A 31-day period (spec vectors V6-V8): 2023-08-01 00:00:00 .. 2023-08-31 23:59:59.999
AUGUST_FROM = datetime(2023, 8, 1, tzinfo=UTC)
AUGUST_TO = datetime(2023, 8, 31, 23, 59, 59, 999000, tzinfo=UTC)
NOW = datetime(2023, 9, 1, 12, tzinfo=UTC)


def at(text: str) -> datetime:
    """An aware instant from ISO text, UTC unless it carries an offset."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def pytest_generate_tests(metafunc):
    """Each store test runs on both stores: PostgreSQL's SQL aggregation and the portable one
    (ORM + Python, what the SQLite trial uses), on the same PostgreSQL database; a module
    setting `ON_CLICKHOUSE = True` (its tests do not read the PostgreSQL table) also runs
    them on the ClickHouse store, embedded (chdb), and on the PostgreSQL store reading its
    pre-aggregated rows rebuilt with the queried field and type ("rollups": the events are
    written without them, so "sql" reads them raw but for counts)."""
    if "store" in metafunc.fixturenames:
        names = ["sql", "portable"]
        if getattr(metafunc.module, "ON_CLICKHOUSE", False):
            # the aggregation tests: also through the PostgreSQL store's pre-aggregated rows
            names += ["rollups", "clickhouse"]
        metafunc.parametrize("store_name", names)


@pytest.fixture(scope="session")
def chdb_connection():
    """One embedded ClickHouse for the session (tests skip without the clickhouse extra)."""
    pytest.importorskip("chdb", reason="the clickhouse extra is not installed")
    pytest.importorskip("clickhouse_connect", reason="the clickhouse extra is not installed")
    from metering.store.clickhouse import ChdbConnection

    return ChdbConnection()


@pytest.fixture
def store(store_name, request):
    if store_name == "portable":
        return PortableEventStore()
    if store_name == "rollups":
        return PostgresEventStore(rollups=True)
    if store_name == "clickhouse":
        from metering.store.clickhouse import TABLE, ClickHouseEventStore

        connection = request.getfixturevalue("chdb_connection")
        clickhouse = ClickHouseEventStore(connection)
        connection.command(f"TRUNCATE TABLE {TABLE}")  # each test starts empty
        return clickhouse
    return get_event_store()


@pytest.fixture
def write_events(store, organization):
    """write_events([(timestamp, properties), ...], code=..., sub=...) -> WriteResult."""
    ids = itertools.count(1)

    def write(events, *, code="metric", sub="sub_1", organization_id=None, **fields):
        batch = [
            EventInput(
                transaction_id=f"tx_{next(ids)}",
                external_subscription_id=sub,
                code=code,
                timestamp=at(timestamp) if isinstance(timestamp, str) else timestamp,
                properties=properties,
                **fields,
            )
            for timestamp, properties in events
        ]
        result = store.write_batch(organization_id or organization.id, batch, now=NOW)
        assert result.written, result.duplicate_indexes
        return result

    return write


@pytest.fixture
def aggregate(store, organization):
    """aggregate(aggregation_type, field_name, **query fields) -> list of results."""

    def run(aggregation_type, field_name=None, *, with_event_values=False, **fields):
        values = {
            "organization_id": organization.id,
            "external_subscription_id": "sub_1",
            "code": "metric",
            "from_datetime": AUGUST_FROM,
            "to_datetime": AUGUST_TO,
            **fields,
        }
        query = AggregationQuery(aggregation_type=aggregation_type, field_name=field_name, **values)
        if isinstance(store, PostgresEventStore) and store.rollups:
            rebuild_rollups(
                values["organization_id"],
                {values["code"]: field_name},
                aggregation_types={values["code"]: aggregation_type},
            )
        return store.aggregate(query, with_event_values=with_event_values)

    return run


def units(results) -> Decimal:
    """The units of an ungrouped aggregation."""
    (result,) = results
    assert result.group == {}
    return result.units
