"""Creating and recomputing subscription invoices (spec §9.3-§9.5, §11, §12.2-§12.5, §7.14)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db import transaction

from billing.actors import Actor
from billing.periods import PlanChange, local_date
from billing.rows import insert_rows
from customers.locks import lock_customer_for_billing
from customers.models import Customer, Subscription
from invoicing import calculation
from invoicing.locks import lock_fee
from invoicing.models import Fee, Invoice, InvoiceSubscription
from invoicing.services.credit_notes_drafts import (
    draft_credit_notes_detach,
    draft_credit_notes_reattach,
)
from invoicing.services.credit_notes_termination import credit_note_for_termination
from invoicing.services.events import emit_invoice_event
from invoicing.services.finalization import finalize_computed
from invoicing.services.generation.context import (
    BillingContext,
    Reason,
    _local_today,
    _parse,
    subscriptions_for_billing,
)
from invoicing.services.generation.fees import FeeDraft, _fee_line, non_invoiceable_renewals_create
from invoicing.services.generation.items import (
    BillingItem,
    item_for_row,
    item_key,
    starting_item,
    termination_item,
    trial_end_item,
)
from invoicing.services.generation.persist import (
    AMOUNT_FIELDS,
    _clear_computation,
    _currency,
    _new_invoice,
    _persist,
    compute_drafts,
    compute_fees,
)
from wallets.tasks import queue_refresh_after_commit


def grace_period_days(customer: Customer) -> int:
    """Customer override, else the billing entity's (spec §2.4)."""
    if customer.invoice_grace_period is not None:
        return customer.invoice_grace_period
    return customer.billing_entity.invoice_grace_period or 0


def _issuing_date(customer: Customer, billing_date: date, grace: int, *, recurring: bool) -> date:
    entity = customer.billing_entity
    config = customer.billing_configuration or {}
    return calculation.issuing_date(
        billing_date,
        grace,
        config.get("subscription_invoice_issuing_date_anchor")
        or entity.subscription_invoice_issuing_date_anchor,
        config.get("subscription_invoice_issuing_date_adjustment")
        or entity.subscription_invoice_issuing_date_adjustment,
        recurring=recurring,
    )


def _invoice_subscription_rows(invoice: Invoice, items: Sequence[BillingItem]) -> list:
    return [
        InvoiceSubscription(
            organization_id=invoice.organization_id,
            invoice=invoice,
            subscription=item.subscription,
            invoicing_reason=item.reason,
            from_datetime=item.period.from_datetime,
            to_datetime=item.period.to_datetime,
            charges_from_datetime=item.period.charges_from_datetime,
            charges_to_datetime=item.period.charges_to_datetime,
            timestamp=item.period.timestamp,
            recurring=item.recurring,
        )
        for item in items
    ]


def invoice_create_for_items(
    *,
    context: BillingContext,
    items: Sequence[BillingItem],
    billing_date: date,
    actor: Actor,
    now: datetime,
) -> Invoice:
    """One subscription invoice for these items, in the caller's transaction (spec §12.3).

    The `InvoiceSubscription` rows are written first: a concurrent or repeated run of the same
    items fails there with an `IntegrityError` before any usage is read (`bill_customer`
    returns the existing invoice). With a grace period the invoice is a draft
    (`invoice.drafted`); else it is finalized at once (coupons consumed, number,
    `invoice.created`) or closed (§12.6).
    """
    customer = context.customer
    grace = grace_period_days(customer)
    draft = grace > 0
    recurring = any(item.recurring for item in items)
    currency = _currency(customer, items)
    invoice = _new_invoice(
        customer,
        status=Invoice.Status.GENERATING,
        issuing_date=_issuing_date(customer, billing_date, grace, recurring=recurring),
        currency=currency,
        expected_finalization_date=(
            calculation.expected_finalization_date(billing_date, grace) if draft else None
        ),
    )
    # the invoice and the double-billing guard, one statement before any usage is read: a
    # second run of the same items fails here with an IntegrityError (callers that expect races
    # wrap this call in a savepoint)
    insert_rows([invoice], _invoice_subscription_rows(invoice, items))
    result = compute_fees(
        context=context,
        items=items,
        invoice=invoice,
        currency=currency,
        finalizing=not draft,
        now=now,
        actor=actor,
    )
    _persist(invoice, result, actor=actor, now=now)
    non_invoiceable_renewals_create(context=context, items=items, currency=currency, actor=actor)
    if draft:
        invoice.status = Invoice.Status.DRAFT
        invoice.save(update_fields=[*AMOUNT_FIELDS, "status", "updated_at"])
        emit_invoice_event(invoice, "invoice.drafted", actor=actor)
        # spec §17.4: the usage just moved into a draft, which the ongoing balance counts
        queue_refresh_after_commit(
            customer_id=invoice.customer_id,
            has_active_wallets=getattr(invoice.customer, "has_active_wallets", None),
        )
        return invoice
    subscriptions = list({item.subscription.pk: item.subscription for item in items}.values())
    return finalize_computed(
        invoice,
        actor=actor,
        now=now,
        update_fields=AMOUNT_FIELDS,
        subscriptions=subscriptions,
        fees=[draft.fee for draft in result.drafts],
    )


