"""The event store on ClickHouse (docs/event-store.md, "ClickHouse").

Selected with `EVENT_STORE=clickhouse`; `CLICKHOUSE_URL` names the database:

- `http://user:password@host:8123/database` (or `https://`): a ClickHouse server or cluster,
  through `clickhouse-connect`;
- `chdb:///path/to/dir` (or `chdb://` for a throwaway directory): the embedded engine `chdb`,
  in this process (tests, benchmarks, single-machine installs).

Both backends run the same SQL text (`Connection`): values are rendered as escaped literals
and every selected column is cast to String, so the results read back identically.

Implemented: write (all-or-nothing batches, duplicates refused on the transaction id), list,
get, discard, and every aggregation of the interface: count, sum, max, latest, unique count
(add/remove operations), weighted sum (initial value given or carried from earlier events),
prorated sum and unique count, with filters, pricing groups, recurring carry-over and per-event
values. Each aggregation is one SELECT returning the PostgreSQL statement's columns, converted by
the same `_result`; `tests/metering/store/test_stores_agree.py` checks that the results match.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit
from uuid import UUID
from zoneinfo import ZoneInfo

from metering.models import Event

from .aggregation import (
    NUMBER_LIMIT,
    NUMBER_MAX_LENGTH,
    NUMERIC_PATTERN,
    AggregationQuery,
    AggregationResult,
    AggregationType,
    _empty,
    _end_of_second,
    _result,
    _tidy,
    expand_filter,
    statement_name,
)
from .inputs import EventInput, WriteResult, _check, _duplicate_indexes, _json, _stored_value
from .portable import _group_order

TABLE = "events"
# Property numbers are read with 30 decimals (the value column keeps 15, as on PostgreSQL).
_SCALE = 30
_VALUE_TYPE = f"Decimal(76, {_SCALE})"
_WINDOW = object()  # `_Builder.selection`: the lower bound of the query's window

CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id UInt64,
    organization_id UUID,
    transaction_id String,
    external_subscription_id String,
    code String,
    timestamp DateTime64(6, 'UTC'),
    properties String,
    precise_total_amount_cents Decimal(40, 15),
    value Nullable(Decimal(40, 15)),
    subscription_id Nullable(UUID),
    customer_id Nullable(UUID),
    created_at DateTime64(6, 'UTC'),
    deleted_at Nullable(DateTime64(6, 'UTC'))
) ENGINE = {{engine}}
ORDER BY (organization_id, external_subscription_id, code, timestamp)
"""
_COLUMNS = (
    "id, organization_id, transaction_id, external_subscription_id, code, timestamp, "
    "properties, precise_total_amount_cents, value, subscription_id, customer_id, created_at"
)


# --------------------------------------------------------------------------------------------
# Connection: one SQL text, two backends


class Connection(Protocol):
    """Runs SQL; `rows` returns each row as a list of JSON values (strings, lists, None)."""

    def command(self, sql: str) -> None: ...

    def rows(self, sql: str) -> list[list[Any]]: ...


class ChdbConnection:
    """The embedded engine: a `chdb` session on a data directory (chdb runs one embedded
    server per process: every connection of a process must use the same directory)."""

    def __init__(self, path: str | None = None) -> None:
        from chdb import session

        if path is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="chdb-events-")
            path = self._tmp.name
        self.path = path
        self._session = session.Session(path)
        self._lock = threading.Lock()

    def command(self, sql: str) -> None:
        with self._lock:
            self._session.query(sql)

    def rows(self, sql: str) -> list[list[Any]]:
        with self._lock:
            result = self._session.query(sql, "JSONCompact")
        text = result.bytes().decode() if hasattr(result, "bytes") else str(result)
        return json.loads(text)["data"] if text.strip() else []


