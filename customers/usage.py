"""The usage engine: what a subscription's charges amount to over a usage window (spec §4, §7,
§25), and what one event bills on a pay-in-advance charge (spec §7.14).

Aggregation happens in the database through the event store (`billing.metering.store`): one
statement per charge filter (and the default bucket), grouped by pricing group keys; the units
then go through the metric's rounding (§4.4) and the pure charge models
(`plans.charge_models.compute`). Nothing here writes fees: invoicing turns `ChargeUsage` into
fees (spec §13), the current-usage endpoint renders them (§25).

    window = usage_window(subscription=subscription, at=now)      # period containing `at`
    usages = subscription_usage(subscription=subscription, window=window)
    body = customer_current_usage(customer=c, subscription=s, now=now)   # §25 `customer_usage`

Pay-in-advance (§7.14) needs the period "so far": the running total of the charge's filter and
pricing group just before the event, and its maximum (sum and unique count bill only what exceeds
the period maximum). The full path replays the period's events from the store in Python (in
timestamp, then id order); the cached path (`CachedAggregation`, the only rows written here)
resumes from the state stored after an earlier event of the same charge, filter, group,
subscription and period and replays only the events since (see "Cached aggregations" below).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, localcontext
from typing import Any, Literal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from django.core.exceptions import FieldDoesNotExist
from django.db import connection, transaction
from django.db.models import Prefetch, Q, QuerySet

from billing.errors import Invalid, NotFound
from billing.metering.aggregation import json_text
from billing.metering.store import (
    ALL_FILTER_VALUES,
    AggregationQuery,
    AggregationResult,
    FilterScope,
    charge_filter_scopes,
    get_event_store,
)
from billing.models import Organization
from billing.money import amount_to_cents, decimal_string, round_cents, to_minor
from billing.periods import Period, local_date, period_containing
from customers.models import CachedAggregation, Customer, Subscription
from customers.presentation import (
    PresentationBreakdown,
    breakdowns_payload,
    merge,
    ordered,
    presentation_keys,
)
from customers.services.events import (
    MetricInfo,
    build_event_input,
    metrics_by_code,
    number_of,
)
from customers.services.subscriptions import initial_started_at, subscription_cycle
from plans.charge_models import (
    ChargeResult,
    apply_rounding,
    compute,
    in_advance_amount,
    in_advance_units,
    percentage_transaction_amounts,
    prorated_units,
    standard_amount,
)
from plans.models import AggregationType, BillableMetricFilter, Charge, ChargeFilter, Tax
from plans.selectors import applicable_taxes

ZERO = Decimal(0)
HUNDRED = Decimal(100)
_PRORATABLE = frozenset({AggregationType.SUM, AggregationType.UNIQUE_COUNT})
_RECURRING = frozenset(
    {AggregationType.SUM, AggregationType.UNIQUE_COUNT, AggregationType.WEIGHTED_SUM}
)
# spec §5.2: estimate_fees needs a number for these (`value_is_not_valid_number`)
_NUMBER_REQUIRED = frozenset({AggregationType.SUM, AggregationType.MAX, AggregationType.LATEST})
# estimates refuse what the event store cannot keep as a number (numeric(40, 15)): 422, not 500
_ESTIMATE_UNITS_LIMIT = Decimal(10) ** 25
# Keys of the properties that price each model (Lago's FilterPropertiesService); a bucket without
# them has no price: the default bucket of a charge priced only by its filters (spec §7.12).
_PRICE_KEYS = {
    "standard": "amount",
    "package": "amount",
    "graduated": "graduated_ranges",
    "graduated_percentage": "graduated_percentage_ranges",
    "volume": "volume_ranges",
    "percentage": "rate",
}


# --------------------------------------------------------------------------------------------
# Windows


@dataclass(frozen=True)
class UsageWindow:
    """Boundaries of one usage computation (an `invoice_subscriptions` row, spec §10.3)."""

    from_datetime: datetime  # subscription-fee period boundaries
    to_datetime: datetime
    charges_from_datetime: datetime  # usage window, both ends inclusive
    charges_to_datetime: datetime
    charges_duration_days: int  # days of the full period of the usage window (§10.2)
    timezone: str  # the customer's applicable timezone


def usage_period(*, subscription: Subscription, at: datetime) -> Period:
    """The plan period containing `at`, clamped to the subscription's life (spec §10.1)."""
    cycle = subscription_cycle(subscription)
    started_at = subscription.started_at or subscription.subscription_at
    reference = max(at, started_at)
    terminated_at = subscription.terminated_at
    if terminated_at is not None:
        reference = min(reference, max(terminated_at, started_at))
    return period_containing(
        cycle,
        local_date(reference, cycle.timezone),
        started_at=started_at,
        terminated_at=terminated_at,
    )


def window_of(period: Period) -> UsageWindow:
    """The usage window of a `billing.periods.Period` (invoicing builds its windows this way)."""
    return UsageWindow(
        from_datetime=period.from_datetime,
        to_datetime=period.to_datetime,
        charges_from_datetime=period.charges_from_datetime,
        charges_to_datetime=period.charges_to_datetime,
        charges_duration_days=period.charges_duration_days,
        timezone=period.timezone.key,
    )


def usage_window(*, subscription: Subscription, at: datetime) -> UsageWindow:
    """The usage window of the period containing `at` (current usage)."""
    return window_of(usage_period(subscription=subscription, at=at))


def _selection_end(window: UsageWindow, subscription: Subscription) -> datetime:
    """Last instant selected: a window ending on a whole second (local 23:59:59) also takes the
    events stamped within that second; a window cut at the termination instant stops there."""
    end = window.charges_to_datetime
    if subscription.terminated_at is not None and end >= subscription.terminated_at:
        return end
    return end.replace(microsecond=999_999)


# --------------------------------------------------------------------------------------------
# Charge usage (in arrears)


@dataclass
class ChargeUsage:
    """One fee-to-be: a charge, one of its filters (None: the default bucket) and one pricing
    group, priced over a window (spec §7.4, §13)."""

    charge: Charge
    charge_filter: ChargeFilter | None
    grouped_by: dict[str, str | None]
    units: Decimal  # fee units: full (non-prorated) units for a prorated charge (spec §7.15)
    total_aggregated_units: Decimal | None
    events_count: int
    amount_cents: int
    precise_amount_cents: Decimal
    unit_amount_cents: int
    precise_unit_amount: Decimal  # major units
    amount_details: dict
    currency: str
    invoice_display_name: str
    projected_units: Decimal | None = None  # only with a period_ratio (projected usage, §25)
    projected_amount_cents: int | None = None
    # units per presentation group values (§7.13; empty without presentation_group_keys)
    presentation_breakdowns: list[PresentationBreakdown] = field(default_factory=list)


@dataclass(frozen=True)
class _Bucket:
    charge_filter: ChargeFilter | None
    scope: FilterScope
    properties: dict
    group_by: tuple[str, ...]
    presentation_by: tuple[str, ...] = ()  # presentation group keys (§7.13)


def _pricing_group_keys(properties: dict) -> tuple[str, ...]:
    keys = properties.get("pricing_group_keys")
    if keys is None:
        keys = properties.get("grouped_by")
    return tuple(str(key) for key in keys or ())


def _live_filters(charge: Charge) -> list[ChargeFilter]:
    prefetched = getattr(charge, "live_filters", None)
    if prefetched is not None:
        return prefetched
    return list(charge.filters.alive().order_by("created_at", "id"))


def _declared_filter_values(charge: Charge) -> dict[str, list[str]]:
    metric = charge.billable_metric
    filters = getattr(metric, "live_filters", None)
    if filters is None:
        filters = list(metric.filters.alive())
    return {f.key: [str(value) for value in f.values] for f in filters}


def _buckets(charge: Charge) -> list[_Bucket]:
    """Each charge filter, oldest first, then the default bucket (spec §7.12)."""
    filters = _live_filters(charge)
    declared = _declared_filter_values(charge)
    scopes = charge_filter_scopes([f.values for f in filters], declared)
    charge_keys = _pricing_group_keys(charge.properties or {})
    buckets = []
    for charge_filter, scope in zip([*filters, None], scopes, strict=True):
        properties = charge.properties if charge_filter is None else charge_filter.properties
        properties = properties or {}
        buckets.append(
            _Bucket(
                charge_filter=charge_filter,
                scope=scope,
                properties=properties,
                group_by=_pricing_group_keys(properties) or charge_keys,
                presentation_by=presentation_keys(properties, charge.properties),
            )
        )
    return buckets


