"""What an aggregation of events is, and how PostgreSQL computes it (spec §4.2-§4.3, §7.12,
§7.13, §7.15).

`AggregationQuery` and `AggregationResult` are the store's vocabulary (re-exported by
`metering.store`); `aggregate_postgres` computes a query in ONE SQL statement: selection,
filters, groups and the formula all run in the database, Python only divides the totals the
statement returns (exactly, with `Decimal`) and applies the spec's ceilings. No ORM model of the
catalog is known here, only its vocabulary (`plans.choices.AggregationType`): callers pass plain
values.

Units are not rounded with the metric's `rounding_function` (spec §4.4): the caller does it with
`plans.charge_models.apply_rounding`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection

from metering.models import Event
from plans.choices import AggregationType

ALL_FILTER_VALUES = "__ALL_FILTER_VALUES__"  # a charge filter value meaning "any declared value"
ZERO = Decimal(0)
SECONDS_PER_DAY = 86400
UNIQUE_COUNT_PLACES = 5  # spec §4.3 / §28: unique count ceiled to 5 decimals
PRORATED_PLACES = 5  # spec §7.15: prorated sums and unique counts ceiled to 5 decimals
WEIGHTED_SUM_PLACES = 20  # spec §4.3: weighted sum ceiled to 20 decimals
# A property value aggregated as a number must look like one; anything else (text, booleans,
# objects, "NaN", "Infinity") is ignored as if the property were missing. The exponent is capped
# so that a hostile "1e999999" cannot overflow PostgreSQL's numeric.
NUMERIC_PATTERN = r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,3})?\s*$"
# A number is aggregated only within numeric(40, 15)'s range, |v| < 10^25, and from a text of
# at most NUMBER_MAX_LENGTH characters (so that reading it can never overflow): ingestion refuses
# a number beyond them (422 `value_is_out_of_range`); one stored anyway (before the rule, or
# written around ingestion) is skipped like a missing property and reported by `events.errors`.
NUMBER_LIMIT = Decimal(10) ** 25
NUMBER_MAX_LENGTH = 100
_NUMBER = re.compile(NUMERIC_PATTERN)


def read_number(text: str | None) -> Decimal | None:
    """The number the store reads from a property's text (`properties ->> field_name`): None
    for anything it does not aggregate (not a number, too long, beyond `NUMBER_LIMIT`)."""
    if text is None or len(text) > NUMBER_MAX_LENGTH or not _NUMBER.match(text):
        return None
    number = Decimal(text.strip())
    return number if abs(number) < NUMBER_LIMIT else None


_RECURRING_TYPES = {AggregationType.SUM, AggregationType.UNIQUE_COUNT, AggregationType.WEIGHTED_SUM}
_PRORATED_TYPES = {AggregationType.SUM, AggregationType.UNIQUE_COUNT}
# with_event_values: per-event values for the models that price events one by one
_EVENT_VALUE_TYPES = {
    AggregationType.COUNT,
    AggregationType.SUM,
    AggregationType.MAX,
    AggregationType.LATEST,
}

FilterValues = Mapping[str, Sequence[str]]
GroupKey = tuple[str | None, ...]


@dataclass(frozen=True)
class AggregationQuery:
    """One charge (or charge filter) of one subscription over one billing period.

    Selection (spec §4.2): events of `organization_id`, `external_subscription_id` and `code`,
    not discarded, with `timestamp` in [`from_datetime`, `to_datetime`] (both inclusive; pass the
    termination instant as `to_datetime` for a terminated subscription) and never before
    `subscription_started_at`. Recurring metrics look back to `subscription_started_at` (the
    start of the chain of subscriptions sharing the external id, when upgraded; None: no bound).

    `filters`: the charge filter's values (key -> values, `ALL_FILTER_VALUES` = any value in
    `declared_filter_values[key]`); `exclude_filters`: filters whose events this one must not
    count (more specific ones, §7.12; `charge_filter_scopes` computes them). `group_by`: pricing
    group keys (§7.13). Weighted sum: `period_duration_days` = full period length in days;
    recurring carry-over from `initial_value` (no group) or `grouped_initial_values` (keyed by
    the group values in `group_by` order), else from the events before the period. Prorated
    (§7.15): `period_duration_days` = D, `timezone` = the customer's applicable timezone.
    """

    organization_id: UUID
    external_subscription_id: str
    code: str
    aggregation_type: str
    field_name: str | None
    from_datetime: datetime
    to_datetime: datetime
    recurring: bool = False
    subscription_started_at: datetime | None = None
    filters: FilterValues | None = None
    declared_filter_values: FilterValues | None = None
    exclude_filters: Sequence[FilterValues] = ()
    group_by: Sequence[str] = ()
    initial_value: Decimal | None = None
    grouped_initial_values: Mapping[GroupKey, Decimal] | None = None
    period_duration_days: int | None = None
    prorated: bool = False
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        kind = _aggregation_type(self.aggregation_type)
        if kind != AggregationType.COUNT and not self.field_name:
            raise ValueError(f"{kind} needs a field_name")
        for name in ("from_datetime", "to_datetime", "subscription_started_at"):
            value = getattr(self, name)
            if value is not None and (value.tzinfo is None or value.utcoffset() is None):
                raise ValueError(f"{name} must be an aware datetime")
        if self.from_datetime > self.to_datetime:
            raise ValueError("from_datetime is after to_datetime")
        if self.recurring and kind not in _RECURRING_TYPES:
            raise ValueError(f"{kind} cannot be recurring")  # spec §4.1
        needs_duration = kind == AggregationType.WEIGHTED_SUM or self.prorated
        if needs_duration and not (self.period_duration_days and self.period_duration_days > 0):
            raise ValueError("period_duration_days must be a positive number of days")
        if self.prorated and (kind not in _PRORATED_TYPES or not self.recurring):
            raise ValueError("only recurring sum and unique count aggregations are prorated")
        has_initial = self.initial_value is not None or self.grouped_initial_values is not None
        if has_initial and (kind != AggregationType.WEIGHTED_SUM or not self.recurring):
            raise ValueError("initial values are for recurring weighted sums only")
        if self.initial_value is not None and self.group_by:
            raise ValueError("grouped aggregations take grouped_initial_values")
        for key in self.grouped_initial_values or {}:
            if len(key) != len(self.group_by):
                raise ValueError("grouped_initial_values keys must match group_by")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        for filter_values in [self.filters or {}, *self.exclude_filters]:
            expand_filter(filter_values, self.declared_filter_values)  # fails early on bad ALL

    @property
    def kind(self) -> AggregationType:
        return AggregationType(self.aggregation_type)

    @property
    def period_from(self) -> datetime:
        """First instant aggregated for the period: never before the subscription start."""
        start = self.subscription_started_at
        return max(self.from_datetime, start) if start else self.from_datetime


@dataclass(frozen=True)
class AggregationResult:
    """Aggregated units of one group (`{}` without pricing group keys).

    `events_count` and `precise_total_amount_cents` cover the events of the period only (for a
    recurring metric too). `total_aggregated_units`: weighted sum only, the running total at the
    period end (recurring: next period's `initial_value`) or its variation in the period
    (metered). `full_units`: prorated only, the units before proration. With
    `with_event_values`: `per_event_values` (count, sum, max, latest and prorated sum) are the
    period's event values in timestamp order, preceded for a prorated sum by the carried-over
    value when not 0; `per_event_prorated_values` the same values prorated.
    """

    group: dict[str, str | None]
    units: Decimal
    events_count: int
    precise_total_amount_cents: Decimal = ZERO
    total_aggregated_units: Decimal | None = None
    full_units: Decimal | None = None
    per_event_values: list[Decimal] | None = None
    per_event_prorated_values: list[Decimal] | None = None


@dataclass(frozen=True)
class FilterScope:
    """What one charge filter aggregates: its own values minus the events claimed by others.

    `filters` is None for the default bucket (events matching no filter of the charge).
    """

    filters: dict[str, list[str]] | None
    exclude_filters: tuple[dict[str, list[str]], ...] = field(default=())


def _aggregation_type(value: str) -> AggregationType:
    try:
        return AggregationType(value)
    except ValueError:
        raise ValueError(f"unknown aggregation_type {value!r}") from None


def expand_filter(
    filter_values: FilterValues, declared_filter_values: FilterValues | None
) -> dict[str, list[str]]:
    """Filter values with `ALL_FILTER_VALUES` replaced by the metric's declared values."""
    expanded: dict[str, list[str]] = {}
    for key, values in filter_values.items():
        if ALL_FILTER_VALUES in values:
            declared = (declared_filter_values or {}).get(key)
            if declared is None:
                raise ValueError(f"filter key {key!r} uses ALL without declared values")
            expanded[key] = [str(value) for value in declared]
        else:
            expanded[key] = [str(value) for value in values]
    return expanded


def charge_filter_scopes(
    charge_filters: Sequence[FilterValues], declared_filter_values: FilterValues
) -> list[FilterScope]:
    """The scope of each charge filter (same order), then the default bucket's (spec §7.12).

    Each event is counted by exactly one filter: among the filters it matches, the one with the
    most keys; on equal keys the narrower (fewer value combinations: `[eu]` before ALL or
    `[eu, us]`); then the older (`charge_filters` must be ordered oldest first). A filter's
    scope excludes every overlapping filter ranked before it; the default bucket excludes all.
    """
    expanded = [expand_filter(f, declared_filter_values) for f in charge_filters]
    ranked = sorted(
        range(len(expanded)),
        key=lambda i: (-len(expanded[i]), math.prod(len(set(v)) for v in expanded[i].values()), i),
    )
    scopes = []
    for index, filter_values in enumerate(expanded):
        above = ranked[: ranked.index(index)]
        scopes.append(
            FilterScope(
                filters={key: list(values) for key, values in charge_filters[index].items()},
                exclude_filters=tuple(
                    expanded[other] for other in above if _overlap(filter_values, expanded[other])
                ),
            )
        )
    scopes.append(FilterScope(filters=None, exclude_filters=tuple(expanded)))
    return scopes


def _overlap(first: dict[str, list[str]], second: dict[str, list[str]]) -> bool:
    """Whether one event can match both filters (each shared key has a common value)."""
    return all(set(first[key]) & set(second[key]) for key in first.keys() & second.keys())


# --------------------------------------------------------------------------------------------
# PostgreSQL


_STATEMENTS = {
    AggregationType.COUNT: "simple",
    AggregationType.SUM: "simple",
    AggregationType.MAX: "simple",
    AggregationType.LATEST: "latest",
    AggregationType.UNIQUE_COUNT: "unique_count",
    AggregationType.WEIGHTED_SUM: "weighted_sum",
}


def statement_name(query: AggregationQuery) -> str:
    """Which statement computes a query: the method name each store implements (the SQL
    builder here, the Python one in `metering.store.portable`)."""
    if query.prorated:
        return "prorated_sum" if query.kind == AggregationType.SUM else "prorated_unique"
    return _STATEMENTS[query.kind]


def json_text(value: object) -> str | None:
    """A property as PostgreSQL's `properties ->> key` renders it (None for JSON null)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return json.dumps(str(value))[1:-1]  # stored as a JSON string (DjangoJSONEncoder)
    return json.dumps(value)


def number_sql(text: Callable[[], str], param: Callable[[Any], str]) -> str:
    """SQL reading a text expression as `read_number` does (NULL for anything the store does
    not aggregate). `text()` renders the expression (called at each use, left to right, so
    that positional placeholders stay in order); `param` turns a value into a placeholder.
    The outer CASE guards the cast: only a short numeric text reaches it."""
    return (
        f"CASE WHEN {text()} ~ {param(NUMERIC_PATTERN)} "
        f"AND length({text()}) <= {NUMBER_MAX_LENGTH} THEN CASE WHEN abs({text()}::numeric) "
        f"< {param(NUMBER_LIMIT)} THEN {text()}::numeric END END"
    )


class _Params:
    """Named query parameters: every value reaches PostgreSQL as a parameter, never as text."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s"


@dataclass(frozen=True)
class Statement:
    """One parameterized SQL statement (psycopg `%(name)s` placeholders)."""

    sql: str
    params: dict[str, Any]


class _Builder:
    """Builds the one statement of a query; group columns are g0..gN (a constant g0 when the
    query has no pricing group keys, so every statement groups the same way)."""

    def __init__(self, query: AggregationQuery, *, with_event_values: bool) -> None:
        self.query = query
        self.kind = query.kind
        self.with_values = with_event_values
        self.p = _Params()
        self.table = Event._meta.db_table
        self.tz = ZoneInfo(query.timezone)
        count = max(len(query.group_by), 1)
        self.groups = [f"g{i}" for i in range(count)]

    # -- pieces ---------------------------------------------------------------------------

    def cols(self, alias: str | None = None) -> str:
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + name for name in self.groups)

    def on(self, left: str, right: str) -> str:
        return " AND ".join(
            f"{left}.{name} IS NOT DISTINCT FROM {right}.{name}" for name in self.groups
        )

    def group_exprs(self) -> str:
        if not self.query.group_by:
            return "NULL::text AS g0"
        # spec §7.13: a missing (or empty) property is the null group
        return ", ".join(
            f"NULLIF(e.properties ->> {self.p(key)}, '') AS g{i}"
            for i, key in enumerate(self.query.group_by)
        )

    def property_expr(self) -> str:
        return f"(e.properties ->> {self.p(self.query.field_name)})"

    def value_expr(self) -> str:
        prop = self.property_expr()
        return f"COALESCE(e.value, {number_sql(lambda: prop, self.p)})"

    def where(self, lower: datetime | None) -> str:
        q, p = self.query, self.p
        conditions = [
            f"e.organization_id = {p(q.organization_id)}",
            f"e.external_subscription_id = {p(q.external_subscription_id)}",
            f"e.code = {p(q.code)}",
            "e.deleted_at IS NULL",
            f"e.timestamp <= {p(q.to_datetime)}",
        ]
        if lower is not None:
            conditions.append(f"e.timestamp >= {p(lower)}")
        # spec §7.12: the event has every key of the filter with one of its values
        for key, values in expand_filter(q.filters or {}, q.declared_filter_values).items():
            conditions.append(f"(e.properties ->> {p(key)}) = ANY({p(values)}::text[])")
        for excluded in q.exclude_filters:
            expanded = expand_filter(excluded, q.declared_filter_values)
            # a missing property must not turn the whole test into NULL (which would drop it)
            claimed = " AND ".join(
                f"COALESCE((e.properties ->> {p(key)}) = ANY({p(values)}::text[]), FALSE)"
                for key, values in expanded.items()
            )
            conditions.append(f"NOT ({claimed})" if claimed else "FALSE")
        return " AND ".join(conditions)

    def selection(self, lower: datetime | None, extra_columns: str, required: str) -> str:
        """The `sel` CTE: the selected events with their group columns and `extra_columns`,
        keeping only rows where `required` is not null."""
        return (
            f"sel AS (SELECT * FROM (SELECT e.id, e.timestamp AS ts, "
            f"e.precise_total_amount_cents AS ptac, {self.group_exprs()}, {extra_columns} "
            f"FROM {self.table} e WHERE {self.where(lower)}) raw WHERE {required} IS NOT NULL)"
        )

    def local_day(self, instant: datetime) -> date:
        return instant.astimezone(self.tz).date()

    # -- statements -----------------------------------------------------------------------

    def build(self) -> Statement:
        method = getattr(self, statement_name(self.query))
        return Statement(sql=method(), params=self.p.values)

    def window_lower(self) -> datetime | None:
        """Lower bound of the events read: the subscription start for a recurring metric."""
        if self.query.recurring:
            return self.query.subscription_started_at
        return self.query.period_from

    def in_period(self) -> str:
        return f"ts >= {self.p(self.query.period_from)}"

    def simple(self) -> str:
        """count, sum (recurring: since the subscription start) and max."""
        if self.kind == AggregationType.COUNT:
            sel = self.selection(self.window_lower(), "1::numeric AS val", "id")
            units = "COUNT(*)"
        else:
            sel = self.selection(self.window_lower(), f"{self.value_expr()} AS val", "val")
            units = "SUM(val)" if self.kind == AggregationType.SUM else "MAX(val)"
        g, period = self.cols(), self.in_period()
        values = ""
        if self.with_values:
            values = f", ARRAY_AGG(val ORDER BY ts, id) FILTER (WHERE {period}) AS event_values"
        return f"""
            WITH {sel}
            SELECT {g}, {units} AS units,
                   COUNT(*) FILTER (WHERE {period}) AS events_count,
                   COALESCE(SUM(ptac) FILTER (WHERE {period}), 0) AS ptac {values}
            FROM sel GROUP BY {g} ORDER BY {g}
        """

    def latest(self) -> str:
        sel = self.selection(self.window_lower(), f"{self.value_expr()} AS val", "val")
        g, st_g = self.cols(), self.cols("st")
        values = ", ARRAY_AGG(val ORDER BY ts, id) AS event_values" if self.with_values else ""
        st_values = ", st.event_values" if self.with_values else ""
        # spec §4.3: the last event by timestamp; a negative value clamps to 0
        return f"""
            WITH {sel},
            last AS (
                SELECT DISTINCT ON ({g}) {g}, val FROM sel ORDER BY {g}, ts DESC, id DESC
            ),
            st AS (
                SELECT {g}, COUNT(*) AS events_count, COALESCE(SUM(ptac), 0) AS ptac {values}
                FROM sel GROUP BY {g}
            )
            SELECT {st_g}, GREATEST(last.val, 0) AS units, st.events_count, st.ptac {st_values}
            FROM st JOIN last ON {self.on("st", "last")}
            ORDER BY {st_g}
        """

    def unique_columns(self, *, with_day: bool = False) -> str:
        # spec §4.3: `add` by default; only an explicit `remove` removes
        columns = (
            f"{self.property_expr()} AS prop, "
            "CASE WHEN e.properties ->> 'operation_type' = 'remove' "
            "THEN 'remove' ELSE 'add' END AS op"
        )
        if with_day:
            columns += f", (e.timestamp AT TIME ZONE {self.p(self.query.timezone)})::date AS day"
        return columns

    def unique_ctes(self) -> str:
        """`last_op` (latest operation per value), `active` (how many values end on an add)
        and `st` (events of the period), shared by the plain and prorated unique counts."""
        g, period = self.cols(), self.in_period()
        return f"""
            last_op AS (
                SELECT DISTINCT ON ({g}, prop) {g}, prop, op
                FROM sel ORDER BY {g}, prop, ts DESC, id DESC
            ),
            active AS (
                SELECT {g}, COUNT(*) FILTER (WHERE op = 'add') AS units
                FROM last_op GROUP BY {g}
            ),
            st AS (
                SELECT {g}, COUNT(*) FILTER (WHERE {period}) AS events_count,
                       COALESCE(SUM(ptac) FILTER (WHERE {period}), 0) AS ptac
                FROM sel GROUP BY {g}
            )
        """

    def unique_count(self) -> str:
        sel = self.selection(self.window_lower(), self.unique_columns(), "prop")
        st_g = self.cols("st")
        return f"""
            WITH {sel}, {self.unique_ctes()}
            SELECT {st_g}, active.units AS units, st.events_count, st.ptac
            FROM st JOIN active ON {self.on("st", "active")}
            ORDER BY {st_g}
        """

    def prorated_unique(self) -> str:
        """Spec §7.15: each value weighs the local days it was active in the period, from
        max(add day, period start) to min(remove day, period end), both inclusive. A value
        removed and added again on one day counts that day once (its spans are merged)."""
        q = self.query
        sel = self.selection(self.window_lower(), self.unique_columns(with_day=True), "prop")
        g, st_g = self.cols(), self.cols("st")
        from_day = f"{self.p(self.local_day(q.period_from))}::date"
        to_day = f"{self.p(self.local_day(q.to_datetime))}::date"
        part = f"PARTITION BY {g}, prop"
        return f"""
            WITH {sel}, {self.unique_ctes()},
            ordered AS (
                SELECT {g}, prop, op, ts, id, day,
                       LAG(op) OVER ({part} ORDER BY ts, id) AS prev_op
                FROM sel
            ),
            -- the operations that change a value's state (a repeated add changes nothing)
            changes AS (SELECT * FROM ordered WHERE op <> COALESCE(prev_op, 'remove')),
            spans AS (
                SELECT {g}, prop, op, GREATEST(day, {from_day}) AS s,
                       LEAST(COALESCE(LEAD(day) OVER ({part} ORDER BY ts, id), {to_day}),
                             {to_day}) AS e
                FROM changes
            ),
            adds AS (SELECT * FROM spans WHERE op = 'add' AND e >= s),
            marked AS (
                SELECT *, MAX(e) OVER ({part} ORDER BY s, e
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_e
                FROM adds
            ),
            islands AS (
                SELECT *, SUM(CASE WHEN prev_e IS NULL OR s > prev_e THEN 1 ELSE 0 END)
                          OVER ({part} ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island
                FROM marked
            ),
            island_days AS (
                SELECT {g}, MAX(e) - MIN(s) + 1 AS days FROM islands GROUP BY {g}, prop, island
            ),
            weighted AS (SELECT {g}, SUM(days) AS days FROM island_days GROUP BY {g})
            SELECT {st_g}, COALESCE(weighted.days, 0) AS active_days,
                   active.units AS full_units, st.events_count, st.ptac
            FROM st
            JOIN active ON {self.on("st", "active")}
            LEFT JOIN weighted ON {self.on("st", "weighted")}
            ORDER BY {st_g}
        """

    def prorated_sum(self) -> str:
        """Spec §7.15: v(e) x d(e), d(e) = local days from the event's day to the period end,
        both inclusive; the value carried over from earlier periods comes back apart."""
        q = self.query
        to_day = f"{self.p(self.local_day(q.to_datetime))}::date"
        days = f"({to_day} - (e.timestamp AT TIME ZONE {self.p(q.timezone)})::date + 1)"
        sel = self.selection(self.window_lower(), f"{self.value_expr()} AS val, {days} AS d", "val")
        g, period = self.cols(), self.in_period()
        values = ""
        if self.with_values:
            values = f""",
                ARRAY_AGG(val ORDER BY ts, id) FILTER (WHERE {period}) AS event_values,
                ARRAY_AGG(val * d ORDER BY ts, id) FILTER (WHERE {period}) AS event_day_values
            """
        return f"""
            WITH {sel}
            SELECT {g},
                   COALESCE(SUM(val) FILTER (WHERE NOT ({period})), 0) AS carried,
                   COALESCE(SUM(val * d) FILTER (WHERE {period}), 0) AS day_values,
                   COALESCE(SUM(val) FILTER (WHERE {period}), 0) AS variation,
                   COUNT(*) FILTER (WHERE {period}) AS events_count,
                   COALESCE(SUM(ptac) FILTER (WHERE {period}), 0) AS ptac {values}
            FROM sel GROUP BY {g} ORDER BY {g}
        """

    def weighted_sum(self) -> str:
        """Spec §4.3: SUM over segments of R(t_i) x (t_{i+1} - t_i) in seconds; the division
        by the period's seconds happens in Python, exactly."""
        q = self.query
        given = q.initial_value is not None or q.grouped_initial_values is not None
        from_events = q.recurring and not given
        lower = q.subscription_started_at if from_events else q.period_from
        sel = self.selection(lower, f"{self.value_expr()} AS val", "val")
        g, grps_g, period = self.cols(), self.cols("grps"), self.in_period()
        if from_events:
            # the running total carried in: every earlier event since the subscription start
            init = f"SELECT {g}, SUM(val) AS val FROM sel WHERE NOT ({period}) GROUP BY {g}"
        elif q.initial_value is not None:
            init = f"SELECT NULL::text AS g0, {self.p(q.initial_value)}::numeric AS val"
        elif q.grouped_initial_values:
            rows = ", ".join(
                "("
                + ", ".join(f"{self.p(value)}::text" for value in key)
                + f", {self.p(amount)}::numeric)"
                for key, amount in q.grouped_initial_values.items()
            )
            init = f"SELECT * FROM (VALUES {rows}) AS t({g}, val)"
        else:
            init = f"SELECT {g}, 0::numeric AS val FROM sel WHERE FALSE"
        start = f"{self.p(q.period_from)}::timestamptz"
        end = f"{self.p(_end_of_second(q.to_datetime))}::timestamptz"  # spec §4.3
        part = f"PARTITION BY {g}"
        return f"""
            WITH {sel},
            init AS ({init}),
            period AS (SELECT * FROM sel WHERE {period}),
            grps AS (SELECT {g} FROM period UNION SELECT {g} FROM init),
            points AS (
                SELECT {grps_g}, {start} AS ts, COALESCE(init.val, 0) AS delta
                FROM grps LEFT JOIN init ON {self.on("grps", "init")}
                UNION ALL SELECT {g}, ts, val FROM period
                UNION ALL SELECT {g}, {end}, 0 FROM grps
            ),
            -- RANGE: events sharing a timestamp are summed before weighting (every peer sees
            -- the same total; all but the last have a zero-length segment)
            running AS (
                SELECT {g}, ts,
                       SUM(delta) OVER ({part} ORDER BY ts RANGE UNBOUNDED PRECEDING) AS total,
                       LEAD(ts) OVER ({part} ORDER BY ts) AS next_ts
                FROM points
            ),
            area AS (
                SELECT {g}, COALESCE(SUM(total * EXTRACT(EPOCH FROM next_ts - ts)), 0) AS area
                FROM running GROUP BY {g}
            ),
            st AS (
                SELECT {g}, COUNT(*) AS events_count, COALESCE(SUM(ptac), 0) AS ptac,
                       COALESCE(SUM(val), 0) AS variation
                FROM period GROUP BY {g}
            )
            SELECT {grps_g}, area.area, COALESCE(st.events_count, 0) AS events_count,
                   COALESCE(st.ptac, 0) AS ptac, COALESCE(st.variation, 0) AS variation,
                   COALESCE(init.val, 0) AS initial
            FROM grps
            JOIN area ON {self.on("grps", "area")}
            LEFT JOIN st ON {self.on("grps", "st")}
            LEFT JOIN init ON {self.on("grps", "init")}
            ORDER BY {grps_g}
        """


