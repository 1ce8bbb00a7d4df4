"""Plan changes of a subscription (spec §9.4), called by `subscription_create` with the customer
and the subscription family locked: a pending subscription swaps its plan; an active one is
upgraded now or downgraded at the end of its period.

Side effects: an outbox event (`subscription.started`, `.terminated`, `.updated`, `.canceled`) is
written in the same transaction as each change, and `customers.hooks.on_plan_changed` fires after
commit for invoicing.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from billing.actors import Actor
from billing.errors import Invalid
from billing.models import Organization
from billing.periods import PlanChange, local_date, next_billing_day, plan_change
from customers import hooks
from customers.models import Customer, Subscription
from customers.services.subscription_reads import subscription_cycle
from customers.services.subscription_transitions import (
    UNSET,
    Unset,
    cancel,
    carried_trial_end,
    record_event,
    save_new,
    terminate,
)
from plans.models import Plan

Status = Subscription.Status


def change_active_plan(
    current: Subscription,
    *,
    successor: Subscription | None,
    plan: Plan,
    organization: Organization,
    customer: Customer,
    name: str | None,
    ending_at: datetime | Unset | None,
    consolidate_invoice: bool | None,
    purchase_order_number: str | None,
    actor: Actor,
    now: datetime,
    progressive_billing_disabled: bool = False,
) -> Subscription:
    """Moves an active subscription to another plan: an upgrade now (returns the new active
    subscription) or a downgrade at the period end (returns the current one, which announces
    `downgrade_plan_date`); a pending downgrade already announced is canceled (spec §9.4).

    `progressive_billing_disabled` is the new subscription's, from the request: like Lago,
    the current subscription's is not carried over.
    """
    change = plan_change(
        current_amount_cents=current.plan.amount_cents,
        current_interval=current.plan.interval,
        new_amount_cents=plan.amount_cents,
        new_interval=plan.interval,
    )
    successor_fields = {
        "organization": organization,
        "customer": customer,
        "plan": plan,
        "external_id": current.external_id,
        "name": current.name if name is None else name,
        "previous_subscription": current,
        "subscription_at": current.subscription_at,  # same anniversary (spec §9.4)
        "billing_time": current.billing_time,
        "ending_at": current.ending_at if ending_at is UNSET else ending_at,
        "consolidate_invoice": (
            current.consolidate_invoice if consolidate_invoice is None else consolidate_invoice
        ),
        "purchase_order_number": (
            current.purchase_order_number
            if purchase_order_number is None
            else purchase_order_number
        ),
        "progressive_billing_disabled": progressive_billing_disabled,
    }
    if successor is not None:  # spec §9.4: only one pending downgrade
        cancel(successor, actor=actor, now=now, predecessor=None)
    if change is PlanChange.UPGRADE:
        return _upgrade(current, successor_fields=successor_fields, actor=actor, now=now)
    return _downgrade(current, successor_fields=successor_fields, actor=actor, now=now)


def swap_pending_plan(
    current: Subscription, *, plan: Plan, name: str | None, actor: Actor
) -> Subscription:
    """A subscription that has not started takes the new plan in place (spec §9.4)."""
    current.plan = plan
    if name:
        current.name = name
    current.save(update_fields=["plan", "name", "updated_at"])
    record_event(current, "subscription.updated", actor=actor)
    return current


def _upgrade(
    current: Subscription, *, successor_fields: dict, actor: Actor, now: datetime
) -> Subscription:
    """spec §9.4: the current subscription ends now and the new one starts now."""
    terminate(current, at=now, actor=actor, now=now, successor=None, fire_hook=False)
    new = Subscription(**successor_fields, status=Status.ACTIVE, started_at=now)
    new.trial_ended_at = carried_trial_end(new, now)
    save_new(new)
    record_event(new, "subscription.started", actor=actor)
    hooks.on_plan_changed.fire_after_commit(
        previous_subscription_id=current.pk,
        subscription_id=new.pk,
        change=PlanChange.UPGRADE.value,
        timestamp=now,
    )
    return new


def _downgrade(
    current: Subscription, *, successor_fields: dict, actor: Actor, now: datetime
) -> Subscription:
    """spec §9.4: a pending successor starts on the next billing day; the current one stays."""
    cycle = subscription_cycle(current)
    current.downgrade_plan_date = next_billing_day(cycle, local_date(now, cycle.timezone))
    current.save(update_fields=["downgrade_plan_date", "updated_at"])
    try:
        with transaction.atomic():
            Subscription.objects.create(**successor_fields, status=Status.PENDING)
    except IntegrityError as exc:  # one pending successor per subscription (constraint)
        raise Invalid({"external_id": ["value_already_exist"]}) from exc
    record_event(current, "subscription.updated", actor=actor)
    return current
