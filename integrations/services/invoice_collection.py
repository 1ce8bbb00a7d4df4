"""Collecting finalized invoices, wallet top-up invoices and payment requests through the
customer's Stripe connection (Lago's invoice and payment request payment flows).

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

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from billing.actors import Actor
from billing.errors import Invalid, NotAllowed
from billing.models import Organization
from integrations.gateways import gateway_for
from integrations.invoice_payments import (
    invoice_amount_due_cents,
    invoice_payment_intent_create,
    invoice_payment_params,
    payment_request_payment_intent_create,
)
from integrations.models import PaymentProvider
from integrations.payment_providers.base import (
    GatewayConnectionError,
    GatewayError,
    ProviderPayment,
)
from integrations.payment_providers.stripe import DEFAULT_SUCCESS_REDIRECT_URL
from integrations.selectors import payment_provider_of_customer
from invoicing.models import Invoice, Payment, PaymentRequest
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


def _awaits_payment(invoice: Invoice) -> bool:
    """Finalized, or a wallet top-up invoice left `open` until its payment succeeds."""
    return invoice.status == Invoice.Status.FINALIZED or (
        invoice.status == Invoice.Status.OPEN and invoice.invoice_type == Invoice.InvoiceType.CREDIT
    )


def collectable_provider(invoice: Invoice) -> PaymentProvider | None:
    """The Stripe connection that collects this invoice: the customer's, when it names a
    Stripe customer and the invoice (finalized, or an open wallet top-up invoice) still owes
    something."""
    if not _awaits_payment(invoice):
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
    return _charge(
        lambda: invoice_payment_intent_create(invoice=invoice, payment_id=payment.pk),
        organization=invoice.organization,
        payment=payment,
        actor=actor,
        now=now,
    )


def _charge(
    send: Callable[[], ProviderPayment | None],
    *,
    organization: Organization,
    payment: Payment,
    actor: Actor,
    now: datetime,
) -> Payment:
    """Sends a PaymentIntent and reports Stripe's answer (or refusal) to the payment core."""
    try:
        answer = send()
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
        organization=organization, payment=payment, answer=answer, actor=actor, now=now
    )


def payment_answer_apply(
    *,
    organization: Organization,
    payment: Payment,
    answer: ProviderPayment,
    actor: Actor,
    now: datetime,
) -> Payment:
    """Stores the PaymentIntent id on the payment and reports its status to the core."""
    payment_provider_attach(
        payment=payment, provider_payment_id=answer.provider_payment_id, actor=actor, now=now
    )
    requires_action = answer.status == "requires_action" and answer.next_action is not None
    return payment_provider_update(
        organization=organization,
        provider_payment_id=answer.provider_payment_id,
        status=answer.status,
        payable_payment_status=payable_status_of(answer.status),
        provider_payment_data=answer.next_action if requires_action else None,
        error_code=answer.error_code or "",
        actor=actor,
        now=now,
    )


def payment_request_collect(
    *, payment_request_id: UUID, actor: Actor, now: datetime
) -> Payment | None:
    """Charges a payment request through the customer's Stripe connection: one PaymentIntent
    for what its invoices still owe; its success pays every invoice of the request, its failure
    fails the request and its invoices (`payment_request.payment_failure`). None when nothing
    is to be collected there (no Stripe customer, request already paid, nothing left due).
    Idempotent as `invoice_payment_collect`."""
    request = (
        PaymentRequest.objects.select_related("customer", "billing_entity", "organization")
        .filter(pk=payment_request_id)
        .first()
    )
    if request is None or request.payment_status == PaymentRequest.PaymentStatus.SUCCEEDED:
        return None
    provider = payment_provider_of_customer(customer=request.customer)
    config = request.customer.billing_configuration or {}
    if provider is None or not config.get("provider_customer_id"):
        return None
    try:
        payment = payment_provider_create(
            payable=request,
            payment_provider_code=provider.code,
            payment_provider_type=provider.provider_type,
            provider_customer_id=config["provider_customer_id"],
            actor=actor,
            now=now,
        )
    except Invalid:
        return None  # its invoices were paid meanwhile: nothing left to charge
    if payment.provider_payment_id:
        return payment  # its PaymentIntent was sent already
    return _charge(
        lambda: payment_request_payment_intent_create(
            request=request, amount_cents=payment.amount_cents, payment_id=payment.pk
        ),
        organization=request.organization,
        payment=payment,
        actor=actor,
        now=now,
    )


def invoice_payment_retry(*, invoice: Invoice, actor: Actor, now: datetime) -> None:
    """`POST /invoices/{id}/retry_payment`: checks that a finalized, unpaid invoice may be sent
    for collection again (the caller then runs `invoice_payment_collect`, in a task).
    405 `invalid_status` for a draft, voided or paid invoice, 405
    `payment_processor_is_currently_handling_payment` while a charge is still in flight."""
    if invoice.status != Invoice.Status.FINALIZED or (
        invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED
    ):
        raise NotAllowed("invalid_status")
    in_flight = Payment.objects.filter(
        invoice=invoice,
        payment_type=Payment.PaymentType.PROVIDER,
        payable_payment_status__in=(PayablePaymentStatus.PENDING, PayablePaymentStatus.PROCESSING),
    ).exists()
    if in_flight:
        raise NotAllowed("payment_processor_is_currently_handling_payment")


def invoice_payment_url_generate(*, invoice: Invoice, actor: Actor) -> str:
    """`POST /invoices/{id}/payment_url`: a Stripe Checkout page (payment mode) for what the
    invoice still owes. The same link is answered for 24 hours (Stripe's idempotency window) as
    long as the amount due does not change. Refusals are 422s as Lago answers them."""
    config = invoice.customer.billing_configuration or {}
    provider_type = config.get("payment_provider")
    if not provider_type:
        raise Invalid({"base": ["no_linked_payment_provider"]})
    if provider_type == "gocardless":
        raise Invalid({"base": ["invalid_payment_provider"]})
    if invoice.status != Invoice.Status.FINALIZED or (
        invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED
    ):
        raise Invalid({"base": ["invalid_invoice_status_or_payment_status"]})
    provider = payment_provider_of_customer(customer=invoice.customer)
    if provider is None:
        raise Invalid({"base": ["missing_payment_provider"]})
    if not config.get("provider_customer_id"):
        raise Invalid({"base": ["missing_payment_provider_customer"]})
    base = invoice_payment_params(invoice=invoice, provider=provider, payment_id=invoice.pk)
    metadata = {k: v for k, v in base.metadata.items() if k != "lago_payment_id"}
    params = replace(
        base,
        metadata={**metadata, "payment_type": "one-time"},
        idempotency_key=f"payment-url-{invoice.pk}-{base.amount_cents}",
    )
    try:
        return gateway_for(provider).payment_checkout_url(
            params=params,
            item_name=invoice.number,
            success_url=provider.success_redirect_url or DEFAULT_SUCCESS_REDIRECT_URL,
        )
    except GatewayError as exc:
        raise Invalid({"base": [exc.code or "payment_provider_error"]}) from exc