class ServerConnection:
    """A ClickHouse server or cluster through `clickhouse-connect` (HTTP)."""

    def __init__(self, url: str) -> None:
        import clickhouse_connect

        self._client = clickhouse_connect.get_client(dsn=url)
        self._lock = threading.Lock()

    def command(self, sql: str) -> None:
        with self._lock:
            self._client.command(sql)

    def rows(self, sql: str) -> list[list[Any]]:
        with self._lock:
            return [list(row) for row in self._client.query(sql).result_rows]


def connect(url: str) -> Connection:
    """The connection `CLICKHOUSE_URL` names (`chdb://[path]` or `http(s)://...`)."""
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        return ChdbConnection(parts.path or None)
    if parts.scheme in {"http", "https", "clickhouse", "clickhouses"}:
        return ServerConnection(url)
    raise ValueError(f"CLICKHOUSE_URL must start with chdb://, http:// or https://: {url!r}")


def lit(value: Any) -> str:
    """A value as a ClickHouse literal (strings escaped)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return f"'{value:f}'"
    if isinstance(value, datetime):
        return f"'{value.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}'"
    if isinstance(value, UUID):
        return f"'{value}'"
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'")
        return f"'{escaped}'"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(lit(item) for item in value) + "]"
    raise TypeError(f"no ClickHouse literal for {type(value).__name__}")


def _ts(value: datetime) -> str:
    return f"toDateTime64({lit(value)}, 6, 'UTC')"


# --------------------------------------------------------------------------------------------
# The store


class _Ids:
    """Event ids: increasing in this process (ties at one timestamp resolve by write order)."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def take(self, count: int) -> list[int]:
        with self._lock:
            first = max(self._last + 1, time.time_ns())
            self._last = first + count - 1
        return list(range(first, first + count))


