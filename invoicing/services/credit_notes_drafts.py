"""Draft credit notes through the refresh of their draft invoice (Lago
`Invoices::RefreshDraftService`, `CreditNotes::RefreshDraftService`).

Refreshing a draft rebuilds its fees, so the items of its draft credit notes (the unused days of
a pay-in-advance subscription terminated during the grace period) lose their fee. They are taken
off before the old fees go and put back on the new fee of the same subscription and fee type,
their amount scaled by new fee / old fee; the note's coupons adjustment, taxes and amounts are
computed again on the new fee. A note none of whose items finds a fee any more is deleted: a
draft was never numbered, shown by the API nor consumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from uuid import UUID

from billing.money import round_cents
from invoicing.locks import lock_draft_credit_notes
from invoicing.models import CreditNote, CreditNoteAppliedTax, CreditNoteItem, Fee, Invoice
from invoicing.services.credit_notes import _amounts, _applied_taxes

PRECISION = Decimal("0.00001")  # items keep five decimals (Lago's DB_PRECISION_SCALE)


@dataclass(frozen=True)
class DetachedItem:
    """A draft credit note's item taken off its fee while the fees are rebuilt."""

    credit_note_id: UUID
    subscription_id: UUID | None
    fee_type: str
    charge_id: UUID | None
    old_fee_amount_cents: int
    precise_amount_cents: Decimal


def draft_credit_notes_detach(*, invoice: Invoice) -> list[DetachedItem]:
    """Takes the items of the invoice's draft credit notes off their fees (deleted, remembered)
    so that the fees can be rebuilt; the caller holds the invoice lock."""
    notes = lock_draft_credit_notes(invoice.pk)
    if not notes:
        return []
    items = list(
        CreditNoteItem.objects.filter(credit_note__in=notes)
        .select_related("fee")
        .order_by("created_at", "id")
    )
    detached = [
        DetachedItem(
            credit_note_id=item.credit_note_id,
            subscription_id=item.fee.subscription_id,
            fee_type=item.fee.fee_type,
            charge_id=item.fee.charge_id,
            old_fee_amount_cents=item.fee.amount_cents,
            precise_amount_cents=item.precise_amount_cents,
        )
        for item in items
    ]
    CreditNoteItem.objects.filter(pk__in=[item.pk for item in items]).delete()
    CreditNoteAppliedTax.objects.filter(credit_note__in=notes).delete()
    return detached


def _new_fee(item: DetachedItem, fees: Sequence[Fee]) -> Fee | None:
    return next(
        (
            fee
            for fee in fees
            if fee.subscription_id == item.subscription_id
            and fee.fee_type == item.fee_type
            and fee.charge_id == item.charge_id
            and fee.true_up_parent_fee_id is None
        ),
        None,
    )


def draft_credit_notes_reattach(
    *, invoice: Invoice, detached: Sequence[DetachedItem], fees: Sequence[Fee]
) -> None:
    """Puts the detached items back on the rebuilt fees and computes their notes again."""
    if not detached:
        return
    saved = list(
        Fee.objects.filter(pk__in=[fee.pk for fee in fees]).prefetch_related("applied_taxes")
    )
    by_note: dict[UUID, list[tuple[Fee, Decimal]]] = {}
    for item in detached:
        fee = _new_fee(item, saved)
        by_note.setdefault(item.credit_note_id, [])
        if fee is None or not item.old_fee_amount_cents:
            continue
        amount = item.precise_amount_cents * fee.amount_cents / item.old_fee_amount_cents
        amount = amount.quantize(PRECISION, rounding=ROUND_DOWN)
        if amount > 0:
            by_note[item.credit_note_id].append((fee, amount))
    notes = CreditNote.objects.in_bulk(list(by_note))
    for note_id, items in by_note.items():
        note = notes[note_id]
        if not items:
            note.delete()
            continue
        _recompute(note, invoice, items)


def _recompute(note: CreditNote, invoice: Invoice, items: list[tuple[Fee, Decimal]]) -> None:
    CreditNoteItem.objects.bulk_create(
        CreditNoteItem(
            organization_id=invoice.organization_id,
            credit_note=note,
            fee=fee,
            amount_cents=round_cents(amount),
            precise_amount_cents=amount,
            amount_currency=invoice.currency,
        )
        for fee, amount in items
    )
    amounts = _amounts(items, invoice)
    for row in _applied_taxes(invoice, items, amounts):
        row.credit_note = note
        row.save(force_insert=True)
    total = amounts.total_amount_cents
    # the split keeps its kind: an offset note offsets the new total, else it is credited
    if note.offset_amount_cents and not note.credit_amount_cents:
        note.offset_amount_cents = max(total - note.refund_amount_cents, 0)
    else:
        note.credit_amount_cents = max(
            total - note.refund_amount_cents - note.offset_amount_cents, 0
        )
    note.balance_amount_cents = note.credit_amount_cents
    note.total_amount_cents = (
        note.credit_amount_cents + note.refund_amount_cents + note.offset_amount_cents
    )
    note.taxes_amount_cents = amounts.taxes_amount_cents
    note.precise_taxes_amount_cents = amounts.precise_taxes_amount_cents
    note.taxes_rate = amounts.taxes_rate
    note.coupons_adjustment_amount_cents = amounts.coupons_adjustment_amount_cents
    note.precise_coupons_adjustment_amount_cents = amounts.precise_coupons_adjustment_amount_cents
    note.sub_total_excluding_taxes_amount_cents = amounts.sub_total_excluding_taxes_amount_cents
    note.save()