def _priced(charge_model: str, properties: dict) -> bool:
    key = _PRICE_KEYS.get(charge_model)
    return key is None or properties.get(key) not in (None, "", [])


def _is_prorated(charge: Charge) -> bool:
    metric = charge.billable_metric
    return bool(charge.prorated and metric.recurring and metric.aggregation_type in _PRORATABLE)


def _query(
    *,
    subscription: Subscription,
    charge: Charge,
    bucket: _Bucket,
    window: UsageWindow,
    chain_started_at: datetime,
) -> AggregationQuery:
    metric = charge.billable_metric
    kind = metric.aggregation_type
    prorated = _is_prorated(charge)
    recurring = bool(metric.recurring and kind in _RECURRING)
    needs_days = kind == AggregationType.WEIGHTED_SUM or prorated
    return AggregationQuery(
        organization_id=subscription.organization_id,
        external_subscription_id=subscription.external_id,
        code=metric.code,
        aggregation_type=kind,
        field_name=None if kind == AggregationType.COUNT else metric.field_name,
        from_datetime=window.charges_from_datetime,
        to_datetime=_selection_end(window, subscription),
        recurring=recurring,
        subscription_started_at=chain_started_at,
        filters=bucket.scope.filters,
        declared_filter_values=_declared_filter_values(charge),
        exclude_filters=bucket.scope.exclude_filters,
        group_by=bucket.group_by,
        period_duration_days=window.charges_duration_days if needs_days else None,
        prorated=prorated,
        timezone=window.timezone,
    )


def _display_name(charge: Charge, charge_filter: ChargeFilter | None) -> str:
    if charge_filter is not None and charge_filter.invoice_display_name:
        return charge_filter.invoice_display_name
    return charge.invoice_display_name or charge.billable_metric.name


def _usage(
    *,
    charge: Charge,
    bucket: _Bucket,
    group: dict[str, str | None],
    units: Decimal,
    events_count: int,
    result: ChargeResult | None,
    total_aggregated_units: Decimal | None,
    currency: str,
    breakdowns: list[PresentationBreakdown] | None = None,
) -> ChargeUsage:
    amount = result.amount if result is not None else ZERO
    unit_amount = result.unit_amount if result is not None else ZERO
    return ChargeUsage(
        charge=charge,
        charge_filter=bucket.charge_filter,
        grouped_by=group,
        units=units,
        total_aggregated_units=(
            total_aggregated_units if total_aggregated_units is not None else units
        ),
        events_count=events_count,
        amount_cents=amount_to_cents(amount, currency),
        precise_amount_cents=to_minor(amount, currency),
        unit_amount_cents=amount_to_cents(unit_amount, currency),
        precise_unit_amount=unit_amount,
        amount_details=result.amount_details if result is not None else {},
        currency=currency,
        invoice_display_name=_display_name(charge, bucket.charge_filter),
        projected_units=result.projected_units if result is not None else None,
        projected_amount_cents=result.projected_amount_cents(currency) if result else None,
        presentation_breakdowns=list(breakdowns or ()),
    )


def _running_maximum(start: Decimal, values: Iterable[Decimal]) -> Decimal:
    """Highest running total reached from `start` adding `values` in order (spec §7.14)."""
    current = highest = start
    for value in values:
        current += value
        highest = max(highest, current)
    return highest


def charge_usage(
    *,
    subscription: Subscription,
    charge: Charge,
    window: UsageWindow,
    period_ratio: Decimal | None = None,
    chain_started_at: datetime | None = None,
    presentation_filter: Sequence[str] | None = None,
) -> list[ChargeUsage]:
    """The in-arrears pricing of one charge over `window`: one entry per charge filter, then the
    default bucket, each split by pricing group (spec §7.12, §7.13).

    Units are rounded with the metric's rounding (§4.4) before pricing; a prorated charge is
    priced on its prorated units and reports its full units (§7.15); recurring metrics carry
    their value over from the subscription's start (§4.2). Entries with no usage are kept (units
    and amount 0, or the first graduated tier's flat fee); invoicing drops the zero fees (§7.17).
    A pay-in-advance charge (current usage only) is priced on its period maximum for sum and
    unique count, so that the amount is what the events already billed (§7.14, §25).
    `period_ratio` (elapsed share of the period) adds the projections of §25.
    `presentation_filter`: break down by these presentation keys only (§25
    `filter_by_presentation`).
    """
    metric = charge.billable_metric
    currency = subscription.plan.amount_currency
    if chain_started_at is None:
        chain_started_at = initial_started_at(subscription)
    prorated = _is_prorated(charge)
    graduated_prorated = prorated and charge.charge_model == "graduated"
    with_values = charge.charge_model == "percentage" or graduated_prorated
    in_advance_max = charge.pay_in_advance and metric.aggregation_type == AggregationType.SUM
    store = get_event_store()
    usages: list[ChargeUsage] = []
    for bucket in _buckets(charge):
        query = _query(
            subscription=subscription,
            charge=charge,
            bucket=bucket,
            window=window,
            chain_started_at=chain_started_at,
        )
        results: list[AggregationResult] = store.aggregate(
            query, with_event_values=with_values or in_advance_max
        )
        if not results:  # grouped and nothing yet: one empty entry keeps the charge visible
            results = [AggregationResult(group={}, units=ZERO, events_count=0)]
        breakdowns = _presentation_breakdowns(
            query, bucket, metric, prorated, only=presentation_filter
        )
        for aggregated in results:
            units = apply_rounding(
                aggregated.units, metric.rounding_function, metric.rounding_precision
            )
            full_units = aggregated.full_units
            if full_units is not None:
                full_units = apply_rounding(
                    full_units, metric.rounding_function, metric.rounding_precision
                )
            shown_units = full_units if prorated and full_units is not None else units
            priced_units = units
            if charge.pay_in_advance:
                priced_units = _in_advance_priced_units(
                    subscription=subscription,
                    charge=charge,
                    bucket=bucket,
                    window=window,
                    aggregated=aggregated,
                    units=units,
                    chain_started_at=chain_started_at,
                )
            result = None
            if _priced(charge.charge_model, bucket.properties):
                result = _compute(
                    charge=charge,
                    properties=bucket.properties,
                    aggregated=aggregated,
                    units=priced_units,
                    full_units=full_units,
                    prorated=prorated,
                    currency=currency,
                    period_ratio=period_ratio,
                )
            usages.append(
                _usage(
                    charge=charge,
                    bucket=bucket,
                    group=aggregated.group,
                    units=shown_units,
                    events_count=aggregated.events_count,
                    result=result,
                    total_aggregated_units=aggregated.total_aggregated_units,
                    currency=currency,
                    breakdowns=breakdowns.get(_group_key(aggregated.group), []),
                )
            )
    return usages


def _presentation_breakdowns(
    query: AggregationQuery,
    bucket: _Bucket,
    metric: Any,
    prorated: bool,
    only: Sequence[str] | None = None,
) -> dict[tuple, list[PresentationBreakdown]]:
    """Units of the bucket per pricing group, split by the presentation keys (spec §7.13): the
    same aggregation grouped by the pricing and presentation keys (one more statement), rounded
    like the fee's units (§4.4). Keyed by `_group_key` of the pricing group. `only`: keep these
    presentation keys (aggregated again on them, not summed, so unique counts stay right)."""
    keys = bucket.presentation_by
    if only is not None:
        keys = tuple(key for key in keys if key in only)
    if not keys:
        return {}
    extra = tuple(key for key in keys if key not in bucket.group_by)
    grouped = replace(query, group_by=(*bucket.group_by, *extra))
    split: dict[tuple, list[PresentationBreakdown]] = {}
    for result in get_event_store().aggregate(grouped):
        units = result.full_units if prorated and result.full_units is not None else result.units
        units = apply_rounding(units, metric.rounding_function, metric.rounding_precision)
        pricing = {key: result.group.get(key) for key in bucket.group_by}
        split.setdefault(_group_key(pricing), []).append(
            PresentationBreakdown({key: result.group.get(key) for key in keys}, units)
        )
    return {key: ordered(rows) for key, rows in split.items()}


