"""Subscription life cycle (spec §9): create, update, terminate and cancel.

A plan assigned to an external id that already has a subscription is a plan change, applied by
`customers.services.plan_changes`; the clock-driven transitions the beat schedule runs (§27) are
in `customers.services.subscription_clock`; the reads of a subscription's calendar in
`customers.services.subscription_reads`.

Locking (STYLE §7, `customers.locks`): every write locks the customer row first, then the
subscription rows it changes in primary-key order. The customer lock serializes every change of
one customer's subscriptions (as Lago's `customer.with_lock`), so two plan changes of the same
subscription never both apply; the partial unique constraints (one active subscription per
external id, one pending successor per subscription) are the last line.

Side effects: an outbox event (`subscription.started`, `.terminated`, `.canceled`, `.updated`) is
written in the same transaction as each change, and the hooks of `customers.hooks` fire after
commit for invoicing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import transaction

from billing.actors import Actor
from billing.errors import Invalid, NotAllowed, NotFound
from billing.models import Organization
from billing.periods import local_date
from customers import hooks
from customers.locks import lock_customer, lock_subscription_family
from customers.models import Customer, Subscription
from customers.services.plan_changes import change_active_plan, swap_pending_plan
from customers.services.subscription_reads import customer_zone, editable_subscription
from customers.services.subscription_transitions import (
    UNSET,
    Unset,
    activate,
    cancel,
    record_event,
    save_new,
    start_instant,
    terminate,
)
from plans.models import Plan
from plans.services.plans import plan_override_create, plan_update

Status = Subscription.Status
CREDIT_NOTE_CHOICES = tuple(Subscription.OnTerminationCreditNote.values)
INVOICE_CHOICES = tuple(Subscription.OnTerminationInvoice.values)


# --------------------------------------------------------------------------------------------
# Validation and small helpers


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


def _with_usage_thresholds(
    plan_overrides: dict | None, usage_thresholds: list[dict] | None
) -> dict | None:
    """The subscription's own `usage_thresholds` as a plan override (spec §21.1); with
    `plan_overrides.usage_thresholds` too, both are refused (Lago `incompatible_params`)."""
    if usage_thresholds is None:
        return plan_overrides
    if usage_thresholds and (plan_overrides or {}).get("usage_thresholds"):
        raise Invalid(
            {
                "plan_overrides.usage_thresholds": ["incompatible_params"],
                "usage_thresholds": ["incompatible_params"],
            }
        )
    return {**(plan_overrides or {}), "usage_thresholds": list(usage_thresholds)}


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
# POST /subscriptions: create, upgrade, downgrade (spec §9.4)


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
    ending_at: datetime | Unset | None = UNSET,
    plan_overrides: dict | None = None,
    consolidate_invoice: bool | None = None,
    purchase_order_number: str | None = None,
    usage_thresholds: list[dict] | None = None,
    progressive_billing_disabled: bool | None = None,
) -> Subscription:
    """Assigns a plan: a new subscription, or a plan change of the external id's current one.

    `usage_thresholds` are the subscription's own progressive billing thresholds: they
    override the plan's like `plan_overrides.usage_thresholds` (spec §21.1).

    Same plan: name / ending_at updated, and non-empty `usage_thresholds` replace the
    subscription's own (Lago applies them, but not `progressive_billing_disabled`, which only
    `PUT` changes). Another plan: upgrade now (returns the new active subscription) or
    downgrade at the period end (returns the current one, which announces
    `downgrade_plan_date`); a still-pending subscription just swaps its plan (spec §9.4). The
    new subscription of a plan change takes `progressive_billing_disabled` from the request
    (false when absent) and its thresholds from the request or the new plan: the current
    subscription's are not carried over (Lago).
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

    plan_overrides = _with_usage_thresholds(plan_overrides, usage_thresholds)
    customer = lock_customer(customer.pk)
    tz = customer_zone(customer)
    external_id = (external_id or "").strip() or str(uuid.uuid4())
    name = name.strip() if name is not None else None
    subscription_at = subscription_at or now

    current, successor = None, None
    candidate = editable_subscription(customer, external_id)
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
            progressive_billing_disabled=bool(progressive_billing_disabled),
            actor=actor,
            now=now,
        )

    if ending_at is not UNSET:
        _validate_ending_at(ending_at, subscription_at=current.subscription_at, tz=tz, now=now)
    if current.plan_id == plan.pk or current.plan.parent_id == plan.pk:
        return _update_same_plan(
            current,
            name=name,
            ending_at=ending_at,
            usage_thresholds=usage_thresholds,
            actor=actor,
            now=now,
        )
    _set_customer_currency(customer, currency)
    new_plan = _plan_with_overrides(plan, plan_overrides, actor=actor, now=now)
    if current.status == Status.PENDING:
        return swap_pending_plan(current, plan=new_plan, name=name, actor=actor)
    return change_active_plan(
        current,
        successor=successor,
        plan=new_plan,
        organization=organization,
        customer=customer,
        name=name,
        ending_at=ending_at,
        consolidate_invoice=consolidate_invoice,
        purchase_order_number=purchase_order_number,
        progressive_billing_disabled=bool(progressive_billing_disabled),
        actor=actor,
        now=now,
    )


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
    progressive_billing_disabled: bool = False,
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
        progressive_billing_disabled=progressive_billing_disabled,
        status=Status.PENDING,
    )
    tz = customer_zone(customer)
    # spec §9.2: a start today or in the past (customer's local date) is active at once
    starts_now = local_date(subscription_at, tz) <= local_date(now, tz)
    started_at = start_instant(customer.pk, external_id, subscription_at) if starts_now else None
    if started_at is not None:
        subscription.status, subscription.started_at = Status.ACTIVE, started_at
    save_new(subscription)
    if started_at is not None:
        record_event(subscription, "subscription.started", actor=actor)
        hooks.on_subscription_started.fire_after_commit(
            subscription_id=subscription.pk, started_at=started_at
        )
    return subscription


