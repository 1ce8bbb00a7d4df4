"""Pre-aggregation of the PostgreSQL event store (docs/event-store.md, "Pre-aggregation").

Two derived tables, kept current by `PostgresEventStore.write_batch` in the statement that
inserts the events (so in the same transaction, and rolled back with a refused batch):

- `metering_event_rollup` (`EventRollup`): per organization, external subscription id, code,
  UTC hour (`bucket`) and properties apart from the metric's field (`dims`): events, amounts,
  values (count, sum, max, last by timestamp and id, sum of value x epoch seconds), events
  carrying the field, and those of them whose property state was not kept.
- `metering_event_property_state` (`EventPropertyState`): per distinct properties (`dims` and
  the field's text `prop`) of the events of unique-count metrics (`keeps_state`): first and
  last event. The last operation of a unique-count value is the last event of its (dims, prop)
  rows.

An aggregation then reads the rollup rows of the hours wholly inside its window and the raw
events of the partial hours at both ends (`rollup_rows`), and merges them. Every formula of
§4.3 decomposes exactly over these sums (weighted sum: area = initial x (end - start) + Σ v x
(end - t) = initial x (end - start) + end x Σv - Σ(v x t)). `rollup_rows` answers None, and the
caller reads the raw events as before, for what is not pre-aggregated: prorated unique counts,
prorated sums with an hour across two local days, per-event values, filters or groups on the
field itself, events ingested with another field or with none (unknown metric) in the window
(seen on the window's rollup rows), unique counts over events whose state was not kept (the
metric was of another type at ingestion: `n_stateless`), and unique-count values whose last
operation is after the window.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db import connection, transaction

from billing.db import prepared_cursor
from metering.models import Event, EventPropertyState, EventRollup

from .aggregation import (
    NUMBER_LIMIT,
    NUMERIC_PATTERN,
    AggregationQuery,
    AggregationResult,
    AggregationType,
    Statement,
    _empty,
    _end_of_second,
    _Params,
    aggregate_many_postgres,
    aggregate_postgres,
    expand_filter,
    number_sql,
    results_of,
    run_many,
)
from .portable import _group_order

BUCKET = timedelta(hours=1)
_ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"
_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ZERO = Decimal(0)

ROLLUP_TABLE = EventRollup._meta.db_table
STATE_TABLE = EventPropertyState._meta.db_table
EVENT_TABLE = Event._meta.db_table


# --------------------------------------------------------------------------------------------
# Writes: the projection of an event and the two upserts


def _projection(field: str) -> str:
    """Columns of `proj` from `src` (id, ext, code, ts, props, ptac, value, keep) and a field
    expression ('' when unknown)."""
    value = f"COALESCE(value, {_number_sql_text(f'(props ->> {field})')})"
    return f"""
        SELECT id, ext, code, ts, ptac, keep, {field} AS f,
               date_bin('1 hour', ts, {_ORIGIN}) AS bucket,
               CASE WHEN {field} = '' THEN props ELSE props - {field} END AS dims,
               CASE WHEN {field} = '' THEN NULL ELSE props ->> {field} END AS prop,
               CASE WHEN {field} = '' THEN NULL ELSE {value} END AS val
        FROM src
    """


def _number_sql_text(text: str) -> str:
    params = {NUMERIC_PATTERN: "%(num_pattern)s", NUMBER_LIMIT: "%(num_limit)s"}
    return number_sql(lambda: text, lambda value: params[value])


_LAST_VALUED = "ORDER BY ts DESC, id DESC) FILTER (WHERE val IS NOT NULL))[1]"
_NEWER_VALUE = (
    "EXCLUDED.lv_ts IS NOT NULL AND (r.lv_ts IS NULL OR (EXCLUDED.lv_ts, EXCLUDED.lv_id) > "
    "(r.lv_ts, r.lv_id))"
)
_NEWER_LAST = "(EXCLUDED.last_ts, EXCLUDED.last_id) > (s.last_ts, s.last_id)"


def keeps_state(aggregation_type: str | None) -> bool:
    """Whether an event of a metric of this type keeps its property state: only unique counts
    read the states. An unknown type (None: a writer that does not say it) keeps it, so that a
    unique count can still read its events from the states rather than scan them."""
    return aggregation_type is None or aggregation_type == AggregationType.UNIQUE_COUNT


def _upserts(*, count_stateless: bool = True) -> str:
    """The two upserts over `src` (whose `keep` says which events keep their property state).
    `count_stateless`: whether the rollup rows count the events carrying the field that kept
    no state (`n_stateless`); without it (every event keeps its state) the statement does not
    name the column, which the tables made by migration 0003 do not have yet."""
    stateless = ["", "", ""]
    if count_stateless:
        stateless = [
            ", n_stateless",
            ", COUNT(prop) FILTER (WHERE NOT keep)",
            ", n_stateless = r.n_stateless + EXCLUDED.n_stateless",
        ]
    return f"""