class ClickHouseEventStore:
    """Events in a ClickHouse MergeTree table; aggregation in ClickHouse SQL."""

    def __init__(self, connection: Connection, *, engine: str = "MergeTree") -> None:
        self.db = connection
        self._ids = _Ids()
        self._write_lock = threading.Lock()
        self.db.command(CREATE_TABLE.format(engine=engine))

    # -- writes ---------------------------------------------------------------------------

    def write_batch(
        self, organization_id: UUID, events: Sequence[EventInput], *, now: datetime
    ) -> WriteResult:
        """All or nothing: a transaction id already stored for the subscription, or repeated
        in the batch, refuses the batch (ClickHouse has no unique constraint: the check and
        the insert run under this store's lock)."""
        if not events:
            return WriteResult(events=[])
        for event in events:
            _check(event)
        texts = [_json(event.properties) for event in events]
        with self._write_lock:
            stored = self._stored_keys(organization_id, events)
            fresh = {
                (e.external_subscription_id, e.transaction_id): 0
                for e in events
                if (e.external_subscription_id, e.transaction_id) not in stored
            }
            duplicates = _duplicate_indexes(events, fresh)
            if duplicates:
                return WriteResult(events=[], duplicate_indexes=duplicates)
            ids = self._ids.take(len(events))
            rows = [
                Event(
                    id=pk,
                    organization_id=organization_id,
                    transaction_id=event.transaction_id,
                    external_subscription_id=event.external_subscription_id,
                    code=event.code,
                    timestamp=event.timestamp,
                    properties=json.loads(text),
                    precise_total_amount_cents=event.precise_total_amount_cents,
                    value=_stored_value(event.value),
                    subscription_id=event.subscription_id,
                    customer_id=event.customer_id,
                    created_at=now,
                )
                for pk, event, text in zip(ids, events, texts, strict=True)
            ]
            values = ", ".join(
                "("
                + ", ".join(
                    lit(item)
                    for item in (
                        row.id,
                        row.organization_id,
                        row.transaction_id,
                        row.external_subscription_id,
                        row.code,
                        row.timestamp,
                        text,
                        row.precise_total_amount_cents,
                        row.value,
                        row.subscription_id,
                        row.customer_id,
                        now,
                    )
                )
                + ")"
                for row, text in zip(rows, texts, strict=True)
            )
            self.db.command(f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES {values}")
        for row in rows:
            row._state.adding = False
        return WriteResult(events=rows)

    def _stored_keys(
        self, organization_id: UUID, events: Sequence[EventInput]
    ) -> set[tuple[str, str]]:
        transaction_ids = sorted({event.transaction_id for event in events})
        found = self.db.rows(
            f"SELECT external_subscription_id, transaction_id FROM {TABLE} "
            f"WHERE organization_id = {lit(organization_id)} "
            f"AND has({lit(transaction_ids)}, transaction_id)"
        )
        return {(row[0], row[1]) for row in found}

    def discard_events(self, organization_id: UUID, *, code: str, now: datetime) -> int:
        where = (
            f"organization_id = {lit(organization_id)} AND code = {lit(code)} "
            "AND deleted_at IS NULL"
        )
        ((count,),) = self.db.rows(f"SELECT toString(count()) FROM {TABLE} WHERE {where}")
        if int(count):
            self.db.command(
                f"ALTER TABLE {TABLE} UPDATE deleted_at = {_ts(now)} WHERE {where} "
                "SETTINGS mutations_sync = 2"
            )
        return int(count)

    # -- reads ----------------------------------------------------------------------------

    def list_events(
        self,
        organization_id: UUID,
        *,
        external_subscription_id: str | None = None,
        code: str | None = None,
        timestamp_from: datetime | None = None,
        timestamp_to: datetime | None = None,
    ) -> EventList:
        conditions = [f"organization_id = {lit(organization_id)}", "deleted_at IS NULL"]
        if external_subscription_id is not None:
            conditions.append(f"external_subscription_id = {lit(external_subscription_id)}")
        if code is not None:
            conditions.append(f"code = {lit(code)}")
        if timestamp_from is not None:
            conditions.append(f"timestamp >= {_ts(timestamp_from)}")
        if timestamp_to is not None:
            conditions.append(f"timestamp <= {_ts(timestamp_to)}")
        return EventList(self.db, " AND ".join(conditions))

    def get_event(
        self,
        organization_id: UUID,
        transaction_id: str,
        external_subscription_id: str | None = None,
    ) -> Event | None:
        conditions = [
            f"organization_id = {lit(organization_id)}",
            f"transaction_id = {lit(transaction_id)}",
            "deleted_at IS NULL",
        ]
        if external_subscription_id is not None:
            conditions.append(f"external_subscription_id = {lit(external_subscription_id)}")
        rows = _select_events(self.db, " AND ".join(conditions), "created_at, id", 1, 0)
        return rows[0] if rows else None

    # -- aggregation ----------------------------------------------------------------------

    def aggregate(
        self, query: AggregationQuery, *, with_event_values: bool = False
    ) -> list[AggregationResult]:
        if query.period_from > query.to_datetime:  # the subscription starts after the window
            return [] if query.group_by else [_empty(query, with_event_values)]
        sql, names = _Builder(query, with_event_values=with_event_values).build()
        return _results(query, names, self.db.rows(sql), with_event_values)

    def aggregate_many(
        self, queries: Sequence[AggregationQuery], *, with_event_values: bool = False
    ) -> list[list[AggregationResult]]:
        """The SELECTs of the queries of one shape (the same columns) in one request, joined
        by UNION ALL, each row tagged with its query's position; each query's rows are put
        back in its statement's order (`ORDER BY g0..gN`: nulls last, strings by bytes)."""
        found: list[list[AggregationResult]] = [[] for _ in queries]
        shapes: dict[tuple[str, ...], list[tuple[int, str]]] = {}
        for index, query in enumerate(queries):
            if query.period_from > query.to_datetime:
                found[index] = [] if query.group_by else [_empty(query, with_event_values)]
                continue
            sql, names = _Builder(query, with_event_values=with_event_values).build()
            shapes.setdefault(tuple(names), []).append((index, sql))
        for names, statements in shapes.items():
            groups = sum(1 for name in names if name.startswith("g") and name[1:].isdigit())
            for start in range(0, len(statements), _MANY_AT_ONCE):
                chunk = statements[start : start + _MANY_AT_ONCE]
                union = " UNION ALL ".join(
                    f"SELECT toUInt32({position}) AS q_index, * FROM ({sql})"
                    for position, (_, sql) in enumerate(chunk)
                )
                tagged: dict[int, list[list[Any]]] = {}
                for row in self.db.rows(union):
                    tagged.setdefault(int(row[0]), []).append(row[1:])
                for position, (index, _) in enumerate(chunk):
                    rows = sorted(tagged.get(position, []), key=lambda r: _group_order(r[:groups]))
                    found[index] = _results(queries[index], list(names), rows, with_event_values)
        return found


_MANY_AT_ONCE = 100  # SELECTs joined into one request at most


def _results(
    query: AggregationQuery, names: list[str], rows: list[list[Any]], with_event_values: bool
) -> list[AggregationResult]:
    """The results of a query from its SELECT's rows (columns named by `names`)."""
    results = []
    for row in rows:
        named = dict(zip(names, row, strict=True))
        for name in _LIST_COLUMNS & named.keys():
            named[name] = [Decimal(value) for value in named[name] or []]
        if "area" in named:  # microsecond-weighted: seconds for `_result`
            named["area"] = Decimal(named["area"]).scaleb(-6)
        results.append(_tidy(_result(query, named, with_event_values)))
    if not results and not query.group_by:
        results = [_empty(query, with_event_values)]
    return results


_LIST_COLUMNS = {"event_values", "event_day_values"}


class EventList:
    """Events newest first: sliceable and countable (pagination), read lazily."""

    def __init__(self, db: Connection, where: str) -> None:
        self._db = db
        self._where = where

    def count(self) -> int:
        ((count,),) = self._db.rows(f"SELECT toString(count()) FROM {TABLE} WHERE {self._where}")
        return int(count)

    def __len__(self) -> int:
        return self.count()

    def __iter__(self):
        return iter(self[0:])

    def __getitem__(self, item: int | slice) -> Any:
        if isinstance(item, int):
            rows = _select_events(self._db, self._where, _NEWEST_FIRST, 1, item)
            if not rows:
                raise IndexError(item)
            return rows[0]
        if item.step not in (None, 1):
            raise ValueError("slices of events take no step")
        start = item.start or 0
        limit = None if item.stop is None else max(item.stop - start, 0)
        return _select_events(self._db, self._where, _NEWEST_FIRST, limit, start)


_NEWEST_FIRST = "timestamp DESC, id DESC"


def _select_events(
    db: Connection, where: str, order: str, limit: int | None, offset: int
) -> list[Event]:
    bounds = f" LIMIT {int(limit)}" if limit is not None else ""
    bounds += f" OFFSET {int(offset)}" if offset else ""
    rows = db.rows(
        "SELECT toString(id), toString(organization_id), transaction_id, "
        "external_subscription_id, code, toString(timestamp), properties, "
        "toString(precise_total_amount_cents), toString(value), toString(subscription_id), "
        "toString(customer_id), toString(created_at), toString(deleted_at) "
        f"FROM {TABLE} WHERE {where} ORDER BY {order}{bounds}"
    )
    events = []
    for row in rows:
        event = Event(
            id=int(row[0]),
            organization_id=UUID(row[1]),
            transaction_id=row[2],
            external_subscription_id=row[3],
            code=row[4],
            timestamp=_instant(row[5]),
            properties=json.loads(row[6]),
            precise_total_amount_cents=Decimal(row[7]),
            value=None if row[8] is None else Decimal(row[8]),
            subscription_id=None if row[9] is None else UUID(row[9]),
            customer_id=None if row[10] is None else UUID(row[10]),
            created_at=_instant(row[11]),
            deleted_at=None if row[12] is None else _instant(row[12]),
        )
        event._state.adding = False
        events.append(event)
    return events


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# SQL per aggregation type


class _Builder:
    """One SELECT per query (the statement `statement_name` names, as on PostgreSQL); `build`
    returns its SQL and the names of its columns, which are those of the PostgreSQL statement
    (g0..gN, then units / events_count / ptac / ...), all as text (a constant NULL g0 without
    pricing group keys), so that `_result` converts both stores' rows the same way."""

    def __init__(self, query: AggregationQuery, *, with_event_values: bool) -> None:
        self.query = query
        self.kind = query.kind
        self.with_values = with_event_values
        self.groups = [f"g{i}" for i in range(max(len(query.group_by), 1))]
        self.tz = ZoneInfo(query.timezone)

    def build(self) -> tuple[str, list[str]]:
        sql, names = getattr(self, statement_name(self.query))()
        return sql, [*self.groups, *names]

    # -- pieces ---------------------------------------------------------------------------

    @staticmethod
    def text(key: str) -> str:
        """`properties ->> key` as PostgreSQL renders it: strings unquoted, JSON null or a
        missing key NULL, anything else its JSON text."""
        k = lit(key)
        kind = f"JSONType(properties, {k})"
        return (
            f"multiIf({kind} = 'String', toNullable(JSONExtractString(properties, {k})), "
            f"{kind} = 'Null', NULL, toNullable(JSONExtractRaw(properties, {k})))"
        )

    def number(self, text: str) -> str:
        """The text read as a number as `read_number` does (NULL otherwise)."""
        parsed = f"toDecimal256OrNull(trimBoth(assumeNotNull({text})), {_SCALE})"
        return (
            f"if(match(assumeNotNull({text}), {lit(NUMERIC_PATTERN)}) "
            f"AND lengthUTF8(assumeNotNull({text})) <= {NUMBER_MAX_LENGTH} "
            f"AND abs({parsed}) < {lit(NUMBER_LIMIT)}, {parsed}, NULL)"
        )

    def value_expr(self) -> str:
        """The event's value: the stored one, else the field's text (`field_text`) read as a
        number."""
        stored = f"CAST(value, 'Nullable({_VALUE_TYPE})')"
        return f"coalesce({stored}, {self.number('field_text')})"

    def group_exprs(self) -> str:
        if not self.query.group_by:
            return "CAST(NULL, 'Nullable(String)') AS g0"
        return ", ".join(
            f"nullIf({self.text(key)}, '') AS g{i}" for i, key in enumerate(self.query.group_by)
        )

    def where(self, lower: datetime | None) -> str:
        q = self.query
        conditions = [
            f"organization_id = {lit(q.organization_id)}",
            f"external_subscription_id = {lit(q.external_subscription_id)}",
            f"code = {lit(q.code)}",
            "deleted_at IS NULL",
            f"timestamp <= {_ts(q.to_datetime)}",
        ]
        if lower is not None:
            conditions.append(f"timestamp >= {_ts(lower)}")
        for key, values in expand_filter(q.filters or {}, q.declared_filter_values).items():
            conditions.append(self.matches(key, values))
        for excluded in q.exclude_filters:
            expanded = expand_filter(excluded, q.declared_filter_values)
            claimed = " AND ".join(self.matches(key, values) for key, values in expanded.items())
            conditions.append(f"NOT ({claimed})" if claimed else "0")
        return " AND ".join(conditions)

    def matches(self, key: str, values: Sequence[str]) -> str:
        """The property is one of `values` (false when missing)."""
        if not values:
            return "0"
        return f"coalesce(has({lit(list(values))}, {self.text(key)}), 0)"

    def window_lower(self) -> datetime | None:
        """Lower bound of the events read: the subscription start for a recurring metric."""
        q = self.query
        return q.subscription_started_at if q.recurring else q.period_from

    def selection(self, extra: str, required: str, *, lower: Any = _WINDOW) -> str:
        """The selected events (id, ts, ptac, g0..gN and `extra`), those where `required` is
        not null; from `lower` (default: the window's lower bound).

        The properties are read once, in the innermost SELECT (`field_text`, `operation_text`):
        `extra` works on those columns. Written inline, each use of a property re-extracts it
        from the JSON text, which made a sum several times slower."""
        if lower is _WINDOW:
            lower = self.window_lower()
        field = self.query.field_name
        texts = f", {self.text(field)} AS field_text" if field else ""
        texts += f", {self.text('operation_type')} AS operation_text"
        return (
            f"(SELECT * FROM (SELECT id, ts, ptac, {self.cols()}, {extra} FROM ("
            f"SELECT id, timestamp AS ts, precise_total_amount_cents AS ptac, value, "
            f"{self.group_exprs()}{texts} FROM {TABLE} WHERE {self.where(lower)})) "
            f"WHERE {required} IS NOT NULL)"
        )

    def in_period(self) -> str:
        return f"ts >= {_ts(self.query.period_from)}"

    def cols(self) -> str:
        return ", ".join(self.groups)

    def local_day(self, instant: datetime) -> int:
        """The customer's local day of `instant`, as days since 1970-01-01."""
        return (instant.astimezone(self.tz).date() - _EPOCH_DAY).days

    def day_expr(self) -> str:
        """An event's local day (days since 1970-01-01) in the query's timezone."""
        return f"toInt32(toDate32(ts, {lit(self.query.timezone)}))"

    @staticmethod
    def ordered_values(values: str, condition: str | None = None) -> str:
        """Per-event values (text) in timestamp then id order."""
        collect = (
            f"groupArrayIf((ts, id, {values}), {condition})"
            if condition
            else f"groupArray((ts, id, {values}))"
        )
        return f"arrayMap(x -> toString(x.3), arraySort({collect}))"

    # -- statements -----------------------------------------------------------------------

    def simple(self) -> tuple[str, list[str]]:
        """count, sum (recurring: since the subscription start) and max."""
        if self.kind == AggregationType.COUNT:
            sel = self.selection(f"toDecimal256(1, {_SCALE}) AS val", "id")
            units = "count()"
        else:
            sel = self.selection(f"{self.value_expr()} AS val", "val")
            units = "sum(val)" if self.kind == AggregationType.SUM else "max(val)"
        g, period = self.cols(), self.in_period()
        values = f", {self.ordered_values('val', period)}" if self.with_values else ""
        sql = f"""
            SELECT {g}, toString({units}), toString(countIf({period})),
                   toString(sumIf(ptac, {period})) {values}
            FROM {sel} GROUP BY {g} ORDER BY {g}
        """
        return sql, self.with_event_values(["units", "events_count", "ptac"])

    def with_event_values(self, names: list[str]) -> list[str]:
        return [*names, "event_values"] if self.with_values else names

    def latest(self) -> tuple[str, list[str]]:
        """The value of the last event (timestamp, then write order); negative clamps to 0."""
        sel = self.selection(f"{self.value_expr()} AS val", "val")
        g = self.cols()
        values = f", {self.ordered_values('val')}" if self.with_values else ""
        sql = f"""
            SELECT {g}, toString(greatest(argMax(val, (ts, id)), 0)), toString(count()),
                   toString(sum(ptac)) {values}
            FROM {sel} GROUP BY {g} ORDER BY {g}
        """
        return sql, self.with_event_values(["units", "events_count", "ptac"])

    def operations(self, *, with_day: bool = False) -> str:
        """The selected events carrying the field: its text `prop` and `op` (`add` unless
        `operation_type` is `remove`), with the local `day` when asked."""
        op = "if(operation_text = 'remove', 'remove', 'add')"
        extra = f"field_text AS prop, {op} AS op"
        if with_day:
            extra += f", {self.day_expr()} AS day"
        return self.selection(extra, "prop")

    def unique_count(self) -> tuple[str, list[str]]:
        """Values whose latest operation is an add."""
        g, period = self.cols(), self.in_period()
        sql = f"""
            SELECT {g}, toString(countIf(last_op = 'add')), toString(sum(events)),
                   toString(sum(amount))
            FROM (
                SELECT {g}, prop, argMax(op, (ts, id)) AS last_op,
                       countIf({period}) AS events, sumIf(ptac, {period}) AS amount
                FROM {self.operations()} GROUP BY {g}, prop
            )
            GROUP BY {g} ORDER BY {g}
        """
        return sql, ["units", "events_count", "ptac"]

    def prorated_unique(self) -> tuple[str, list[str]]:
        """Each value weighs the local days it was active in the period, from max(add day,
        period start) to min(remove day, period end), both inclusive; spans sharing a day
        (removed and added again that day) count it once.

        Per value, in (timestamp, id) order: the operations that change its state (`changes`:
        a repeated add or a first remove changes nothing) alternate add, remove, add...; each
        add spans from its day to the next change's day (or the period end), clipped to the
        period. Their starts and ends never decrease, so the union of the spans is the sum of
        each span's days minus those already covered by the span before."""
        q = self.query
        g, period = self.cols(), self.in_period()
        from_day, to_day = self.local_day(q.period_from), self.local_day(q.to_datetime)
        sql = f"""
            SELECT {g}, toString(sum(days)), toString(countIf(last_op = 'add')),
                   toString(sum(events)), toString(sum(amount))
            FROM (
                SELECT {g}, prop, argMax(op, (ts, id)) AS last_op,
                       countIf({period}) AS events, sumIf(ptac, {period}) AS amount,
                       arraySort(groupArray((ts, id, op, day))) AS ops,
                       arrayFilter(
                           (x, previous) -> x.3 != previous, ops,
                           arrayPushFront(arrayPopBack(arrayMap(x -> x.3, ops)), 'remove')
                       ) AS changes,
                       arrayMap(x -> x.4, changes) AS change_days,
                       arrayMap(x -> x.3 = 'add', changes) AS is_add,
                       arrayMap(d -> greatest(d, {from_day}), change_days) AS starts,
                       arrayMap(
                           i -> least(
                               if(i < length(change_days), change_days[i + 1], {to_day}),
                               {to_day}
                           ),
                           arrayEnumerate(change_days)
                       ) AS ends,
                       arrayFilter((s, e, a) -> a AND e >= s, starts, ends, is_add) AS span_starts,
                       arrayFilter((e, s, a) -> a AND e >= s, ends, starts, is_add) AS span_ends,
                       arraySum(
                           (s, e, i) -> greatest(
                               e - greatest(s, if(i = 1, s, span_ends[i - 1] + 1)) + 1, 0
                           ),
                           span_starts, span_ends, arrayEnumerate(span_starts)
                       ) AS days
                FROM {self.operations(with_day=True)} GROUP BY {g}, prop
            )
            GROUP BY {g} ORDER BY {g}
        """
        return sql, ["active_days", "full_units", "events_count", "ptac"]

    def prorated_sum(self) -> tuple[str, list[str]]:
        """v(e) x d(e), d(e) = local days from the event's day to the period end, both
        inclusive; the value carried over from earlier periods comes back apart."""
        to_day = self.local_day(self.query.to_datetime)
        days = f"({to_day} - {self.day_expr()} + 1)"
        sel = self.selection(f"{self.value_expr()} AS val, {days} AS d", "val")
        g, period = self.cols(), self.in_period()
        names = ["carried", "day_values", "variation", "events_count", "ptac"]
        values = ""
        if self.with_values:
            values = (
                f", {self.ordered_values('val', period)}, {self.ordered_values('val * d', period)}"
            )
            names += ["event_values", "event_day_values"]
        sql = f"""
            SELECT {g}, toString(ifNull(sumIf(val, NOT ({period})), 0)),
                   toString(ifNull(sumIf(val * d, {period}), 0)),
                   toString(ifNull(sumIf(val, {period}), 0)), toString(countIf({period})),
                   toString(sumIf(ptac, {period})) {values}
            FROM {sel} GROUP BY {g} ORDER BY {g}
        """
        return sql, names

    def weighted_sum(self) -> tuple[str, list[str]]:
        """SUM over segments of R(t_i) x (t_{i+1} - t_i), in microseconds (`aggregate` turns
        them into seconds; `_result` divides by the period's seconds, exactly).

        Per group: the points are (period start, initial value), the period's events and
        (end, 0), sorted by time; R is their running sum. Events sharing a timestamp need no
        summing first: all but the last of them have a zero-length segment, and the last one's
        running sum includes them all. The initial value is `initial_value` /
        `grouped_initial_values` when given (literal rows), else for a recurring metric the
        sum of the events between the subscription start and the period."""
        q = self.query
        given = q.initial_value is not None or q.grouped_initial_values is not None
        from_events = q.recurring and not given
        lower = q.subscription_started_at if from_events else q.period_from
        columns = f"id, ts, ptac, {self.cols()}, assumeNotNull(val) AS val, 1 AS event"
        sel = self.selection(f"{self.value_expr()} AS val", "val", lower=lower)
        parts = [f"SELECT {columns} FROM {sel}"]
        initial = {}
        if q.initial_value is not None:
            initial = {(None,): q.initial_value}
        elif q.grouped_initial_values:
            initial = dict(q.grouped_initial_values)
        for key, amount in initial.items():
            groups = ", ".join(
                f"CAST({lit(value)}, 'Nullable(String)') AS g{i}" for i, value in enumerate(key)
            )
            parts.append(
                f"SELECT toUInt64(0) AS id, {_ts(q.period_from)} AS ts, "
                f"toDecimal128(0, 15) AS ptac, {groups}, "
                f"CAST({lit(Decimal(amount))}, '{_VALUE_TYPE}') AS val, 0 AS event"
            )
        g = self.cols()
        counted = f"event = 1 AND {self.in_period()}"
        start = _micros(q.period_from)
        end = _micros(_end_of_second(q.to_datetime))
        sql = f"""
            SELECT {g}, toString(arraySum(
                       (total, t0, t1) -> total * (t1 - t0),
                       arrayPopBack(arrayCumSum(arrayMap(p -> p.2, points))),
                       arrayPopBack(arrayMap(p -> p.1, points)),
                       arrayPopFront(arrayMap(p -> p.1, points))
                   )),
                   toString(events_count), toString(ptac), toString(variation),
                   toString(initial)
            FROM (
                SELECT {g}, countIf({counted}) AS events_count, sumIf(ptac, {counted}) AS ptac,
                       sumIf(val, {counted}) AS variation,
                       sumIf(val, NOT ({counted})) AS initial,
                       arraySort(arrayConcat(
                           [(toInt64({start}), initial)],
                           groupArrayIf((toUnixTimestamp64Micro(ts), val), {counted}),
                           [(toInt64({end}), CAST(0, '{_VALUE_TYPE}'))]
                       )) AS points
                FROM ({" UNION ALL ".join(parts)}) GROUP BY {g}
            )
            ORDER BY {g}
        """
        return sql, ["area", "events_count", "ptac", "variation", "initial"]


_EPOCH_DAY = date(1970, 1, 1)


def _micros(instant: datetime) -> int:
    """Microseconds since the epoch (`toUnixTimestamp64Micro`)."""
    delta = instant - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**6 + delta.microseconds