def _compute(
    *,
    charge: Charge,
    properties: dict,
    aggregated: AggregationResult,
    units: Decimal,
    full_units: Decimal | None,
    prorated: bool,
    currency: str,
    period_ratio: Decimal | None,
) -> ChargeResult:
    per_event = aggregated.per_event_values
    per_event_prorated = aggregated.per_event_prorated_values
    graduated_prorated = prorated and charge.charge_model == "graduated"
    if graduated_prorated and (per_event is None or per_event_prorated is None):
        # the store has no per-event spans for a prorated unique count: price the prorated
        # units on the plain tier walk (tier chosen by the prorated units)
        prorated = False
    return compute(
        charge.charge_model,
        properties,
        units=units,
        events_count=aggregated.events_count,
        total_aggregated_units=aggregated.total_aggregated_units,
        per_event_units=per_event if charge.charge_model == "percentage" or prorated else None,
        per_event_prorated_units=per_event_prorated if prorated else None,
        full_units=full_units,
        precise_total_amount_cents=aggregated.precise_total_amount_cents,
        currency=currency,
        period_ratio=period_ratio,
        prorated=prorated,
    )


def _in_advance_priced_units(
    *,
    subscription: Subscription,
    charge: Charge,
    bucket: _Bucket,
    window: UsageWindow,
    aggregated: AggregationResult,
    units: Decimal,
    chain_started_at: datetime,
) -> Decimal:
    """Units a pay-in-advance charge was billed for so far in the period (spec §7.14, §25):
    the period maximum of the running total for sum and unique count, the units otherwise."""
    kind = charge.billable_metric.aggregation_type
    if kind == AggregationType.SUM and aggregated.per_event_values is not None:
        values = aggregated.per_event_values
        if _is_prorated(charge):  # the carried value leads the prorated values
            return units
        carried = aggregated.units - sum(values, ZERO) if charge.billable_metric.recurring else ZERO
        return max(units, _running_maximum(carried, values))
    if kind == AggregationType.UNIQUE_COUNT and not _is_prorated(charge):
        replay = _replay(
            subscription=subscription,
            charge=charge,
            bucket=bucket,
            window=window,
            group=aggregated.group,
            until=None,
            chain_started_at=chain_started_at,
        )
        return max(units, replay.highest)
    return units


# --------------------------------------------------------------------------------------------
# Subscription usage


def plan_charges(subscription: Subscription) -> list[Charge]:
    """The live charges of the subscription's plan with what pricing needs, oldest first."""
    return list(
        Charge.objects.alive()
        .filter(plan_id=subscription.plan_id, billable_metric__deleted_at__isnull=True)
        .select_related("billable_metric")
        .prefetch_related(
            Prefetch(
                "filters",
                queryset=ChargeFilter.objects.alive().order_by("created_at", "id"),
                to_attr="live_filters",
            ),
            Prefetch(
                "billable_metric__filters",
                queryset=BillableMetricFilter.objects.alive(),
                to_attr="live_filters",
            ),
            "taxes",
        )
        .order_by("created_at", "id")
    )


def subscription_usage(
    *,
    subscription: Subscription,
    window: UsageWindow,
    include_pay_in_advance: bool = False,
    period_ratio: Decimal | None = None,
    charges: Sequence[Charge] | None = None,
    presentation_filter: Sequence[str] | None = None,
) -> list[ChargeUsage]:
    """Every charge of the plan over `window` (`charge_usage` for each, in charge order).

    Pay-in-advance charges are billed event by event (§7.14): left out unless asked for (the
    current usage shows them, spec §25).
    """
    if charges is None:
        charges = plan_charges(subscription)
    chain_started_at = initial_started_at(subscription)
    usages: list[ChargeUsage] = []
    for charge in charges:
        if charge.pay_in_advance and not include_pay_in_advance:
            continue
        usages.extend(
            charge_usage(
                subscription=subscription,
                charge=charge,
                window=window,
                period_ratio=period_ratio,
                chain_started_at=chain_started_at,
                presentation_filter=presentation_filter,
            )
        )
    return usages


# --------------------------------------------------------------------------------------------
# Pay in advance (spec §7.14)


@dataclass(frozen=True)
class EventLike:
    """An event as the in-advance pricing reads it: stored, or only estimated (`id` None)."""

    transaction_id: str
    external_subscription_id: str
    code: str
    timestamp: datetime
    properties: dict
    precise_total_amount_cents: Decimal = ZERO
    value: Decimal | None = None
    id: int | None = None  # None: after every stored event of its timestamp (an estimate)


@dataclass(frozen=True)
class InAdvanceFee:
    """The fee one event bills on a pay-in-advance charge (spec §7.14); not persisted here."""

    charge: Charge
    charge_filter: ChargeFilter | None
    grouped_by: dict[str, str | None]
    units: Decimal
    events_count: int
    amount_cents: int
    precise_amount_cents: Decimal
    unit_amount_cents: int
    precise_unit_amount: Decimal
    amount_details: dict
    currency: str
    invoice_display_name: str
    window: UsageWindow
    event: EventLike
    # the event's presentation values carry the fee's units (§7.13)
    presentation_breakdowns: list[PresentationBreakdown] = field(default_factory=list)


def _expand(values: dict, declared: dict[str, list[str]]) -> dict[str, set[str]]:
    expanded = {}
    for key, accepted in values.items():
        accepted = [str(v) for v in accepted]
        expanded[key] = (
            set(declared.get(key, [])) if ALL_FILTER_VALUES in accepted else set(accepted)
        )
    return expanded


def _matches(properties: dict, values: dict[str, set[str]]) -> bool:
    return all(json_text(properties.get(key)) in accepted for key, accepted in values.items())


def _in_scope(properties: dict, scope: FilterScope, declared: dict[str, list[str]]) -> bool:
    """The store's filter semantics (docs/event-store.md "Filters"), for a handful of events."""
    if scope.filters is not None and not _matches(properties, _expand(scope.filters, declared)):
        return False
    return not any(
        _matches(properties, _expand(excluded, declared)) for excluded in scope.exclude_filters
    )


def _group_of(properties: dict, group_by: Sequence[str]) -> dict[str, str | None]:
    # spec §7.13 (store semantics): a missing, null or empty property is the null group
    return {key: (json_text(properties.get(key)) or None) for key in group_by}


def _event_bucket(charge: Charge, event: EventLike) -> _Bucket:
    declared = _declared_filter_values(charge)
    buckets = _buckets(charge)
    for bucket in buckets:
        if _in_scope(event.properties, bucket.scope, declared):
            return bucket
    return buckets[-1]


@dataclass(frozen=True)
class _Replay:
    """The period replayed up to an event: values in order, running total, maximum."""

    values: list[Decimal]  # the period's values (count: 1 each), this event last if included
    precise_total_amount_cents: Decimal
    carried: Decimal  # running total at the period start (recurring metrics)
    current_before: Decimal  # running total just before the event
    highest_before: Decimal  # period maximum just before the event
    current: Decimal  # after the event (or at the end of the replay)
    highest: Decimal


def _event_value(event: object, kind: str, field_name: str | None) -> Decimal | str | None:
    """What the store aggregates from an event (None: not aggregated)."""
    if kind == AggregationType.COUNT:
        return Decimal(1)
    properties = event.properties or {}
    if kind == AggregationType.UNIQUE_COUNT:
        return json_text(properties.get(field_name))
    stored = getattr(event, "value", None)
    return stored if stored is not None else number_of(properties.get(field_name))


def _replay(
    *,
    subscription: Subscription,
    charge: Charge,
    bucket: _Bucket,
    window: UsageWindow,
    group: dict[str, str | None],
    until: EventLike | None,
    chain_started_at: datetime,
) -> _Replay:
    """Replay the events of one bucket and group, in (timestamp, id) order, up to `until`
    (included; None: the whole window). Reads the events through the store."""
    metric = charge.billable_metric
    kind = metric.aggregation_type
    recurring = bool(metric.recurring and kind in _RECURRING)
    period_from = max(window.charges_from_datetime, chain_started_at)
    lower = chain_started_at if recurring else period_from
    upper = until.timestamp if until is not None else _selection_end(window, subscription)
    declared = _declared_filter_values(charge)
    stored = get_event_store().list_events(
        subscription.organization_id,
        external_subscription_id=subscription.external_id,
        code=metric.code,
        timestamp_from=lower,
        timestamp_to=upper,
    )
    rows = list(stored)
    rows.reverse()  # newest first -> oldest first, (timestamp, id) order
    if until is not None:
        rows = [
            row
            for row in rows
            if row.transaction_id != until.transaction_id
            and (until.id is None or row.timestamp < until.timestamp or row.id < until.id)
        ]
        rows.append(until)

    values: list[Decimal] = []
    ptac = ZERO
    carried = current = highest = ZERO
    current_before = highest_before = ZERO
    active: dict[str, bool] = {}
    in_period = False
    for row in rows:
        properties = row.properties or {}
        if not _in_scope(properties, bucket.scope, declared):
            continue
        if _group_of(properties, bucket.group_by) != group:
            continue
        value = _event_value(row, kind, metric.field_name)
        if value is None:
            continue
        if not in_period and row.timestamp >= period_from:
            in_period = True
            carried = highest = current
        current_before, highest_before = current, highest
        if kind == AggregationType.UNIQUE_COUNT:
            active[value] = properties.get("operation_type") != "remove"
            current = Decimal(sum(active.values()))
        else:
            current += value
        if in_period:
            highest = max(highest, current)
            values.append(Decimal(1) if kind == AggregationType.UNIQUE_COUNT else value)
            ptac += Decimal(getattr(row, "precise_total_amount_cents", ZERO) or ZERO)
    if not in_period:
        carried = highest = current
    return _Replay(
        values=values,
        precise_total_amount_cents=ptac,
        carried=carried,
        current_before=current_before,
        highest_before=highest_before,
        current=current,
        highest=highest,
    )


