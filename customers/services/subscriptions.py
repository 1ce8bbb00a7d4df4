"""Subscription life cycle (spec §9): create, upgrade, downgrade, update, terminate, cancel, and
the clock-driven transitions the beat schedule runs (§27): activation of pending subscriptions,
termination when `ending_at` passes, termination alerts and trial ends.

Locking (STYLE §7, `customers.locks`): every write locks the customer row first, then the
subscription rows it changes in primary-key order. The customer lock serializes every change of
one customer's subscriptions (as Lago's `customer.with_lock`), so two plan changes of the same
subscription never both apply; the partial unique constraints (one active subscription per
external id, one pending successor per subscription) are the last line.

Side effects: an outbox event (`subscription.started`, `.terminated`, `.canceled`, `.updated`,
`.trial_ended`, `.termination_alert`) is written in the same transaction as each change, and
the hooks of `customers.hooks` fire after commit for invoicing.
"""

from __future__ import annotations

import enum
import logging
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Q, Subquery

from billing.actors import Actor
from billing.errors import Invalid, NotAllowed, NotFound
from billing.models import Organization
from billing.outbox import emit
from billing.periods import (
    BillingCycle,
    Period,
    PlanChange,
    end_of_day,
    local_date,
    next_billing_day,
    period_containing,
    plan_change,
    start_of_day,
    trial_end,
)
from customers import hooks
from customers.locks import lock_customer, lock_subscription_family, lock_subscriptions
from customers.models import Customer, Subscription
from plans.models import Plan
from plans.services.plans import plan_override_create, plan_update

logger = logging.getLogger(__name__)

Status = Subscription.Status
TERMINATION_ALERT_DAYS = (45, 15)  # spec §9.2: alerts 45 and 15 days before `ending_at`
CREDIT_NOTE_CHOICES = tuple(Subscription.OnTerminationCreditNote.values)
INVOICE_CHOICES = tuple(Subscription.OnTerminationInvoice.values)


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET  # "key absent from the payload", as opposed to an explicit null


# --------------------------------------------------------------------------------------------
# Reads shared by the services, the API and the admin


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


def initial_started_at(subscription: Subscription) -> datetime:
    """First start of the external id for this customer, else `subscription_at` (§11, §30.3)."""
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


def subscription_trial_end(subscription: Subscription) -> datetime | None:
    """When the plan's free trial ends, counted from the first start of the external id."""
    return trial_end(initial_started_at(subscription), subscription.plan.trial_period)


# --------------------------------------------------------------------------------------------
# Outbox and small helpers


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _emit(subscription: Subscription, event_type: str, *, actor: Actor, **extra: object) -> None:
    """An outbox row for integrations (webhook `event_type`), in the current transaction."""
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
    emit(event_type=event_type, actor=actor, obj=subscription, payload=payload)


def _save_new(subscription: Subscription) -> Subscription:
    """Inserts a subscription; the one-active-per-external-id constraint is the last line."""
    try:
        with transaction.atomic():
            subscription.save(force_insert=True)
    except IntegrityError as exc:
        raise Invalid({"external_id": ["value_already_exist"]}) from exc
    return subscription


def _validate_ending_at(
    ending_at: datetime | None, *, subscription_at: datetime, tz: ZoneInfo, now: datetime
) -> None:
    # code `Subscriptions::ValidateService#valid_ending_at?`: a later day than today and start
    if ending_at is None:
        return
    end_day = local_date(ending_at, tz)
    if end_day <= local_date(now, tz) or end_day <= local_date(subscription_at, tz):
        raise Invalid({"ending_at": ["invalid_date"]})


def _validate_on_termination(credit_note: str | None, invoice: str | None) -> None:
    errors: dict[str, list[str]] = {}
    if credit_note and credit_note not in CREDIT_NOTE_CHOICES:
        errors["on_termination_credit_note"] = ["invalid_value"]
    if invoice and invoice not in INVOICE_CHOICES:
        errors["on_termination_invoice"] = ["invalid_value"]
    if errors:
        raise Invalid(errors)


