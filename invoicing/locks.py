"""Row locks of invoices, fees and invoice sequences, held until the caller's transaction ends
(STYLE §7).

Own table only (`of=("self",)`): the customer read along an invoice is not locked (customers
are locked through `customers.locks`, always before the invoices they own).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from invoicing.models import CreditNote, Fee, Invoice, InvoiceSequence
from invoicing.selectors import overdue_candidates


def lock_invoice(invoice_id: UUID) -> Invoice:
    """The invoice row, with its customer read along (the caller's copy may be stale)."""
    return (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=invoice_id)
    )


def lock_overdue_invoice(invoice_id: UUID, *, now: datetime) -> Invoice | None:
    """The invoice if it is still an overdue candidate at `now`; None when it was paid, voided
    or flagged meanwhile, or another run holds it (skipped, not waited for)."""
    return (
        overdue_candidates(now=now)
        .select_for_update(of=("self",), skip_locked=True)
        .select_related("customer")
        .filter(pk=invoice_id)
        .first()
    )


def lock_fee(fee_id: UUID, *, related: Sequence[str] = ()) -> Fee:
    """The fee row; `related` relations are read along, not locked."""
    fees = Fee.objects.select_for_update(of=("self",))
    if related:
        fees = fees.select_related(*related)
    return fees.get(pk=fee_id)


def lock_invoice_sequence(
    *, billing_entity_id: UUID, customer_id: UUID | None
) -> InvoiceSequence | None:
    """The counter of a customer with a billing entity (`customer_id` None: the entity's own),
    None before its first number."""
    return (
        InvoiceSequence.objects.select_for_update(of=("self",))
        .filter(billing_entity_id=billing_entity_id, customer_id=customer_id)
        .first()
    )


def lock_credit_note(credit_note_id: UUID) -> CreditNote:
    """The credit note row (balance, statuses), its invoice read along."""
    return (
        CreditNote.objects.select_for_update(of=("self",))
        .select_related("invoice", "customer")
        .get(pk=credit_note_id)
    )


def lock_available_credit_notes(*, customer_id: UUID, currency: str) -> list[CreditNote]:
    """The customer's finalized credit notes with credit left in `currency`, locked in primary
    key order (two finalizations of the same customer never wait on each other crosswise); the
    caller spends them oldest first."""
    return list(
        CreditNote.objects.select_for_update(of=("self",))
        .filter(
            customer_id=customer_id,
            currency=currency,
            status=CreditNote.Status.FINALIZED,
            credit_status=CreditNote.CreditStatus.AVAILABLE,
            balance_amount_cents__gt=0,
        )
        .order_by("pk")
    )
