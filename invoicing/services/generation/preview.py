"""Preview (spec §12.11): the same computation as an invoice, nothing persisted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from billing.errors import Invalid
from billing.periods import (
    PlanChange,
    end_of_day,
    local_date,
    next_billing_day,
    plan_change,
    start_of_day,
)
from customers.models import Customer, Subscription
from customers.services.subscription_reads import subscription_cycle
from invoicing import calculation
from invoicing.models import Credit, Fee, Invoice, InvoiceAppliedTax
from invoicing.services.applied_taxes import fee_applied_taxes, fill_fee, invoice_applied_taxes
from invoicing.services.generation.context import (
    BillingContext,
    _local_today,
    subscriptions_for_billing,
)
from invoicing.services.generation.items import (
    BillingItem,
    next_periodic_billing_day,
    periodic_item,
    starting_item,
    termination_item,
)
from invoicing.services.generation.persist import (
    ComputedFees,
    _apply_totals,
    _currency,
    _new_invoice,
    compute_fees,
)
from plans.models import Plan

# --------------------------------------------------------------------------------------------
# Preview (spec §12.11): the same computation, nothing persisted


@dataclass(frozen=True)
class InvoicePreview:
    """An invoice computed but not saved: unsaved `Invoice`, fees (each with its
    `preview_applied_taxes`), invoice applied taxes, coupon credits and the subscriptions."""

    invoice: Invoice
    fees: list[Fee]
    applied_taxes: list[InvoiceAppliedTax]
    credits: list[Credit]
    subscriptions: list[Subscription]
    items: list[BillingItem]


def invoice_preview(
    *,
    customer: Customer,
    now: datetime,
    subscriptions: Sequence[Subscription] = (),
    plan: Plan | None = None,
    subscription_at: datetime | None = None,
    billing_time: str = Subscription.BillingTime.CALENDAR,
    terminated_at: datetime | None = None,
    target_plan: Plan | None = None,
    coupons: Sequence[calculation.CouponToApply] = (),
) -> InvoicePreview:
    """Computes the next invoice without writing anything (spec §12.11).

    - `plan` (with `subscription_at`, `billing_time`): a new subscription's first invoice, at its
      start for a pay-in-advance plan, else on its first billing day (prorated per billing time).
      The customer may be unsaved (inline customer data).
    - `subscriptions` (existing): their next invoice, usage to date included; with
      `terminated_at` (now or later, one subscription), their closing invoice at that instant
      instead; with `target_plan`, the invoice of a change to that plan (§9.4): the closing
      invoice of the current plan (now for an upgrade, at the end of the period for a
      downgrade) and the new plan's starting invoice if it bills one.
    The customer's active applied coupons apply (without being consumed), then `coupons`
    (ad-hoc definitions).
    """
    if target_plan is None and terminated_at is not None:
        if terminated_at < now:
            raise Invalid({"terminated_at": ["cannot_be_in_past"]})
        if len(subscriptions) > 1:
            raise Invalid({"subscriptions": ["only_one_subscription_allowed_for_termination"]})
    context = BillingContext(customer=customer)
    items: list[BillingItem] = []
    previewed: list[Subscription] = []
    if plan is not None:
        start = subscription_at or now
        subscription = Subscription(
            organization_id=customer.organization_id,
            customer=customer,
            plan=plan,
            external_id="preview",
            billing_time=billing_time,
            subscription_at=start,
            started_at=start,
            status=Subscription.Status.ACTIVE,
            # as Lago's Invoices::Preview::BuildSubscriptionService stamps the unsaved row
            created_at=start,
            updated_at=now,
        )
        previewed.append(subscription)
        item = starting_item(subscription, context)
        if item is None or not plan.pay_in_advance:
            cycle = subscription_cycle(subscription)
            day = next_billing_day(cycle, local_date(start, cycle.timezone))
            item = periodic_item(subscription, day, context)
        if item is not None:
            items.append(replace(item, bills_charges=False, renewal_period=None))
    for subscription in subscriptions:
        subscription = _preview_copy(subscription, customer)
        previewed.append(subscription)
        if target_plan is not None:
            successor = _preview_plan_change(subscription, target_plan, context, now=now)
            item = termination_item(subscription, context)
            if item is not None:
                items.append(item)
            item = starting_item(successor, context)
            if item is not None:
                previewed.append(successor)
                items.append(item)
            continue
        if terminated_at is not None:
            subscription.status = Subscription.Status.TERMINATED
            subscription.terminated_at = terminated_at
            item = termination_item(subscription, context)
        else:
            tz = ZoneInfo(customer.applicable_timezone)
            day = next_periodic_billing_day(subscription, local_date(now, tz))
            item = periodic_item(subscription, day, context)
        if item is not None:
            items.append(item)
    context.load(previewed)
    currency = _currency(customer, items)
    # spec §12.11: the active coupons apply without being consumed; the wallets' credits are
    # estimated (balances read unlocked, nothing drawn)
    result = compute_fees(
        context=context,
        items=items,
        invoice=None,
        currency=currency,
        finalizing=True,
        extra_coupons=coupons,
        lock=False,
        now=now,
    )
    return _preview_result(customer, result, currency, previewed, items, now=now)


def _preview_plan_change(
    current: Subscription, target_plan: Plan, context: BillingContext, *, now: datetime
) -> Subscription:
    """A plan change applied to an unsaved copy (spec §9.4, as `subscription_create` would do
    it): `current` is terminated (now for an upgrade, on the last second of its period for a
    downgrade) and the returned, unsaved successor starts right after on `target_plan`."""
    plan = current.plan
    if target_plan.pk in (plan.pk, plan.parent_id):
        raise Invalid({"base": ["new_plan_should_be_different_from_existing_plan"]})
    change = plan_change(
        current_amount_cents=plan.amount_cents,
        current_interval=plan.interval,
        new_amount_cents=target_plan.amount_cents,
        new_interval=target_plan.interval,
    )
    if change is PlanChange.UPGRADE:
        terminated_at = started_at = now
    else:
        cycle = subscription_cycle(current)
        day = next_billing_day(cycle, local_date(now, cycle.timezone))
        started_at = start_of_day(day, cycle.timezone)
        terminated_at = end_of_day(day - timedelta(days=1), cycle.timezone)
    current.status = Subscription.Status.TERMINATED
    current.terminated_at = terminated_at
    successor = Subscription(
        organization_id=current.organization_id,
        customer=current.customer,
        plan=target_plan,
        name=current.name,
        external_id=current.external_id,
        previous_subscription=current,
        subscription_at=current.subscription_at,  # same anniversary (spec §9.4)
        billing_time=current.billing_time,
        ending_at=current.ending_at,
        consolidate_invoice=current.consolidate_invoice,
        status=Subscription.Status.ACTIVE,
        started_at=started_at,
        created_at=now,  # as Lago's Invoices::Preview::SubscriptionPlanChangeService
        updated_at=now,
    )
    context.assume_successor(current, successor)
    return successor


def _preview_copy(subscription: Subscription, customer: Customer) -> Subscription:
    loaded = subscriptions_for_billing(Subscription.objects.filter(pk=subscription.pk)).first()
    if loaded is None:
        loaded = subscription
    loaded.customer = customer
    return loaded


def _preview_result(
    customer: Customer,
    result: ComputedFees,
    currency: str,
    subscriptions: list[Subscription],
    items: list[BillingItem],
    *,
    now: datetime,
) -> InvoicePreview:
    computed = result.computed
    invoice = _new_invoice(
        customer,
        status=Invoice.Status.DRAFT,
        issuing_date=_local_today(customer, now),
        currency=currency,
    )
    _apply_totals(invoice, computed)
    invoice.created_at = invoice.updated_at = now  # as Lago's Invoices::PreviewService
    fees = []
    for draft in result.drafts:
        fill_fee(draft.fee, draft.line)
        # previewed rows link no `Tax` (`tax_by_code={}`)
        draft.fee.preview_applied_taxes = fee_applied_taxes(  # type: ignore[attr-defined]
            draft.fee, draft.line, organization_id=customer.organization_id, tax_by_code={}
        )
        fees.append(draft.fee)
    applied_taxes = invoice_applied_taxes(
        invoice,
        computed.totals.applied_taxes,
        organization_id=customer.organization_id,
        tax_by_code={},
    )
    credits = []
    for coupon_credit in computed.coupon_credits:
        if coupon_credit.amount_cents <= 0:
            continue
        credit = Credit(
            organization_id=customer.organization_id,
            invoice=invoice,
            applied_coupon=result.applied_coupons.get(coupon_credit.coupon_key),
            amount_cents=coupon_credit.amount_cents,
            amount_currency=invoice.currency,
            before_taxes=True,
        )
        # an ad-hoc coupon of the request has no applied coupon: its key names it
        credit.preview_coupon_key = coupon_credit.coupon_key  # type: ignore[attr-defined]
        credits.append(credit)
    return InvoicePreview(
        invoice=invoice,
        fees=fees,
        applied_taxes=applied_taxes,
        credits=credits,
        subscriptions=subscriptions,
        items=items,
    )