proj AS ({_projection("f")}),
rollup_upsert AS (
    INSERT INTO {ROLLUP_TABLE} AS r (
        organization_id, external_subscription_id, code, bucket, field_name, dims_hash, dims,
        n, ptac, nv, ptac_v, sv, tv, mx, lv_ts, lv_id, lv, n_prop, ptac_prop{stateless[0]}
    )
    SELECT %(organization_id)s, ext, code, bucket, f, md5(dims::text)::uuid, dims,
           COUNT(*), SUM(ptac), COUNT(val),
           COALESCE(SUM(ptac) FILTER (WHERE val IS NOT NULL), 0),
           COALESCE(SUM(val), 0), COALESCE(SUM(val * EXTRACT(EPOCH FROM ts)), 0), MAX(val),
           (ARRAY_AGG(ts {_LAST_VALUED}, (ARRAY_AGG(id {_LAST_VALUED},
           (ARRAY_AGG(val {_LAST_VALUED},
           COUNT(prop), COALESCE(SUM(ptac) FILTER (WHERE prop IS NOT NULL), 0){stateless[1]}
    FROM proj GROUP BY ext, code, bucket, f, dims
    -- rows locked in key order: concurrent batches wait on each other without deadlock
    ORDER BY ext, code, bucket, f, md5(dims::text)::uuid
    ON CONFLICT ON CONSTRAINT metering_event_rollup_key DO UPDATE SET
        n = r.n + EXCLUDED.n, ptac = r.ptac + EXCLUDED.ptac, nv = r.nv + EXCLUDED.nv,
        ptac_v = r.ptac_v + EXCLUDED.ptac_v, sv = r.sv + EXCLUDED.sv, tv = r.tv + EXCLUDED.tv,
        mx = GREATEST(r.mx, EXCLUDED.mx),
        lv_ts = CASE WHEN {_NEWER_VALUE} THEN EXCLUDED.lv_ts ELSE r.lv_ts END,
        lv_id = CASE WHEN {_NEWER_VALUE} THEN EXCLUDED.lv_id ELSE r.lv_id END,
        lv = CASE WHEN {_NEWER_VALUE} THEN EXCLUDED.lv ELSE r.lv END,
        n_prop = r.n_prop + EXCLUDED.n_prop,
        ptac_prop = r.ptac_prop + EXCLUDED.ptac_prop{stateless[2]}
    RETURNING 1
),
-- only the events that keep their state (unique counts), and only those carrying the field:
-- a batch without them upserts no state
state_upsert AS (
    INSERT INTO {STATE_TABLE} AS s (
        organization_id, external_subscription_id, code, field_name, dims_hash, prop_hash,
        dims, prop, first_ts, last_ts, last_id
    )
    SELECT %(organization_id)s, ext, code, f, md5(dims::text)::uuid, md5('s' || prop)::uuid,
           dims, prop, MIN(ts), (ARRAY_AGG(ts ORDER BY ts DESC, id DESC))[1],
           (ARRAY_AGG(id ORDER BY ts DESC, id DESC))[1]
    FROM proj WHERE keep AND prop IS NOT NULL GROUP BY ext, code, f, dims, prop
    ORDER BY ext, code, f, md5(dims::text)::uuid, md5('s' || prop)::uuid
    ON CONFLICT ON CONSTRAINT metering_event_property_state_key DO UPDATE SET
        first_ts = LEAST(s.first_ts, EXCLUDED.first_ts),
        last_ts = CASE WHEN {_NEWER_LAST} THEN EXCLUDED.last_ts ELSE s.last_ts END,
        last_id = CASE WHEN {_NEWER_LAST} THEN EXCLUDED.last_id ELSE s.last_id END
    RETURNING 1
)
"""


_UPSERTS = _upserts()


def _insert_with_rollups_sql(on_conflict: str) -> str:
    return f"""
WITH input AS (
    -- the batch as one JSON array per column (`PostgresEventStore.write_batch`), read side by
    -- side: a flat array is parsed without the per-object field lookup of json_to_recordset
    -- (about half the parsing CPU of a batch), and orjson writes each column in C
    SELECT t.transaction_id, t.external_subscription_id, t.code, t.ts::timestamptz AS ts,
           t.properties::jsonb AS properties, t.amount::numeric AS amount,
           t.value::numeric AS value, t.subscription_id::uuid AS subscription_id,
           t.customer_id::uuid AS customer_id, t.field_name,
           t.keeps_state::boolean AS keeps_state, t.position::int AS position,
           t.sent::int AS sent
    FROM ROWS FROM (
        json_array_elements_text(%(transaction_ids)s::json),
        json_array_elements_text(%(external_subscription_ids)s::json),
        json_array_elements_text(%(codes)s::json),
        json_array_elements_text(%(timestamps)s::json),
        json_array_elements_text(%(properties)s::json),
        json_array_elements_text(%(amounts)s::json),
        json_array_elements_text(%(values)s::json),
        json_array_elements_text(%(subscription_ids)s::json),
        json_array_elements_text(%(customer_ids)s::json),
        json_array_elements_text(%(field_names)s::json),
        json_array_elements_text(%(keeps_states)s::json),
        json_array_elements_text(%(sent)s::json)
    ) WITH ORDINALITY AS t(
        transaction_id, external_subscription_id, code, ts, properties, amount, value,
        subscription_id, customer_id, field_name, keeps_state, sent, position
    )
),
-- ids in the order the events were sent (`sent`): of two events at one instant, the later
-- sent is the later one (latest, unique count); the rows go in key order (`position`)
numbered AS (
    -- the sequence's name looked up once for the statement (an InitPlan), not once per row
    SELECT sorted.*, nextval((SELECT pg_get_serial_sequence('{EVENT_TABLE}', 'id'))::regclass)
           AS id
    FROM (SELECT * FROM input ORDER BY sent) sorted
),
ins AS (
    INSERT INTO {EVENT_TABLE} (
        id, organization_id, transaction_id, external_subscription_id, code, timestamp,
        properties, precise_total_amount_cents, value, subscription_id, customer_id, created_at
    )
    SELECT id, %(organization_id)s, transaction_id, external_subscription_id, code, ts,
           properties, amount, value, subscription_id, customer_id, %(created_at)s
    FROM numbered ORDER BY position
    {on_conflict}
    RETURNING id, external_subscription_id, transaction_id, code, timestamp, properties,
              precise_total_amount_cents, value
),
src AS (
    SELECT ins.id, ins.external_subscription_id AS ext, ins.code, ins.timestamp AS ts,
           ins.properties AS props, ins.precise_total_amount_cents AS ptac, ins.value,
           input.field_name AS f, input.keeps_state AS keep
    FROM ins JOIN input ON input.external_subscription_id = ins.external_subscription_id
                       AND input.transaction_id = ins.transaction_id
),
{_UPSERTS}
SELECT id, external_subscription_id, transaction_id FROM ins
"""


# The batch's events skipped when their key is stored already (the caller compares what was
# inserted with what was sent, and rolls back a batch with duplicates).
INSERT_WITH_ROLLUPS_SQL = _insert_with_rollups_sql(
    "ON CONFLICT ON CONSTRAINT billing_event_transaction_unique DO NOTHING"
)
# The same write failing on the first duplicate (a unique violation: nothing is written).
INSERT_OR_FAIL_WITH_ROLLUPS_SQL = _insert_with_rollups_sql("")


def _rebuild_sql(*, count_stateless: bool) -> str:
    return f"""
WITH fields AS (
    SELECT * FROM unnest(%(field_codes)s::text[], %(field_names)s::text[],
                         %(field_states)s::boolean[]) AS t(code, f, keep)
),
src AS (
    SELECT e.id, e.external_subscription_id AS ext, e.code, e.timestamp AS ts,
           e.properties AS props, e.precise_total_amount_cents AS ptac, e.value,
           COALESCE(fields.f, '') AS f, COALESCE(fields.keep, FALSE) AS keep
    FROM {EVENT_TABLE} e LEFT JOIN fields ON fields.code = e.code
    WHERE e.organization_id = %(organization_id)s AND e.deleted_at IS NULL
      AND (%(external_subscription_id)s::text IS NULL
           OR e.external_subscription_id = %(external_subscription_id)s::text)
),
{_upserts(count_stateless=count_stateless)}
SELECT (SELECT COUNT(*) FROM rollup_upsert)
"""


_REBUILD_SQL = _rebuild_sql(count_stateless=True)
_REBUILD_ALL_STATES_SQL = _rebuild_sql(count_stateless=False)

WRITE_PARAMS = {"num_pattern": NUMERIC_PATTERN, "num_limit": NUMBER_LIMIT}


def rebuild_rollups(
    organization_id: UUID,
    field_names: Mapping[str, str | None],
    *,
    aggregation_types: Mapping[str, str] | None = None,
    external_subscription_id: str | None = None,
) -> int:
    """Recompute the pre-aggregated rows of an organization (or of one external subscription
    id) from its live events; `field_names` maps each metric code to its field and
    `aggregation_types` to its aggregation type (the metric's current ones): the events of
    unique counts keep their property states. Without `aggregation_types` every event keeps its
    state, as ingestion did when migration 0003 (which calls it so) was written. Returns the
    rollup rows written. Run it with ingestion of those events paused (a batch committed while
    it runs may be counted twice)."""
    codes = [code for code, field in field_names.items() if field]
    if aggregation_types is None:
        sql, keeps = _REBUILD_ALL_STATES_SQL, [True] * len(codes)
    else:
        sql = _REBUILD_SQL
        keeps = [keeps_state(aggregation_types.get(code)) for code in codes]
    params = {
        **WRITE_PARAMS,
        "organization_id": organization_id,
        "external_subscription_id": external_subscription_id,
        "field_codes": codes,
        "field_names": [field_names[code] for code in codes],
        "field_states": keeps,
    }
    with transaction.atomic():
        for model in (EventRollup, EventPropertyState):
            rows = model.objects.filter(organization_id=organization_id)
            if external_subscription_id is not None:
                rows = rows.filter(external_subscription_id=external_subscription_id)
            rows.delete()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            (written,) = cursor.fetchone()
    return int(written)


def discard_rollups(organization_id: UUID, code: str) -> None:
    """A discarded metric's events leave the pre-aggregated rows too."""
    EventRollup.objects.filter(organization_id=organization_id, code=code).delete()
    EventPropertyState.objects.filter(organization_id=organization_id, code=code).delete()


# --------------------------------------------------------------------------------------------
# Reads


_PRE_AGGREGATED = {
    AggregationType.COUNT,
    AggregationType.SUM,
    AggregationType.MAX,
    AggregationType.LATEST,
    AggregationType.UNIQUE_COUNT,
    AggregationType.WEIGHTED_SUM,
}
_EVENT_VALUE_TYPES = {
    AggregationType.COUNT,
    AggregationType.SUM,
    AggregationType.MAX,
    AggregationType.LATEST,
}


def _floor(instant: datetime) -> datetime:
    instant = instant.astimezone(UTC)
    return instant.replace(minute=0, second=0, microsecond=0)


def _ceil(instant: datetime) -> datetime:
    floor = _floor(instant)
    return floor if floor == instant else floor + BUCKET


def _epoch(instant: datetime) -> Decimal:
    delta = instant - _EPOCH
    return Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds) / 10**6


def _given(query: AggregationQuery) -> bool:
    """A recurring weighted sum's carried total comes with the query (not from the events)."""
    return query.initial_value is not None or query.grouped_initial_values is not None


def _keys(query: AggregationQuery) -> set[str]:
    """Property keys the query's filters and groups read."""
    keys = set(query.group_by) | set((query.filters or {}).keys())
    for excluded in query.exclude_filters:
        keys |= set(excluded.keys())
    return keys


def pre_aggregated(query: AggregationQuery, *, with_event_values: bool = False) -> bool:
    """Whether the pre-aggregated rows can answer the query (else: the raw scan)."""
    kind = query.kind
    if kind not in _PRE_AGGREGATED or (query.prorated and kind != AggregationType.SUM):
        return False
    if with_event_values and kind in _EVENT_VALUE_TYPES:
        return False  # per-event values need every event
    if query.field_name and query.field_name in _keys(query):
        return False  # the rows keep the field's values apart from `dims`
    return not (kind == AggregationType.UNIQUE_COUNT and query.field_name == "operation_type")


class _RollupBuilder:
    """The one statement reading a query from rollups, property states and partial hours."""

    def __init__(self, query: AggregationQuery) -> None:
        self.query = query
        self.kind = query.kind
        self.p = _Params()
        count = max(len(query.group_by), 1)
        self.groups = [f"g{i}" for i in range(count)]
        self.field = query.field_name if self.kind != AggregationType.COUNT else ""
        self.field = self.field or ""

    # -- pieces ---------------------------------------------------------------------------

    def lower(self) -> datetime | None:
        q = self.query
        if q.recurring and not _given(q):
            return q.subscription_started_at
        return q.period_from

    def segments(self) -> list[tuple[datetime | None, datetime, bool]]:
        """(first, last instant, in period) of the window, both inclusive."""
        q = self.query
        lower = self.lower()
        segments = []
        if lower is None or lower < q.period_from:
            segments.append((lower, q.period_from - _MICROSECOND, False))
        segments.append((q.period_from, q.to_datetime, True))
        return segments

    def group_exprs(self, column: str) -> str:
        if not self.query.group_by:
            return "NULL::text AS g0"
        return ", ".join(
            f"NULLIF({column} ->> {self.p(key)}, '') AS g{i}"
            for i, key in enumerate(self.query.group_by)
        )

    def filters(self, column: str) -> list[str]:
        q, p = self.query, self.p
        conditions = []
        for key, values in expand_filter(q.filters or {}, q.declared_filter_values).items():
            conditions.append(f"({column} ->> {p(key)}) = ANY({p(values)}::text[])")
        for excluded in q.exclude_filters:
            expanded = expand_filter(excluded, q.declared_filter_values)
            claimed = " AND ".join(
                f"COALESCE(({column} ->> {p(key)}) = ANY({p(values)}::text[]), FALSE)"
                for key, values in expanded.items()
            )
            conditions.append(f"NOT ({claimed})" if claimed else "FALSE")
        return conditions

    def selection(self, alias: str) -> list[str]:
        q, p = self.query, self.p
        return [
            f"{alias}.organization_id = {p(q.organization_id)}",
            f"{alias}.external_subscription_id = {p(q.external_subscription_id)}",
            f"{alias}.code = {p(q.code)}",
        ]

    def plan(self) -> list[tuple[bool, datetime | None, datetime, bool, bool]]:
        """(from the rollups, first, last, last inclusive, in period) of each piece of the
        window: the hours wholly inside each segment from the rollups (`last` excluded), the
        partial ones at both ends from the raw events."""
        pieces: list[tuple[bool, datetime | None, datetime, bool, bool]] = []
        for first, last, in_period in self.segments():
            if first is not None and first > last:
                continue
            low = None if first is None else _ceil(first)
            high = _floor(last + _MICROSECOND)
            if low is None or low < high:
                pieces.append((True, low, high, False, in_period))
                if first is not None and first < low:  # type: ignore[operator]
                    pieces.append((False, first, low, False, in_period))  # type: ignore[arg-type]
                pieces.append((False, high, last, True, in_period))
            else:
                pieces.append((False, first, last, True, in_period))
        return pieces

    def parts(self) -> list[str]:
        """SELECTs of rollup-shaped rows: full hours from the rollups, partial ones raw."""
        return [
            self.rollup_part(first, last, in_period)  # type: ignore[arg-type]
            if rolled
            else self.raw_part(first, last, inclusive, in_period)
            for rolled, first, last, inclusive, in_period in self.plan()
        ]

    def wrong(self) -> str | None:
        """The condition on a rollup row (`r`) under which the rows cannot answer: events
        pre-aggregated with another field (or none), or with the field as a key the query
        filters or groups on; for a unique count, events whose property state was not kept
        (ingested for another type of metric, or by a version that kept none)."""
        p = self.p
        wrong = []
        if self.kind != AggregationType.COUNT:
            # `field` itself is never a key (`pre_aggregated`)
            wrong.append(f"r.field_name <> {p(self.field)}")
        elif keys := sorted(_keys(self.query)):
            wrong.append(f"r.field_name = ANY({p(keys)}::text[])")
        if self.kind == AggregationType.UNIQUE_COUNT:
            wrong.append("r.n_stateless > 0")
        return " OR ".join(wrong) or None

    def rollup_part(self, low: datetime | None, high: datetime, in_period: bool) -> str:
        """The rollup rows of the hours from `low` to `high` (excluded) the query selects, and
        those making it fall back (`wrong`, unfiltered: a row of another field may lack the
        filter's key in its dims): their `bad` voids the result, whatever they add to it."""
        p = self.p
        conditions = [*self.selection("r"), f"r.bucket < {p(high)}"]
        if low is not None:
            conditions.append(f"r.bucket >= {p(low)}")
        wrong = self.wrong()
        filters = self.filters("r.dims")
        if wrong and filters:
            conditions.append(f"(({wrong}) OR ({' AND '.join(filters)}))")
        else:
            conditions += filters
        if self.query.prorated and in_period:
            # spec §7.15: the hour's values weigh the local days from its day to the period
            # end; an hour across two local days (a half-hour offset) is not pre-aggregated
            day, last_day = (
                self.local_day("r.bucket"),
                self.local_day("(r.bucket + interval '1 hour' - interval '1 microsecond')"),
            )
            prorated = f"r.sv * {self.days_left(day)} AS dv, {day} <> {last_day} AS split"
        else:
            prorated = "0 AS dv, FALSE AS split"
        return f"""
            SELECT {self.group_exprs("r.dims")}, {in_period} AS inp, r.n, r.ptac, r.nv,
                   r.ptac_v, r.sv, r.tv, r.mx, r.lv_ts, r.lv_id, r.lv, r.n_prop, r.ptac_prop,
                   {prorated}, {f"({wrong})" if wrong else "FALSE"} AS bad
            FROM {ROLLUP_TABLE} r WHERE {" AND ".join(conditions)}
        """

    def local_day(self, instant: str) -> str:
        return f"({instant} AT TIME ZONE {self.p(self.query.timezone)})::date"

    def days_left(self, day: str) -> str:
        """Local days from `day` to the period end, both inclusive."""
        to_day = self.query.to_datetime.astimezone(ZoneInfo(self.query.timezone)).date()
        return f"({self.p(to_day)}::date - {day} + 1)"

    def raw_part(
        self, start: datetime | None, end: datetime, inclusive: bool, in_period: bool
    ) -> str:
        p = self.p
        conditions = [
            *self.selection("e"),
            "e.deleted_at IS NULL",
            f"e.timestamp {'<=' if inclusive else '<'} {p(end)}",
        ]
        if start is not None:
            conditions.append(f"e.timestamp >= {p(start)}")
        conditions += self.filters("e.properties")
        if self.field:
            prop = f"(e.properties ->> {p(self.field)})"
            val = f"COALESCE(e.value, {number_sql(lambda: prop, p)})"
        else:
            prop, val = "NULL::text", "NULL::numeric"
        dv = "0"
        if self.query.prorated and in_period:
            dv = f"COALESCE(val * {self.days_left(self.local_day('ts'))}, 0)"
        return f"""
            SELECT {", ".join(self.groups)}, {in_period} AS inp, 1 AS n, ptac,
                   (val IS NOT NULL)::int AS nv,
                   CASE WHEN val IS NOT NULL THEN ptac ELSE 0 END AS ptac_v,
                   COALESCE(val, 0) AS sv, COALESCE(val * EXTRACT(EPOCH FROM ts), 0) AS tv,
                   val AS mx, CASE WHEN val IS NOT NULL THEN ts END AS lv_ts,
                   CASE WHEN val IS NOT NULL THEN id END AS lv_id, val AS lv,
                   (prop IS NOT NULL)::int AS n_prop,
                   CASE WHEN prop IS NOT NULL THEN ptac ELSE 0 END AS ptac_prop,
                   {dv} AS dv, FALSE AS split, FALSE AS bad
            FROM (
                SELECT e.id, e.timestamp AS ts, e.precise_total_amount_cents AS ptac,
                       {self.group_exprs("e.properties")}, {prop} AS prop, {val} AS val
                FROM {EVENT_TABLE} e WHERE {" AND ".join(conditions)}
            ) raw
        """

    def edges(self) -> str:
        """For a unique count: whether a rollup row of the window's partial hours is `wrong`.
        The states answer for the whole window, those hours included, while their counts come
        from the raw events (exact whatever the rows hold); other types need no check there."""
        if self.kind != AggregationType.UNIQUE_COUNT:
            return "SELECT FALSE AS bad"
        p = self.p
        hours = []
        for rolled, first, last, inclusive, _ in self.plan():
            if rolled:
                continue  # `rollup_part` reads these rows with their `bad`
            # the hours holding an instant from `first` to `last`
            hour = [f"r.bucket {'<=' if inclusive else '<'} {p(last)}"]
            if first is not None:
                hour.append(f"r.bucket >= {p(_floor(first))}")
            hours.append(f"({' AND '.join(hour)})")
        wrong = self.wrong()
        if not hours or not wrong:
            return "SELECT FALSE AS bad"
        where = " AND ".join([*self.selection("r"), f"({' OR '.join(hours)})", f"({wrong})"])
        return f"SELECT EXISTS (SELECT 1 FROM {ROLLUP_TABLE} r WHERE {where}) AS bad"

    def unique_ctes(self) -> str:
        """Last operation of each value in the window, from the property states; `late`: a
        value with an event after the window (its last operation in the window is unknown)."""
        q, p = self.query, self.p
        g = ", ".join(self.groups)
        conditions = [
            *self.selection("s"),
            f"s.field_name = {p(self.field)}",
            "s.prop IS NOT NULL",
            f"s.first_ts <= {p(q.to_datetime)}",
        ]
        lower = self.lower()
        if lower is not None:
            conditions.append(f"s.last_ts >= {p(lower)}")
        conditions += self.filters("s.dims")
        return f""",
            states AS (
                SELECT {self.group_exprs("s.dims")}, s.prop_hash, s.last_ts, s.last_id,
                       COALESCE(s.dims ->> 'operation_type' = 'remove', FALSE) AS removed
                FROM {STATE_TABLE} s WHERE {" AND ".join(conditions)}
            ),
            late AS (SELECT COALESCE(bool_or(last_ts > {p(q.to_datetime)}), FALSE) AS bad
                     FROM states),
            -- per value its latest state; values compared by their hash (the states' key
            -- holds it: one value, one hash), a uuid sorts far faster than collated text
            last_op AS (
                SELECT DISTINCT ON ({g}, prop_hash) {g}, removed
                FROM states ORDER BY {g}, prop_hash, last_ts DESC, last_id DESC
            ),
            active AS (
                SELECT {g}, COUNT(*) FILTER (WHERE NOT removed) AS units FROM last_op GROUP BY {g}
            )
        """

    def build(self) -> tuple[str, dict[str, Any]]:
        g = ", ".join(self.groups)
        agg_g = ", ".join(f"agg.{name}" for name in self.groups)
        unique = self.kind == AggregationType.UNIQUE_COUNT
        union = " UNION ALL ".join(self.parts())
        extra = self.unique_ctes() if unique else ""
        bad = "(chk.bad OR agg.bad OR late.bad)" if unique else "(chk.bad OR agg.bad)"
        join_late = "CROSS JOIN late" if unique else ""
        units = ", active.units AS active_units" if unique else ""
        join_active = ""
        if unique:
            on = " AND ".join(f"agg.{n} IS NOT DISTINCT FROM active.{n}" for n in self.groups)
            join_active = f"LEFT JOIN active ON {on}"
        sql = f"""
            WITH chk AS ({self.edges()}),
            src AS ({union}),
            agg AS (
                SELECT {g}, inp, SUM(n) AS n, SUM(ptac) AS ptac, SUM(nv) AS nv,
                       SUM(ptac_v) AS ptac_v, SUM(sv) AS sv, SUM(tv) AS tv, MAX(mx) AS mx,
                       (ARRAY_AGG(lv ORDER BY lv_ts DESC, lv_id DESC)
                        FILTER (WHERE lv_ts IS NOT NULL))[1] AS lv,
                       SUM(n_prop) AS n_prop, SUM(ptac_prop) AS ptac_prop,
                       SUM(dv) AS dv, bool_or(split) AS split, bool_or(bad) AS bad
                FROM src GROUP BY {g}, inp
            ) {extra}
            SELECT {bad} AS bad, {agg_g}, agg.inp, agg.n, agg.ptac, agg.nv, agg.ptac_v, agg.sv,
                   agg.tv, agg.mx, agg.lv, agg.n_prop, agg.ptac_prop, agg.dv, agg.split {units}
            FROM chk {join_late} LEFT JOIN agg ON TRUE {join_active}
        """
        return sql, self.p.values


def rollup_statement(query: AggregationQuery) -> tuple[str, dict[str, Any]]:
    """The SQL reading a query from the pre-aggregated rows (for EXPLAIN and benchmarks)."""
    return _RollupBuilder(query).build()


def rollup_rows(query: AggregationQuery, *, with_event_values: bool = False) -> list[dict] | None:
    """The rows `_result` converts, computed from the pre-aggregated rows; None when the query
    needs the raw scan (module docstring)."""
    if not pre_aggregated(query, with_event_values=with_event_values):
        return None
    sql, params = rollup_statement(query)
    # prepared: the same charges are read again and again (current usage polled, a billing
    # run), and planning one of these statements cost 0.5 to 0.9 ms
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        fetched = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return _usable(query, fetched)


def _usable(query: AggregationQuery, fetched: list[dict]) -> list[dict] | None:
    """`_result` rows from the rollup statement's rows; None when they cannot answer."""
    if any(row["bad"] or row["split"] for row in fetched):
        return None
    return _combine(query, [row for row in fetched if row["inp"] is not None])


def _combine(query: AggregationQuery, fetched: list[dict]) -> list[dict]:
    """Per group: the window's totals (`all`) and the period's (`in`), into `_result` rows."""
    count = max(len(query.group_by), 1)
    totals: dict[tuple, dict[str, dict]] = defaultdict(dict)
    for row in fetched:
        group = tuple(row[f"g{i}"] for i in range(count))
        totals[group]["in" if row["inp"] else "out"] = row
    kind = query.kind
    found: dict[tuple, dict] = {}
    for group, parts in totals.items():
        period, before = parts.get("in"), parts.get("out")
        both = [part for part in (period, before) if part is not None]

        def total(name: str, rows: list[dict] = both) -> Any:
            return sum((Decimal(part[name] or 0) for part in rows), ZERO)

        def in_period(name: str, period: dict | None = period) -> Decimal:
            return Decimal(period[name] or 0) if period else ZERO

        columns = {f"g{i}": value for i, value in enumerate(group)}
        if kind == AggregationType.COUNT:
            found[group] = {
                **columns,
                "units": total("n"),
                "events_count": in_period("n"),
                "ptac": in_period("ptac"),
            }
        elif query.prorated:  # sum (prorated unique counts read the events)
            if total("nv") == 0:
                continue
            found[group] = {
                **columns,
                "carried": Decimal(before["sv"] or 0) if before else ZERO,
                "day_values": in_period("dv"),
                "variation": in_period("sv"),
                "events_count": in_period("nv"),
                "ptac": in_period("ptac_v"),
            }
        elif kind in (AggregationType.SUM, AggregationType.MAX, AggregationType.LATEST):
            if total("nv") == 0:
                continue
            if kind == AggregationType.SUM:
                units = total("sv")
            elif kind == AggregationType.MAX:
                units = max(part["mx"] for part in both if part["mx"] is not None)
            else:  # latest is never recurring: one part
                units = max(Decimal(both[0]["lv"]), ZERO)
            found[group] = {
                **columns,
                "units": units,
                "events_count": in_period("nv"),
                "ptac": in_period("ptac_v"),
            }
        elif kind == AggregationType.UNIQUE_COUNT:
            if total("n_prop") == 0:
                continue
            found[group] = {
                **columns,
                "units": Decimal(both[0]["active_units"] or 0),
                "events_count": in_period("n_prop"),
                "ptac": in_period("ptac_prop"),
            }
    if kind == AggregationType.WEIGHTED_SUM:
        found = _weighted(query, totals)
    return [found[group] for group in sorted(found, key=_group_order)]


def _weighted(query: AggregationQuery, totals: dict[tuple, dict[str, dict]]) -> dict[tuple, dict]:
    """area = initial x (end - start) + end x Σv - Σ(v x t) over the period's events."""
    initial: dict[tuple, Decimal] = {}
    if query.initial_value is not None:
        initial[(None,)] = Decimal(query.initial_value)
    elif query.grouped_initial_values is not None:
        initial = {tuple(k): Decimal(v) for k, v in query.grouped_initial_values.items()}
    elif query.recurring:
        for group, parts in totals.items():
            before = parts.get("out")
            if before is not None and before["nv"]:
                initial[group] = Decimal(before["sv"])
    start, end = _epoch(query.period_from), _epoch(_end_of_second(query.to_datetime))
    found = {}
    groups = {g for g, parts in totals.items() if parts.get("in") and parts["in"]["nv"]}
    for group in groups | set(initial):
        period = totals.get(group, {}).get("in")
        valued = bool(period and period["nv"])
        sv = Decimal(period["sv"]) if valued else ZERO  # type: ignore[index]
        tv = Decimal(period["tv"]) if valued else ZERO  # type: ignore[index]
        carried = initial.get(group, ZERO)
        with localcontext() as context:
            context.prec = 400  # exact: every term is a finite decimal far below this
            area = carried * (end - start) + end * sv - tv
        found[group] = {
            **{f"g{i}": value for i, value in enumerate(group)},
            "area": area,
            "events_count": int(period["nv"]) if valued else 0,  # type: ignore[index]
            "ptac": Decimal(period["ptac_v"]) if valued else ZERO,  # type: ignore[index]
            "variation": sv,
            "initial": carried,
        }
    return found


def aggregate_with_rollups(
    query: AggregationQuery, *, with_event_values: bool = False
) -> list[AggregationResult]:
    """`aggregate_postgres` reading the pre-aggregated rows where they answer the query."""
    if query.period_from > query.to_datetime:
        return [] if query.group_by else [_empty(query, with_event_values)]
    rows = rollup_rows(query, with_event_values=with_event_values)
    if rows is None:
        return aggregate_postgres(query, with_event_values=with_event_values)
    return results_of(query, rows, with_event_values)


def aggregate_many_with_rollups(
    queries: list[AggregationQuery] | tuple[AggregationQuery, ...],
    *,
    with_event_values: bool = False,
) -> list[list[AggregationResult]]:
    """`aggregate_with_rollups` of each query, in order: the rollup statements of one shape
    run as one (`run_many`), then the queries they cannot answer read the events, together
    too (`aggregate_many_postgres`)."""
    found: list[list[AggregationResult] | None] = [None] * len(queries)
    rolled = [
        index
        for index, query in enumerate(queries)
        if query.period_from <= query.to_datetime
        and pre_aggregated(query, with_event_values=with_event_values)
    ]
    statements = [Statement(*rollup_statement(queries[index])) for index in rolled]
    for index, fetched in zip(rolled, run_many(statements), strict=True):
        rows = _usable(queries[index], fetched)
        if rows is not None:
            found[index] = results_of(queries[index], rows, with_event_values)
    raw = [index for index, results in enumerate(found) if results is None]
    answered = aggregate_many_postgres(
        [queries[index] for index in raw], with_event_values=with_event_values
    )
    for index, results in zip(raw, answered, strict=True):
        found[index] = results
    return found  # type: ignore[return-value]