def _end_of_second(instant: datetime) -> datetime:
    """The instant after the last second of the window: `to_datetime` is the last instant
    included, 23:59:59 (billing.periods) or 23:59:59.999 (Lago), both ending at midnight."""
    return instant.replace(microsecond=0) + timedelta(seconds=1)


def ceil_places(value: Decimal, places: int) -> Decimal:
    """`value` ceiled to `places` decimals; a value already that precise is kept as is."""
    if int(value.as_tuple().exponent) >= -places:
        return value
    with localcontext() as context:
        context.prec = max(context.prec, value.adjusted() + places + 2)
        return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING)


def _divide(numerator: Decimal, denominator: int) -> Decimal:
    with localcontext() as context:
        context.prec = 60  # far beyond the 20 decimals kept by the weighted sum
        return Decimal(numerator) / Decimal(denominator)


def aggregation_statement(query: AggregationQuery, *, with_event_values: bool = False) -> Statement:
    """The SQL of a query (exposed for EXPLAIN in tests and for benchmarks)."""
    return _Builder(query, with_event_values=with_event_values).build()


def aggregate_postgres(
    query: AggregationQuery, *, with_event_values: bool = False
) -> list[AggregationResult]:
    """Run a query on PostgreSQL: one result per group, `[{}]`-grouped one without group_by."""
    if query.period_from > query.to_datetime:  # the subscription starts after the window
        return [] if query.group_by else [_empty(query, with_event_values)]
    statement = aggregation_statement(query, with_event_values=with_event_values)
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        names = [column.name for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    return results_of(query, rows, with_event_values)


def results_of(
    query: AggregationQuery, rows: Sequence[dict], with_event_values: bool
) -> list[AggregationResult]:
    """The results of a query from its statement's rows (`[{}]`-grouped empty one without
    group_by and rows)."""
    results = [_tidy(_result(query, row, with_event_values)) for row in rows]
    if not results and not query.group_by:
        results = [_empty(query, with_event_values)]
    return results


def aggregate_many_postgres(
    queries: Sequence[AggregationQuery], *, with_event_values: bool = False
) -> list[list[AggregationResult]]:
    """`aggregate_postgres` of each query, in order: the queries of one statement shape (the
    same aggregation of the same charge for many subscriptions) run as one statement
    (`run_many`)."""
    found: list[list[AggregationResult]] = [[] for _ in queries]
    todo = []
    for index, query in enumerate(queries):
        if query.period_from > query.to_datetime:
            found[index] = [] if query.group_by else [_empty(query, with_event_values)]
        else:
            todo.append(index)
    statements = [
        aggregation_statement(queries[i], with_event_values=with_event_values) for i in todo
    ]
    for index, rows in zip(todo, run_many(statements), strict=True):
        found[index] = results_of(queries[index], rows, with_event_values)
    return found


# --------------------------------------------------------------------------------------------
# Many statements in one


MANY_AT_ONCE = 500  # statements joined into one at most
_PLACEHOLDER = re.compile(r"%\((p\d+)\)s")
# parameter types a LATERAL join passes as a column (others must be equal across the batch)
_COLUMN_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "bigint"),
    (Decimal, "numeric"),
    (datetime, "timestamptz"),
    (date, "date"),
    (UUID, "uuid"),
    (str, "text"),
)