def invoice_recompute(
    *, invoice: Invoice, finalizing: bool, actor: Actor, now: datetime
) -> Invoice:
    """Recomputes a draft from its `InvoiceSubscription` rows (late events, catalog changes),
    with the coupons when finalizing; the caller holds the invoice lock (spec §12.5)."""
    customer = (
        Customer.objects.select_related("billing_entity", "organization")
        .prefetch_related("taxes")
        .get(pk=invoice.customer_id)
    )
    rows = list(
        InvoiceSubscription.objects.filter(invoice_id=invoice.pk)
        .select_related("subscription")
        .order_by("created_at", "id")
    )
    subscriptions = {
        s.pk: s
        for s in subscriptions_for_billing(
            Subscription.objects.filter(pk__in=[row.subscription_id for row in rows])
        )
    }
    context = BillingContext(customer=customer, exclude_invoice_id=invoice.pk)
    context.load(list(subscriptions.values()))
    items = []
    for row in rows:
        row.subscription = subscriptions[row.subscription_id]
        row.subscription.customer = customer
        item = item_for_row(row, context)
        if item is not None:
            items.append(item)
    # its draft credit notes follow the rebuilt fees (Lago `CreditNotes::RefreshDraftService`)
    detached = draft_credit_notes_detach(invoice=invoice)
    _clear_computation(invoice)
    result = compute_fees(
        context=context,
        items=items,
        invoice=invoice,
        currency=invoice.currency,
        finalizing=finalizing,
        now=now,
        actor=actor,
    )
    _persist(invoice, result, actor=actor, now=now)
    draft_credit_notes_reattach(
        invoice=invoice, detached=detached, fees=[draft.fee for draft in result.drafts]
    )
    invoice.save(update_fields=[*AMOUNT_FIELDS, "updated_at"])
    return invoice


# --------------------------------------------------------------------------------------------
# Invoices of subscription transitions (driven by `customers.hooks`, spec §9.3-§9.5, §11)


def _load(ids: Iterable[UUID], customer: Customer) -> dict[UUID, Subscription]:
    rows = subscriptions_for_billing(Subscription.objects.filter(pk__in=list(ids)))
    loaded = {}
    for subscription in rows:
        subscription.customer = customer  # one customer object: its taxes are read once
        loaded[subscription.pk] = subscription
    return loaded


def _lock_and_load(subscription: Subscription) -> tuple[Customer, Subscription | None]:
    """The subscription's customer, locked, and the subscription loaded for billing (None when
    it no longer exists)."""
    customer = lock_customer_for_billing(subscription.customer_id)
    return customer, _load([subscription.pk], customer).get(subscription.pk)


def _create_unless_billed(
    context: BillingContext,
    items: Sequence[BillingItem | None],
    *,
    billing_date: date,
    actor: Actor,
    now: datetime,
) -> Invoice | None:
    """The invoice of the items (None: nothing to bill) not billed yet, if any."""
    wanted = [item for item in items if item is not None]
    billed = context.billed_keys(item.subscription for item in wanted)
    items = [item for item in wanted if item_key(item) not in billed]
    if not items:
        return None
    return invoice_create_for_items(
        context=context, items=items, billing_date=billing_date, actor=actor, now=now
    )


@transaction.atomic
def invoice_create_for_start(
    *, subscription: Subscription, actor: Actor, now: datetime
) -> Invoice | None:
    """The invoice of a pay-in-advance plan at its start (spec §9.3): none when the start is in
    the past (the current period counts as paid), during a free trial, or in arrears."""
    customer, subscription = _lock_and_load(subscription)
    if subscription is None or subscription.started_at is None:
        return None
    today = _local_today(customer, now)
    if local_date(subscription.started_at, ZoneInfo(customer.applicable_timezone)) < today:
        return None  # spec §9.3: a start in the past bills nothing now
    context = BillingContext(customer=customer)
    item = starting_item(subscription, context)
    return _create_unless_billed(context, [item], billing_date=today, actor=actor, now=now)


@transaction.atomic
def invoice_create_for_termination(
    *, subscription: Subscription, actor: Actor, now: datetime
) -> Invoice | None:
    """The closing invoice of a terminated subscription (spec §9.5), unless
    `on_termination_invoice` is `skip`."""
    customer, subscription = _lock_and_load(subscription)
    if subscription is None or subscription.status != Subscription.Status.TERMINATED:
        return None
    context = BillingContext(customer=customer)
    # the unused in-advance days first, so that the closing invoice can consume the credit
    credit_note_for_termination(
        subscription=subscription,
        upgrade=False,
        trial_end_at=context.trial_end(subscription),
        actor=actor,
        now=now,
    )
    if subscription.on_termination_invoice == Subscription.OnTerminationInvoice.SKIP:
        return None
    item = termination_item(subscription, context)
    return _create_unless_billed(
        context, [item], billing_date=_local_today(customer, now), actor=actor, now=now
    )


