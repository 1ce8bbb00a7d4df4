"""The event store for databases other than PostgreSQL (the SQLite trial of `./scripts/run`).

Same interface and same results as `PostgresEventStore`: events written through the ORM, the
selection of an aggregation read through the ORM, and each aggregation of spec §4.3 computed in
Python into the very rows the PostgreSQL statement returns (group columns g0..gN, units,
events_count, ptac, ...), which then go through the same `_result` / `_tidy` conversion. It
reads every selected event into Python, so it is for the embedded trial and small databases;
production runs on PostgreSQL, where aggregation stays in SQL. The store tests run both stores
on the same cases.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction

from metering.models import Event
from metering.store.aggregation import (
    AggregationQuery,
    AggregationResult,
    AggregationType,
    _empty,
    _end_of_second,
    _result,
    _tidy,
    expand_filter,
    json_text,
    read_number,
    statement_name,
)

ZERO = Decimal(0)
Group = tuple[str | None, ...]
_Item = tuple[Any, ...]  # a selected row first, then what a statement derives from it


@dataclass(frozen=True)
class _Row:
    """One selected event, as the `sel` CTE of the SQL statements sees it."""

    id: int
    ts: datetime
    ptac: Decimal
    group: Group
    properties: dict
    value: Decimal | None


def _number(event_value: Decimal | None, text: str | None) -> Decimal | None:
    """`COALESCE(e.value, <the property read as a number>)` (`read_number`)."""
    if event_value is not None:
        return Decimal(event_value)
    return read_number(text)


def _seconds(delta: timedelta) -> Decimal:
    """`EXTRACT(EPOCH FROM interval)`, exactly."""
    return Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds) / 10**6


def _group_order(group: Group) -> tuple:
    # ORDER BY g0..gN: nulls last, as PostgreSQL sorts ascending
    return tuple((value is None, value or "") for value in group)


class _Aggregation:
    """One query over the selected events, in Python; `rows()` mirrors the SQL statement."""

    def __init__(self, query: AggregationQuery, *, with_event_values: bool) -> None:
        self.query = query
        self.kind = query.kind
        self.with_values = with_event_values
        self.tz = ZoneInfo(query.timezone)

    # -- selection --------------------------------------------------------------------------

    def _matches(self, properties: dict) -> bool:
        q = self.query
        for key, values in expand_filter(q.filters or {}, q.declared_filter_values).items():
            if json_text(properties.get(key)) not in values:
                return False
        for excluded in q.exclude_filters:
            expanded = expand_filter(excluded, q.declared_filter_values)
            if all(json_text(properties.get(key)) in values for key, values in expanded.items()):
                return False  # claimed by a more specific filter (an empty one claims all)
        return True

    def select(self, lower: datetime | None) -> list[_Row]:
        q = self.query
        events = Event.objects.filter(
            organization_id=q.organization_id,
            external_subscription_id=q.external_subscription_id,
            code=q.code,
            deleted_at__isnull=True,
            timestamp__lte=q.to_datetime,
        )
        if lower is not None:
            events = events.filter(timestamp__gte=lower)
        rows = []
        fields = ("id", "timestamp", "precise_total_amount_cents", "properties", "value")
        for pk, ts, ptac, properties, value in events.order_by("timestamp", "id").values_list(
            *fields
        ):
            properties = properties if isinstance(properties, dict) else {}
            if not self._matches(properties):
                continue
            if q.group_by:
                group = tuple(json_text(properties.get(key)) or None for key in q.group_by)
            else:
                group = (None,)
            rows.append(_Row(pk, ts, Decimal(ptac or 0), group, properties, value))
        return rows

    def value(self, row: _Row) -> Decimal | None:
        return _number(row.value, json_text(row.properties.get(self.query.field_name)))

    def in_period(self, row: _Row) -> bool:
        return row.ts >= self.query.period_from

    def window_lower(self) -> datetime | None:
        if self.query.recurring:
            return self.query.subscription_started_at
        return self.query.period_from

    def local_day(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    def groups_of(self, items: Iterable[_Item]) -> dict[Group, list[_Item]]:
        """Items (tuples led by their row) by group, in (timestamp, id) order."""
        grouped: dict[Group, list[_Item]] = defaultdict(list)
        for item in items:
            grouped[item[0].group].append(item)
        return grouped

    def columns(self, group: Group, **fields: Any) -> dict[str, Any]:
        return {**{f"g{i}": value for i, value in enumerate(group)}, **fields}

    def stats(self, items: Sequence[_Item]) -> dict[str, Any]:
        period = [item[0] for item in items if self.in_period(item[0])]
        return {"events_count": len(period), "ptac": sum((r.ptac for r in period), ZERO)}

    # -- statements -------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        found = getattr(self, statement_name(self.query))()
        return [found[group] for group in sorted(found, key=_group_order)]

    def valued(self, lower: datetime | None) -> list[tuple[_Row, Decimal]]:
        pairs = [(row, self.value(row)) for row in self.select(lower)]
        return [(row, value) for row, value in pairs if value is not None]

    def simple(self) -> dict[Group, dict]:
        if self.kind == AggregationType.COUNT:
            pairs = [(row, Decimal(1)) for row in self.select(self.window_lower())]
        else:
            pairs = self.valued(self.window_lower())
        found = {}
        for group, mine in self.groups_of(pairs).items():
            values = [value for _, value in mine]
            if self.kind == AggregationType.COUNT:
                units = Decimal(len(values))
            elif self.kind == AggregationType.SUM:
                units = sum(values, ZERO)
            else:
                units = max(values)
            fields = {"units": units, **self.stats(mine)}
            if self.with_values:
                fields["event_values"] = [value for row, value in mine if self.in_period(row)]
            found[group] = self.columns(group, **fields)
        return found

    def latest(self) -> dict[Group, dict]:
        pairs = self.valued(self.window_lower())
        found = {}
        for group, mine in self.groups_of(pairs).items():
            values = [value for _, value in mine]
            fields = {
                "units": max(values[-1], ZERO),  # spec §4.3: a negative latest clamps to 0
                "events_count": len(mine),
                "ptac": sum((row.ptac for row, _ in mine), ZERO),
            }
            if self.with_values:
                fields["event_values"] = values
            found[group] = self.columns(group, **fields)
        return found

    def operations(self) -> list[tuple[_Row, str, str]]:
        """(row, value, op) of the events carrying the field: `add` unless `remove`."""
        found = []
        for row in self.select(self.window_lower()):
            prop = json_text(row.properties.get(self.query.field_name))
            if prop is None:
                continue
            op = "remove" if row.properties.get("operation_type") == "remove" else "add"
            found.append((row, prop, op))
        return found

    def unique_count(self) -> dict[Group, dict]:
        operations = self.operations()
        found = {}
        for group, mine in self.groups_of(operations).items():
            last = {prop: op for _, prop, op in mine}  # the latest operation of each value
            units = Decimal(sum(1 for op in last.values() if op == "add"))
            found[group] = self.columns(group, units=units, **self.stats(mine))
        return found

    def prorated_unique(self) -> dict[Group, dict]:
        """Spec §7.15: each value weighs its active local days in the period (both ends
        inclusive), its overlapping spans merged."""
        q = self.query
        from_day, to_day = self.local_day(q.period_from), self.local_day(q.to_datetime)
        operations = self.operations()
        found = {}
        for group, mine in self.groups_of(operations).items():
            by_value: dict[str, list[tuple[_Row, str]]] = defaultdict(list)
            for row, prop, op in mine:
                by_value[prop].append((row, op))
            active = Decimal(sum(1 for ops in by_value.values() if ops[-1][1] == "add"))
            days = 0
            for ops in by_value.values():
                # the operations that change the value's state (a repeated add changes nothing)
                changes, previous = [], "remove"
                for row, op in ops:
                    if op != previous:
                        changes.append((self.local_day(row.ts), op))
                    previous = op
                spans = []
                for index, (day, op) in enumerate(changes):
                    end = changes[index + 1][0] if index + 1 < len(changes) else to_day
                    start, end = max(day, from_day), min(end, to_day)
                    if op == "add" and end >= start:
                        spans.append((start, end))
                covered_until = None
                for start, end in sorted(spans):
                    if covered_until is not None and start <= covered_until:
                        if end > covered_until:
                            days += (end - covered_until).days
                            covered_until = end
                        continue
                    days += (end - start).days + 1
                    covered_until = end
            found[group] = self.columns(
                group, active_days=Decimal(days), full_units=active, **self.stats(mine)
            )
        return found

    def prorated_sum(self) -> dict[Group, dict]:
        """Spec §7.15: v(e) x d(e), d(e) = local days from the event's day to the period end,
        both inclusive; the value carried over from earlier periods comes back apart."""
        to_day = self.local_day(self.query.to_datetime)
        pairs = self.valued(self.window_lower())
        found = {}
        for group, mine in self.groups_of(pairs).items():
            period = [(row, value) for row, value in mine if self.in_period(row)]
            weighted = [
                value * ((to_day - self.local_day(row.ts)).days + 1) for row, value in period
            ]
            fields = {
                "carried": sum((v for row, v in mine if not self.in_period(row)), ZERO),
                "day_values": sum(weighted, ZERO),
                "variation": sum((value for _, value in period), ZERO),
                **self.stats(mine),
            }
            if self.with_values:
                fields["event_values"] = [value for _, value in period]
                fields["event_day_values"] = weighted
            found[group] = self.columns(group, **fields)
        return found

    def weighted_sum(self) -> dict[Group, dict]:
        """Spec §4.3: SUM over segments of R(t_i) x (t_{i+1} - t_i) in seconds, events sharing
        a timestamp summed before weighting; `_result` divides by the period's seconds."""
        q = self.query
        given = q.initial_value is not None or q.grouped_initial_values is not None
        from_events = q.recurring and not given
        pairs = self.valued(q.subscription_started_at if from_events else q.period_from)
        period = [(row, value) for row, value in pairs if self.in_period(row)]
        initial: dict[Group, Decimal] = {}
        if from_events:
            for row, value in pairs:
                if not self.in_period(row):
                    initial[row.group] = initial.get(row.group, ZERO) + value
        elif q.initial_value is not None:
            initial[(None,)] = Decimal(q.initial_value)
        elif q.grouped_initial_values:
            for key, amount in q.grouped_initial_values.items():
                initial[tuple(key)] = Decimal(amount)
        start, end = q.period_from, _end_of_second(q.to_datetime)
        found = {}
        by_group = self.groups_of(period)
        for group in set(by_group) | set(initial):
            deltas: dict[datetime, Decimal] = defaultdict(Decimal)
            deltas[start] += initial.get(group, ZERO)
            mine = by_group.get(group, [])
            for row, value in mine:
                deltas[row.ts] += value
            deltas.setdefault(end, ZERO)
            instants = sorted(deltas)
            area, total = ZERO, ZERO
            for instant, following in pairwise(instants):
                total += deltas[instant]
                area += total * _seconds(following - instant)
            found[group] = self.columns(
                group,
                area=area,
                events_count=len(mine),
                ptac=sum((row.ptac for row, _ in mine), ZERO),
                variation=sum((value for _, value in mine), ZERO),
                initial=initial.get(group, ZERO),
            )
        return found


