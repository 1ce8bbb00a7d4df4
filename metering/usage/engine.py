"""Charge usage in arrears: the units and amounts of a subscription's charges over a usage
window (spec §4, §7), aggregated by the event store, one statement per charge filter."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db.models import Prefetch

from billing.money import amount_to_cents, to_minor
from billing.periods import date_diff_with_timezone
from customers.models import Subscription
from customers.services.subscription_reads import initial_started_at
from metering.presentation import (
    PresentationBreakdown,
    ordered,
)
from metering.store import (
    AggregationQuery,
    AggregationResult,
    get_event_store,
)
from metering.usage.buckets import (
    RECURRING,
    ZERO,
    Bucket,
    charge_buckets,
    declared_filter_values,
    display_name,
    group_key,
    is_priced,
    is_prorated,
)
from metering.usage.replay import Replay, replay_events
from metering.usage.windows import UsageWindow, days_to_period_end, selection_end
from plans.charge_models import (
    ChargeResult,
    apply_rounding,
    compute,
    prorated_units,
)
from plans.models import (
    AggregationType,
    BillableMetricFilter,
    Charge,
    ChargeFilter,
    ChargeModel,
)


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


def _query(
    *,
    subscription: Subscription,
    charge: Charge,
    bucket: Bucket,
    window: UsageWindow,
    chain_started_at: datetime,
) -> AggregationQuery:
    metric = charge.billable_metric
    kind = metric.aggregation_type
    prorated = is_prorated(charge)
    recurring = bool(metric.recurring and kind in RECURRING)
    needs_days = kind == AggregationType.WEIGHTED_SUM or prorated
    return AggregationQuery(
        organization_id=subscription.organization_id,
        external_subscription_id=subscription.external_id,
        code=metric.code,
        aggregation_type=kind,
        field_name=None if kind == AggregationType.COUNT else metric.field_name,
        from_datetime=window.charges_from_datetime,
        to_datetime=selection_end(window, subscription),
        recurring=recurring,
        subscription_started_at=chain_started_at,
        filters=bucket.scope.filters,
        declared_filter_values=declared_filter_values(charge),
        exclude_filters=bucket.scope.exclude_filters,
        group_by=bucket.group_by,
        period_duration_days=window.charges_duration_days if needs_days else None,
        prorated=prorated,
        timezone=window.timezone,
    )


def _usage(
    *,
    charge: Charge,
    bucket: Bucket,
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
        invoice_display_name=display_name(charge, bucket.charge_filter),
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


@dataclass(frozen=True)
class _BucketRead:
    """The aggregations one bucket of a charge needs: its units per pricing group and, with
    presentation keys, the same split by them (§7.13)."""

    charge: Charge
    bucket: Bucket
    query: AggregationQuery
    with_values: bool
    presentation: AggregationQuery | None
    presentation_keys: tuple[str, ...]


def _bucket_reads(
    *,
    subscription: Subscription,
    charge: Charge,
    window: UsageWindow,
    chain_started_at: datetime,
    presentation_filter: Sequence[str] | None,
) -> list[_BucketRead]:
    """What `charge_usage` aggregates for a charge, bucket by bucket (filters, then the
    default bucket)."""
    metric = charge.billable_metric
    prorated = is_prorated(charge)
    graduated_prorated = prorated and charge.charge_model == ChargeModel.GRADUATED
    with_values = charge.charge_model == ChargeModel.PERCENTAGE or graduated_prorated
    in_advance_max = charge.pay_in_advance and metric.aggregation_type == AggregationType.SUM
    reads = []
    for bucket in charge_buckets(charge):
        query = _query(
            subscription=subscription,
            charge=charge,
            bucket=bucket,
            window=window,
            chain_started_at=chain_started_at,
        )
        keys = bucket.presentation_by
        if presentation_filter is not None:
            keys = tuple(key for key in keys if key in presentation_filter)
        presentation = None
        if keys:
            extra = tuple(key for key in keys if key not in bucket.group_by)
            presentation = replace(query, group_by=(*bucket.group_by, *extra))
        reads.append(
            _BucketRead(
                charge=charge,
                bucket=bucket,
                query=query,
                with_values=with_values or in_advance_max,
                presentation=presentation,
                presentation_keys=tuple(keys),
            )
        )
    return reads


def charge_usage(
    *,
    subscription: Subscription,
    charge: Charge,
    window: UsageWindow,
    period_ratio: Decimal | None = None,
    chain_started_at: datetime | None = None,
    presentation_filter: Sequence[str] | None = None,
    answers: UsageAnswers | None = None,
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
    `filter_by_presentation`). `answers`: aggregations read ahead (`read_usage_ahead`); a
    query found there (the very same query) is not read again.
    """
    if chain_started_at is None:
        chain_started_at = initial_started_at(subscription)
    store = get_event_store()
    usages: list[ChargeUsage] = []
    for read in _bucket_reads(
        subscription=subscription,
        charge=charge,
        window=window,
        chain_started_at=chain_started_at,
        presentation_filter=presentation_filter,
    ):
        results = answers.take(read.query, read.with_values) if answers is not None else None
        if results is None:
            results = store.aggregate(read.query, with_event_values=read.with_values)
        split: list[AggregationResult] | None = []
        if read.presentation is not None:
            split = answers.take(read.presentation, False) if answers is not None else None
            if split is None:
                split = store.aggregate(read.presentation)
        usages += _bucket_usages(
            subscription=subscription,
            read=read,
            results=results,
            split=split,
            window=window,
            period_ratio=period_ratio,
            chain_started_at=chain_started_at,
        )
    return usages


