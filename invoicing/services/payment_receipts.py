"""Payment receipts: one per succeeded payment while the organization issues receipts,
numbered per customer (`<customer slug>-RCPT-000001`, as Lago), its PDF rendered after commit."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction

from billing.actors import Actor
from billing.models import Organization
from invoicing.locks import lock_receipt_sequence
from invoicing.models import Payment, PaymentReceipt
from invoicing.payment_models import PayablePaymentStatus
from invoicing.services.payment_events import record_receipt_event

NUMBER_DIGITS = 6


def receipt_number(customer: object, value: int) -> str:
    """Lago's receipt number: the customer's slug, `RCPT` and the counter on six digits."""
    prefix = customer.slug or f"CUS-{customer.sequential_id:03d}"
    return f"{prefix}-RCPT-{value:0{NUMBER_DIGITS}d}"


@transaction.atomic
def payment_receipt_create(
    *, payment: Payment, actor: Actor, now: datetime
) -> PaymentReceipt | None:
    """The receipt of a succeeded payment, created once (None while receipts are off, the
    payment has not succeeded or the customer is a partner). Records `payment_receipt.created`;
    the PDF follows after commit (`payment_receipt.generated`)."""
    organization = Organization.objects.get(pk=payment.organization_id)
    if not organization.issue_receipts:
        return None
    if payment.payable_payment_status != PayablePaymentStatus.SUCCEEDED:
        return None
    customer = payment.customer
    if customer.account_type == customer.AccountType.PARTNER:
        return None  # Lago: a partner's payments get no receipt
    existing = PaymentReceipt.objects.filter(payment=payment).first()
    if existing is not None:
        return existing
    sequence = lock_receipt_sequence(
        organization_id=payment.organization_id, customer_id=payment.customer_id
    )
    sequence.last_value += 1
    sequence.save(update_fields=["last_value"])
    receipt = PaymentReceipt.objects.create(
        organization_id=payment.organization_id,
        billing_entity_id=customer.billing_entity_id,
        payment=payment,
        number=receipt_number(customer, sequence.last_value),
    )
    record_receipt_event(receipt, "payment_receipt.created", actor=actor)
    if getattr(settings, "RECEIPT_PDF_ON_CREATE", True):
        transaction.on_commit(lambda: _render_later(receipt.pk))
    return receipt


def _render_later(receipt_id: object) -> None:
    from invoicing.receipt_pdf import generate_payment_receipt_pdf_task

    generate_payment_receipt_pdf_task.delay(str(receipt_id))
