"""Collecting finalized invoices through the customer's Stripe connection (Lago's invoice
payment flow).

`invoice_payment_collect` records a pending provider `Payment` through the payment core
(`invoicing.services.payment_settlement`), sends the invoice's PaymentIntent with the idempotency
key of that payment, and reports Stripe's answer back to the core: `succeeded` pays the invoice
(receipt, `payment.succeeded`), `requires_action` keeps the invoice pending with the next action
recorded (`payment.requires_action`), a refusal (declined card, no payment method, amount below
Stripe's minimum) fails the payment and records `invoice.payment_failure`.

Nothing is charged twice: the core returns the payment already in flight for the invoice, a
payment whose PaymentIntent is known is not sent again, and a second send of the same payment
carries the same idempotency key, so Stripe answers the first PaymentIntent.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from billing.actors import Actor
from integrations.invoice_payments import invoice_amount_due_cents, invoice_payment_intent_create
from integrations.models import PaymentProvider
from integrations.payment_providers.base import (
    GatewayConnectionError,
    GatewayError,
    ProviderPayment,
)
from integrations.selectors import payment_provider_of_customer
from invoicing.models import Invoice, Payment
from invoicing.payment_models import PayablePaymentStatus
from invoicing.services.payment_settlement import (
    payment_provider_attach,
    payment_provider_create,
    payment_provider_fail,
    payment_provider_update,
)

# Stripe's PaymentIntent statuses, as Lago reads them for the invoice's payment status
_SUCCEEDED = {"succeeded"}
_FAILED = {"canceled"}


def payable_status_of(stripe_status: str) -> str:
    """What a PaymentIntent status means for the invoice: succeeded, failed or still pending."""
    if stripe_status in _SUCCEEDED:
        return PayablePaymentStatus.SUCCEEDED
    if stripe_status in _FAILED:
        return PayablePaymentStatus.FAILED
    return PayablePaymentStatus.PENDING


def collectable_provider(invoice: Invoice) -> PaymentProvider | None:
    """The Stripe connection that collects this invoice: the customer's, when it names a
    Stripe customer and the invoice is finalized and still owes something."""
    if invoice.status != Invoice.Status.FINALIZED:
        return None
    if invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED:
        return None
    if invoice_amount_due_cents(invoice) <= 0:
        return None
    provider = payment_provider_of_customer(customer=invoice.customer)
    config = invoice.customer.billing_configuration or {}
    if provider is None or not config.get("provider_customer_id"):
        return None
    return provider


def invoice_payment_collect(*, invoice_id: UUID, actor: Actor, now: datetime) -> Payment | None:
    """Charges what a finalized invoice still owes through the customer's Stripe connection;
    None when nothing is to be collected there. Idempotent (see the module docstring)."""
    invoice = (
        Invoice.objects.select_related("customer", "billing_entity", "organization")
        .filter(pk=invoice_id)
        .first()
    )
    if invoice is None:
        return None
    provider = collectable_provider(invoice)
    if provider is None:
        return None
    payment = payment_provider_create(
        payable=invoice,
        payment_provider_code=provider.code,
        payment_provider_type=provider.provider_type,
        provider_customer_id=invoice.customer.billing_configuration["provider_customer_id"],
        actor=actor,
        now=now,
    )
    if payment.provider_payment_id:
        return payment  # its PaymentIntent was sent already
    return _send(invoice, payment, actor=actor, now=now)


def _send(invoice: Invoice, payment: Payment, *, actor: Actor, now: datetime) -> Payment:
    try:
        answer = invoice_payment_intent_create(invoice=invoice, payment_id=payment.pk)
    except GatewayConnectionError:
        raise  # Stripe unreachable: the task retries with the same idempotency key
    except GatewayError as exc:
        return payment_provider_fail(
            payment=payment, status="failed", error_code=exc.code or "", actor=actor, now=now
        )
    if answer is None:  # the connection went away meanwhile
        return payment_provider_fail(
            payment=payment, status="failed", error_code="no_payment_provider", actor=actor, now=now
        )
    return payment_answer_apply(
        invoice=invoice, payment=payment, answer=answer, actor=actor, now=now
    )


def payment_answer_apply(
    *, invoice: Invoice, payment: Payment, answer: ProviderPayment, actor: Actor, now: datetime
) -> Payment:
    """Stores the PaymentIntent id on the payment and reports its status to the core."""
    payment_provider_attach(
        payment=payment, provider_payment_id=answer.provider_payment_id, actor=actor, now=now
    )
    requires_action = answer.status == "requires_action" and answer.next_action is not None
    return payment_provider_update(
        organization=invoice.organization,
        provider_payment_id=answer.provider_payment_id,
        status=answer.status,
        payable_payment_status=payable_status_of(answer.status),
        provider_payment_data=answer.next_action if requires_action else None,
        error_code=answer.error_code or "",
        actor=actor,
        now=now,
    )