def _bucket_usages(
    *,
    subscription: Subscription,
    read: _BucketRead,
    results: list[AggregationResult],
    split: list[AggregationResult],
    window: UsageWindow,
    period_ratio: Decimal | None,
    chain_started_at: datetime,
) -> list[ChargeUsage]:
    """One bucket priced from its aggregations (`results`, and `split` by presentation keys)."""
    charge, bucket = read.charge, read.bucket
    metric = charge.billable_metric
    currency = subscription.plan.amount_currency
    prorated = is_prorated(charge)
    if not results:  # grouped and nothing yet: one empty entry keeps the charge visible
        results = [AggregationResult(group={}, units=ZERO, events_count=0)]
    breakdowns = _presentation_breakdowns(split, bucket, metric, prorated, read.presentation_keys)
    usages = []
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
        if is_priced(charge.charge_model, bucket.properties):
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
                breakdowns=breakdowns.get(group_key(aggregated.group), []),
            )
        )
    return usages


def _presentation_breakdowns(
    split: list[AggregationResult],
    bucket: Bucket,
    metric: Any,
    prorated: bool,
    keys: tuple[str, ...],
) -> dict[tuple, list[PresentationBreakdown]]:
    """Units of the bucket per pricing group, split by the presentation keys (spec §7.13), from
    the same aggregation grouped by the pricing and presentation keys (`split`: one more
    statement), rounded like the fee's units (§4.4). Keyed by `group_key` of the pricing group.
    With a presentation filter, `keys` are those kept (aggregated again on them, not summed,
    so unique counts stay right)."""
    if not keys:
        return {}
    found: dict[tuple, list[PresentationBreakdown]] = {}
    for result in split:
        units = result.full_units if prorated and result.full_units is not None else result.units
        units = apply_rounding(units, metric.rounding_function, metric.rounding_precision)
        pricing = {key: result.group.get(key) for key in bucket.group_by}
        found.setdefault(group_key(pricing), []).append(
            PresentationBreakdown({key: result.group.get(key) for key in keys}, units)
        )
    return {key: ordered(rows) for key, rows in found.items()}


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
    graduated_prorated = prorated and charge.charge_model == ChargeModel.GRADUATED
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
        per_event_units=per_event
        if charge.charge_model == ChargeModel.PERCENTAGE or prorated
        else None,
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
    bucket: Bucket,
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
        if is_prorated(charge):  # the carried value leads the prorated values
            return units
        carried = aggregated.units - sum(values, ZERO) if charge.billable_metric.recurring else ZERO
        return max(units, _running_maximum(carried, values))
    if kind == AggregationType.UNIQUE_COUNT:
        replay = replay_events(
            subscription=subscription,
            charge=charge,
            bucket=bucket,
            window=window,
            group=aggregated.group,
            until=None,
            chain_started_at=chain_started_at,
        )
        if is_prorated(charge):
            return _billed_prorated_units(replay, window)
        return max(units, replay.highest)
    return units


def _billed_prorated_units(replay: Replay, window: UsageWindow) -> Decimal:
    """Prorated units a pay-in-advance unique count billed in the window (spec §7.14, §25):
    the carried-over ids over the window's days (renewed at the period start), then each raise
    of the period maximum over the days left from its event, ceiled per event as its fee was.
    A later removal takes nothing back (Lago's current usage keeps what was billed)."""
    days = window.charges_duration_days
    tz = ZoneInfo(window.timezone)
    window_days = date_diff_with_timezone(
        window.charges_from_datetime, window.charges_to_datetime, tz
    )
    billed = prorated_units([(replay.carried, window_days)], period_days=days)
    for at, increase in replay.raises:
        billed += prorated_units([(increase, days_to_period_end(at, window))], period_days=days)
    return billed


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
    chain_started_at: datetime | None = None,
) -> list[ChargeUsage]:
    """Every charge of the plan over `window` (`charge_usage` for each, in charge order).

    Pay-in-advance charges are billed event by event (§7.14): left out unless asked for (the
    current usage shows them, spec §25). `chain_started_at`: the first start of the external
    id when the caller read it already (`initial_started_at`), else read here.
    """
    if charges is None:
        charges = plan_charges(subscription)
    if chain_started_at is None:
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


