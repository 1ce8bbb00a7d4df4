"""The state transitions every subscription service shares (spec §9.2), always called with the
rows locked (`customers.locks`): activate, cancel, terminate, and the pieces they are built from.

Side effects: an outbox event (`subscription.started`, `.terminated`, `.canceled`) is written in
the same transaction as each change, and the hooks of `customers.hooks` fire after commit for
invoicing.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from django.db import IntegrityError, transaction

from billing.actors import Actor
from billing.errors import Invalid
from billing.outbox import emit
from customers import hooks
from customers.models import Subscription
from customers.services.subscription_reads import subscription_trial_end

Status = Subscription.Status


class Unset(enum.Enum):
    """The type of `UNSET`, for type hints."""

    UNSET = "unset"


UNSET = Unset.UNSET  # "key absent from the payload", as opposed to an explicit null


# --------------------------------------------------------------------------------------------
# Outbox and small helpers


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def record_event(
    subscription: Subscription,
    event_type: str,
    *,
    actor: Actor,
    changes: dict[str, list] | None = None,
    **extra: object,
) -> None:
    """An outbox row for integrations (webhook `event_type`), in the current transaction;
    `changes`: what the activity's changed fields add to the row's columns."""
    payload = {
        "lago_id": str(subscription.pk),
        "external_id": subscription.external_id,
        "lago_customer_id": str(subscription.customer_id),
        "external_customer_id": subscription.customer.external_id,
        "plan_code": subscription.plan.code,
        "status": subscription.status,
        "subscription_at": _iso(subscription.subscription_at),
        "started_at": _iso(subscription.started_at),
        "ending_at": _iso(subscription.ending_at),
        "terminated_at": _iso(subscription.terminated_at),
        "canceled_at": _iso(subscription.canceled_at),
        "trial_ended_at": _iso(subscription.trial_ended_at),
        "downgrade_plan_date": _iso(subscription.downgrade_plan_date),
        **extra,
    }
    emit(event_type=event_type, actor=actor, obj=subscription, payload=payload, changes=changes)


def save_new(subscription: Subscription) -> Subscription:
    """Inserts a subscription; the one-active-per-external-id constraint is the last line."""
    try:
        with transaction.atomic():
            subscription.save(force_insert=True)
    except IntegrityError as exc:
        raise Invalid({"external_id": ["value_already_exist"]}) from exc
    return subscription


def start_instant(customer_id: uuid.UUID, external_id: str, subscription_at: datetime) -> datetime:
    """`started_at` of an activation: `subscription_at`, or the end of a later termination of
    the same external id so two lives never overlap (spec §9.2)."""
    last_end = (
        Subscription.objects.filter(
            customer_id=customer_id,
            external_id=external_id,
            status=Status.TERMINATED,
            terminated_at__isnull=False,
        )
        .order_by("-terminated_at")
        .values_list("terminated_at", flat=True)
        .first()
    )
    return max(subscription_at, last_end) if last_end else subscription_at


def carried_trial_end(subscription: Subscription, started_at: datetime) -> datetime | None:
    """On a plan change the trial counts from the first start (§30.3); if it is already over
    when the successor starts, the successor is born with `trial_ended_at` set (no second
    `subscription.trial_ended`)."""
    end = subscription_trial_end(subscription)
    return end if end is not None and end <= started_at else None


# --------------------------------------------------------------------------------------------
# State transitions (always called with the rows locked)


def activate(subscription: Subscription, *, started_at: datetime, actor: Actor) -> None:
    subscription.status = Status.ACTIVE
    subscription.started_at = started_at
    subscription.save(update_fields=["status", "started_at", "updated_at"])
    record_event(subscription, "subscription.started", actor=actor)
    hooks.on_subscription_started.fire_after_commit(
        subscription_id=subscription.pk, started_at=started_at
    )


def cancel(
    subscription: Subscription, *, actor: Actor, now: datetime, predecessor: Subscription | None
) -> None:
    """A pending subscription ends before starting (spec §9.2 `canceled`)."""
    subscription.status = Status.CANCELED
    subscription.canceled_at = now
    subscription.save(update_fields=["status", "canceled_at", "updated_at"])
    record_event(subscription, "subscription.canceled", actor=actor)
    if predecessor is not None and predecessor.downgrade_plan_date is not None:
        predecessor.downgrade_plan_date = None  # the downgrade it announced will not happen
        predecessor.save(update_fields=["downgrade_plan_date", "updated_at"])


def terminate(
    subscription: Subscription,
    *,
    at: datetime,
    actor: Actor,
    now: datetime,
    successor: Subscription | None,
    credit_note: str | None = None,
    invoice: str | None = None,
    fire_hook: bool = True,
) -> None:
    """An active subscription ends at `at` (spec §9.5); a pending downgrade is canceled."""
    subscription.status = Status.TERMINATED
    subscription.terminated_at = at
    subscription.downgrade_plan_date = None
    if subscription.plan.pay_in_advance:
        # spec §9.5: only pay-in-advance plans have unused days to credit; default `credit`.
        subscription.on_termination_credit_note = (
            credit_note
            or subscription.on_termination_credit_note
            or Subscription.OnTerminationCreditNote.CREDIT
        )
    if invoice:
        subscription.on_termination_invoice = invoice
    subscription.save(
        update_fields=[
            "status", "terminated_at", "downgrade_plan_date", "on_termination_credit_note",
            "on_termination_invoice", "updated_at",
        ]
    )  # fmt: skip
    record_event(subscription, "subscription.terminated", actor=actor)
    if successor is not None and successor.status == Status.PENDING:
        cancel(successor, actor=actor, now=now, predecessor=None)
    if fire_hook:
        hooks.on_subscription_terminated.fire_after_commit(
            subscription_id=subscription.pk, terminated_at=at
        )