CacheMode = Literal["off", "read", "write"]


def in_advance_fees(
    *,
    subscription: Subscription,
    event: EventLike,
    charges: Sequence[Charge] | None = None,
    cache: CacheMode = "off",
) -> list[InAdvanceFee]:
    """The fee `event` bills on each pay-in-advance charge of its metric (spec §7.14):
    model(period with the event) - model(period without it), sum and unique count billing only
    the increase of the period maximum. Events outside the subscription's life bill nothing
    (§5.3). The caller persists (invoicing) or renders (estimate) the fees.

    `cache`: "off" replays the period from the event store; "read" resumes from the cached
    aggregations when it can, writing nothing (estimates); "write" also stores the state after
    the event, under a lock serializing the events of one subscription and metric (the task
    path; call it inside the transaction that stores the fees). Same fees either way."""
    started_at = subscription.started_at or subscription.subscription_at
    if event.timestamp < started_at or (
        subscription.terminated_at is not None and event.timestamp > subscription.terminated_at
    ):
        return []
    if charges is None:
        charges = plan_charges(subscription)
    charges = [c for c in charges if c.pay_in_advance and c.billable_metric.code == event.code]
    if not charges:
        return []
    window = usage_window(subscription=subscription, at=event.timestamp)
    chain_started_at = initial_started_at(subscription)
    if cache == "write" and event.id is None:
        cache = "read"  # an event not stored (an estimate) leaves no state behind
    # writes: the advisory lock lasts until the caller's (outermost) transaction ends
    with transaction.atomic(savepoint=False) if cache == "write" else nullcontext():
        if cache == "write":
            _lock_in_advance_key(subscription, event.code)
        fees = []
        for charge in charges:
            fee = _in_advance_fee(
                subscription=subscription,
                charge=charge,
                event=event,
                window=window,
                chain_started_at=chain_started_at,
                cache=cache,
            )
            if fee is not None:
                fees.append(fee)
    return fees


def _days_to_period_end(event_at: datetime, window: UsageWindow) -> int:
    tz = ZoneInfo(window.timezone)
    last = local_date(window.charges_to_datetime, tz)
    return (last - local_date(event_at, tz)).days + 1


def _in_advance_fee(
    *,
    subscription: Subscription,
    charge: Charge,
    event: EventLike,
    window: UsageWindow,
    chain_started_at: datetime,
    cache: CacheMode = "off",
) -> InAdvanceFee | None:
    metric = charge.billable_metric
    kind = metric.aggregation_type
    bucket = _event_bucket(charge, event)
    if not _priced(charge.charge_model, bucket.properties):
        return None  # an event in a default bucket without price bills nothing (§7.12)
    if _event_value(event, kind, metric.field_name) is None:
        return None  # not aggregated by the store: nothing to bill
    group = _group_of(event.properties, bucket.group_by)
    key = None
    if cache != "off" and kind in _CACHED_KINDS:
        key = _CacheKey.of(
            subscription=subscription, charge=charge, bucket=bucket, group=group, window=window
        )
    step = None
    if key is not None:
        checkpoint = key.checkpoint(event, invalidate=cache == "write")
        if checkpoint is not None and _resumable(charge, bucket):
            step = _Resume(
                subscription=subscription,
                charge=charge,
                bucket=bucket,
                group=group,
                window=window,
                chain_started_at=chain_started_at,
                checkpoint=checkpoint,
            ).until(event)
    if step is None:
        step = _Step.of(
            _replay(
                subscription=subscription,
                charge=charge,
                bucket=bucket,
                window=window,
                group=group,
                until=event,
                chain_started_at=chain_started_at,
            )
        )
    if key is not None and cache == "write":
        key.store(event, step)
    currency = subscription.plan.amount_currency
    if kind == AggregationType.COUNT:
        units_after, event_units = Decimal(step.events_count), Decimal(1)
    else:
        # spec §7.14: sum and unique count bill what exceeds the period maximum (V45)
        increase = in_advance_units(
            step.current - step.current_before,
            current_aggregation=step.current_before,
            max_aggregation=step.highest_before,
        )
        units_after, event_units = increase.max_aggregation, increase.units
    if _is_prorated(charge):
        # spec §7.14: prorated (standard only) on the days left in the period (V52)
        prorated = prorated_units(
            [(event_units, _days_to_period_end(event.timestamp, window))],
            period_days=window.charges_duration_days,
        )
        result = in_advance_amount(
            charge.charge_model,
            bucket.properties,
            units=prorated,
            event_units=prorated,
            currency=currency,
            fee_units=event_units,
        )
    else:
        result = in_advance_amount(
            charge.charge_model,
            bucket.properties,
            units=units_after,
            event_units=event_units,
            events_count=step.events_count,
            per_event_units=step.values,
            precise_total_amount_cents=step.precise_total_amount_cents,
            event_precise_total_amount_cents=event.precise_total_amount_cents,
            currency=currency,
        )
    return InAdvanceFee(
        charge=charge,
        charge_filter=bucket.charge_filter,
        grouped_by=group,
        units=result.units,
        events_count=1,
        amount_cents=amount_to_cents(result.amount, currency),
        precise_amount_cents=to_minor(result.amount, currency),
        unit_amount_cents=amount_to_cents(result.unit_amount, currency),
        precise_unit_amount=result.unit_amount,
        amount_details=result.amount_details,
        currency=currency,
        invoice_display_name=_display_name(charge, bucket.charge_filter),
        window=window,
        event=event,
        presentation_breakdowns=_event_breakdowns(event, bucket, kind, step),
    )


def _event_breakdowns(
    event: EventLike, bucket: _Bucket, kind: str, step: _Step
) -> list[PresentationBreakdown]:
    """Lago's pay_in_advance_breakdowns: the event's presentation values with its own value
    (1 for a count; the change of the running total for a sum or a unique count), not the
    billed increase."""
    presented = _group_of(event.properties, bucket.presentation_by)
    if not presented:
        return []
    value = Decimal(1) if kind == AggregationType.COUNT else step.current - step.current_before
    return [PresentationBreakdown(presented, value)]


# --------------------------------------------------------------------------------------------
# Cached aggregations (spec §7.14, §29: Lago's CachedAggregation)
#
# After each event a pay-in-advance task bills, the state of its charge, filter, pricing group,
# subscription and period is stored: running total, period maximum, events count, dynamic
# amounts (`CachedAggregation`, one row per event). The next event resumes from the latest state
# *before* it (events ordered by timestamp, then id) and replays only the events stored since
# that state: usually none but itself, so the cost no longer grows with the period's events.
#
# - count and sum resume from the totals alone; unique count also needs, for each value met,
#   whether it was active at the state: one store aggregation filtered on that value (a single
#   SQL statement, nothing read into Python).
# - max, latest and weighted sum cannot be paid in advance (spec §7.2): never cached.
#   Percentage with free units or a per-transaction min/max needs every value of the period:
#   it stays on the full replay (its states are still stored).
# - An event processed after later ones (late, or processed out of order by parallel workers,
#   or a rerun) deletes the states after it (they may have been computed without it) and
#   resumes from the state before it, if any; no state before it: the full replay, which
#   seeds the cache. A state of another configuration (filters, metric field) is not resumed.
# - Writes run under a transaction-level advisory lock per subscription and metric, so two
#   workers never interleave a read of the latest state and the write of the next one.
#
# Known limit (Lago's too): an event stored late is only accounted for once its own task runs;
# an event of the same key processed in between resumes from a state that does not know it.

