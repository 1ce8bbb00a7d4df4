"""What progressive billing invoices already billed in a period, deducted from the period's
later invoices (spec §12.3 step 6, §21.3).

The latest progressive billing invoice of the period holds the whole period-to-date usage (each
one credits the earlier ones), so it alone is deducted: what it billed after its coupons (its
fees less its coupons), less what later invoices already deducted from it and less the credit
of its credit notes. Each of its fees is deducted from the fee of the same charge, filter and
grouping on the new invoice, at most that fee's amount; what the new invoice cannot absorb
(usage lowered since) is returned by a credit note on the progressive billing invoice (Lago
`Credits::ProgressiveBillingService`, `CreditNotes::CreateFromProgressiveBillingInvoice`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.db.models import Sum

from billing.actors import Actor
from billing.money import round_cents
from invoicing.models import (
    Credit,
    CreditNote,
    CreditNoteItem,
    Fee,
    Invoice,
    InvoiceSubscription,
    InvoicingReason,
)
from invoicing.services.credit_notes import ItemInput, credit_note_create, credit_note_estimate
from invoicing.services.generation.fees import FeeDraft
from invoicing.services.generation.items import BillingItem

# a progressive invoice whose finalization failed (taxes) still billed its usage (Lago)
_BILLED_STATUSES = (Invoice.Status.FINALIZED, Invoice.Status.FAILED)
_DEAD_STATUSES = (Invoice.Status.VOIDED, Invoice.Status.DELETED)


@dataclass(frozen=True)
class ProgressiveBilled:
    """The period's latest progressive billing invoice (None: none yet), its fees (what the
    period already billed, the threshold check's P) and what is still to deduct from it (its
    fees less its coupons, deductions and credit notes)."""

    invoice: Invoice | None = None
    billed_amount_cents: int = 0
    to_credit_amount_cents: int = 0


def progressive_billed(
    subscription_id: UUID, *, at: datetime, exclude_invoice_id: UUID | None = None
) -> ProgressiveBilled:
    """The latest progressive billing invoice of the subscription whose usage window contains
    `at` (Lago `Subscriptions::ProgressiveBilledAmount`). `exclude_invoice_id`: the invoice
    being computed, whose own deductions do not count as made already."""
    row = (
        InvoiceSubscription.objects.filter(
            subscription_id=subscription_id,
            invoicing_reason=InvoicingReason.PROGRESSIVE_BILLING,
            charges_from_datetime__lte=at,
            charges_to_datetime__gt=at,
            invoice__invoice_type=Invoice.InvoiceType.PROGRESSIVE_BILLING,
            invoice__status__in=_BILLED_STATUSES,
        )
        .select_related("invoice")
        .order_by("-invoice__issuing_date", "-invoice__created_at", "-invoice__id")
        .first()
    )
    if row is None:
        return ProgressiveBilled()
    invoice = row.invoice
    deducted = Credit.objects.filter(progressive_billing_invoice=invoice).exclude(
        invoice__status__in=_DEAD_STATUSES
    )
    if exclude_invoice_id is not None:
        deducted = deducted.exclude(invoice_id=exclude_invoice_id)
    # a consumed credit note gave its credit back already: it counts as returned (Lago)
    credited = CreditNote.objects.filter(
        invoice=invoice,
        status=CreditNote.Status.FINALIZED,
        credit_status__in=(CreditNote.CreditStatus.AVAILABLE, CreditNote.CreditStatus.CONSUMED),
    )
    # spec §21.3: what its customer was charged before taxes (its coupons are not given twice)
    to_credit = (
        invoice.fees_amount_cents
        - invoice.coupons_amount_cents
        - (deducted.aggregate(total=Sum("amount_cents"))["total"] or 0)
        - (credited.aggregate(total=Sum("credit_amount_cents"))["total"] or 0)
    )
    return ProgressiveBilled(
        invoice=invoice,
        billed_amount_cents=invoice.fees_amount_cents,
        to_credit_amount_cents=max(to_credit, 0),
    )


@dataclass
class ProgressiveCredit:
    """The deduction of one progressive billing invoice on the invoice being computed: by fee
    line key, and the excess to return by credit note (fee of the progressive invoice, cents)."""

    progressive_invoice: Invoice
    fee_amounts: dict[str, int] = field(default_factory=dict)
    credit_note_items: list[tuple[Fee, int]] = field(default_factory=list)

    @property
    def amount_cents(self) -> int:
        return sum(self.fee_amounts.values())


def _creditable(fees: Sequence[Fee]) -> dict[UUID, int]:
    """What credit notes have not taken yet of each fee (Lago `Fee#creditable_amount_cents`)."""
    rows = (
        CreditNoteItem.objects.filter(fee__in=fees, credit_note__status=CreditNote.Status.FINALIZED)
        .values("fee_id")
        .annotate(total=Sum("amount_cents"))
    )
    taken = {row["fee_id"]: row["total"] or 0 for row in rows}
    return {fee.pk: max(fee.amount_cents - taken.get(fee.pk, 0), 0) for fee in fees}


def _matches(draft: FeeDraft, subscription_id: UUID, billed: Fee) -> bool:
    fee = draft.fee
    return (
        fee.fee_type == Fee.FeeType.CHARGE
        and fee.subscription_id == subscription_id
        and fee.true_up_parent_fee is None
        and fee.charge_id == billed.charge_id
        and fee.charge_filter_id == billed.charge_filter_id
        and (fee.grouped_by or {}) == (billed.grouped_by or {})
    )


def progressive_credits(
    drafts: Sequence[FeeDraft], items: Sequence[BillingItem], *, exclude_invoice_id: UUID | None
) -> list[ProgressiveCredit]:
    """The deductions of the period's progressive billing invoices on the fees being built:
    one per item billing usage whose period had one."""
    credits = []
    for item in items:
        if not item.bills_charges or item.subscription._state.adding:
            continue
        if getattr(item.subscription, "has_progressive_billing_invoices", True) is False:
            continue  # the billing run read, under the customer lock, that it has none
        subscription_id = item.subscription.pk
        billed = progressive_billed(
            subscription_id,
            at=item.period.charges_from_datetime,
            exclude_invoice_id=exclude_invoice_id,
        )
        if billed.invoice is None or billed.to_credit_amount_cents <= 0:
            continue
        credit = ProgressiveCredit(progressive_invoice=billed.invoice)
        remaining = billed.to_credit_amount_cents
        billed_fees = list(
            Fee.objects.filter(
                invoice_id=billed.invoice.pk, fee_type=Fee.FeeType.CHARGE, deleted_at__isnull=True
            ).order_by("-amount_cents", "created_at", "id")
        )
        available = _creditable(billed_fees)
        for billed_fee in billed_fees:
            left = available[billed_fee.pk]
            draft = next((d for d in drafts if _matches(d, subscription_id, billed_fee)), None)
            if draft is not None and remaining > 0:
                line = draft.line
                open_cents = (
                    Decimal(line.amount_cents)
                    - line.precise_coupons_amount_cents
                    - credit.fee_amounts.get(line.key, 0)
                )
                amount = max(min(remaining, left, int(open_cents)), 0)
                if amount:
                    credit.fee_amounts[line.key] = credit.fee_amounts.get(line.key, 0) + amount
                    remaining -= amount
                    left -= amount
            available[billed_fee.pk] = left
        for billed_fee in billed_fees:
            if remaining <= 0:
                break
            amount = min(remaining, available[billed_fee.pk])
            if amount > 0:
                credit.credit_note_items.append((billed_fee, amount))
                remaining -= amount
        if credit.fee_amounts or credit.credit_note_items:
            credits.append(credit)
    return credits


def return_excess(credits: Sequence[ProgressiveCredit], *, actor: Actor, now: datetime) -> None:
    """Credit notes returning what progressive billing invoices billed beyond the period's usage
    (spec §21.3); their credit is then available to the invoice being finalized."""
    for credit in credits:
        if not credit.credit_note_items:
            continue
        items = [
            ItemInput(str(fee.pk), Decimal(amount)) for fee, amount in credit.credit_note_items
        ]
        estimate = credit_note_estimate(invoice=credit.progressive_invoice, items=items)
        credit_note_create(
            invoice=credit.progressive_invoice,
            actor=actor,
            now=now,
            items=items,
            reason=CreditNote.Reason.OTHER,
            credit_amount_cents=round_cents(estimate.amounts.precise_total),
            automatic=True,
        )


def progressive_credit_rows(invoice: Invoice, credits: Sequence[ProgressiveCredit]) -> list[Credit]:
    """The `Credit` rows of the deductions (before taxes)."""
    return [
        Credit(
            organization_id=invoice.organization_id,
            invoice=invoice,
            progressive_billing_invoice=credit.progressive_invoice,
            amount_cents=credit.amount_cents,
            amount_currency=invoice.currency,
            before_taxes=True,
        )
        for credit in credits
        if credit.amount_cents > 0
    ]