@transaction.atomic
def invoice_create_for_plan_change(
    *, previous_subscription: Subscription, subscription: Subscription, actor: Actor, now: datetime
) -> Invoice | None:
    """One invoice for a plan change (spec §9.4): the closing of the previous subscription
    (usage, and the used days in arrears) and the first period of the new one when it is paid
    in advance (upgrade: from the upgrade day; downgrade: up to the kept anniversary)."""
    customer = lock_customer_for_billing(subscription.customer_id)
    loaded = _load([previous_subscription.pk, subscription.pk], customer)
    previous, new = loaded.get(previous_subscription.pk), loaded.get(subscription.pk)
    context = BillingContext(customer=customer)
    items: list[BillingItem | None] = []
    if previous is not None and previous.status == Subscription.Status.TERMINATED:
        # the unused in-advance days of the previous plan, consumed by this invoice
        credit_note_for_termination(
            subscription=previous,
            upgrade=context.ended_by(previous) is PlanChange.UPGRADE,
            trial_end_at=context.trial_end(previous),
            actor=actor,
            now=now,
        )
        items.append(termination_item(previous, context))
    if new is not None and new.started_at is not None:
        items.append(starting_item(new, context))
    return _create_unless_billed(
        context, items, billing_date=_local_today(customer, now), actor=actor, now=now
    )


@transaction.atomic
def invoice_create_for_trial_end(
    *, subscription: Subscription, actor: Actor, now: datetime
) -> Invoice | None:
    """The pay-in-advance fee billed when the free trial ends (spec §11, V63)."""
    customer, subscription = _lock_and_load(subscription)
    if subscription is None or subscription.started_at is None:
        return None
    context = BillingContext(customer=customer)
    item = trial_end_item(subscription, context)
    if item is None:
        return None
    context.load([subscription])
    if context.fee_window_billed(subscription, item.period):
        return None  # the periodic invoice of the trial-end day already billed it
    return _create_unless_billed(
        context, [item], billing_date=_local_today(customer, now), actor=actor, now=now
    )


@transaction.atomic
def invoice_create_for_in_advance_fee(*, fee: Fee, actor: Actor, now: datetime) -> Invoice | None:
    """The invoice of one pay-in-advance charge fee (spec §7.14, §12.2): type `subscription`,
    reason `in_advance_charge`, finalized at once (never a draft), coupons and taxes apply.

    For the fee an ingested event billed on an invoiceable charge (`invoicing.services.
    in_advance`); a fee already invoiced or non-invoiceable gets no invoice. A zero fee gets one,
    finalized or closed by the zero-amount setting (§12.6), as Lago does. Dated like Lago's: the
    issuing date is the event's day in the customer's timezone (a late event's invoice carries
    its own day), the billing timestamp is the event's.
    """
    customer = lock_customer_for_billing(fee.customer_id)
    fee = lock_fee(fee.pk, related=("charge__billable_metric", "subscription__plan__parent"))
    if fee.invoice_id is not None or not fee.invoiceable:
        return None
    subscription = fee.subscription
    properties = fee.properties or {}
    timestamp = _parse(properties.get("timestamp")) or now
    invoice = _new_invoice(
        customer,
        status=Invoice.Status.GENERATING,
        issuing_date=_local_today(customer, timestamp),
        currency=fee.amount_currency,
    )
    invoice.save(force_insert=True)
    InvoiceSubscription.objects.create(
        organization_id=invoice.organization_id,
        invoice=invoice,
        subscription=subscription,
        invoicing_reason=Reason.IN_ADVANCE_CHARGE,
        from_datetime=_parse(properties.get("from_datetime")) or timestamp,
        to_datetime=_parse(properties.get("to_datetime")) or timestamp,
        charges_from_datetime=_parse(properties.get("charges_from_datetime")),
        charges_to_datetime=_parse(properties.get("charges_to_datetime")),
        timestamp=timestamp,
    )
    taxes = [row.tax for row in fee.applied_taxes.select_related("tax") if row.tax is not None]
    line = _fee_line(
        fee,
        key="0",
        fee_type=Fee.FeeType.CHARGE,
        taxes=taxes,
        metric_code=fee.charge.billable_metric.code if fee.charge_id else None,
        plan=subscription.plan,
    )
    # coupons and prepaid credits (spec §17.5) apply: the invoice is finalized at once
    result = compute_drafts(
        customer=customer,
        drafts=[FeeDraft(fee=fee, line=line, taxes=taxes)],
        invoice=invoice,
        currency=invoice.currency,
        finalizing=True,
        now=now,
    )
    fee.applied_taxes.all().delete()  # recomputed on the net of coupons (spec §14.2)
    _persist(invoice, result, actor=actor, now=now, fees_saved=True)
    return finalize_computed(invoice, actor=actor, now=now, update_fields=AMOUNT_FIELDS)