class UsageAnswers:
    """Aggregations read ahead for many subscriptions at once (`read_usage_ahead`), each
    handed once to the `charge_usage` that asks the very same query (all fields equal: same
    subscription, metric, window, filters, groups)."""

    def __init__(self) -> None:
        self._found: dict[tuple, list[tuple[AggregationQuery, list[AggregationResult]]]] = {}

    @staticmethod
    def _slot(query: AggregationQuery, with_values: bool) -> tuple:
        return (query.external_subscription_id, query.code, with_values)

    def add(
        self, query: AggregationQuery, with_values: bool, results: list[AggregationResult]
    ) -> None:
        self._found.setdefault(self._slot(query, with_values), []).append((query, results))

    def take(self, query: AggregationQuery, with_values: bool) -> list[AggregationResult] | None:
        """The results read ahead for this query (removed), None when it was not read ahead."""
        entries = self._found.get(self._slot(query, with_values), [])
        for index, (known, results) in enumerate(entries):
            if known == query:
                del entries[index]
                return results
        return None

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._found.values())


def read_usage_ahead(
    reads: Sequence[tuple[Subscription, Charge, UsageWindow, datetime]],
) -> UsageAnswers:
    """The aggregations `charge_usage` would run for these (subscription, charge, window,
    chain start) reads, run together (`EventStore.aggregate_many`: one statement per
    aggregation shape for all of them instead of one per subscription and charge bucket)."""
    queries: list[tuple[AggregationQuery, bool]] = []
    for subscription, charge, window, chain_started_at in reads:
        for read in _bucket_reads(
            subscription=subscription,
            charge=charge,
            window=window,
            chain_started_at=chain_started_at,
            presentation_filter=None,
        ):
            queries.append((read.query, read.with_values))
            if read.presentation is not None:
                queries.append((read.presentation, False))
    answers = UsageAnswers()
    store = get_event_store()
    for with_values in (False, True):
        batch = [query for query, values in queries if values == with_values]
        if batch:
            found = store.aggregate_many(batch, with_event_values=with_values)
            for query, results in zip(batch, found, strict=True):
                answers.add(query, with_values, results)
    return answers


def subscriptions_usage(
    *,
    subscriptions: Sequence[Subscription],
    windows: Mapping[UUID, UsageWindow],
    charges: Mapping[UUID, Sequence[Charge]],
    chain_started_at: Mapping[UUID, datetime],
    include_pay_in_advance: bool = False,
) -> dict[UUID, list[ChargeUsage]]:
    """`subscription_usage` of many subscriptions at once, by subscription id: the same
    entries, but each aggregation of a charge read for all of them together
    (`EventStore.aggregate_many`: one statement per charge bucket for the whole batch instead
    of one per subscription). `windows`, `chain_started_at`: by subscription id; `charges`:
    the plan's charges by plan id (`plan_charges`)."""
    reads: list[tuple[Subscription, _BucketRead]] = []
    for subscription in subscriptions:
        for charge in charges[subscription.plan_id]:
            if charge.pay_in_advance and not include_pay_in_advance:
                continue
            reads += [
                (subscription, read)
                for read in _bucket_reads(
                    subscription=subscription,
                    charge=charge,
                    window=windows[subscription.pk],
                    chain_started_at=chain_started_at[subscription.pk],
                    presentation_filter=None,
                )
            ]
    store = get_event_store()
    results: list[list[AggregationResult]] = [[] for _ in reads]
    for with_values in (False, True):
        indexes = [i for i, (_, read) in enumerate(reads) if read.with_values == with_values]
        answered = store.aggregate_many(
            [reads[i][1].query for i in indexes], with_event_values=with_values
        )
        for index, found in zip(indexes, answered, strict=True):
            results[index] = found
    split: list[list[AggregationResult]] = [[] for _ in reads]
    presented = [i for i, (_, read) in enumerate(reads) if read.presentation is not None]
    answered = store.aggregate_many([reads[i][1].presentation for i in presented])  # type: ignore[misc]
    for index, found in zip(presented, answered, strict=True):
        split[index] = found
    usages: dict[UUID, list[ChargeUsage]] = {s.pk: [] for s in subscriptions}
    for index, (subscription, read) in enumerate(reads):
        usages[subscription.pk] += _bucket_usages(
            subscription=subscription,
            read=read,
            results=results[index],
            split=split[index],
            window=windows[subscription.pk],
            period_ratio=None,
            chain_started_at=chain_started_at[subscription.pk],
        )
    return usages
