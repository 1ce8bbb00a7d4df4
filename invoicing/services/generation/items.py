"""Billing items: one subscription, one reason and the boundaries it is billed for (spec §8,
§9.3-§9.6, §10.3, §10.5, §11), and their grouping into invoices."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from billing.periods import (
    BillingCycle,
    Interval,
    Period,
    PlanChange,
    align_charges_from,
    billing_period,
    bills_subscription_fee_on,
    charges_cycle,
    first_period,
    is_billing_day,
    local_date,
    next_billing_day,
    period_containing,
    start_of_day,
    termination_period,
    trial_end_period,
)
from customers.models import Subscription
from customers.services.subscription_reads import subscription_cycle
from invoicing.models import InvoiceSubscription
from invoicing.services.generation.context import (
    BillingContext,
    Key,
    Reason,
    _key,
    _started_at,
    has_advance_fixed_charges,
)
from plans.models import Plan

# --------------------------------------------------------------------------------------------
# Billing items


@dataclass(frozen=True)
class BillingItem:
    """One subscription on an invoice: the boundaries it is billed for and what they bill.

    `period` is the `InvoiceSubscription` row (fee window, usage window, billing instant).
    `renewal_period` is the period starting now, whose recurring pay-in-advance charges are
    billed again (§7.14, §12.3 step 2). The fixed-charge windows are the period just ended (in
    arrears) and the period starting (in advance, §8). `commitment_period` is the plan period
    this invoice closes (§22), None when it closes none.
    """

    subscription: Subscription
    reason: str
    period: Period
    recurring: bool = False
    bills_subscription_fee: bool = False
    bills_charges: bool = False
    renewal_period: Period | None = None
    arrears_fixed_period: Period | None = None
    advance_fixed_period: Period | None = None
    commitment_period: Period | None = None
    ended_by: PlanChange | None = None
    created_by: PlanChange | None = None
    trial_end_at: datetime | None = None


def fixed_charges_cycle(cycle: BillingCycle, plan: Plan) -> BillingCycle:
    """The cycle cutting fixed-charge windows (spec §8): monthly for yearly and semiannual plans
    with `bill_fixed_charges_monthly`, else the plan's own."""
    if plan.bill_fixed_charges_monthly and cycle.interval in (Interval.YEARLY, Interval.SEMIANNUAL):
        return BillingCycle(
            interval=Interval.MONTHLY,
            billing_time=cycle.billing_time,
            anchor=cycle.anchor,
            timezone=cycle.timezone,
        )
    return cycle


def is_periodic_billing_day(subscription: Subscription, day: date) -> bool:
    """Whether the subscription gets a periodic invoice on this local day: a plan (or monthly
    charges) period starts on it, or a monthly fixed-charge period (spec §8, §10.3)."""
    cycle = subscription_cycle(subscription)
    fixed_cycle = fixed_charges_cycle(cycle, subscription.plan)
    return is_billing_day(cycle, day) or (
        fixed_cycle is not cycle and is_billing_day(fixed_cycle, day)
    )


def next_periodic_billing_day(subscription: Subscription, after: date) -> date:
    """First periodic billing day strictly after a local day (see `is_periodic_billing_day`)."""
    cycle = subscription_cycle(subscription)
    fixed_cycle = fixed_charges_cycle(cycle, subscription.plan)
    return min(next_billing_day(cycle, after), next_billing_day(fixed_cycle, after))


def _aligned_usage(
    period: Period, subscription: Subscription, context: BillingContext, *, started_at: datetime
) -> Period:
    """Spec §10.5: after a timezone change, usage starts one second after the previous
    periodic invoice's usage window (no gap, no overlap) when they are less than 26 h apart."""
    previous_to = context.previous_charges_to(subscription, period.timestamp)
    if previous_to is None:
        return period
    aligned = max(align_charges_from(period.charges_from_datetime, previous_to), started_at)
    if aligned == period.charges_from_datetime or aligned >= period.charges_to_datetime:
        return period
    return replace(period, charges_from_datetime=aligned)


