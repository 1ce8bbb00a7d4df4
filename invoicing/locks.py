"""Row locks of invoices, fees and invoice sequences, held until the caller's transaction ends
(STYLE §7).

Own table only (`of=("self",)`): the customer read along an invoice is not locked (customers
are locked through `customers.locks`, always before the invoices they own).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from uuid import UUID

from django.db import connection

from invoicing.models import (
    CreditNote,
    CustomerDunning,
    DunningCampaign,
    Fee,
    Invoice,
    InvoiceSequence,
    Payment,
    PaymentReceipt,
    PaymentReceiptSequence,
    PaymentRequest,
)
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


def lock_draft_credit_notes(invoice_id: UUID) -> list[CreditNote]:
    """The draft credit notes of an invoice, oldest first."""
    return list(
        CreditNote.objects.filter(invoice_id=invoice_id, status=CreditNote.Status.DRAFT)
        .select_for_update(of=("self",))
        .order_by("sequential_id")
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


def lock_invoices(invoice_ids: Sequence[UUID]) -> list[Invoice]:
    """Several invoice rows, in primary-key order (two payers of overlapping sets never
    deadlock), customers read along."""
    return list(
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer")
        .filter(pk__in=invoice_ids)
        .order_by("pk")
    )


def lock_payment(payment_id: UUID) -> Payment:
    """The payment row (its payable is locked separately, after it)."""
    return Payment.objects.select_for_update(of=("self",)).get(pk=payment_id)


def lock_payment_request(payment_request_id: UUID) -> PaymentRequest:
    """The payment request row; its invoices are locked with `lock_invoices`, after it."""
    return (
        PaymentRequest.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=payment_request_id)
    )


def lock_receipt_sequence(*, organization_id: UUID, customer_id: UUID) -> PaymentReceiptSequence:
    """The customer's receipt counter, created at its first receipt (a concurrent first
    receipt waits for this one's row instead of inserting a second)."""
    PaymentReceiptSequence.objects.bulk_create(
        [PaymentReceiptSequence(organization_id=organization_id, customer_id=customer_id)],
        ignore_conflicts=True,
    )
    return PaymentReceiptSequence.objects.select_for_update(of=("self",)).get(
        customer_id=customer_id
    )


def lock_customer_dunning(*, organization_id: UUID, customer_id: UUID) -> CustomerDunning:
    """The customer's dunning state, created on first use."""
    CustomerDunning.objects.bulk_create(
        [CustomerDunning(organization_id=organization_id, customer_id=customer_id)],
        ignore_conflicts=True,
    )
    return CustomerDunning.objects.select_for_update(of=("self",)).get(customer_id=customer_id)


def lock_payment_receipt(receipt_id: UUID) -> PaymentReceipt:
    """The receipt row (its PDF is being stored)."""
    return PaymentReceipt.objects.select_for_update(of=("self",)).get(pk=receipt_id)


def lock_dunning_campaign(campaign_id: UUID) -> DunningCampaign:
    """The campaign row (being edited or deleted)."""
    return DunningCampaign.objects.select_for_update(of=("self",)).get(pk=campaign_id)


# one number for the figure deltas' writers of folded rows (compaction, rebuild)
_FIGURE_DELTAS_LOCK = int.from_bytes(b"figdelta", "big", signed=True)


def lock_figure_deltas_folding() -> None:
    """Until the transaction ends, the only one folding or rebuilding figure deltas: such runs
    wait on each other, while the invoice writers, who only append deltas, never wait on it
    (PostgreSQL; nothing elsewhere)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_FIGURE_DELTAS_LOCK])


@contextmanager
def figure_deltas_folding_held() -> Iterator[None]:
    """`lock_figure_deltas_folding` taken before a transaction begins and kept until the block
    ends (a session lock, released on leaving): a REPEATABLE READ transaction begun inside then
    reads after every compaction or rebuild that went before. Taken inside the transaction, it
    could not ensure that: a statement takes its snapshot before it starts waiting, so the
    transaction would read the rows a compaction deleted meanwhile, and fail to serialize when
    deleting them (PostgreSQL; nothing elsewhere)."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [_FIGURE_DELTAS_LOCK])
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_FIGURE_DELTAS_LOCK])