def _column_type(values: Sequence[Any]) -> str | None:
    """The SQL type of a parameter column holding these values (None: not a scalar)."""
    kinds = {type(value) for value in values if value is not None}
    if len(kinds) != 1:
        return None
    (kind,) = kinds
    return next((sql for python, sql in _COLUMN_TYPES if issubclass(kind, python)), None)


def run_many(statements: Sequence[Statement]) -> list[list[dict]]:
    """The rows of each statement (dicts by column name, in the statement's order), in fewer
    round trips: statements of the same SQL text (one aggregation of one charge for many
    subscriptions: only parameter values differ) run as ONE statement, a LATERAL join of
    that text over the rows of their differing parameters, planned once. Each statement's
    rows come back numbered in its own order, so the results are those of running it alone."""
    found: list[list[dict]] = [[] for _ in statements]
    shapes: dict[str, list[int]] = {}
    for index, statement in enumerate(statements):
        shapes.setdefault(statement.sql, []).append(index)
    for indexes in shapes.values():
        for group in _joinable(statements, indexes):
            for start in range(0, len(group), MANY_AT_ONCE):
                chunk = group[start : start + MANY_AT_ONCE]
                for index, rows in zip(chunk, _run_joined(statements, chunk), strict=True):
                    found[index] = rows
    return found


