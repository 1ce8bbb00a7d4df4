"""Coupons of a subscription invoice (spec §15.2, §15.3): selection and consumption."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from uuid import UUID

from django.db.models import Sum

from customers.locks import lock_applied_coupons
from customers.models import AppliedCoupon, Customer
from invoicing import calculation
from invoicing.models import Credit, Invoice
from invoicing.selectors import coupon_credits_consuming

# --------------------------------------------------------------------------------------------
# Coupons (spec §15.3): read at finalization, consumed with the invoice


def _coupon_limits(applied: AppliedCoupon) -> tuple[frozenset[str], frozenset[str]]:
    coupon = applied.coupon
    plans = frozenset(p.code for p in coupon.plans.all()) if coupon.limited_plans else frozenset()
    metrics = (
        frozenset(m.code for m in coupon.billable_metrics.all())
        if coupon.limited_billable_metrics
        else frozenset()
    )
    return plans, metrics


def coupon_to_apply(
    applied: AppliedCoupon, *, used_cents: int = 0, already_applied: bool = False
) -> calculation.CouponToApply:
    """An applied coupon as `calculation.apply_coupons` reads it (spec §15.2)."""
    coupon = applied.coupon
    plans, metrics = _coupon_limits(applied)
    amount_cents = applied.amount_cents if applied.amount_cents is not None else coupon.amount_cents
    fixed = coupon.coupon_type == calculation.CouponType.FIXED_AMOUNT
    return calculation.CouponToApply(
        key=str(applied.pk),
        coupon_type=coupon.coupon_type,
        frequency=applied.frequency,
        applied_at=applied.created_at,
        amount_cents=amount_cents if fixed else None,
        currency=(applied.amount_currency or coupon.amount_currency) if fixed else None,
        percentage_rate=(
            applied.percentage_rate if applied.percentage_rate is not None
            else coupon.percentage_rate
        ),
        remaining_cents=(
            max((amount_cents or 0) - used_cents, 0)
            if fixed and applied.frequency == calculation.CouponFrequency.ONCE
            else None
        ),
        frequency_duration_remaining=(
            applied.frequency_duration_remaining
            if applied.frequency_duration_remaining is not None
            else applied.frequency_duration
        ),
        limited_plan_codes=plans,
        limited_metric_codes=metrics,
        already_applied=already_applied,
    )  # fmt: skip


def _applied_coupons(customer: Customer, *, lock: bool) -> list[AppliedCoupon]:
    rows = (
        AppliedCoupon.objects.filter(customer_id=customer.pk, status=AppliedCoupon.Status.ACTIVE)
        .select_related("coupon")
        .prefetch_related("coupon__plans", "coupon__billable_metrics")
        .order_by("pk")
    )
    if lock:
        # pk order: two invoices of the customer finalized at once consume coupons in turn
        return lock_applied_coupons(rows)
    return list(rows)


def _coupons_for(
    customer: Customer, invoice: Invoice | None, *, lock: bool
) -> tuple[list[calculation.CouponToApply], dict[str, AppliedCoupon]]:
    if customer._state.adding or getattr(customer, "has_active_coupons", True) is False:
        return [], {}
    applied = _applied_coupons(customer, lock=lock)
    if not applied:
        return [], {}
    ids = [a.pk for a in applied]
    used = dict(
        coupon_credits_consuming(ids)
        .values("applied_coupon_id")
        .annotate(total=Sum("amount_cents"))
        .values_list("applied_coupon_id", "total")
    )
    on_invoice: set[UUID] = set()
    if invoice is not None and invoice.pk is not None:
        on_invoice = set(
            Credit.objects.filter(invoice_id=invoice.pk, applied_coupon_id__in=ids).values_list(
                "applied_coupon_id", flat=True
            )
        )
    coupons = [
        coupon_to_apply(a, used_cents=used.get(a.pk) or 0, already_applied=a.pk in on_invoice)
        for a in applied
    ]
    return coupons, {str(a.pk): a for a in applied}


def _consume_coupons(
    invoice: Invoice,
    coupon_credits: Sequence[calculation.CouponCredit],
    applied_coupons: Mapping[str, AppliedCoupon],
    *,
    now: datetime,
) -> None:
    """Credit rows and the applied coupons' new state (spec §15.3 steps 5-7)."""
    credits = []
    for credit in coupon_credits:
        applied = applied_coupons.get(credit.coupon_key)
        if applied is None or credit.amount_cents <= 0:
            continue
        credits.append(
            Credit(
                organization_id=invoice.organization_id,
                invoice=invoice,
                applied_coupon=applied,
                amount_cents=credit.amount_cents,
                amount_currency=invoice.currency,
                before_taxes=True,
            )
        )
        changed = []
        if credit.frequency_duration_remaining is not None:
            applied.frequency_duration_remaining = credit.frequency_duration_remaining
            changed.append("frequency_duration_remaining")
        if credit.terminated:
            applied.status = AppliedCoupon.Status.TERMINATED
            applied.terminated_at = now
            changed += ["status", "terminated_at"]
        if changed:
            applied.save(update_fields=[*changed, "updated_at"])
    Credit.objects.bulk_create(credits)