def periodic_item(
    subscription: Subscription, billing_date: date, context: BillingContext
) -> BillingItem | None:
    """The invoice of a billing day (spec §10.3): the period that ended yesterday (in arrears),
    the one starting today (in advance), the usage of the period that ended.

    With `bill_fixed_charges_monthly` (§8) the fixed charges follow their monthly cycle; on a
    month that starts no plan (or charges) period the invoice carries only them."""
    cycle = subscription_cycle(subscription)
    plan = subscription.plan
    fixed_cycle = fixed_charges_cycle(cycle, plan)
    monthly_fixed = fixed_cycle is not cycle
    tz = cycle.timezone
    started_at = _started_at(subscription)
    if local_date(started_at, tz) >= billing_date:
        return None
    arrears_fixed: Period | None = None
    advance_fixed: Period | None = None
    plan_day = is_billing_day(cycle, billing_date)
    if not plan_day and not (monthly_fixed and is_billing_day(fixed_cycle, billing_date)):
        return None
    billing_at = start_of_day(billing_date, tz)
    if monthly_fixed:
        arrears_fixed = billing_period(
            fixed_cycle, billing_at=billing_at, started_at=started_at, pay_in_advance=False
        )
        advance_fixed = billing_period(
            fixed_cycle, billing_at=billing_at, started_at=started_at, pay_in_advance=True
        )
        if not plan_day:
            return _fixed_charges_item(
                subscription,
                replace(cycle, bill_charges_monthly=True),  # the row's usage window: that month
                billing_at=billing_at,
                arrears_fixed=arrears_fixed,
                advance_fixed=advance_fixed,
                context=context,
            )
    arrears = billing_period(
        cycle, billing_at=billing_at, started_at=started_at, pay_in_advance=False
    )
    advance = billing_period(
        cycle, billing_at=billing_at, started_at=started_at, pay_in_advance=True
    )
    period = advance if plan.pay_in_advance else arrears
    period = _aligned_usage(period, subscription, context, started_at=started_at)
    boundary = bills_subscription_fee_on(cycle, billing_date)
    if not monthly_fixed:
        arrears_fixed, advance_fixed = (arrears, advance) if boundary else (None, None)
    trial_end_at = context.trial_end(subscription)
    bills_fee = period.bills_subscription_fee
    if (
        plan.pay_in_advance
        and trial_end_at is not None
        and trial_end_at > billing_at
        and local_date(trial_end_at, tz) != billing_date
    ):
        # still in trial: the trial-end invoice bills the rest of the period (spec §11)
        bills_fee = False
    commitment_period = arrears if boundary else None
    if plan.pay_in_advance and not context.has_earlier_invoice(subscription):
        commitment_period = None  # nothing billed in advance for the period that ended
    return BillingItem(
        subscription=subscription,
        reason=Reason.SUBSCRIPTION_PERIODIC,
        period=period,
        recurring=True,
        bills_subscription_fee=bills_fee,
        bills_charges=True,
        renewal_period=period_containing(charges_cycle(cycle), billing_date, started_at=started_at),
        arrears_fixed_period=arrears_fixed,
        advance_fixed_period=advance_fixed,
        commitment_period=commitment_period,
        created_by=context.created_by(subscription),
        trial_end_at=trial_end_at,
    )


def _fixed_charges_item(
    subscription: Subscription,
    monthly_cycle: BillingCycle,
    *,
    billing_at: datetime,
    arrears_fixed: Period,
    advance_fixed: Period,
    context: BillingContext,
) -> BillingItem:
    """A month of fixed charges inside a yearly or semiannual plan period (spec §8): no
    subscription fee, no usage (billed with the plan period), no commitment."""
    period = billing_period(
        monthly_cycle,
        billing_at=billing_at,
        started_at=_started_at(subscription),
        pay_in_advance=subscription.plan.pay_in_advance,
    )
    return BillingItem(
        subscription=subscription,
        reason=Reason.SUBSCRIPTION_PERIODIC,
        period=replace(period, bills_subscription_fee=False),
        recurring=True,
        arrears_fixed_period=arrears_fixed,
        advance_fixed_period=advance_fixed,
        created_by=context.created_by(subscription),
    )


def starting_item(subscription: Subscription, context: BillingContext) -> BillingItem | None:
    """The invoice at the start of a pay-in-advance plan (spec §9.3): the first (prorated)
    period's fee, unless a free trial runs; in-advance fixed charges of the first period."""
    plan = subscription.plan
    advance_fixed = has_advance_fixed_charges(plan)
    if not plan.pay_in_advance and not advance_fixed:
        return None
    cycle = subscription_cycle(subscription)
    started_at = _started_at(subscription)
    trial_end_at = context.trial_end(subscription)
    in_trial = trial_end_at is not None and trial_end_at > started_at
    bills_fee = plan.pay_in_advance and not in_trial
    if not bills_fee and not advance_fixed:
        return None
    period = first_period(cycle, started_at=started_at, pay_in_advance=True)
    fixed_cycle = fixed_charges_cycle(cycle, plan)
    return BillingItem(
        subscription=subscription,
        reason=Reason.SUBSCRIPTION_STARTING,
        period=period,
        bills_subscription_fee=bills_fee,
        advance_fixed_period=(
            period
            if fixed_cycle is cycle
            else first_period(fixed_cycle, started_at=started_at, pay_in_advance=True)
        ),
        created_by=context.created_by(subscription),
        trial_end_at=trial_end_at,
    )