def _set_customer_currency(customer: Customer, currency: str) -> None:
    """spec §3.1: the first plan sets the customer's currency; another one is refused."""
    if not customer.currency:
        customer.currency = currency
        customer.save(update_fields=["currency", "updated_at"])
    elif customer.currency != currency:
        raise Invalid({"currency": ["currencies_does_not_match"]})


def _start_instant(customer_id: uuid.UUID, external_id: str, subscription_at: datetime) -> datetime:
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


def _carried_trial_end(subscription: Subscription, started_at: datetime) -> datetime | None:
    """On a plan change the trial counts from the first start (§30.3); if it is already over
    when the successor starts, the successor is born with `trial_ended_at` set (no second
    `subscription.trial_ended`)."""
    end = subscription_trial_end(subscription)
    return end if end is not None and end <= started_at else None


def _plan_with_overrides(
    plan: Plan, plan_overrides: dict | None, *, actor: Actor, now: datetime
) -> Plan:
    """The plan to subscribe to: the catalog plan, or a new per-subscription child (§6.3)."""
    if not plan_overrides:
        return plan
    return plan_override_create(plan=plan, values=plan_overrides, actor=actor, now=now)


def _override_current_plan(
    subscription: Subscription, plan_overrides: dict, *, actor: Actor, now: datetime
) -> Plan:
    """PUT `plan_overrides`: edits the subscription's own child plan, or creates it (§6.3)."""
    if subscription.plan.parent_id is not None:
        return plan_update(plan=subscription.plan, values=plan_overrides, actor=actor, now=now)
    return plan_override_create(plan=subscription.plan, values=plan_overrides, actor=actor, now=now)


# --------------------------------------------------------------------------------------------
# State transitions (always called with the rows locked)


def _activate(subscription: Subscription, *, started_at: datetime, actor: Actor) -> None:
    subscription.status = Status.ACTIVE
    subscription.started_at = started_at
    subscription.save(update_fields=["status", "started_at", "updated_at"])
    _emit(subscription, "subscription.started", actor=actor)
    hooks.on_subscription_started.fire_after_commit(
        subscription_id=subscription.pk, started_at=started_at
    )


def _cancel(
    subscription: Subscription, *, actor: Actor, now: datetime, predecessor: Subscription | None
) -> None:
    """A pending subscription ends before starting (spec §9.2 `canceled`)."""
    subscription.status = Status.CANCELED
    subscription.canceled_at = now
    subscription.save(update_fields=["status", "canceled_at", "updated_at"])
    _emit(subscription, "subscription.canceled", actor=actor)
    if predecessor is not None and predecessor.downgrade_plan_date is not None:
        predecessor.downgrade_plan_date = None  # the downgrade it announced will not happen
        predecessor.save(update_fields=["downgrade_plan_date", "updated_at"])


