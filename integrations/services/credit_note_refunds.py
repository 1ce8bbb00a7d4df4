"""Credit note refunds through the payment provider that collected the invoice.

A finalized credit note with a refund part asks for it (`on_credit_note_refund_requested`);
`credit_note_refund_send` refunds it at Stripe on the invoice's succeeded provider payment
(idempotency key per credit note, so a second request refunds nothing more). Stripe's answer,
and later `charge.refund.updated`, set the credit note's `refund_status` through
`credit_note_refund_settle`: `succeeded`, `failed` (records `credit_note.refund_failure`), or
left `pending` while Stripe is still processing it.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from billing.actors import Actor
from integrations.gateways import gateway_for
from integrations.models import PaymentProvider
from integrations.payment_providers.base import GatewayConnectionError, GatewayError
from invoicing.credit_note_models import CreditNote
from invoicing.models import Payment
from invoicing.payment_models import PayablePaymentStatus
from invoicing.services.credit_notes import credit_note_refund_settle

_SUCCEEDED = {"succeeded"}
_FAILED = {"failed", "canceled"}


def refund_outcome(stripe_status: str) -> bool | None:
    """True for a succeeded refund, False for a failed or canceled one, None while pending."""
    if stripe_status in _SUCCEEDED:
        return True
    if stripe_status in _FAILED:
        return False
    return None


def credit_note_refund_send(*, credit_note_id: UUID, actor: Actor, now: datetime) -> str:
    """Refunds a credit note's refund part on the invoice's provider payment; says what it did.
    Nothing is sent when the invoice was not paid through a connected provider (the refund
    stays pending for the user to settle) or the refund is no longer pending."""
    credit_note = CreditNote.objects.filter(pk=credit_note_id).select_related("invoice").first()
    if credit_note is None or credit_note.refund_amount_cents <= 0:
        return "ignored: nothing to refund"
    if credit_note.refund_status != CreditNote.RefundStatus.PENDING:
        return f"ignored: refund {credit_note.refund_status}"
    payment = (
        Payment.objects.filter(
            invoice_id=credit_note.invoice_id,
            payment_type=Payment.PaymentType.PROVIDER,
            payable_payment_status=PayablePaymentStatus.SUCCEEDED,
            provider_payment_id__isnull=False,
        )
        .order_by("-created_at")
        .first()
    )
    if payment is None:
        return "ignored: the invoice was not paid through a payment provider"
    provider = (
        PaymentProvider.objects.filter(
            organization_id=credit_note.organization_id,
            provider_type=payment.payment_provider_type,
            code=payment.payment_provider_code,
        )
        .alive()
        .first()
    )
    if provider is None:
        return "ignored: the payment provider connection is gone"
    try:
        refund = gateway_for(provider).refund(
            provider_payment_id=payment.provider_payment_id,
            amount_cents=credit_note.refund_amount_cents,
            metadata={
                "lago_customer_id": str(credit_note.customer_id),
                "lago_credit_note_id": str(credit_note.pk),
                "lago_invoice_id": str(credit_note.invoice_id),
            },
            idempotency_key=f"credit-note-refund-{credit_note.pk}",
        )
    except GatewayConnectionError:
        raise  # retried by the task with the same idempotency key
    except GatewayError as exc:
        credit_note_refund_settle(
            credit_note_id=credit_note.pk, succeeded=False, actor=actor, now=now
        )
        return f"refund refused: {exc.code or exc.message}"
    outcome = refund_outcome(refund.status)
    if outcome is not None:
        credit_note_refund_settle(
            credit_note_id=credit_note.pk, succeeded=outcome, actor=actor, now=now
        )
    return f"refund {refund.provider_refund_id} {refund.status}"
