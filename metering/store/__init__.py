"""The event store: the one interface through which events are written and aggregated.

DESIGN "Scale path": events are the table that outgrows PostgreSQL, so nothing outside this
package touches `Event` rows for usage. `EventStore` is what a ClickHouse implementation must
provide (docs/event-store.md); `PostgresEventStore` is the implementation used today.

The store works on plain values (ids, codes, dataclasses), never on catalog objects: `billing`
is the leftmost app and cannot import charges or subscriptions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID

import orjson
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models.base import ModelState

from billing.db import prepared_cursor
from metering.models import Event, EventQuerySet

from .aggregation import (
    ALL_FILTER_VALUES,
    AggregationQuery,
    AggregationResult,
    AggregationType,
    FilterScope,
    aggregate_many_postgres,
    aggregate_postgres,
    charge_filter_scopes,
)
from .inputs import (
    EventInput,
    WriteResult,
    _check,
    _duplicate_indexes,
    _json,
    _stored_value,
    unstorable,
)
from .portable import aggregate_portable, insert_portable
from .rollups import (
    INSERT_OR_FAIL_WITH_ROLLUPS_SQL,
    INSERT_WITH_ROLLUPS_SQL,
    WRITE_PARAMS,
    aggregate_many_with_rollups,
    aggregate_with_rollups,
    discard_rollups,
    keeps_state,
)

__all__ = [
    "ALL_FILTER_VALUES",
    "AggregationQuery",
    "AggregationResult",
    "AggregationType",
    "EventInput",
    "EventStore",
    "FilterScope",
    "PostgresEventStore",
    "WriteResult",
    "charge_filter_scopes",
    "get_event_store",
    "unstorable",
]


class EventStore(Protocol):
    """What the rest of the code may do with events (docs/event-store.md)."""

    def write_batch(
        self, organization_id: UUID, events: Sequence[EventInput], *, now: datetime
    ) -> WriteResult:
        """Store the whole batch or nothing: any duplicate (spec §5.3) refuses the batch."""
        ...

    def aggregate(
        self, query: AggregationQuery, *, with_event_values: bool = False
    ) -> list[AggregationResult]:
        """Aggregated units per group (spec §4.3); one `{}` group without group_by."""
        ...

    def aggregate_many(
        self, queries: Sequence[AggregationQuery], *, with_event_values: bool = False
    ) -> list[list[AggregationResult]]:
        """`aggregate` of each query, in order, exactly its results, in as few statements as
        the store can (the refresh pass reads one charge of a whole batch of subscriptions
        at once)."""
        ...

    def list_events(
        self,
        organization_id: UUID,
        *,
        external_subscription_id: str | None = None,
        code: str | None = None,
        timestamp_from: datetime | None = None,
        timestamp_to: datetime | None = None,
    ) -> Sequence[Event]:
        """Events newest first (GET /events): sliceable and countable, for pagination."""
        ...

    def get_event(
        self,
        organization_id: UUID,
        transaction_id: str,
        external_subscription_id: str | None = None,
    ) -> Event | None:
        """One event by transaction id (GET /events/{transaction_id})."""
        ...

    def discard_events(self, organization_id: UUID, *, code: str, now: datetime) -> int:
        """Leave a deleted billable metric's events out of every later aggregation (§4.1)."""
        ...


class _BatchRefused(Exception):
    def __init__(self, indexes: tuple[int, ...]) -> None:
        super().__init__(indexes)
        self.indexes = indexes


