"""Voiding finalized invoices (spec §12.8)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from billing.actors import Actor
from billing.errors import Invalid, NotAllowed
from customers.locks import lock_applied_coupon
from customers.models import AppliedCoupon
from invoicing.locks import lock_invoice
from invoicing.models import Credit, Invoice
from invoicing.services.analytics_figures import figures_record, invoice_is_counted
from invoicing.services.credit_invoices import credit_invoice_voided
from invoicing.services.credit_note_consumption import recredit_voided_invoice
from invoicing.services.credit_notes_void import void_credit_notes
from invoicing.services.events import emit_invoice_event
from metering.services.lifetime_usages import lifetime_usages_flag_invoiced
from plans.models import Coupon, CouponExpiration, CouponFrequency
from wallets.services.consumption import recredit_invoice


def invoice_is_voidable(invoice: Invoice, *, explicit: bool = False) -> bool:
    """Lago's `Invoice#voidable?` (spec §12.8).

    Only finalized invoices without a lost dispute. Without an explicit intent (the
    `generate_credit_note` key of the request) the invoice must also be unpaid: nothing paid,
    payment pending or failed.
    """
    if invoice.status != Invoice.Status.FINALIZED or invoice.payment_dispute_lost_at is not None:
        return False
    if explicit:
        return True
    return invoice.total_paid_amount_cents == 0 and invoice.payment_status in (
        Invoice.PaymentStatus.PENDING,
        Invoice.PaymentStatus.FAILED,
    )


@transaction.atomic
def invoice_void(
    *,
    invoice: Invoice,
    actor: Actor,
    now: datetime,
    generate_credit_note: bool | None = None,
    credit_amount_cents: int = 0,
    refund_amount_cents: int = 0,
) -> Invoice:
    """POST /invoices/{id}/void: the invoice becomes `voided` (final), stops being overdue, its
    coupon credits are given back to their applied coupons and the `invoice.voided` webhook is
    recorded.

    `generate_credit_note=None` means the caller did not say (Lago: no explicit intent), which
    also refuses paid invoices; `False` voids a paid invoice without a credit note.

    `generate_credit_note=True` issues a credit note of `credit_amount_cents` +
    `refund_amount_cents` (within what is creditable and refundable, else 422
    `total_amount_exceeds_invoice_amount`) and puts the rest of the creditable amount in a
    second credit note voided at once; the prepaid credits the invoice used then stay spent
    (the credit note counts them).
    """
    if credit_amount_cents < 0 or refund_amount_cents < 0:
        raise Invalid({"credit_refund_amount": ["total_amount_exceeds_invoice_amount"]})
    invoice = lock_invoice(invoice.pk)
    if not invoice_is_voidable(invoice, explicit=generate_credit_note is not None):
        raise NotAllowed("not_voidable")
    if invoice_is_counted(invoice):
        figures_record(invoice=invoice, sign=-1)
    invoice.status = Invoice.Status.VOIDED
    invoice.voided_at = now
    invoice.payment_overdue = False
    invoice.save(update_fields=["status", "voided_at", "payment_overdue", "updated_at"])
    for credit in invoice.credits.filter(applied_coupon__isnull=False, voided_at__isnull=True):
        _give_back_coupon(credit, now=now)
    _release_usage(invoice, now=now)
    recredit_voided_invoice(invoice=invoice, now=now)  # credit-note credit it consumed
    if generate_credit_note:
        void_credit_notes(
            invoice=invoice,
            credit_amount_cents=credit_amount_cents,
            refund_amount_cents=refund_amount_cents,
            actor=actor,
            now=now,
        )
    else:
        # spec §12.8: the prepaid credits the invoice used go back to their (active) wallets
        recredit_invoice(invoice_id=invoice.pk, actor=actor, now=now)
    # a voided credit invoice will never be paid: its pending purchase fails (spec §17.3)
    credit_invoice_voided(invoice=invoice, actor=actor, now=now)
    emit_invoice_event(invoice, "invoice.voided", actor=actor)
    return invoice


def _release_usage(invoice: Invoice, *, now: datetime) -> None:
    """What a voided invoice billed of its subscriptions' usage is billable again (Lago
    `LifetimeUsages::FlagRefreshFromInvoiceService`): the thresholds a progressive billing
    invoice applied no longer count as crossed, and the lifetime usage of the subscriptions is
    re-read (invoiced part) at the next refresh pass, whose threshold check then bills again
    what the voided invoice billed. The period's later invoices deduct only the non-voided
    progressive invoices, and a voided invoice's own deductions no longer count
    (`generation.progressive`)."""
    invoice.applied_usage_thresholds.filter(voided_at__isnull=True).update(
        voided_at=now, updated_at=now
    )
    subscription_ids = list(
        invoice.invoice_subscriptions.values_list("subscription_id", flat=True).distinct()
    )
    if subscription_ids:
        lifetime_usages_flag_invoiced(subscription_ids=subscription_ids, now=now)


def _give_back_coupon(credit: Credit, *, now: datetime) -> None:
    """Lago's `AppliedCoupons::VoidAndRestoreService`: the credit no longer consumes the coupon
    (`voided_at`), and the applied coupon gets its use back.

    Forever coupons lose nothing; coupons past their expiration are not restored. A recurring
    coupon gets one period back (never beyond its duration); a once coupon becomes active again
    (a fixed one with the voided amount available again, as its remainder counts the credits
    that are not voided).
    """
    credit.voided_at = now
    credit.save(update_fields=["voided_at", "updated_at"])
    applied = lock_applied_coupon(credit.applied_coupon_id)
    coupon: Coupon = applied.coupon
    if applied.frequency == CouponFrequency.FOREVER:
        return
    expired = (
        coupon.expiration == CouponExpiration.TIME_LIMIT
        and coupon.expiration_at is not None
        and coupon.expiration_at < now
    )
    if expired:
        return
    changed: list[str] = []
    if applied.frequency == CouponFrequency.RECURRING:
        remaining = (applied.frequency_duration_remaining or 0) + 1
        if applied.frequency_duration is not None:
            remaining = min(remaining, applied.frequency_duration)
        applied.frequency_duration_remaining = remaining
        changed.append("frequency_duration_remaining")
        reactivate = remaining > 0
    else:
        reactivate = coupon.deleted_at is None and coupon.status == Coupon.Status.ACTIVE
    if reactivate and applied.status == AppliedCoupon.Status.TERMINATED:
        applied.status = AppliedCoupon.Status.ACTIVE
        applied.terminated_at = None
        changed += ["status", "terminated_at"]
    if changed:
        applied.save(update_fields=[*changed, "updated_at"])