def aggregate_portable(
    query: AggregationQuery, *, with_event_values: bool = False
) -> list[AggregationResult]:
    """`aggregate_postgres`, computed in Python over the ORM's selection."""
    if query.period_from > query.to_datetime:  # the subscription starts after the window
        return [] if query.group_by else [_empty(query, with_event_values)]
    rows = _Aggregation(query, with_event_values=with_event_values).rows()
    results = [_tidy(_result(query, row, with_event_values)) for row in rows]
    if not results and not query.group_by:
        results = [_empty(query, with_event_values)]
    return results


def insert_portable(
    organization_id: UUID, rows: Sequence[Event]
) -> dict[tuple[str, str], int] | None:
    """Inserts the rows through the ORM, all or nothing: their ids by (external subscription
    id, transaction id), or None when one key is stored already or repeated in the batch."""
    keys = [(row.external_subscription_id, row.transaction_id) for row in rows]
    if len(set(keys)) != len(keys):
        return None
    by_subscription: dict[str, list[str]] = defaultdict(list)
    for external_id, transaction_id in keys:
        by_subscription[external_id].append(transaction_id)
    try:
        with transaction.atomic():
            for external_id, transaction_ids in by_subscription.items():
                if Event.objects.filter(
                    organization_id=organization_id,
                    external_subscription_id=external_id,
                    transaction_id__in=transaction_ids,
                ).exists():
                    return None
            ordered = list(rows)  # ids in input order: ties at one instant, as sent
            if connection.vendor == "postgresql":
                # in key order: two batches sharing ids wait on each other in the same order
                # and never deadlock (as the PostgreSQL store's insert); ids taken first, in
                # input order (SQLite locks the whole database: input order, its own ids)
                _number_in_order(ordered)
                ordered.sort(key=lambda e: (e.external_subscription_id, e.transaction_id))
            created = Event.objects.bulk_create(ordered)
    except IntegrityError:
        return None  # a concurrent writer stored one of them first
    return {(e.external_subscription_id, e.transaction_id): e.pk for e in created}


def _number_in_order(rows: Sequence[Event]) -> None:
    """Ids from the table's sequence (PostgreSQL), increasing in the order of `rows`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval((SELECT pg_get_serial_sequence(%s, 'id'))::regclass) "
            "FROM generate_series(1, %s)",
            [Event._meta.db_table, len(rows)],
        )
        ids = sorted(pk for (pk,) in cursor.fetchall())
    for row, pk in zip(rows, ids, strict=True):
        row.pk = pk
