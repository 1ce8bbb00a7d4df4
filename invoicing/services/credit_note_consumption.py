"""Credit-note balances consumed by a customer's next invoices, after taxes and before prepaid
credits, oldest credit note first, each giving min(its balance, what is left to pay).

At finalization the balances are read under row locks held until the invoice's transaction
commits, so two invoices of one customer finalizing at once never spend the same credit: the
second waits and reads what the first left. A voided invoice gives its consumed credit back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from invoicing import calculation
from invoicing.locks import lock_available_credit_notes, lock_credit_note
from invoicing.models import Credit, CreditNote, Fee, Invoice

CreditStatus = CreditNote.CreditStatus


@dataclass
class CreditNoteCredits:
    """The customer's available credit notes in one currency, oldest first."""

    notes: list[CreditNote]

    def allocator(self) -> calculation.Allocator:
        return calculation.balances_allocator(
            [(note, note.balance_amount_cents) for note in self.notes]
        )


def available_credit_notes(
    *, customer_id: UUID, currency: str, lock: bool = True
) -> CreditNoteCredits:
    """The balances an invoice of the customer may consume (locked unless `lock=False`, a
    preview)."""
    if lock:
        notes = lock_available_credit_notes(customer_id=customer_id, currency=currency)
    else:
        notes = list(
            CreditNote.objects.filter(
                customer_id=customer_id,
                currency=currency,
                status=CreditNote.Status.FINALIZED,
                credit_status=CreditStatus.AVAILABLE,
                balance_amount_cents__gt=0,
            )
        )
    notes.sort(key=lambda note: (note.created_at, str(note.pk)))
    return CreditNoteCredits(notes)


def draw_credit_notes(
    invoice: Invoice, details: tuple[object, ...], fees: list[Fee], *, now: datetime
) -> None:
    """One after-tax credit per credit note consumed; the balances go down (`consumed` at 0);
    each fee keeps its share of the credit, pro rata of what it still carried."""
    for note, amount in details:  # type: ignore[misc]
        Credit.objects.create(
            organization_id=invoice.organization_id,
            invoice=invoice,
            credit_note=note,
            amount_cents=amount,
            amount_currency=invoice.currency,
            before_taxes=False,
        )
        note.balance_amount_cents -= amount
        if note.balance_amount_cents == 0:
            note.credit_status = CreditStatus.CONSUMED
        note.save(update_fields=["balance_amount_cents", "credit_status", "updated_at"])
    total = sum(amount for _, amount in details)  # type: ignore[misc]
    remaining = Decimal(invoice.sub_total_including_taxes_amount_cents)
    if not total or remaining <= 0:
        return
    for fee in fees:
        after_tax = (
            Decimal(fee.amount_cents) - fee.precise_coupons_amount_cents + fee.taxes_amount_cents
        )
        fee.precise_credit_notes_amount_cents = min(after_tax * total / remaining, after_tax)
        fee.save(update_fields=["precise_credit_notes_amount_cents", "updated_at"])


def recredit_voided_invoice(*, invoice: Invoice, now: datetime) -> None:
    """The credit a voided invoice consumed goes back to its credit notes (unless voided)."""
    for credit in invoice.credits.filter(credit_note__isnull=False, voided_at__isnull=True):
        note = lock_credit_note(credit.credit_note_id)
        credit.voided_at = now
        credit.save(update_fields=["voided_at", "updated_at"])
        if note.credit_status == CreditStatus.VOIDED:
            continue
        note.balance_amount_cents = min(
            note.balance_amount_cents + credit.amount_cents, note.credit_amount_cents
        )
        note.credit_status = CreditStatus.AVAILABLE
        note.save(update_fields=["balance_amount_cents", "credit_status", "updated_at"])
