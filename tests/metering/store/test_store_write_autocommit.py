"""The PostgreSQL store's write outside a transaction (the API's case): one statement, its own
transaction; a duplicate fails it with nothing written, then the batch is refused as inside a
transaction (spec §5.2, §5.3)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from metering.models import Event, EventRollup
from metering.store import AggregationQuery, EventInput, PostgresEventStore

from .conftest import AUGUST_FROM, AUGUST_TO, NOW, at

pytestmark = pytest.mark.django_db(transaction=True)


def event(transaction_id, *, amount=1, timestamp="2023-08-02T10:00:00"):
    return EventInput(
        transaction_id=transaction_id,
        external_subscription_id="sub_1",
        code="storage",
        timestamp=at(timestamp),
        properties={"gb": amount, "region": "eu"},
        value=Decimal(amount),
        field_name="gb",
        aggregation_type="sum_agg",
    )


def stored(organization):
    return sorted(
        Event.objects.filter(organization=organization).values_list("transaction_id", flat=True)
    )


def rolled_up_events(organization):
    return EventRollup.objects.filter(organization=organization).aggregate(n=Sum("n"))["n"] or 0


def test_a_batch_is_written_by_one_statement(organization):
    store = PostgresEventStore()
    assert not connection.in_atomic_block
    with CaptureQueriesContext(connection) as queries:
        result = store.write_batch(organization.id, [event("b"), event("a")], now=NOW)
    [query] = queries
    assert "ON CONFLICT ON CONSTRAINT billing_event_transaction_unique" not in query["sql"]
    assert [e.transaction_id for e in result.events] == ["b", "a"]
    by_id = dict(Event.objects.values_list("transaction_id", "pk"))
    assert [e.pk for e in result.events] == [by_id["b"], by_id["a"]]
    assert rolled_up_events(organization) == 2


def test_a_duplicate_of_a_stored_event_refuses_the_batch_with_nothing_written(organization):
    store = PostgresEventStore()
    store.write_batch(organization.id, [event("a")], now=NOW)
    result = store.write_batch(
        organization.id, [event("new"), event("a", amount=5), event("x")], now=NOW
    )
    assert (result.written, result.duplicate_indexes) == (False, (1,))
    assert stored(organization) == ["a"]
    assert Event.objects.get(transaction_id="a").value == 1  # the first copy stays
    assert rolled_up_events(organization) == 1  # the failed statement's upserts rolled back


def test_a_repeat_inside_the_batch_refuses_it(organization):
    result = PostgresEventStore().write_batch(
        organization.id, [event("a"), event("b"), event("a")], now=NOW
    )
    assert result.duplicate_indexes == (2,)
    assert stored(organization) == []
    assert rolled_up_events(organization) == 0


def test_the_connection_stays_usable_after_a_refused_batch(organization):
    store = PostgresEventStore()
    store.write_batch(organization.id, [event("a")], now=NOW)
    assert not store.write_batch(organization.id, [event("a")], now=NOW).written
    assert store.write_batch(organization.id, [event("c")], now=NOW).written
    assert stored(organization) == ["a", "c"]


def test_the_pre_aggregated_rows_agree_with_the_events(organization):
    store = PostgresEventStore(rollups=True)
    batches = [
        [
            event(f"t{i}_{j}", amount=i + j, timestamp=f"2023-08-{2 + i:02d}T1{j}:30:00")
            for j in range(5)
        ]
        for i in range(4)
    ]
    for batch in batches:
        assert store.write_batch(organization.id, batch, now=NOW).written
    query = AggregationQuery(
        organization_id=organization.id,
        external_subscription_id="sub_1",
        code="storage",
        aggregation_type="sum_agg",
        field_name="gb",
        from_datetime=AUGUST_FROM,
        to_datetime=AUGUST_TO,
    )
    [from_rollups] = store.aggregate(query)
    [from_events] = PostgresEventStore(rollups=False).aggregate(query)
    assert from_rollups.units == from_events.units == sum(i + j for i in range(4) for j in range(5))
    assert from_rollups.events_count == from_events.events_count == 20