def _update_same_plan(
    current: Subscription,
    *,
    name: str | None,
    ending_at: datetime | Unset | None,
    usage_thresholds: list[dict] | None,
    actor: Actor,
    now: datetime,
) -> Subscription:
    changed = []
    if usage_thresholds:  # Lago: `params[:usage_thresholds].present?`
        current.plan = _override_current_plan(
            current, {"usage_thresholds": list(usage_thresholds)}, actor=actor, now=now
        )
        changed.append("plan")
    if name and name != current.name:
        current.name = name
        changed.append("name")
    if ending_at is not UNSET and ending_at != current.ending_at:
        current.ending_at = ending_at
        current.termination_alerts_sent = []  # a new end date re-arms its alerts
        changed += ["ending_at", "termination_alerts_sent"]
    if changed:
        current.save(update_fields=[*changed, "updated_at"])
        record_event(current, "subscription.updated", actor=actor)
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
    name: str | Unset = UNSET,
    ending_at: datetime | Unset | None = UNSET,
    subscription_at: datetime | Unset = UNSET,
    plan_overrides: dict | Unset = UNSET,
    on_termination_credit_note: str | Unset | None = UNSET,
    on_termination_invoice: str | Unset = UNSET,
    consolidate_invoice: bool | Unset = UNSET,
    purchase_order_number: str | Unset = UNSET,
    usage_thresholds: list[dict] | Unset = UNSET,
    progressive_billing_disabled: bool | Unset = UNSET,
) -> Subscription:
    """Edits an active or pending subscription (code `Subscriptions::UpdateService`).

    `usage_thresholds` replace the subscription's progressive billing thresholds (through its
    overridden plan); `progressive_billing_disabled` turns progressive billing off or on.

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
    assign("progressive_billing_disabled", progressive_billing_disabled)
    if usage_thresholds is not UNSET:
        plan_overrides = _with_usage_thresholds(
            None if plan_overrides is UNSET else plan_overrides, usage_thresholds
        )
    if plan_overrides is not UNSET and plan_overrides:
        current.plan = _override_current_plan(current, plan_overrides, actor=actor, now=now)
        changed.append("plan")
    if new_start is not None:
        assign("subscription_at", new_start)
    if changed:
        current.save(update_fields=[*changed, "updated_at"])

    if new_start is not None and local_date(new_start, tz) <= local_date(now, tz):
        started_at = start_instant(current.customer_id, current.external_id, new_start)
        activate(current, started_at=started_at, actor=actor)
    if changed:
        record_event(current, "subscription.updated", actor=actor)
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
            cancel(current, actor=actor, now=now, predecessor=predecessor)
        case Status.ACTIVE:
            terminate(
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
