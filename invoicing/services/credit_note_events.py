"""Outbox events of credit notes: the payload integrations deliver as Lago's credit note
webhooks."""

from __future__ import annotations

from billing.actors import Actor
from billing.outbox import emit
from invoicing.models import CreditNote


def credit_note_payload(credit_note: CreditNote) -> dict:
    """The outbox payload of a credit note event."""
    return {
        "lago_id": str(credit_note.pk),
        "number": credit_note.number,
        "lago_invoice_id": str(credit_note.invoice_id),
        "invoice_number": credit_note.invoice.number,
        "credit_status": credit_note.credit_status,
        "refund_status": credit_note.refund_status,
        "reason": credit_note.reason,
        "currency": credit_note.currency,
        "total_amount_cents": credit_note.total_amount_cents,
        "credit_amount_cents": credit_note.credit_amount_cents,
        "refund_amount_cents": credit_note.refund_amount_cents,
        "offset_amount_cents": credit_note.offset_amount_cents,
        "balance_amount_cents": credit_note.balance_amount_cents,
        "lago_customer_id": str(credit_note.customer_id),
        "external_customer_id": credit_note.customer.external_id,
    }


def emit_credit_note_event(credit_note: CreditNote, event_type: str, *, actor: Actor) -> None:
    """Records a credit note webhook (`credit_note.created`, `.generated`, `.refund_failure`)."""
    emit(
        event_type=event_type,
        actor=actor,
        obj=credit_note,
        payload=credit_note_payload(credit_note),
    )