def _varying(statements: Sequence[Statement], indexes: Sequence[int]) -> list[str]:
    first = statements[indexes[0]].params
    return [
        name
        for name in first
        if any(statements[i].params[name] != first[name] for i in indexes[1:])
    ]


def _joinable(statements: Sequence[Statement], indexes: list[int]) -> list[list[int]]:
    """Statements of one SQL text split where a differing parameter is not a scalar (a list
    of filter values: equal within each part)."""
    apart = [
        name
        for name in _varying(statements, indexes)
        if _column_type([statements[i].params[name] for i in indexes]) is None
    ]
    if not apart:
        return [indexes]
    parts: dict[str, list[int]] = {}
    for index in indexes:
        key = repr([statements[index].params[name] for name in apart])
        parts.setdefault(key, []).append(index)
    return list(parts.values())


def _fetch(sql: str, params: dict[str, Any]) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column.name for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _run_joined(statements: Sequence[Statement], indexes: Sequence[int]) -> list[list[dict]]:
    first = statements[indexes[0]]
    varying = _varying(statements, indexes)
    if not varying:  # the same statement (or one): run once
        rows = _fetch(first.sql, first.params)
        return [list(rows) for _ in indexes]
    columns = {name: [statements[i].params[name] for i in indexes] for name in varying}
    body = _PLACEHOLDER.sub(
        lambda match: f"q_p.{match[1]}" if match[1] in columns else match[0], first.sql
    )
    arrays = ", ".join(
        f"%(v_{name})s::{_column_type(values)}[]" for name, values in columns.items()
    )
    sql = f"""
        SELECT q_p.q_index, q_s.* FROM unnest(%(q_indexes)s::int[], {arrays})
            AS q_p(q_index, {", ".join(columns)})
        CROSS JOIN LATERAL (
            SELECT q_x.*, row_number() OVER () AS q_row FROM ({body}) q_x
        ) q_s
        ORDER BY q_p.q_index, q_s.q_row
    """
    params = {name: value for name, value in first.params.items() if name not in columns}
    params |= {f"v_{name}": values for name, values in columns.items()}
    params["q_indexes"] = list(range(len(indexes)))
    found: list[list[dict]] = [[] for _ in indexes]
    for row in _fetch(sql, params):
        position = row.pop("q_index")
        del row["q_row"]
        found[position].append(row)
    return found


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros (the numeric(40, 15) value column adds 15) nor exponent form."""
    with localcontext() as context:
        context.prec = max(context.prec, value.adjusted() + 2)
        if value == value.to_integral_value():
            return value.quantize(Decimal(1))
        return value.normalize()


def _tidy(result: AggregationResult) -> AggregationResult:
    def plain(value: Decimal | None) -> Decimal | None:
        return None if value is None else _plain(value)

    def plain_list(values: list[Decimal] | None) -> list[Decimal] | None:
        return None if values is None else [_plain(value) for value in values]

    return replace(
        result,
        units=_plain(result.units),
        precise_total_amount_cents=_plain(result.precise_total_amount_cents),
        total_aggregated_units=plain(result.total_aggregated_units),
        full_units=plain(result.full_units),
        per_event_values=plain_list(result.per_event_values),
        per_event_prorated_values=plain_list(result.per_event_prorated_values),
    )


def _empty(query: AggregationQuery, with_event_values: bool) -> AggregationResult:
    kind = query.kind
    has_values = with_event_values and kind in _EVENT_VALUE_TYPES
    return AggregationResult(
        group={},
        units=ZERO,
        events_count=0,
        total_aggregated_units=ZERO if kind == AggregationType.WEIGHTED_SUM else None,
        full_units=ZERO if query.prorated else None,
        per_event_values=[] if has_values else None,
        per_event_prorated_values=[] if has_values and query.prorated else None,
    )


def _result(query: AggregationQuery, row: dict, with_event_values: bool) -> AggregationResult:
    group = {key: row[f"g{i}"] for i, key in enumerate(query.group_by)}
    common = {
        "group": group,
        "events_count": int(row["events_count"]),
        "precise_total_amount_cents": Decimal(row["ptac"]),
    }
    kind = query.kind
    days = query.period_duration_days or 0  # positive whenever a formula divides by it
    if kind == AggregationType.WEIGHTED_SUM:
        area = _divide(row["area"], days * SECONDS_PER_DAY)
        variation = Decimal(row["variation"])
        total = Decimal(row["initial"]) + variation if query.recurring else variation
        return AggregationResult(
            units=ceil_places(area, WEIGHTED_SUM_PLACES), total_aggregated_units=total, **common
        )
    if query.prorated and kind == AggregationType.UNIQUE_COUNT:
        units = _divide(row["active_days"], days)
        return AggregationResult(
            units=ceil_places(units, PRORATED_PLACES),
            full_units=Decimal(row["full_units"]),
            **common,
        )
    if query.prorated:
        carried = Decimal(row["carried"])
        period_days = (
            _local_day(query.to_datetime, query) - _local_day(query.period_from, query)
        ).days + 1
        # spec §7.15: the carried value weighs the share of the period the subscription existed
        numerator = carried * period_days + Decimal(row["day_values"])
        values = prorated_values = None
        if with_event_values:
            values = ([carried] if carried else []) + list(row["event_values"] or [])
            prorated_values = ([_divide(carried * period_days, days)] if carried else []) + [
                _divide(value, days) for value in row["event_day_values"] or []
            ]
        return AggregationResult(
            units=ceil_places(_divide(numerator, days), PRORATED_PLACES),
            full_units=carried + Decimal(row["variation"]),
            per_event_values=values,
            per_event_prorated_values=prorated_values,
            **common,
        )
    units = Decimal(row["units"] if row["units"] is not None else 0)
    if kind == AggregationType.UNIQUE_COUNT:
        return AggregationResult(units=ceil_places(units, UNIQUE_COUNT_PLACES), **common)
    values = list(row["event_values"] or []) if with_event_values else None
    return AggregationResult(units=units, per_event_values=values, **common)


def _local_day(instant: datetime, query: AggregationQuery) -> date:
    return instant.astimezone(ZoneInfo(query.timezone)).date()
