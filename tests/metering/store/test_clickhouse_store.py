"""The ClickHouse event store's writes and reads, on the embedded engine (chdb).

Its aggregations run the shared store tests (test_aggregations, test_filters_and_groups).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from metering.store import AggregationQuery, EventInput, get_event_store

from .conftest import AUGUST_FROM, AUGUST_TO, NOW, at

pytest.importorskip("chdb", reason="the clickhouse extra is not installed")
pytest.importorskip("clickhouse_connect", reason="the clickhouse extra is not installed")

from metering.store.clickhouse import TABLE, ClickHouseEventStore, lit

pytestmark = pytest.mark.django_db


@pytest.fixture
def ch(chdb_connection):
    store = ClickHouseEventStore(chdb_connection)
    chdb_connection.command(f"TRUNCATE TABLE {TABLE}")
    return store


def event(transaction_id, *, sub="sub_1", code="metric", timestamp="2023-08-10", **fields):
    return EventInput(
        transaction_id=transaction_id,
        external_subscription_id=sub,
        code=code,
        timestamp=at(timestamp),
        **fields,
    )


def count_query(organization, **fields):
    values = {
        "organization_id": organization.id,
        "external_subscription_id": "sub_1",
        "code": "metric",
        "aggregation_type": "count_agg",
        "field_name": None,
        "from_datetime": AUGUST_FROM,
        "to_datetime": AUGUST_TO,
        **fields,
    }
    return AggregationQuery(**values)


def test_batch_is_written_and_read_back_with_every_field(ch, organization):
    result = ch.write_batch(
        organization.id,
        [
            event(
                "b",
                properties={"v": "1.5", "name": "o'brien \\ x"},
                precise_total_amount_cents=Decimal("12.345"),
                value=Decimal("1.5"),
            ),
            event("a", timestamp="2023-08-11T10:00:00.123456"),
        ],
        now=NOW,
    )
    assert result.written
    assert [e.transaction_id for e in result.events] == ["b", "a"]
    stored = ch.get_event(organization.id, "b")
    assert stored.pk == result.events[0].pk
    assert stored.properties == {"v": "1.5", "name": "o'brien \\ x"}
    assert stored.precise_total_amount_cents == Decimal("12.345")
    assert stored.value == Decimal("1.5")
    assert stored.timestamp == at("2023-08-10")
    assert stored.created_at == NOW
    assert ch.get_event(organization.id, "a").timestamp == at("2023-08-11T10:00:00.123456")


def test_duplicate_inside_the_batch_refuses_the_whole_batch(ch, organization):
    result = ch.write_batch(organization.id, [event("a"), event("b"), event("a")], now=NOW)
    assert result.duplicate_indexes == (2,)
    assert result.events == []
    assert ch.list_events(organization.id).count() == 0


def test_duplicate_of_a_stored_event_refuses_the_whole_batch(ch, organization):
    assert ch.write_batch(organization.id, [event("a", properties={"v": 1})], now=NOW).written
    result = ch.write_batch(
        organization.id, [event("c"), event("a", properties={"v": 2}), event("d")], now=NOW
    )
    assert result.duplicate_indexes == (1,)
    assert [e.transaction_id for e in ch.list_events(organization.id)] == ["a"]
    assert ch.get_event(organization.id, "a").properties == {"v": 1}  # the first copy wins


def test_transaction_id_is_unique_per_subscription_and_organization(
    ch, organization, other_organization
):
    assert ch.write_batch(organization.id, [event("a"), event("a", sub="sub_2")], now=NOW).written
    assert ch.write_batch(other_organization.id, [event("a")], now=NOW).written
    assert ch.list_events(organization.id).count() == 2
    assert ch.get_event(organization.id, "a", "sub_2").external_subscription_id == "sub_2"


def test_list_events_filters_orders_and_slices(ch, organization, other_organization):
    ch.write_batch(
        organization.id,
        [
            event("t1", timestamp="2023-08-01"),
            event("t2", timestamp="2023-08-03", code="other"),
            event("t3", timestamp="2023-08-02", sub="sub_2"),
            event("t4", timestamp="2023-08-04"),
        ],
        now=NOW,
    )
    ch.write_batch(other_organization.id, [event("hidden")], now=NOW)
    listed = ch.list_events(organization.id)
    assert [e.transaction_id for e in listed] == ["t4", "t2", "t3", "t1"]
    assert len(listed) == 4
    assert [e.transaction_id for e in listed[1:3]] == ["t2", "t3"]
    assert listed[0].transaction_id == "t4"
    assert [e.transaction_id for e in ch.list_events(organization.id, code="metric")] == [
        "t4",
        "t3",
        "t1",
    ]
    window = ch.list_events(
        organization.id,
        external_subscription_id="sub_1",
        timestamp_from=at("2023-08-02"),
        timestamp_to=at("2023-08-03"),
    )
    assert [e.transaction_id for e in window] == ["t2"]


def test_another_organization_cannot_read_the_event(ch, organization, other_organization):
    ch.write_batch(organization.id, [event("a")], now=NOW)
    assert ch.get_event(other_organization.id, "a") is None
    assert ch.list_events(other_organization.id).count() == 0


def test_discarded_events_are_counted_hidden_and_not_aggregated(ch, organization):
    ch.write_batch(organization.id, [event("a"), event("b"), event("c", code="other")], now=NOW)
    assert ch.discard_events(organization.id, code="metric", now=NOW) == 2
    assert ch.discard_events(organization.id, code="metric", now=NOW) == 0
    assert [e.transaction_id for e in ch.list_events(organization.id)] == ["c"]
    assert ch.get_event(organization.id, "a") is None
    (result,) = ch.aggregate(count_query(organization))
    assert result.units == 0


def test_quotes_and_backslashes_are_literals_not_sql(ch, organization):
    hostile = "x') OR 1=1 --\\"
    assert ch.write_batch(organization.id, [event(hostile, sub=hostile)], now=NOW).written
    assert ch.get_event(organization.id, hostile, hostile).transaction_id == hostile
    (result,) = ch.aggregate(count_query(organization, external_subscription_id=hostile))
    assert result.units == 1
    assert lit("a'b\\c") == "'a\\'b\\\\c'"


def test_event_store_setting_selects_clickhouse_on_chdb(settings, chdb_connection, organization):
    chdb_connection.command(f"TRUNCATE TABLE IF EXISTS {TABLE}")
    settings.EVENT_STORE = "clickhouse"
    settings.CLICKHOUSE_URL = f"chdb://{chdb_connection.path}"
    store = get_event_store()
    assert isinstance(store, ClickHouseEventStore)
    assert get_event_store() is store
    store.write_batch(organization.id, [event("a", timestamp="2023-08-31")], now=NOW)
    (result,) = store.aggregate(count_query(organization))
    assert result.units == 1
    assert result.events_count == 1


def test_clickhouse_without_url_is_a_configuration_error(settings):
    settings.EVENT_STORE = "clickhouse"
    settings.CLICKHOUSE_URL = ""
    with pytest.raises(ImproperlyConfigured, match="CLICKHOUSE_URL"):
        get_event_store()


def test_ids_increase_in_write_order(ch, organization):
    first = ch.write_batch(organization.id, [event("a"), event("b")], now=NOW)
    second = ch.write_batch(organization.id, [event("c")], now=NOW + timedelta(seconds=1))
    ids = [e.pk for e in first.events + second.events]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