_CACHED_KINDS = frozenset(
    {AggregationType.COUNT, AggregationType.SUM, AggregationType.UNIQUE_COUNT}
)
# percentage terms read the period's values one by one (free units, per-transaction min/max)
_PER_EVENT_TERMS = (
    "free_units_per_events",
    "free_units_per_total_aggregation",
    "per_transaction_min_amount",
    "per_transaction_max_amount",
)
_STATE_PLACES, _STATE_DIGITS = 30, 60  # CachedAggregation's decimal columns
_AMOUNT_PLACES = 15
_WIDE = Context(prec=200)
_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class _Step:
    """The running aggregation of the period around one event (the last one replayed)."""

    current_before: Decimal
    highest_before: Decimal
    current: Decimal
    highest: Decimal
    events_count: int  # events of the period, this one included
    precise_total_amount_cents: Decimal
    values: list[Decimal] | None  # the period's values in order: the full replay only

    @classmethod
    def of(cls, replay: _Replay) -> _Step:
        return cls(
            current_before=replay.current_before,
            highest_before=replay.highest_before,
            current=replay.current,
            highest=replay.highest,
            events_count=len(replay.values),
            precise_total_amount_cents=replay.precise_total_amount_cents,
            values=replay.values,
        )


def _lock_in_advance_key(subscription: Subscription, code: str) -> None:
    """Serialize the in-advance billing of one subscription's events of one metric until the
    transaction ends (PostgreSQL; SQLite serializes writers anyway)."""
    if connection.vendor != "postgresql":
        return
    name = f"in_advance:{subscription.organization_id}:{subscription.external_id}:{code}"
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)]
        )


def _resumable(charge: Charge, bucket: _Bucket) -> bool:
    """Whether the fee can be priced from totals (no per-event values needed)."""
    if charge.charge_model != "percentage":
        return True
    return all(bucket.properties.get(key) in (None, "") for key in _PER_EVENT_TERMS)


def _is_before(timestamp: datetime, event_id: int, event: EventLike) -> bool:
    """Whether the stored event at (timestamp, id) comes before `event` (an estimated event,
    without id, comes after every stored event of its timestamp)."""
    if event.id is None:
        return timestamp <= event.timestamp
    return (timestamp, event_id) < (event.timestamp, event.id)


def _before(event: EventLike) -> Q:
    if event.id is None:
        return Q(event_timestamp__lte=event.timestamp)
    return Q(event_timestamp__lt=event.timestamp) | Q(
        event_timestamp=event.timestamp, event_id__lt=event.id
    )


def _storable(value: Decimal, places: int) -> bool:
    """Whether a decimal column of `places` decimals (60 digits) keeps `value` exactly."""
    if not value.is_finite():
        return False
    quantized = value.quantize(Decimal(1).scaleb(-places), context=_WIDE)
    return quantized == value and quantized.adjusted() < _STATE_DIGITS - places


def _plain(value: Decimal) -> Decimal:
    """A column value without the padding zeros of its 30 decimals."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return Decimal(text)


@dataclass(frozen=True)
class _CacheKey:
    """Where the states of one charge filter and pricing group of a period are stored."""

    subscription: Subscription
    charge: Charge
    charge_filter: ChargeFilter | None
    group: dict[str, str | None]
    bucket_key: str
    period_from: datetime
    digest: str

    @classmethod
    def of(
        cls,
        *,
        subscription: Subscription,
        charge: Charge,
        bucket: _Bucket,
        group: dict[str, str | None],
        window: UsageWindow,
    ) -> _CacheKey:
        metric = charge.billable_metric
        configuration = [
            metric.aggregation_type,
            metric.field_name,
            bool(metric.recurring),
            bucket.scope.filters,
            list(bucket.scope.exclude_filters),
            list(bucket.group_by),
            _declared_filter_values(charge),
        ]
        digest = hashlib.blake2b(
            json.dumps(configuration, sort_keys=True, default=str).encode(), digest_size=16
        ).hexdigest()
        filter_id = bucket.charge_filter.pk if bucket.charge_filter else None
        return cls(
            subscription=subscription,
            charge=charge,
            charge_filter=bucket.charge_filter,
            group=group,
            bucket_key=json.dumps([str(filter_id) if filter_id else None, sorted(group.items())]),
            period_from=window.charges_from_datetime,
            digest=digest,
        )

    def rows(self) -> QuerySet[CachedAggregation]:
        return CachedAggregation.objects.filter(
            charge_id=self.charge.pk,
            subscription_id=self.subscription.pk,
            bucket_key=self.bucket_key,
            period_from=self.period_from,
        ).order_by("-event_timestamp", "-event_id")

    def checkpoint(self, event: EventLike, *, invalidate: bool) -> CachedAggregation | None:
        """The latest state before `event`, if of this configuration. `invalidate`: delete the
        states at or after it first (they may have been computed without it)."""
        latest = self.rows().first()
        if latest is None:
            return None
        if not _is_before(latest.event_timestamp, latest.event_id, event):
            if invalidate:
                self.rows().exclude(_before(event)).delete()
            latest = self.rows().filter(_before(event)).first()
        if latest is None or latest.scope_digest != self.digest:
            return None
        return latest

    def store(self, event: EventLike, step: _Step) -> None:
        """The state after `event` (kept only when the columns hold it exactly: otherwise the
        next event resumes from an earlier state)."""
        if not (
            _storable(step.current, _STATE_PLACES)
            and _storable(step.highest, _STATE_PLACES)
            and _storable(step.precise_total_amount_cents, _AMOUNT_PLACES)
        ):
            return
        row = CachedAggregation(
            organization_id=self.subscription.organization_id,
            subscription_id=self.subscription.pk,
            charge_id=self.charge.pk,
            charge_filter_id=self.charge_filter.pk if self.charge_filter else None,
            grouped_by=self.group,
            bucket_key=self.bucket_key,
            scope_digest=self.digest,
            period_from=self.period_from,
            event_id=event.id,
            event_transaction_id=event.transaction_id,
            event_timestamp=event.timestamp,
            current_aggregation=step.current,
            max_aggregation=step.highest,
            events_count=step.events_count,
            precise_total_amount_cents=step.precise_total_amount_cents,
        )
        CachedAggregation.objects.bulk_create(
            [row],
            update_conflicts=True,  # same event, another group or period (configuration change)
            unique_fields=["event_transaction_id", "subscription", "charge", "charge_filter"],
            update_fields=[
                "grouped_by",
                "bucket_key",
                "scope_digest",
                "period_from",
                "event_id",
                "event_timestamp",
                "current_aggregation",
                "max_aggregation",
                "events_count",
                "precise_total_amount_cents",
            ],
        )


def _portable(raw: object) -> bool:
    """A unique-count value the store's `properties ->> key` renders as `json_text` does
    (floats and objects may be spelled differently: those events take the full replay)."""
    if isinstance(raw, str):
        return raw != ALL_FILTER_VALUES
    return isinstance(raw, int)  # bool included


@dataclass
class _Resume:
    """The period's state at `event`, from a checkpoint and the events stored since it."""

    subscription: Subscription
    charge: Charge
    bucket: _Bucket
    group: dict[str, str | None]
    window: UsageWindow
    chain_started_at: datetime
    checkpoint: CachedAggregation

    def until(self, event: EventLike) -> _Step | None:
        """None when the events since the checkpoint need the full replay."""
        metric = self.charge.billable_metric
        kind = metric.aggregation_type
        mark = self.checkpoint
        rows = list(
            get_event_store().list_events(
                self.subscription.organization_id,
                external_subscription_id=self.subscription.external_id,
                code=metric.code,
                timestamp_from=mark.event_timestamp,
                timestamp_to=event.timestamp,
            )
        )
        rows.reverse()  # oldest first, (timestamp, id) order
        head: list[object] = []  # stamped like the checkpoint, up to it
        since: list[object] = []
        for row in rows:
            if row.transaction_id == event.transaction_id:
                continue
            if row.timestamp == mark.event_timestamp and row.id <= mark.event_id:
                head.append(row)
            elif _is_before(row.timestamp, row.id, event):
                since.append(row)
        since.append(event)

        current = _plain(mark.current_aggregation)
        highest = _plain(mark.max_aggregation)
        events_count = mark.events_count
        ptac = _plain(mark.precise_total_amount_cents)
        current_before, highest_before = current, highest
        active: dict[str, bool] = {}
        for row in since:
            properties = row.properties or {}
            if not self._counts(properties):
                continue
            value = _event_value(row, kind, metric.field_name)
            if value is None:
                continue
            current_before, highest_before = current, highest
            if kind == AggregationType.UNIQUE_COUNT:
                if not _portable(properties.get(metric.field_name)):
                    return None
                was = active[value] if value in active else self._active_at_mark(value, head)
                active[value] = properties.get("operation_type") != "remove"
                current += int(active[value]) - int(was)
            else:
                current += value
            highest = max(highest, current)
            events_count += 1
            ptac += Decimal(getattr(row, "precise_total_amount_cents", ZERO) or ZERO)
        return _Step(
            current_before=current_before,
            highest_before=highest_before,
            current=current,
            highest=highest,
            events_count=events_count,
            precise_total_amount_cents=ptac,
            values=None,
        )

    def _counts(self, properties: dict) -> bool:
        declared = _declared_filter_values(self.charge)
        return (
            _in_scope(properties, self.bucket.scope, declared)
            and _group_of(properties, self.bucket.group_by) == self.group
        )

    def _active_at_mark(self, value: str, head: Sequence[object]) -> bool:
        """Whether a unique value was active at the checkpoint: its last operation among the
        events stamped like the checkpoint (up to it), else before that instant."""
        metric = self.charge.billable_metric
        active = None
        for row in head:
            properties = row.properties or {}
            if (
                self._counts(properties)
                and _event_value(row, metric.aggregation_type, metric.field_name) == value
            ):
                active = properties.get("operation_type") != "remove"
        if active is not None:
            return active
        return self._active_before(value, self.checkpoint.event_timestamp)

    def _active_before(self, value: str, instant: datetime) -> bool:
        """One store aggregation: the unique count of `value` in the key's scope strictly
        before `instant` (recurring metrics: since the subscription's start)."""
        metric = self.charge.billable_metric
        recurring = bool(metric.recurring and metric.aggregation_type in _RECURRING)
        upper = instant - _ONE_MICROSECOND
        if upper < self.chain_started_at or (
            not recurring and upper < self.window.charges_from_datetime
        ):
            return False
        filters = dict(self.bucket.scope.filters or {})
        filters[metric.field_name] = [value]
        query = AggregationQuery(
            organization_id=self.subscription.organization_id,
            external_subscription_id=self.subscription.external_id,
            code=metric.code,
            aggregation_type=AggregationType.UNIQUE_COUNT,
            field_name=metric.field_name,
            from_datetime=min(self.window.charges_from_datetime, upper),
            to_datetime=upper,
            recurring=recurring,
            subscription_started_at=self.chain_started_at,
            filters=filters,
            declared_filter_values=_declared_filter_values(self.charge),
            exclude_filters=self.bucket.scope.exclude_filters,
            group_by=self.bucket.group_by,
            timezone=self.window.timezone,
        )
        return any(
            result.group == self.group and result.units > 0
            for result in get_event_store().aggregate(query)
        )


