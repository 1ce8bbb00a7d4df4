"""Pay-in-advance fees (spec §7.14): what one event bills on its charge, from the period's
running total just before it (full replay, or resumed from a cached aggregation)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from django.db import transaction

from billing.money import amount_to_cents, to_minor
from customers.models import Subscription
from customers.services.subscription_reads import initial_started_at
from metering.locks import lock_in_advance_key
from metering.presentation import (
    PresentationBreakdown,
)
from metering.usage.buckets import ZERO, Bucket, display_name, is_priced, is_prorated
from metering.usage.cached import (
    CACHED_KINDS,
    CacheKey,
    Resume,
    Step,
    resumable,
)
from metering.usage.engine import plan_charges
from metering.usage.replay import EventLike, event_bucket, event_value, group_of, replay_events
from metering.usage.windows import UsageWindow, days_to_period_end, usage_window
from plans.charge_models import (
    in_advance_amount,
    in_advance_units,
    prorated_units,
)
from plans.models import AggregationType, Charge, ChargeFilter

CacheMode = Literal["off", "read", "write"]


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
            lock_in_advance_key(subscription, event.code)
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
    bucket = event_bucket(charge, event)
    if not is_priced(charge.charge_model, bucket.properties):
        return None  # an event in a default bucket without price bills nothing (§7.12)
    if event_value(event, kind, metric.field_name) is None:
        return None  # not aggregated by the store: nothing to bill
    group = group_of(event.properties, bucket.group_by)
    key = None
    if cache != "off" and kind in CACHED_KINDS:
        key = CacheKey.of(
            subscription=subscription, charge=charge, bucket=bucket, group=group, window=window
        )
    step = None
    if key is not None:
        checkpoint = key.checkpoint(event, invalidate=cache == "write")
        if checkpoint is not None and resumable(charge, bucket):
            step = Resume(
                subscription=subscription,
                charge=charge,
                bucket=bucket,
                group=group,
                window=window,
                chain_started_at=chain_started_at,
                checkpoint=checkpoint,
            ).until(event)
    if step is None:
        step = Step.of(
            replay_events(
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
    # spec §7.14: a unique count fee shows the unit its event counts (an id not active before
    # it) even when that unit is free because the period maximum was already billed (Lago's
    # "with unique_count_agg / standard" scenario: re-added id -> 1 unit, 0)
    fee_units = event_units
    if kind == AggregationType.UNIQUE_COUNT:
        fee_units = max(step.current - step.current_before, ZERO)
    if is_prorated(charge):
        # spec §7.14: prorated (standard only) on the days left in the period (V52)
        prorated = prorated_units(
            [(event_units, days_to_period_end(event.timestamp, window))],
            period_days=window.charges_duration_days,
        )
        result = in_advance_amount(
            charge.charge_model,
            bucket.properties,
            units=prorated,
            event_units=prorated,
            currency=currency,
            fee_units=fee_units,
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
            fee_units=fee_units,
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
        invoice_display_name=display_name(charge, bucket.charge_filter),
        window=window,
        event=event,
        presentation_breakdowns=_event_breakdowns(event, bucket, kind, step),
    )


def _event_breakdowns(
    event: EventLike, bucket: Bucket, kind: str, step: Step
) -> list[PresentationBreakdown]:
    """Lago's pay_in_advance_breakdowns: the event's presentation values with its own value
    (1 for a count; the change of the running total for a sum or a unique count), not the
    billed increase."""
    presented = group_of(event.properties, bucket.presentation_by)
    if not presented:
        return []
    value = Decimal(1) if kind == AggregationType.COUNT else step.current - step.current_before
    return [PresentationBreakdown(presented, value)]