class PostgresEventStore:
    """Events in the `billing_event` table; aggregation in SQL (metering.store.aggregation).

    Every batch also updates the pre-aggregated rows (metering.store.rollups) in the same
    statement. `rollups`: whether `aggregate` reads them (None: the `EVENT_STORE_ROLLUPS`
    setting); False reads every event of the window, as before pre-aggregation."""

    def __init__(self, *, rollups: bool | None = None) -> None:
        self.rollups = rollups

    @property
    def reads_rollups(self) -> bool:
        if self.rollups is None:
            return bool(settings.EVENT_STORE_ROLLUPS)
        return self.rollups

    def write_batch(
        self, organization_id: UUID, events: Sequence[EventInput], *, now: datetime
    ) -> WriteResult:
        """The whole batch or nothing. First, outside a transaction, one INSERT without ON
        CONFLICT (`_insert_unless_duplicate`); when it meets a duplicate, or inside a
        transaction, one INSERT ... ON CONFLICT DO NOTHING in a transaction (a savepoint when
        nested) rolled back when a row was skipped: a duplicate of a stored event, of a
        concurrent insert or of an earlier row of the batch (the first copy wins, spec §5.2),
        each reported."""
        if not events:
            return WriteResult(events=[])
        for event in events:
            _check(event)
        # Rows go in key order: two batches sharing ids then wait on each other in the same
        # order and never deadlock. Their ids follow the input order (`sent`), so that two
        # events at one instant resolve by the order they were sent, as across batches.
        order = sorted(
            range(len(events)),
            key=lambda i: (events[i].external_subscription_id, events[i].transaction_id),
        )
        rows = [events[i] for i in order]
        values = [_stored_value(event.value) for event in rows]
        params = {
            "organization_id": organization_id,
            "created_at": now,
            **_columns_json(rows, values, order),
            **WRITE_PARAMS,
        }
        inserted = self._insert_unless_duplicate(params)
        if inserted is None:
            try:
                with transaction.atomic(), prepared_cursor() as cursor:
                    cursor.execute(INSERT_WITH_ROLLUPS_SQL, params)
                    inserted = {(ext, txn): pk for pk, ext, txn in cursor.fetchall()}
                    duplicates = _duplicate_indexes(events, inserted)
                    if duplicates:
                        raise _BatchRefused(duplicates)
            except _BatchRefused as refused:
                return WriteResult(events=[], duplicate_indexes=refused.indexes)
        stored = dict(zip(order, values, strict=True))
        alias = connection.alias
        return WriteResult(
            events=[
                _loaded(
                    alias,
                    id=inserted[(event.external_subscription_id, event.transaction_id)],
                    organization_id=organization_id,
                    transaction_id=event.transaction_id,
                    external_subscription_id=event.external_subscription_id,
                    code=event.code,
                    timestamp=event.timestamp,
                    properties=event.properties,
                    precise_total_amount_cents=event.precise_total_amount_cents,
                    value=stored[index],
                    subscription_id=event.subscription_id,
                    customer_id=event.customer_id,
                    created_at=now,
                    deleted_at=None,
                )
                for index, event in enumerate(events)
            ]
        )

    @staticmethod
    def _insert_unless_duplicate(params: dict) -> dict[tuple[str, str], int] | None:
        """The batch's write as one statement in its own transaction, when no transaction is
        open (the API's case): one round trip where BEGIN, the write and COMMIT took three.
        It fails on the first duplicate, stored or in the batch, with nothing written; then,
        and inside a transaction (where a failed statement would abort it), None: the caller
        writes with ON CONFLICT in a transaction and finds which events are duplicates.
        Returns the inserted ids by (external subscription id, transaction id)."""
        if connection.in_atomic_block:
            return None
        try:
            with prepared_cursor() as cursor:
                cursor.execute(INSERT_OR_FAIL_WITH_ROLLUPS_SQL, params)
                return {(ext, txn): pk for pk, ext, txn in cursor.fetchall()}
        except IntegrityError:
            return None

    def aggregate(
        self, query: AggregationQuery, *, with_event_values: bool = False
    ) -> list[AggregationResult]:
        if self.reads_rollups:
            return aggregate_with_rollups(query, with_event_values=with_event_values)
        return aggregate_postgres(query, with_event_values=with_event_values)

    def aggregate_many(
        self, queries: Sequence[AggregationQuery], *, with_event_values: bool = False
    ) -> list[list[AggregationResult]]:
        """One statement per shape of query (the same charge for many subscriptions: a
        LATERAL join over their parameters, `aggregation.run_many`); the queries the
        pre-aggregated rows cannot answer read the events, together too."""
        if self.reads_rollups:
            return aggregate_many_with_rollups(queries, with_event_values=with_event_values)
        return aggregate_many_postgres(queries, with_event_values=with_event_values)

    def list_events(
        self,
        organization_id: UUID,
        *,
        external_subscription_id: str | None = None,
        code: str | None = None,
        timestamp_from: datetime | None = None,
        timestamp_to: datetime | None = None,
    ) -> EventQuerySet:
        events = Event.objects.filter(organization_id=organization_id).alive()
        if external_subscription_id is not None:
            events = events.filter(external_subscription_id=external_subscription_id)
        if code is not None:
            events = events.filter(code=code)
        if timestamp_from is not None:
            events = events.filter(timestamp__gte=timestamp_from)
        if timestamp_to is not None:
            events = events.filter(timestamp__lte=timestamp_to)
        return events.order_by("-timestamp", "-id")

    def get_event(
        self,
        organization_id: UUID,
        transaction_id: str,
        external_subscription_id: str | None = None,
    ) -> Event | None:
        events = Event.objects.filter(
            organization_id=organization_id, transaction_id=transaction_id
        )
        if external_subscription_id is not None:
            events = events.filter(external_subscription_id=external_subscription_id)
        # the same transaction id may exist on several subscriptions: the first stored wins
        return events.alive().order_by("created_at", "id").first()

    def discard_events(self, organization_id: UUID, *, code: str, now: datetime) -> int:
        with transaction.atomic():
            discard_rollups(organization_id, code)
            return (
                Event.objects.filter(organization_id=organization_id, code=code)
                .alive()
                .update(deleted_at=now)
            )


