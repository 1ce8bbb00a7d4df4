"""Reads of a subscription's calendar shared by the subscription services, the API, the admin,
usage and invoicing: the customer's timezone, the billing cycle and current period (spec §9.1),
the successor, the first start of the external id and the end of the free trial (§11, §30.3).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db.models import F, Min, OuterRef, Q, QuerySet, Subquery

from billing.periods import (
    BillingCycle,
    Period,
    PlanChange,
    local_date,
    next_billing_day,
    period_containing,
    plan_change,
    start_of_day,
    trial_end,
)
from customers.models import Customer, Subscription
from plans.models import Plan

Status = Subscription.Status


def customer_zone(customer: Customer) -> ZoneInfo:
    """The customer's applicable timezone (spec §3.1): every period is cut in it."""
    return ZoneInfo(customer.applicable_timezone)


def subscription_cycle(subscription: Subscription) -> BillingCycle:
    """How the subscription is cut into periods: its plan interval, billing time and anchor."""
    plan = subscription.plan
    return BillingCycle.for_subscription(
        interval=plan.interval,
        billing_time=subscription.billing_time,
        subscription_at=subscription.subscription_at,
        timezone=customer_zone(subscription.customer),
        bill_charges_monthly=bool(plan.bill_charges_monthly),
    )


def subscription_current_period(subscription: Subscription, *, now: datetime) -> Period | None:
    """The billing period the subscription is in (`current_billing_period_*`, spec §9.1).

    Active: the period containing now. Terminated: the period it ended in, cut at the end.
    Pending: the first period it will start in. Canceled: none.
    """
    cycle = subscription_cycle(subscription)
    terminated_at = None
    match subscription.status:
        case Status.ACTIVE | Status.INCOMPLETE:
            started_at = subscription.started_at or subscription.subscription_at
            reference = max(now, started_at)
        case Status.TERMINATED:
            started_at = subscription.started_at or subscription.subscription_at
            terminated_at = subscription.terminated_at or now
            reference = max(terminated_at, started_at)
        case Status.PENDING:
            previous = subscription.previous_subscription
            if previous is not None and previous.downgrade_plan_date is not None:
                started_at = start_of_day(previous.downgrade_plan_date, cycle.timezone)
            else:
                started_at = max(subscription.subscription_at, now)
            reference = started_at
        case _:
            return None
    return period_containing(
        cycle,
        local_date(reference, cycle.timezone),
        started_at=started_at,
        terminated_at=terminated_at,
    )


def subscription_next(subscription: Subscription) -> Subscription | None:
    """The subscription that replaces this one (upgrade) or will (pending downgrade)."""
    prefetched = getattr(subscription, "live_successors", None)
    if prefetched is not None:
        return prefetched[0] if prefetched else None
    return (
        subscription.next_subscriptions.exclude(status=Status.CANCELED)
        .select_related("plan")
        .order_by("-created_at", "-pk")
        .first()
    )


_CHAIN_START = "chain_first_started_at"


def with_initial_started_at(subscriptions: QuerySet[Subscription]) -> QuerySet[Subscription]:
    """The subscriptions with the first start of their external id read in the same query, so
    that `initial_started_at` of each needs none."""
    first = (
        Subscription.objects.filter(
            customer_id=OuterRef("customer_id"),
            external_id=OuterRef("external_id"),
            started_at__isnull=False,
        )
        .order_by("started_at")
        .values("started_at")[:1]
    )
    return subscriptions.annotate(**{_CHAIN_START: Subquery(first)})


def initial_started_at(subscription: Subscription) -> datetime:
    """First start of the external id for this customer, else `subscription_at` (§11, §30.3)."""
    if hasattr(subscription, _CHAIN_START):  # read with `with_initial_started_at`
        first = getattr(subscription, _CHAIN_START)
    else:
        first = (
            Subscription.objects.filter(
                customer_id=subscription.customer_id,
                external_id=subscription.external_id,
                started_at__isnull=False,
            )
            .order_by("started_at")
            .values_list("started_at", flat=True)
            .first()
        )
    candidates = [d for d in (first, subscription.started_at) if d is not None]
    return min(candidates) if candidates else subscription.subscription_at


def initial_started_at_many(subscriptions: Iterable[Subscription]) -> dict[object, datetime]:
    """`initial_started_at` of many subscriptions in one query, by subscription id."""
    subscriptions = list(subscriptions)
    if not subscriptions:
        return {}
    firsts = {
        (row["customer_id"], row["external_id"]): row["first"]
        for row in Subscription.objects.filter(
            customer_id__in={s.customer_id for s in subscriptions},
            external_id__in={s.external_id for s in subscriptions},
            started_at__isnull=False,
        )
        .values("customer_id", "external_id")
        .annotate(first=Min("started_at"))
        .order_by()
    }
    starts = {}
    for subscription in subscriptions:
        first = firsts.get((subscription.customer_id, subscription.external_id))
        candidates = [d for d in (first, subscription.started_at) if d is not None]
        starts[subscription.pk] = min(candidates) if candidates else subscription.subscription_at
    return starts


def subscription_trial_end(subscription: Subscription) -> datetime | None:
    """When the plan's free trial ends, counted from the first start of the external id."""
    return trial_end(initial_started_at(subscription), subscription.plan.trial_period)


def editable_subscription(customer: Customer, external_id: str) -> Subscription | None:
    """The subscription of the customer that `POST /subscriptions` with this external id
    changes instead of creating one (code `CreateService#editable_subscriptions`): the active
    one, or a pending one that is not a downgrade."""
    return (
        Subscription.objects.filter(customer=customer, external_id=external_id)
        .filter(Q(status=Status.ACTIVE) | Q(status=Status.PENDING, previous_subscription=None))
        .select_related("plan")
        .order_by(F("started_at").desc(nulls_first=True), "-created_at")
        .first()
    )


def subscription_plan_change_effect(
    subscription: Subscription, *, plan: Plan, now: datetime, amount_cents: int | None = None
) -> tuple[str, date | None]:
    """What moving the subscription to a catalog plan would do, as `subscription_change_plan`
    decides it (spec §9.4): ("same", None) for its own plan, ("swap", None) for a pending
    subscription (its plan is replaced), ("upgrade", None) now, or ("downgrade", the day the
    new plan starts). `amount_cents`: the fee overriding the plan's, as the plan change
    compares it."""
    current = subscription.plan
    if plan.pk in (current.pk, current.parent_id):
        return "same", None
    if subscription.status == Status.PENDING:
        return "swap", None
    change = plan_change(
        current_amount_cents=current.amount_cents,
        current_interval=current.interval,
        new_amount_cents=plan.amount_cents if amount_cents is None else amount_cents,
        new_interval=plan.interval,
    )
    if change == PlanChange.UPGRADE:
        return PlanChange.UPGRADE.value, None
    cycle = subscription_cycle(subscription)
    return PlanChange.DOWNGRADE.value, next_billing_day(cycle, local_date(now, cycle.timezone))
