"""Payment request e-mails through Django's e-mail backend (console in development, the
in-memory outbox in tests, SMTP in production), as Lago's `PaymentRequestMailer#requested`:
sent when a request is created and no payment provider collects it, and again whenever its
collection fails; a dunning campaign's request copies the campaign's BCC addresses."""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.core.mail import EmailMessage

from billing.actors import Actor
from integrations.services.invoice_collection import payment_request_collect
from invoicing.models import Payment, PaymentRequest
from invoicing.payment_models import PayablePaymentStatus
from invoicing.payment_request_email import payment_request_email
from invoicing.payment_selectors import invoice_amount_due

logger = logging.getLogger(__name__)


def payment_request_email_send(*, payment_request_id: UUID) -> bool:
    """Sends the request's e-mail; False when it has no recipient or nothing is left to pay."""
    request = (
        PaymentRequest.objects.select_related("customer", "billing_entity", "dunning_campaign")
        .filter(pk=payment_request_id)
        .first()
    )
    if request is None or request.payment_status == PaymentRequest.PaymentStatus.SUCCEEDED:
        return False
    invoices = [row.invoice for row in request.applied_invoices.select_related("invoice")]
    if not any(invoice_amount_due(invoice) > 0 for invoice in invoices):
        return False  # paid meanwhile by other payments
    email = payment_request_email(request)
    if not email.to:
        logger.info("payment request %s has no e-mail address: not sent", request.pk)
        return False
    EmailMessage(
        subject=email.subject,
        body=email.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=email.to,
        bcc=email.bcc,
        reply_to=email.reply_to,
    ).send()
    return True


def payment_request_process(
    *, payment_request_id: UUID, actor: Actor, now: datetime
) -> Payment | None:
    """A new payment request: collected through the customer's Stripe connection, else (no
    provider, or the charge failed) e-mailed to the customer."""
    payment = payment_request_collect(payment_request_id=payment_request_id, actor=actor, now=now)
    if payment is None or payment.payable_payment_status == PayablePaymentStatus.FAILED:
        payment_request_email_send(payment_request_id=payment_request_id)
    return payment