def _loaded(alias: str, **fields: object) -> Event:
    """An Event known to be stored (as if read back), without reading it back; `fields` holds
    every column (the attribute names of `Event.__init__`). Built without `Model.__init__`, which
    costs ~20 µs an event on the ingestion path."""
    event = Event.__new__(Event)
    event.__dict__.update(fields)
    event._state = ModelState()
    event._state.adding = False
    event._state.db = alias
    return event


def _columns_json(
    rows: Sequence[EventInput], values: Sequence[Decimal | None], sent: Sequence[int]
) -> dict[str, str]:
    """The batch as the write statement reads it: one JSON array per column, each one text
    parameter (psycopg sends it as is) written by orjson in C. Numbers travel as strings (exact
    decimals), ids and timestamps as orjson writes them (UUID text, ISO 8601 with the offset);
    properties as the JSON `_json` checks (no NaN, no NUL); `sent`: each row's index in the
    batch as sent (the events' ids follow it)."""
    for event in rows:
        if (reason := unstorable(event.properties)) is not None:
            raise ValueError(f"properties must not contain {reason}")
    keeps = {kind: keeps_state(kind) for kind in {e.aggregation_type for e in rows}}
    dumps = orjson.dumps
    return {
        "transaction_ids": dumps([e.transaction_id for e in rows]).decode(),
        "external_subscription_ids": dumps([e.external_subscription_id for e in rows]).decode(),
        "codes": dumps([e.code for e in rows]).decode(),
        "timestamps": _timestamps_json([e.timestamp for e in rows]),
        "properties": _properties_json([e.properties for e in rows]),
        "amounts": dumps([str(e.precise_total_amount_cents) for e in rows]).decode(),
        "values": dumps([None if v is None else str(v) for v in values]).decode(),
        "subscription_ids": dumps([e.subscription_id for e in rows]).decode(),
        "customer_ids": dumps([e.customer_id for e in rows]).decode(),
        "field_names": dumps([e.field_name or "" for e in rows]).decode(),
        "keeps_states": dumps([keeps[e.aggregation_type] for e in rows]).decode(),
        "sent": dumps(list(sent)).decode(),
    }


