"""Clock-driven transitions of subscriptions the beat schedule runs (spec §27): activation of
pending subscriptions and downgrades, termination when `ending_at` passes, termination alerts and
trial ends.

Side effects: an outbox event (`subscription.started`, `.terminated`, `.canceled`,
`.termination_alert`, `.trial_ended`) is written in the same transaction as each change, and the
hooks of `customers.hooks` fire after commit for invoicing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery

from billing.actors import Actor
from billing.periods import PlanChange, end_of_day, local_date, start_of_day, trial_end
from customers import hooks
from customers.locks import lock_subscription_family, lock_subscriptions
from customers.models import Subscription
from customers.services.subscription_reads import customer_zone
from customers.services.subscription_transitions import (
    activate,
    carried_trial_end,
    record_event,
    start_instant,
    terminate,
)

logger = logging.getLogger(__name__)

Status = Subscription.Status
TERMINATION_ALERT_DAYS = (45, 15)  # spec §9.2: alerts 45 and 15 days before `ending_at`


# --------------------------------------------------------------------------------------------
# Clock-driven transitions (spec §27): each subscription in its own transaction, re-checked
# under its locks, so a run repeated or run twice at once changes nothing more.


def _each(
    pks: Iterable[uuid.UUID], step: Callable[..., Subscription | None], **kwargs: object
) -> list[Subscription]:
    """Runs `step(pk, **kwargs)` (one locked transaction each) for every candidate; the
    subscriptions it changed, in order."""
    return [changed for pk in pks if (changed := step(pk, **kwargs)) is not None]


def subscription_activate_pending(*, actor: Actor, now: datetime) -> list[Subscription]:
    """Starts pending subscriptions whose day has come (every 5 minutes, spec §9.2).

    A subscription starting on its own starts when the local date of `subscription_at`
    arrives; a pending downgrade replaces its predecessor on the `downgrade_plan_date`.
    """
    # Superset filtered exactly per customer timezone below: no local date is a day ahead.
    due = (
        Subscription.objects.filter(
            status=Status.PENDING,
            previous_subscription__isnull=True,
            subscription_at__lt=now + timedelta(days=1),
        )
        .order_by("subscription_at", "pk")
        .values_list("pk", flat=True)
    )
    started = _each(due, _activate_when_due, actor=actor, now=now)
    downgrades = (
        Subscription.objects.filter(
            status=Status.PENDING,
            previous_subscription__status=Status.ACTIVE,
            previous_subscription__downgrade_plan_date__lte=(now + timedelta(days=1)).date(),
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return started + _each(downgrades, _apply_downgrade_when_due, actor=actor, now=now)


@transaction.atomic
def _activate_when_due(
    subscription_id: uuid.UUID, *, actor: Actor, now: datetime
) -> Subscription | None:
    subscription, _, _ = lock_subscription_family(subscription_id)
    if subscription.status != Status.PENDING or subscription.previous_subscription_id:
        return None
    tz = customer_zone(subscription.customer)
    if local_date(subscription.subscription_at, tz) > local_date(now, tz):
        return None
    started_at = start_instant(
        subscription.customer_id, subscription.external_id, subscription.subscription_at
    )
    try:
        with transaction.atomic():
            activate(subscription, started_at=started_at, actor=actor)
    except IntegrityError:
        # Another subscription of the organization holds the external id: stays pending.
        logger.warning("subscription %s not activated: external id in use", subscription.pk)
        return None
    return subscription


@transaction.atomic
def _apply_downgrade_when_due(
    successor_id: uuid.UUID, *, actor: Actor, now: datetime
) -> Subscription | None:
    successor, predecessor, _ = lock_subscription_family(successor_id)
    if (
        successor.status != Status.PENDING
        or predecessor is None
        or predecessor.status != Status.ACTIVE
        or predecessor.downgrade_plan_date is None
    ):
        return None
    tz = customer_zone(predecessor.customer)
    day = predecessor.downgrade_plan_date
    if day > local_date(now, tz):
        return None
    # The rotation happens on the period boundary, whenever the job runs: the old plan's
    # last period ends at its last local second, the new plan starts at the next midnight.
    started_at = start_of_day(day, tz)
    terminate(
        predecessor,
        at=end_of_day(day - timedelta(days=1), tz),
        actor=actor,
        now=now,
        successor=None,
        fire_hook=False,
    )
    successor.status, successor.started_at = Status.ACTIVE, started_at
    successor.trial_ended_at = carried_trial_end(successor, started_at)
    successor.save(update_fields=["status", "started_at", "trial_ended_at", "updated_at"])
    record_event(successor, "subscription.started", actor=actor)
    hooks.on_plan_changed.fire_after_commit(
        previous_subscription_id=predecessor.pk,
        subscription_id=successor.pk,
        change=PlanChange.DOWNGRADE.value,
        timestamp=started_at,
    )
    return successor


def subscription_terminate_ended(*, actor: Actor, now: datetime) -> list[Subscription]:
    """Terminates active subscriptions whose `ending_at` has passed (hourly :05, spec §9.2)."""
    due = (
        Subscription.objects.filter(status=Status.ACTIVE, ending_at__lte=now)
        .order_by("ending_at", "pk")
        .values_list("pk", flat=True)
    )
    return _each(due, _terminate_when_ended, actor=actor, now=now)


@transaction.atomic
def _terminate_when_ended(
    subscription_id: uuid.UUID, *, actor: Actor, now: datetime
) -> Subscription | None:
    subscription, _, successor = lock_subscription_family(subscription_id)
    if (
        subscription.status != Status.ACTIVE
        or subscription.ending_at is None
        or subscription.ending_at > now
    ):
        return None
    # Terminated at `ending_at` itself, not at the run: the closing period is deterministic.
    terminate(subscription, at=subscription.ending_at, actor=actor, now=now, successor=successor)
    return subscription


def subscription_termination_alerts(*, actor: Actor, now: datetime) -> list[Subscription]:
    """Records the `subscription.termination_alert` webhook 45 and 15 days before `ending_at`,
    once each (§9.2).

    Days are counted between local dates. Only the nearest threshold reached is recorded, so a
    subscription given an `ending_at` 10 days away gets the 15-day alert alone.
    """
    due = (
        Subscription.objects.filter(
            status=Status.ACTIVE,
            ending_at__gt=now - timedelta(days=1),
            ending_at__lte=now + timedelta(days=max(TERMINATION_ALERT_DAYS) + 1),
        )
        .order_by("ending_at", "pk")
        .values_list("pk", flat=True)
    )
    return _each(due, _alert_termination, actor=actor, now=now)


def _alert_threshold(subscription: Subscription, now: datetime) -> int | None:
    tz = customer_zone(subscription.customer)
    days_left = (local_date(subscription.ending_at, tz) - local_date(now, tz)).days
    reached = [days for days in TERMINATION_ALERT_DAYS if 0 <= days_left <= days]
    return min(reached) if reached else None


@transaction.atomic
def _alert_termination(
    subscription_id: uuid.UUID, *, actor: Actor, now: datetime
) -> Subscription | None:
    subscription = lock_subscriptions([subscription_id]).get(subscription_id)
    if subscription is None or subscription.status != Status.ACTIVE or not subscription.ending_at:
        return None
    threshold = _alert_threshold(subscription, now)
    if threshold is None or threshold in subscription.termination_alerts_sent:
        return None
    subscription.termination_alerts_sent = [*subscription.termination_alerts_sent, threshold]
    subscription.save(update_fields=["termination_alerts_sent", "updated_at"])
    record_event(
        subscription, "subscription.termination_alert", days_before_ending=threshold, actor=actor
    )
    return subscription


def subscription_end_trials(*, actor: Actor, now: datetime) -> list[Subscription]:
    """Marks the end of free trials (hourly :35): `trial_ended_at` and one outbox event each.

    The trial counts from the first start of the external id (spec §11, §30.3).
    """
    first_start = (
        Subscription.objects.filter(
            customer_id=OuterRef("customer_id"),
            external_id=OuterRef("external_id"),
            started_at__isnull=False,
        )
        .order_by("started_at")
        .values("started_at")[:1]
    )
    candidates = (
        Subscription.objects.filter(
            status=Status.ACTIVE, trial_ended_at__isnull=True, plan__trial_period__gt=0
        )
        .annotate(first_started_at=Subquery(first_start))
        .select_related("plan")
        .order_by("pk")
    )
    ended = []
    for candidate in candidates:
        end = trial_end(
            candidate.first_started_at or candidate.subscription_at,
            Decimal(candidate.plan.trial_period),
        )
        if end is None or end > now:
            continue
        subscription = _end_trial(candidate.pk, trial_ended_at=end, actor=actor)
        if subscription is not None:
            ended.append(subscription)
    return ended


@transaction.atomic
def _end_trial(
    subscription_id: uuid.UUID, *, trial_ended_at: datetime, actor: Actor
) -> Subscription | None:
    subscription = lock_subscriptions([subscription_id]).get(subscription_id)
    if (
        subscription is None
        or subscription.status != Status.ACTIVE
        or subscription.trial_ended_at is not None
    ):
        return None
    subscription.trial_ended_at = trial_ended_at
    subscription.save(update_fields=["trial_ended_at", "updated_at"])
    record_event(subscription, "subscription.trial_ended", actor=actor)
    hooks.on_trial_ended.fire_after_commit(
        subscription_id=subscription.pk, trial_ended_at=trial_ended_at
    )
    return subscription