def _terminate(
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
    _emit(subscription, "subscription.terminated", actor=actor)
    if successor is not None and successor.status == Status.PENDING:
        _cancel(successor, actor=actor, now=now, predecessor=None)
    if fire_hook:
        hooks.on_subscription_terminated.fire_after_commit(
            subscription_id=subscription.pk, terminated_at=at
        )


# --------------------------------------------------------------------------------------------
# POST /subscriptions: create, upgrade, downgrade (spec §9.4)


def _editable_subscription(customer: Customer, external_id: str) -> Subscription | None:
    # code `CreateService#editable_subscriptions`: active, or pending and not a downgrade
    return (
        Subscription.objects.filter(customer=customer, external_id=external_id)
        .filter(Q(status=Status.ACTIVE) | Q(status=Status.PENDING, previous_subscription=None))
        .order_by(F("started_at").desc(nulls_first=True), "-created_at")
        .first()
    )


@transaction.atomic
def subscription_create(
    *,
    organization: Organization,
    external_customer_id: str,
    plan_code: str,
    actor: Actor,
    now: datetime,
    external_id: str | None = None,
    name: str | None = None,
    billing_time: str | None = None,
    subscription_at: datetime | None = None,
    ending_at: datetime | _Unset | None = UNSET,
    plan_overrides: dict | None = None,
    consolidate_invoice: bool | None = None,
    purchase_order_number: str | None = None,
) -> Subscription:
    """Assigns a plan: a new subscription, or a plan change of the external id's current one.

    Same plan: name / ending_at updated. Another plan: upgrade now (returns the new active
    subscription) or downgrade at the period end (returns the current one, which announces
    `downgrade_plan_date`); a still-pending subscription just swaps its plan (spec §9.4).
    """
    customer = (
        Customer.objects.for_organization(organization)
        .alive()
        .filter(external_id=external_customer_id)
        .first()
    )
    if customer is None:
        raise NotFound("customer")
    plan = (
        Plan.objects.for_organization(organization)
        .alive()
        .filter(code=plan_code or "", parent__isnull=True)
        .first()
    )
    if plan is None:
        raise NotFound("plan")
    if billing_time is not None and billing_time not in Subscription.BillingTime.values:
        raise Invalid({"billing_time": ["value_is_invalid"]})

    customer = lock_customer(customer.pk)
    tz = customer_zone(customer)
    external_id = (external_id or "").strip() or str(uuid.uuid4())
    name = name.strip() if name is not None else None
    subscription_at = subscription_at or now

    current, successor = None, None
    candidate = _editable_subscription(customer, external_id)
    if candidate is not None:
        current, _, successor = lock_subscription_family(candidate.pk)
        if current.status not in (Status.ACTIVE, Status.PENDING):
            # Defensive: every writer holds the customer lock taken above, so the row read
            # under it cannot have ended since; if it did, the plan is assigned afresh.
            current = None

    currency = (plan_overrides or {}).get("amount_currency") or plan.amount_currency
    if current is None:
        if ending_at is not UNSET:
            _validate_ending_at(ending_at, subscription_at=subscription_at, tz=tz, now=now)
        _set_customer_currency(customer, currency)
        if (
            Subscription.objects.for_organization(organization)
            .filter(external_id=external_id, status=Status.ACTIVE)
            .exists()
        ):
            raise Invalid({"external_id": ["value_already_exist"]})
        return _create_new(
            organization=organization,
            customer=customer,
            plan=_plan_with_overrides(plan, plan_overrides, actor=actor, now=now),
            external_id=external_id,
            name=name or "",
            billing_time=billing_time or Subscription.BillingTime.CALENDAR,
            subscription_at=subscription_at,
            ending_at=None if ending_at is UNSET else ending_at,
            consolidate_invoice=True if consolidate_invoice is None else consolidate_invoice,
            purchase_order_number=purchase_order_number or "",
            actor=actor,
            now=now,
        )

    if ending_at is not UNSET:
        _validate_ending_at(ending_at, subscription_at=current.subscription_at, tz=tz, now=now)
    if current.plan_id == plan.pk or current.plan.parent_id == plan.pk:
        return _update_same_plan(current, name=name, ending_at=ending_at, actor=actor)
    _set_customer_currency(customer, currency)
    new_plan = _plan_with_overrides(plan, plan_overrides, actor=actor, now=now)
    if current.status == Status.PENDING:
        return _swap_pending_plan(current, plan=new_plan, name=name, actor=actor)
    change = plan_change(
        current_amount_cents=current.plan.amount_cents,
        current_interval=current.plan.interval,
        new_amount_cents=new_plan.amount_cents,
        new_interval=new_plan.interval,
    )
    successor_fields = {
        "organization": organization,
        "customer": customer,
        "plan": new_plan,
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
    }
    if successor is not None:  # spec §9.4: only one pending downgrade
        _cancel(successor, actor=actor, now=now, predecessor=None)
    if change is PlanChange.UPGRADE:
        return _upgrade(current, successor_fields=successor_fields, actor=actor, now=now)
    return _downgrade(current, successor_fields=successor_fields, actor=actor, now=now)


def _create_new(
    *,
    organization: Organization,
    customer: Customer,
    plan: Plan,
    external_id: str,
    name: str,
    billing_time: str,
    subscription_at: datetime,
    ending_at: datetime | None,
    consolidate_invoice: bool,
    purchase_order_number: str,
    actor: Actor,
    now: datetime,
) -> Subscription:
    subscription = Subscription(
        organization=organization,
        customer=customer,
        plan=plan,
        external_id=external_id,
        name=name,
        billing_time=billing_time,
        subscription_at=subscription_at,
        ending_at=ending_at,
        consolidate_invoice=consolidate_invoice,
        purchase_order_number=purchase_order_number,
        status=Status.PENDING,
    )
    tz = customer_zone(customer)
    # spec §9.2: a start today or in the past (customer's local date) is active at once
    starts_now = local_date(subscription_at, tz) <= local_date(now, tz)
    started_at = _start_instant(customer.pk, external_id, subscription_at) if starts_now else None
    if started_at is not None:
        subscription.status, subscription.started_at = Status.ACTIVE, started_at
    _save_new(subscription)
    if started_at is not None:
        _emit(subscription, "subscription.started", actor=actor)
        hooks.on_subscription_started.fire_after_commit(
            subscription_id=subscription.pk, started_at=started_at
        )
    return subscription


def _update_same_plan(
    current: Subscription, *, name: str | None, ending_at: datetime | _Unset | None, actor: Actor
) -> Subscription:
    changed = []
    if name and name != current.name:
        current.name = name
        changed.append("name")
    if ending_at is not UNSET and ending_at != current.ending_at:
        current.ending_at = ending_at
        current.termination_alerts_sent = []  # a new end date re-arms its alerts
        changed += ["ending_at", "termination_alerts_sent"]
    if changed:
        current.save(update_fields=[*changed, "updated_at"])
        _emit(current, "subscription.updated", actor=actor)
    return current


def _swap_pending_plan(
    current: Subscription, *, plan: Plan, name: str | None, actor: Actor
) -> Subscription:
    current.plan = plan
    if name:
        current.name = name
    current.save(update_fields=["plan", "name", "updated_at"])
    _emit(current, "subscription.updated", actor=actor)
    return current


def _upgrade(
    current: Subscription, *, successor_fields: dict, actor: Actor, now: datetime
) -> Subscription:
    """spec §9.4: the current subscription ends now and the new one starts now."""
    _terminate(current, at=now, actor=actor, now=now, successor=None, fire_hook=False)
    new = Subscription(**successor_fields, status=Status.ACTIVE, started_at=now)
    new.trial_ended_at = _carried_trial_end(new, now)
    _save_new(new)
    _emit(new, "subscription.started", actor=actor)
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
    _emit(current, "subscription.updated", actor=actor)
    return current


def subscription_change_plan(
    *, subscription: Subscription, plan_code: str, actor: Actor, now: datetime
) -> Subscription:
    """Moves an active or pending subscription to another catalog plan (admin "Change plan").

    The same rules as `POST /subscriptions` with the subscription's external id (§9.4).
    """
    if subscription.status not in (Status.ACTIVE, Status.PENDING):
        raise NotAllowed("subscription_not_editable")
    return subscription_create(
        organization=subscription.organization,
        external_customer_id=subscription.customer.external_id,
        plan_code=plan_code,
        external_id=subscription.external_id,
        actor=actor,
        now=now,
    )


# --------------------------------------------------------------------------------------------
# PUT and DELETE /subscriptions/{external_id}


@transaction.atomic
def subscription_update(
    *,
    subscription: Subscription,
    actor: Actor,
    now: datetime,
    name: str | _Unset = UNSET,
    ending_at: datetime | _Unset | None = UNSET,
    subscription_at: datetime | _Unset = UNSET,
    plan_overrides: dict | _Unset = UNSET,
    on_termination_credit_note: str | _Unset | None = UNSET,
    on_termination_invoice: str | _Unset = UNSET,
    consolidate_invoice: bool | _Unset = UNSET,
    purchase_order_number: str | _Unset = UNSET,
) -> Subscription:
    """Edits an active or pending subscription (code `Subscriptions::UpdateService`).

    `subscription_at` only moves a subscription that has not started; moved to today or the
    past, it starts at once. A new `ending_at` re-arms the termination alerts.
    """
    _validate_on_termination(
        None if on_termination_credit_note is UNSET else on_termination_credit_note,
        None if on_termination_invoice is UNSET else on_termination_invoice,
    )
    current, _, _ = lock_subscription_family(subscription.pk)
    if current.status not in (Status.ACTIVE, Status.PENDING):
        raise NotAllowed("subscription_not_editable")
    tz = customer_zone(current.customer)
    starting_in_future = (
        current.status == Status.PENDING and current.previous_subscription_id is None
    )
    new_start = subscription_at if starting_in_future and subscription_at is not UNSET else None
    if ending_at is not UNSET:
        _validate_ending_at(
            ending_at, subscription_at=new_start or current.subscription_at, tz=tz, now=now
        )

    changed: list[str] = []

    def assign(field: str, value: object) -> None:
        if value is not UNSET and getattr(current, field) != value:
            setattr(current, field, value)
            changed.append(field)

    assign("name", (name or "").strip() if name is not UNSET else UNSET)
    assign("ending_at", ending_at)
    if "ending_at" in changed:
        assign("termination_alerts_sent", [])
    assign("consolidate_invoice", consolidate_invoice)
    assign(
        "purchase_order_number",
        (purchase_order_number or "") if purchase_order_number is not UNSET else UNSET,
    )
    if current.plan.pay_in_advance:  # spec §9.5: credit notes only for pay-in-advance plans
        assign("on_termination_credit_note", on_termination_credit_note)
    assign("on_termination_invoice", on_termination_invoice)
    if plan_overrides is not UNSET and plan_overrides:
        current.plan = _override_current_plan(current, plan_overrides, actor=actor, now=now)
        changed.append("plan")
    if new_start is not None:
        assign("subscription_at", new_start)
    if changed:
        current.save(update_fields=[*changed, "updated_at"])

    if new_start is not None and local_date(new_start, tz) <= local_date(now, tz):
        started_at = _start_instant(current.customer_id, current.external_id, new_start)
        _activate(current, started_at=started_at, actor=actor)
    if changed:
        _emit(current, "subscription.updated", actor=actor)
    return current


@transaction.atomic
def subscription_terminate(
    *,
    subscription: Subscription,
    actor: Actor,
    now: datetime,
    on_termination_credit_note: str | None = None,
    on_termination_invoice: str | None = None,
) -> Subscription:
    """Terminates an active subscription now, or cancels a pending one (spec §9.5).

    A pending downgrade of the terminated subscription is canceled with it; canceling a
    pending downgrade itself withdraws the `downgrade_plan_date` of its predecessor.
    """
    _validate_on_termination(on_termination_credit_note, on_termination_invoice)
    current, predecessor, successor = lock_subscription_family(subscription.pk)
    match current.status:
        case Status.PENDING:
            _cancel(current, actor=actor, now=now, predecessor=predecessor)
        case Status.ACTIVE:
            _terminate(
                current,
                at=now,
                actor=actor,
                now=now,
                successor=successor,
                credit_note=on_termination_credit_note,
                invoice=on_termination_invoice,
            )
        case Status.INCOMPLETE:
            raise NotAllowed("subscription_incomplete")  # spec §9.2: not manually
        case _:
            raise NotAllowed("subscription_already_terminated")
    return current


# --------------------------------------------------------------------------------------------
# Clock-driven transitions (spec §27): each subscription in its own transaction, re-checked
# under its locks, so a run repeated or run twice at once changes nothing more.


def subscription_activate_pending(*, actor: Actor, now: datetime) -> list[Subscription]:
    """Starts pending subscriptions whose day has come (every 5 minutes, spec §9.2).

    A subscription starting on its own starts when the local date of `subscription_at`
    arrives; a pending downgrade replaces its predecessor on the `downgrade_plan_date`.
    """
    started: list[Subscription] = []
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
    for pk in due:
        subscription = _activate_when_due(pk, actor=actor, now=now)
        if subscription is not None:
            started.append(subscription)
    downgrades = (
        Subscription.objects.filter(
            status=Status.PENDING,
            previous_subscription__status=Status.ACTIVE,
            previous_subscription__downgrade_plan_date__lte=(now + timedelta(days=1)).date(),
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for pk in downgrades:
        subscription = _apply_downgrade_when_due(pk, actor=actor, now=now)
        if subscription is not None:
            started.append(subscription)
    return started


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
    started_at = _start_instant(
        subscription.customer_id, subscription.external_id, subscription.subscription_at
    )
    try:
        with transaction.atomic():
            _activate(subscription, started_at=started_at, actor=actor)
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
    _terminate(
        predecessor,
        at=end_of_day(day - timedelta(days=1), tz),
        actor=actor,
        now=now,
        successor=None,
        fire_hook=False,
    )
    successor.status, successor.started_at = Status.ACTIVE, started_at
    successor.trial_ended_at = _carried_trial_end(successor, started_at)
    successor.save(update_fields=["status", "started_at", "trial_ended_at", "updated_at"])
    _emit(successor, "subscription.started", actor=actor)
    hooks.on_plan_changed.fire_after_commit(
        previous_subscription_id=predecessor.pk,
        subscription_id=successor.pk,
        change=PlanChange.DOWNGRADE.value,
        timestamp=started_at,
    )
    return successor


def subscription_terminate_ended(*, actor: Actor, now: datetime) -> list[Subscription]:
    """Terminates active subscriptions whose `ending_at` has passed (hourly :05, spec §9.2)."""
    ended = []
    due = (
        Subscription.objects.filter(status=Status.ACTIVE, ending_at__lte=now)
        .order_by("ending_at", "pk")
        .values_list("pk", flat=True)
    )
    for pk in due:
        subscription = _terminate_when_ended(pk, actor=actor, now=now)
        if subscription is not None:
            ended.append(subscription)
    return ended


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
    _terminate(subscription, at=subscription.ending_at, actor=actor, now=now, successor=successor)
    return subscription


def subscription_termination_alerts(*, actor: Actor, now: datetime) -> list[Subscription]:
    """Records the `subscription.termination_alert` webhook 45 and 15 days before `ending_at`,
    once each (§9.2).

    Days are counted between local dates. Only the nearest threshold reached is recorded, so a
    subscription given an `ending_at` 10 days away gets the 15-day alert alone.
    """
    alerted = []
    due = (
        Subscription.objects.filter(
            status=Status.ACTIVE,
            ending_at__gt=now - timedelta(days=1),
            ending_at__lte=now + timedelta(days=max(TERMINATION_ALERT_DAYS) + 1),
        )
        .order_by("ending_at", "pk")
        .values_list("pk", flat=True)
    )
    for pk in due:
        subscription = _alert_termination(pk, actor=actor, now=now)
        if subscription is not None:
            alerted.append(subscription)
    return alerted


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
    _emit(subscription, "subscription.termination_alert", days_before_ending=threshold, actor=actor)
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
    _emit(subscription, "subscription.trial_ended", actor=actor)
    hooks.on_trial_ended.fire_after_commit(
        subscription_id=subscription.pk, trial_ended_at=trial_ended_at
    )
    return subscription