def _estimating_subscription(organization: Organization, external_id: object) -> Subscription:
    """The active subscription an estimated event names (404 `subscription_not_found`)."""
    if isinstance(external_id, int) and not isinstance(external_id, bool):
        external_id = str(external_id)  # Rails params accept numbers as identifiers
    subscription = None
    if isinstance(external_id, str) and external_id:
        subscription = (
            Subscription.objects.for_organization(organization)
            .filter(external_id=external_id, status="active")
            .select_related("customer__billing_entity", "customer__organization", "plan")
            .first()
        )
    if subscription is None:
        raise NotFound("subscription")
    return subscription


def _event_like(event_input: Any) -> EventLike:
    """An ingestion `EventInput` as the pricing reads it (never stored)."""
    return EventLike(
        transaction_id=event_input.transaction_id,
        external_subscription_id=event_input.external_subscription_id,
        code=event_input.code,
        timestamp=event_input.timestamp,
        properties=event_input.properties,
        precise_total_amount_cents=event_input.precise_total_amount_cents,
        value=event_input.value,
    )


def event_estimate_fees(
    *, organization: Organization, payload: object, now: datetime
) -> tuple[Subscription, list[InAdvanceFee]]:
    """The fees an event would bill on pay-in-advance charges, nothing stored
    (`POST /events/estimate_fees`, spec §5.2, V105): unlike ingestion it validates fully."""
    if not isinstance(payload, dict):
        raise Invalid({"event": ["value_is_invalid"]})
    subscription = _estimating_subscription(organization, payload.get("external_subscription_id"))
    metrics = metrics_by_code(organization_id=organization.id, codes=[str(payload.get("code"))])
    metric = metrics.get(str(payload.get("code")))
    if metric is None:
        raise NotFound("billable_metric")
    transaction_id = payload.get("transaction_id")
    if not transaction_id or get_event_store().get_event(
        organization.id, str(transaction_id), subscription.external_id
    ):
        raise Invalid({"transaction_id": ["value_is_missing_or_already_exists"]})
    event_input, errors = build_event_input(payload, metrics=metrics, now=now)
    if errors or event_input is None:
        raise Invalid(errors)
    if metric.aggregation_type in _NUMBER_REQUIRED and event_input.value is None:
        raise Invalid({"properties": ["value_is_not_valid_number"]})
    if event_input.value is not None and abs(event_input.value) >= _ESTIMATE_UNITS_LIMIT:
        raise Invalid({"properties": ["value_is_out_of_range"]})
    event = _event_like(event_input)
    return subscription, in_advance_fees(subscription=subscription, event=event, cache="read")


# --------------------------------------------------------------------------------------------
# Instant estimates (`POST /events/estimate_instant_fees`, `/events/batch_estimate_instant_fees`)
#
# Lago's `Fees::EstimateInstant`: what one event costs on its own, for pay-in-advance standard
# and percentage charges only, at reception time (the event's `timestamp` is not read), without
# reading the period so far: no free units, no period maximum, no proration, no taxes, nothing
# stored and no transaction id check (a missing one is generated). Cheap enough to be called
# before every billable action.

INSTANT_CHARGE_MODELS = frozenset({"standard", "percentage"})
_PERCENTAGE_FREE_KEYS = ("free_units_per_events", "free_units_per_total_aggregation")


@dataclass(frozen=True)
class InstantFee:
    """The fee one event alone would cost on one pay-in-advance charge (nothing stored)."""

    subscription: Subscription
    charge: Charge
    charge_filter: ChargeFilter | None
    units: Decimal  # the event's units (after the metric's expression and rounding)
    precise_amount: Decimal  # major units, unrounded
    amount_cents: int
    precise_unit_amount_cents: Decimal  # amount_cents / units (Lago: in cents)
    currency: str
    transaction_id: str


def _instant_charges(subscription: Subscription) -> list[Charge]:
    return [
        charge
        for charge in plan_charges(subscription)
        if charge.pay_in_advance and charge.charge_model in INSTANT_CHARGE_MODELS
    ]


def _instant_event(payload: dict, metric: Any, now: datetime) -> EventLike:
    """The payload validated as ingestion would, at `now`, its transaction id defaulted."""
    payload = {**payload, "transaction_id": payload.get("transaction_id") or str(uuid4())}
    payload.pop("timestamp", None)  # Lago estimates at reception time whatever the event says
    info = MetricInfo(
        id=metric.id,
        code=metric.code,
        aggregation_type=metric.aggregation_type,
        field_name=metric.field_name,
        expression=metric.expression,
    )
    event_input, errors = build_event_input(payload, metrics={metric.code: info}, now=now)
    if errors or event_input is None:
        raise Invalid(errors)
    return _event_like(event_input)


def _instant_units(metric: Any, event: EventLike) -> Decimal:
    """The units of one event alone: 1 for a count, 1 for a unique value added (0 removed),
    the numeric field otherwise (0 when absent), after the metric's rounding (spec §4.4)."""
    properties = event.properties
    kind = metric.aggregation_type
    if kind == AggregationType.COUNT:
        units = Decimal(1)
    elif kind == AggregationType.UNIQUE_COUNT:
        added = properties.get("operation_type") != "remove"
        units = Decimal(1 if added and json_text(properties.get(metric.field_name)) else 0)
    elif event.value is not None:
        units = event.value
    elif properties.get(metric.field_name) in (None, ""):
        units = ZERO
    else:
        raise Invalid({"properties": ["value_is_not_valid_number"]})
    if abs(units) >= _ESTIMATE_UNITS_LIMIT:
        raise Invalid({"properties": ["value_is_out_of_range"]})
    return apply_rounding(units, metric.rounding_function, metric.rounding_precision)


def _instant_cents(amount: Decimal, currency: str) -> int:
    """`amount_to_cents` with the digits a large amount needs (28 by default)."""
    digits = to_minor(amount, currency).adjusted() + 2
    with localcontext() as context:
        context.prec = max(context.prec, digits)
        return amount_to_cents(amount, currency)