def _timestamps_json(timestamps: list[datetime]) -> str:
    """ISO 8601 with microseconds and offset (orjson's form of an aware datetime)."""
    try:
        return orjson.dumps(timestamps).decode()
    except TypeError:  # a tzinfo orjson does not know: Python's own isoformat says the same
        return orjson.dumps([timestamp.isoformat() for timestamp in timestamps]).decode()


def _properties_json(properties: list[dict]) -> str:
    try:
        # orjson writes what DjangoJSONEncoder would (UUIDs as text, other types through it)
        return orjson.dumps(
            properties, default=_ENCODER.default, option=orjson.OPT_PASSTHROUGH_DATETIME
        ).decode()
    except TypeError:  # an integer past 64 bits: the json module keeps it
        return json.dumps(properties, cls=DjangoJSONEncoder, allow_nan=False)


_ENCODER = DjangoJSONEncoder()


class PortableEventStore(PostgresEventStore):
    """The same store on any database Django supports (the SQLite trial): writes through the
    ORM, aggregates in Python (`metering.store.portable`); reads are the ORM's already."""

    def write_batch(
        self, organization_id: UUID, events: Sequence[EventInput], *, now: datetime
    ) -> WriteResult:
        if not events:
            return WriteResult(events=[])
        for event in events:
            _check(event)
        rows = [
            Event(
                organization_id=organization_id,
                transaction_id=event.transaction_id,
                external_subscription_id=event.external_subscription_id,
                code=event.code,
                timestamp=event.timestamp,
                properties=json.loads(_json(event.properties)),
                precise_total_amount_cents=event.precise_total_amount_cents,
                value=_stored_value(event.value),
                subscription_id=event.subscription_id,
                customer_id=event.customer_id,
                created_at=now,
            )
            for event in events
        ]
        inserted = insert_portable(organization_id, rows)
        if inserted is None:
            # which ones: stored already, or a repeat of an earlier row (the first copy wins)
            stored = set(
                Event.objects.filter(organization_id=organization_id)
                .filter(transaction_id__in=[e.transaction_id for e in events])
                .values_list("external_subscription_id", "transaction_id")
            )
            fresh = {
                (e.external_subscription_id, e.transaction_id): 0
                for e in events
                if (e.external_subscription_id, e.transaction_id) not in stored
            }
            return WriteResult(events=[], duplicate_indexes=_duplicate_indexes(events, fresh))
        for row in rows:
            row._state.adding = False
        return WriteResult(events=rows)

    def aggregate(
        self, query: AggregationQuery, *, with_event_values: bool = False
    ) -> list[AggregationResult]:
        return aggregate_portable(query, with_event_values=with_event_values)

    def aggregate_many(
        self, queries: Sequence[AggregationQuery], *, with_event_values: bool = False
    ) -> list[list[AggregationResult]]:
        """One query after the other (each reads its events through the ORM)."""
        return [aggregate_portable(q, with_event_values=with_event_values) for q in queries]


_STORES = {"postgresql": PostgresEventStore()}
_PORTABLE = PortableEventStore()
_CLICKHOUSE: dict[str, EventStore] = {}  # one store per CLICKHOUSE_URL, made on first use


def get_event_store() -> EventStore:
    """The configured event store: ClickHouse with `EVENT_STORE=clickhouse`, else SQL
    aggregation on PostgreSQL, the portable store on other databases (the SQLite trial)."""
    if settings.EVENT_STORE == "clickhouse":
        return _clickhouse_store(settings.CLICKHOUSE_URL)
    if settings.EVENT_STORE not in ("", "postgresql", "portable"):
        raise ImproperlyConfigured(f"unknown EVENT_STORE {settings.EVENT_STORE!r}")
    return _STORES.get(connection.vendor, _PORTABLE)


def _clickhouse_store(url: str) -> EventStore:
    if not url:
        raise ImproperlyConfigured("EVENT_STORE=clickhouse needs CLICKHOUSE_URL")
    if url not in _CLICKHOUSE:
        from .clickhouse import ClickHouseEventStore, connect  # needs the clickhouse extra

        _CLICKHOUSE[url] = ClickHouseEventStore(connect(url))
    return _CLICKHOUSE[url]