def termination_item(subscription: Subscription, context: BillingContext) -> BillingItem | None:
    """The closing invoice (spec §9.5): usage up to the termination and, in arrears, the
    prorated fee; the period's commitment prorated to the termination (§22)."""
    if subscription.terminated_at is None:
        return None
    cycle = subscription_cycle(subscription)
    fixed_cycle = fixed_charges_cycle(cycle, subscription.plan)
    started_at = _started_at(subscription)
    period = termination_period(
        cycle,
        started_at=started_at,
        terminated_at=subscription.terminated_at,
        pay_in_advance=subscription.plan.pay_in_advance,
    )
    period = _aligned_usage(period, subscription, context, started_at=started_at)
    return BillingItem(
        subscription=subscription,
        reason=Reason.SUBSCRIPTION_TERMINATING,
        period=period,
        bills_subscription_fee=period.bills_subscription_fee,
        bills_charges=True,
        arrears_fixed_period=(
            period
            if fixed_cycle is cycle
            else termination_period(
                fixed_cycle,
                started_at=started_at,
                terminated_at=subscription.terminated_at,
                pay_in_advance=False,
            )
        ),
        commitment_period=period,
        ended_by=context.ended_by(subscription),
        created_by=context.created_by(subscription),
        trial_end_at=context.trial_end(subscription),
    )


def trial_end_item(subscription: Subscription, context: BillingContext) -> BillingItem | None:
    """The pay-in-advance fee billed when a free trial ends (spec §11, V63): the rest of the
    period containing the trial end; usage stays with the periodic invoices."""
    plan = subscription.plan
    trial_end_at = context.trial_end(subscription)
    started_at = _started_at(subscription)
    if not plan.pay_in_advance or trial_end_at is None or trial_end_at <= started_at:
        return None
    if subscription.terminated_at is not None and subscription.terminated_at <= trial_end_at:
        return None
    cycle = subscription_cycle(subscription)
    period = trial_end_period(cycle, started_at=started_at, billing_at=trial_end_at)
    return BillingItem(
        subscription=subscription,
        reason=Reason.SUBSCRIPTION_TRIAL_ENDED,
        period=period,
        bills_subscription_fee=True,
        created_by=context.created_by(subscription),
        trial_end_at=trial_end_at,
    )


def item_for_row(row: InvoiceSubscription, context: BillingContext) -> BillingItem | None:
    """The item an `InvoiceSubscription` row was built from, with its stored boundaries (a
    draft is recomputed on exactly the windows it was created for)."""
    subscription = row.subscription
    tz = ZoneInfo(subscription.customer.applicable_timezone)
    match row.invoicing_reason:
        case Reason.SUBSCRIPTION_PERIODIC:
            item = periodic_item(subscription, local_date(row.timestamp, tz), context)
        case Reason.SUBSCRIPTION_STARTING:
            item = starting_item(subscription, context)
        case Reason.SUBSCRIPTION_TERMINATING:
            item = termination_item(subscription, context)
        case Reason.SUBSCRIPTION_TRIAL_ENDED:
            item = trial_end_item(subscription, context)
        case _:
            return None
    if item is None:
        return None
    period = replace(
        item.period,
        from_datetime=row.from_datetime,
        to_datetime=row.to_datetime,
        charges_from_datetime=row.charges_from_datetime or item.period.charges_from_datetime,
        charges_to_datetime=row.charges_to_datetime or item.period.charges_to_datetime,
        timestamp=row.timestamp,
    )
    return replace(item, period=period)


def item_key(item: BillingItem) -> Key:
    """The `billed_keys` key an item would take."""
    return _key(item.subscription.pk, item.reason, item.period.timestamp)


# --------------------------------------------------------------------------------------------
# Helpers shared with the billing run


def group_for_invoices(items: Sequence[BillingItem]) -> list[list[BillingItem]]:
    """Consolidation (spec §9.6): one invoice for the subscriptions billed together, one each
    for those with `consolidate_invoice: false`."""
    together: list[BillingItem] = []
    alone: dict[UUID, list[BillingItem]] = defaultdict(list)
    for item in items:
        if item.subscription.consolidate_invoice:
            together.append(item)
        else:
            alone[item.subscription.pk].append(item)
    groups = [together] if together else []
    groups.extend(alone.values())
    return groups