def _instant_fee(subscription: Subscription, charge: Charge, event: EventLike) -> InstantFee:
    bucket = _event_bucket(charge, event)  # the matching filter's price, else the charge's
    units = _instant_units(charge.billable_metric, event)
    currency = subscription.plan.amount_currency
    amount = ZERO
    if units >= 0 and _priced(charge.charge_model, bucket.properties):
        if charge.charge_model == "percentage":
            terms = {k: v for k, v in bucket.properties.items() if k not in _PERCENTAGE_FREE_KEYS}
            [transaction_amount] = percentage_transaction_amounts(terms, per_event_units=[units])
            amount = transaction_amount or ZERO
        else:
            amount = standard_amount(bucket.properties, units=units).amount
    amount_cents = _instant_cents(amount, currency)
    unit_amount_cents = Decimal(amount_cents) / units if amount_cents and units else ZERO
    return InstantFee(
        subscription=subscription,
        charge=charge,
        charge_filter=bucket.charge_filter,
        units=units,
        precise_amount=amount,
        amount_cents=amount_cents,
        precise_unit_amount_cents=unit_amount_cents,
        currency=currency,
        transaction_id=event.transaction_id,
    )


def _instant_fees(
    subscription: Subscription, charges: Sequence[Charge], payload: dict, now: datetime
) -> list[InstantFee]:
    """One event's fees on the instant charges of its metric (none when it matches none)."""
    code = payload.get("code")
    matching = [c for c in charges if c.billable_metric.code == (str(code) if code else None)]
    if not matching:
        return []
    event = _instant_event(payload, matching[0].billable_metric, now)
    return [_instant_fee(subscription, charge, event) for charge in matching]


def event_estimate_instant_fees(
    *, organization: Organization, payload: object, now: datetime
) -> list[InstantFee]:
    """`POST /events/estimate_instant_fees`: the fees of one event alone on the pay-in-advance
    standard and percentage charges of its metric. 404 `subscription_not_found`; 422
    `code: does_not_match_an_instant_charge` when the metric has none of them."""
    if not isinstance(payload, dict):
        raise Invalid({"event": ["value_is_invalid"]})
    subscription = _estimating_subscription(organization, payload.get("external_subscription_id"))
    fees = _instant_fees(subscription, _instant_charges(subscription), payload, now)
    if not fees:
        raise Invalid({"code": ["does_not_match_an_instant_charge"]})
    return fees


def events_estimate_instant_fees(
    *, organization: Organization, payloads: object, now: datetime
) -> list[InstantFee]:
    """`POST /events/batch_estimate_instant_fees`: every fee of every event, by subscription
    (first seen first), then in event order. An event whose metric has no instant charge adds
    nothing, but a subscription without any instant charge is refused (422, as Lago); an
    unknown subscription is a 404; an invalid event a 422 under its index."""
    if not isinstance(payloads, list):
        raise Invalid({"events": ["value_is_invalid"]})
    by_subscription: dict[object, list[tuple[int, dict]]] = {}
    for index, payload in enumerate(payloads):
        if not isinstance(payload, dict):
            raise Invalid({str(index): {"event": ["value_is_invalid"]}})
        key = payload.get("external_subscription_id")
        key = key if isinstance(key, str | int) and not isinstance(key, bool) else None
        by_subscription.setdefault(key, []).append((index, payload))
    fees: list[InstantFee] = []
    for external_id, events in by_subscription.items():
        subscription = _estimating_subscription(organization, external_id)
        charges = _instant_charges(subscription)
        if not charges:
            raise Invalid({"code": ["does_not_match_an_instant_charge"]})
        for index, payload in events:
            try:
                fees.extend(_instant_fees(subscription, charges, payload, now))
            except Invalid as error:
                raise Invalid({str(index): error.details}) from error
    return fees


# --------------------------------------------------------------------------------------------
# Taxes of a usage (spec §14)


class FeeTaxes:
    """The taxes of the charge fees of one subscription (spec §14.1): the charge's own taxes,
    else the plan's, the customer's or the billing entity's, resolved once for all charges."""

    def __init__(self, *, subscription: Subscription) -> None:
        self.subscription = subscription
        self._inherited: list[Tax] | None = None

    def _fallback(self) -> list[Tax]:
        if self._inherited is None:
            customer = self.subscription.customer
            self._inherited = applicable_taxes(
                organization=self.subscription.organization,
                plan=self.subscription.plan,
                customer_taxes=list(customer.taxes.all()),
                billing_entity=customer.billing_entity,
            )
        return self._inherited

    def for_charge(self, charge: Charge) -> list[Tax]:
        own = applicable_taxes(organization=self.subscription.organization, charge=charge)
        return own or self._fallback()


@dataclass(frozen=True)
class FeeTaxFigures:
    """The taxes of one fee (spec §14.2): each tax on the fee's amount, rounded once."""

    amount_cents: int
    precise_amount_cents: Decimal
    rate: Decimal


def fee_tax_figures(amount_cents: int, taxes: Sequence[Tax]) -> FeeTaxFigures:
    """Taxes of a fee without coupons: sum of amount_cents x rate / 100, rounded once."""
    precise = sum((Decimal(amount_cents) * Decimal(t.rate) / HUNDRED for t in taxes), ZERO)
    rate = sum((Decimal(t.rate) for t in taxes), ZERO)
    return FeeTaxFigures(amount_cents=round_cents(precise), precise_amount_cents=precise, rate=rate)


def taxes_amount_cents(amounts: Iterable[tuple[int, Sequence[Tax]]]) -> int:
    """Invoice-level taxes of fees (spec §14.2): sum over fees and taxes of
    amount_cents x rate / 100, rounded once (no coupons in a usage)."""
    precise = ZERO
    for amount_cents, taxes in amounts:
        for tax in taxes:
            precise += Decimal(amount_cents) * Decimal(tax.rate) / HUNDRED
    return round_cents(precise)


# --------------------------------------------------------------------------------------------
# The customer_usage body (spec §25)


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _totals(usages: Sequence[ChargeUsage], projected: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "units": decimal_string(sum((u.units for u in usages), ZERO)),
        "total_aggregated_units": decimal_string(
            sum((u.total_aggregated_units or ZERO for u in usages), ZERO)
        ),
        "events_count": sum(u.events_count for u in usages),
        "amount_cents": sum(u.amount_cents for u in usages),
    }
    if projected:
        data["projected_units"] = decimal_string(
            sum((u.projected_units or ZERO for u in usages), ZERO)
        )
        data["projected_amount_cents"] = sum(u.projected_amount_cents or 0 for u in usages)
    data["pricing_unit_details"] = None
    return data


def _filters_payload(usages: Sequence[ChargeUsage], projected: bool) -> list[dict]:
    if not usages or not _live_filters(usages[0].charge):
        return []
    by_filter: dict[UUID | None, list[ChargeUsage]] = {}
    for usage in usages:
        key = usage.charge_filter.pk if usage.charge_filter is not None else None
        by_filter.setdefault(key, []).append(usage)
    payload = []
    for grouped in by_filter.values():
        charge_filter = grouped[0].charge_filter
        payload.append(
            {
                **_totals(grouped, projected),
                "invoice_display_name": (
                    (charge_filter.invoice_display_name or None) if charge_filter else None
                ),
                "values": dict(charge_filter.values) if charge_filter is not None else None,
                "presentation_breakdowns": _breakdowns(grouped),
            }
        )
    return payload


def _breakdowns(usages: Sequence[ChargeUsage]) -> list[dict]:
    """Presentation breakdowns of several fees added up (Lago's PresentationBreakdownBuilder)."""
    return breakdowns_payload(merge(b for u in usages for b in u.presentation_breakdowns))


def _group_key(grouped_by: dict[str, str | None]) -> tuple:
    return tuple(sorted(grouped_by.items(), key=lambda item: item[0]))


def _grouped_payload(usages: Sequence[ChargeUsage], projected: bool) -> list[dict]:
    if not any(u.grouped_by for u in usages):
        return []
    by_group: dict[tuple, list[ChargeUsage]] = {}
    for usage in usages:
        by_group.setdefault(_group_key(usage.grouped_by), []).append(usage)
    return [
        {
            **_totals(grouped, projected),
            "grouped_by": dict(grouped[0].grouped_by),
            "filters": _filters_payload(grouped, projected),
            "presentation_breakdowns": _breakdowns(grouped),
        }
        for grouped in by_group.values()
    ]


