"""Outbox events of invoices: the payload integrations deliver as Lago's invoice webhooks."""

from __future__ import annotations

from billing.actors import Actor
from billing.models import OutboxEvent
from billing.outbox import emit
from invoicing.models import Invoice


def emit_invoice_event(
    invoice: Invoice, event_type: str, *, actor: Actor, **extra: object
) -> OutboxEvent:
    """An outbox row for integrations (webhook `event_type`), in the current transaction."""
    return emit(
        event_type=event_type,
        actor=actor,
        obj=invoice,
        payload={
            "lago_id": str(invoice.pk),
            "number": invoice.number,
            "invoice_type": invoice.invoice_type,
            "status": invoice.status,
            "payment_status": invoice.payment_status,
            "payment_overdue": invoice.payment_overdue,
            "currency": invoice.currency,
            "total_amount_cents": invoice.total_amount_cents,
            "lago_customer_id": str(invoice.customer_id),
            "external_customer_id": invoice.customer.external_id,
            **extra,
        },
    )