def charges_usage_payload(usages: Sequence[ChargeUsage], *, projected: bool = False) -> list[dict]:
    """`charges_usage` of a usage body: one entry per charge (Lago's ChargeUsageSerializer)."""
    by_charge: dict[UUID, list[ChargeUsage]] = {}
    for usage in usages:
        by_charge.setdefault(usage.charge.pk, []).append(usage)
    payload = []
    for charge_usages in by_charge.values():
        charge = charge_usages[0].charge
        metric = charge.billable_metric
        payload.append(
            {
                **_totals(charge_usages, projected),
                "amount_currency": charge_usages[0].currency,
                "charge": {
                    "lago_id": str(charge.pk),
                    "code": charge.code,
                    "charge_model": charge.charge_model,
                    "invoice_display_name": charge.invoice_display_name or None,
                },
                "billable_metric": {
                    "lago_id": str(metric.pk),
                    "name": metric.name,
                    "code": metric.code,
                    "aggregation_type": metric.aggregation_type,
                },
                "filters": _filters_payload(charge_usages, projected),
                "grouped_usage": _grouped_payload(charge_usages, projected),
                "presentation_breakdowns": _breakdowns(charge_usages),
            }
        )
    return payload


@dataclass(frozen=True)
class UsageSelection:
    """The optional narrowing of a current usage (`charge_id`, `charge_code`,
    `billable_metric_code`, `group[key]=value`, spec §25)."""

    charge_id: str | None = None
    charge_code: str | None = None
    billable_metric_code: str | None = None
    group: dict[str, str | list[str]] = field(default_factory=dict)
    presentation: tuple[str, ...] | None = None  # `filter_by_presentation` keys (§7.13)

    def keeps_charge(self, charge: Charge) -> bool:
        return (
            (self.charge_id is None or str(charge.pk) == self.charge_id)
            and (self.charge_code is None or charge.code == self.charge_code)
            and (
                self.billable_metric_code is None
                or charge.billable_metric.code == self.billable_metric_code
            )
        )

    def keeps_usage(self, usage: ChargeUsage) -> bool:
        """A group value, or a list of accepted values (`filter_by_group`)."""
        return all(
            usage.grouped_by.get(key) in (value if isinstance(value, list) else [value])
            for key, value in self.group.items()
        )


def _elapsed_ratio(window: UsageWindow, now: datetime) -> Decimal:
    """Days elapsed in the usage window over its full period's days (spec §25 projections)."""
    tz = ZoneInfo(window.timezone)
    first = local_date(window.charges_from_datetime, tz)
    last = local_date(window.charges_to_datetime, tz)
    today = local_date(now, tz)
    if today >= last:
        return Decimal(1)
    if today < first:
        return ZERO
    return Decimal((today - first).days + 1) / Decimal(window.charges_duration_days)


def customer_current_usage(
    *,
    customer: Customer,
    subscription: Subscription,
    now: datetime,
    apply_taxes: bool = True,
    projected: bool = False,
    selection: UsageSelection | None = None,
) -> dict:
    """The §25 `customer_usage` body: a dry run of the period's charges (no subscription fee,
    no coupons), taxed per §14.1 unless `apply_taxes` is false. `projected` adds the
    `projected_*` figures of `/projected_usage`."""
    period = usage_period(subscription=subscription, at=now)
    window = window_of(period)
    selection = selection or UsageSelection()
    charges = [c for c in plan_charges(subscription) if selection.keeps_charge(c)]
    usages = subscription_usage(
        subscription=subscription,
        window=window,
        include_pay_in_advance=True,
        period_ratio=_elapsed_ratio(window, now) if projected else None,
        charges=charges,
        presentation_filter=selection.presentation,
    )
    usages = [u for u in usages if selection.keeps_usage(u)]
    amount_cents = sum(u.amount_cents for u in usages)
    taxes = 0
    if apply_taxes:
        fee_taxes = FeeTaxes(subscription=subscription)
        per_charge = {c.pk: fee_taxes.for_charge(c) for c in charges}
        taxes = taxes_amount_cents((u.amount_cents, per_charge[u.charge.pk]) for u in usages)
    body: dict[str, Any] = {
        "from_datetime": _iso(window.charges_from_datetime),
        "to_datetime": _iso(window.charges_to_datetime),
        "issuing_date": local_date(period.timestamp, period.timezone).isoformat(),
        "lago_invoice_id": None,
        "currency": subscription.plan.amount_currency,
        "amount_cents": amount_cents,
        "taxes_amount_cents": taxes,
        "total_amount_cents": amount_cents + taxes,
    }
    if projected:
        body["projected_amount_cents"] = sum(u.projected_amount_cents or 0 for u in usages)
    body["charges_usage"] = charges_usage_payload(usages, projected=projected)
    return body


# --------------------------------------------------------------------------------------------
# Past usage (spec §25): read back from invoiced fees


def _invoicing_model(accessor: str) -> type | None:
    """A model of the invoicing app reached through a reverse relation of `Subscription`
    (customers cannot import invoicing); None while that app is not installed."""
    try:
        return Subscription._meta.get_field(accessor).related_model
    except FieldDoesNotExist:
        return None


def _fee_usage(fee: Any) -> ChargeUsage:
    return ChargeUsage(
        charge=fee.charge,
        charge_filter=fee.charge_filter,
        grouped_by=fee.grouped_by or {},
        units=fee.units,
        total_aggregated_units=fee.total_aggregated_units,
        events_count=fee.events_count,
        amount_cents=fee.amount_cents,
        precise_amount_cents=fee.precise_amount_cents,
        unit_amount_cents=fee.unit_amount_cents,
        precise_unit_amount=fee.precise_unit_amount,
        amount_details=fee.amount_details or {},
        currency=fee.amount_currency,
        invoice_display_name=fee.invoice_display_name,
    )


def customer_past_usage(
    *,
    customer: Customer,
    external_subscription_id: str,
    periods_count: int | None = None,
    billable_metric_code: str | None = None,
) -> list[dict]:
    """Usage of the invoiced periods of a subscription, newest first (spec §25 `past_usage`),
    from the charge fees of its finalized invoices; empty while nothing was invoiced."""
    subscriptions = list(customer.subscriptions.filter(external_id=external_subscription_id))
    if not subscriptions:
        raise NotFound("subscription")
    invoice_subscription_model = _invoicing_model("invoice_subscriptions")
    fee_model = _invoicing_model("fees")
    if invoice_subscription_model is None or fee_model is None:
        return []
    periods = (
        invoice_subscription_model.objects.filter(
            subscription__in=subscriptions,
            invoice__status="finalized",
            charges_from_datetime__isnull=False,
            charges_to_datetime__isnull=False,
        )
        .exclude(invoicing_reason__in=["in_advance_charge", "progressive_billing"])
        .select_related("invoice")
        .order_by("-charges_to_datetime", "-created_at")
    )
    if periods_count:
        periods = periods[:periods_count]
    body = []
    for period in periods:
        fees = (
            fee_model.objects.filter(
                invoice_id=period.invoice_id,
                subscription_id=period.subscription_id,
                fee_type="charge",
                deleted_at__isnull=True,
            )
            .select_related("charge__billable_metric", "charge_filter")
            .prefetch_related(
                Prefetch(
                    "charge__filters",
                    queryset=ChargeFilter.objects.alive().order_by("created_at", "id"),
                    to_attr="live_filters",
                )
            )
            .order_by("created_at", "id")
        )
        if billable_metric_code:
            fees = fees.filter(charge__billable_metric__code=billable_metric_code)
        fees = list(fees)
        amount_cents = sum(fee.amount_cents for fee in fees)
        taxes = sum(fee.taxes_amount_cents for fee in fees)
        body.append(
            {
                "from_datetime": _iso(period.charges_from_datetime),
                "to_datetime": _iso(period.charges_to_datetime),
                "issuing_date": period.invoice.issuing_date.isoformat(),
                "lago_invoice_id": str(period.invoice_id),
                "currency": period.invoice.currency,
                "amount_cents": amount_cents,
                "taxes_amount_cents": taxes,
                "total_amount_cents": amount_cents + taxes,
                "charges_usage": charges_usage_payload([_fee_usage(fee) for fee in fees]),
            }
        )
    return body


__all__ = [
    "ChargeUsage",
    "EventLike",
    "InAdvanceFee",
    "UsageSelection",
    "UsageWindow",
    "charge_usage",
    "charges_usage_payload",
    "customer_current_usage",
    "customer_past_usage",
    "decimal_string",
    "event_estimate_fees",
    "in_advance_fees",
    "plan_charges",
    "subscription_usage",
    "usage_period",
    "usage_window",
    "window_of",
]
