"""The Stripe charge of an invoice or a payment request, ready for the payment records to call
(spec §19.3).

`invoice_payment_params` builds the PaymentIntent Lago creates for a finalized invoice (or a
wallet top-up invoice), `payment_request_payment_params` the one of a payment request, and
`invoice_payment_intent_create` / `payment_request_payment_intent_create` send them through the
customer's connection. None of them records anything: the provider-agnostic Payment rows
(status, `payment_status`, outbox events) belong to the payment records, which call these with
their own payment id.
"""

from __future__ import annotations

from uuid import UUID

from customers.models import PaymentMethod
from integrations.gateways import gateway_for
from integrations.models import PaymentProvider
from integrations.payment_providers.base import PaymentRequestParams, ProviderPayment
from integrations.selectors import payment_provider_of_customer
from invoicing.models import Invoice, PaymentRequest
from invoicing.payment_selectors import invoice_amount_due


def invoice_amount_due_cents(invoice: Invoice) -> int:
    """What is left to pay on the invoice (payments received and credit note offsets
    deducted): the payment core's own figure."""
    return invoice_amount_due(invoice)


def _default_method_id(customer, provider: PaymentProvider) -> str | None:
    default = (
        PaymentMethod.objects.alive()
        .filter(customer=customer, is_default=True, payment_provider_code=provider.code)
        .first()
    )
    return default.provider_method_id if default else None


def invoice_payment_params(
    *, invoice: Invoice, provider: PaymentProvider, payment_id: UUID
) -> PaymentRequestParams:
    """Lago's PaymentIntent of an invoice: the amount due in the invoice currency, the Stripe
    customer and its default payment method, confirmed off-session, limited to the customer's
    payment method types, described as "<billing entity> - Invoice <number>", one charge per
    Lago payment (the idempotency key)."""
    customer = invoice.customer
    config = customer.billing_configuration or {}
    return PaymentRequestParams(
        amount_cents=invoice_amount_due_cents(invoice),
        currency=invoice.currency,
        provider_customer_id=config["provider_customer_id"],
        payment_method_id=_default_method_id(customer, provider),
        payment_method_types=list(config.get("provider_payment_methods") or ["card"]),
        description=f"{invoice.billing_entity.name} - Invoice {invoice.number}",
        metadata={
            "lago_invoice_id": str(invoice.pk),
            "lago_customer_id": str(customer.pk),
            "invoice_issuing_date": invoice.issuing_date.isoformat(),
            "invoice_type": invoice.invoice_type,
            "lago_payment_id": str(payment_id),
        },
        idempotency_key=f"payment-{payment_id}",
    )


def invoice_payment_intent_create(*, invoice: Invoice, payment_id: UUID) -> ProviderPayment | None:
    """Sends the invoice's PaymentIntent to Stripe; None when the customer has no Stripe
    connection or no Stripe customer. Stripe's refusals (declined card, amount below its
    minimum, no payment method) raise `GatewayError` with Stripe's code."""
    provider = payment_provider_of_customer(customer=invoice.customer)
    config = invoice.customer.billing_configuration or {}
    if provider is None or not config.get("provider_customer_id"):
        return None
    params = invoice_payment_params(invoice=invoice, provider=provider, payment_id=payment_id)
    return gateway_for(provider).create_payment(params=params)


def payment_request_payment_params(
    *, request: PaymentRequest, provider: PaymentProvider, amount_cents: int, payment_id: UUID
) -> PaymentRequestParams:
    """Lago's PaymentIntent of a payment request: `amount_cents` (the payment's amount, what the
    request's invoices still owe) in the request's currency, the Stripe customer and its default
    payment method, confirmed off-session, described as "<billing entity> - Overdue invoices"
    (": <number>" when it lists one invoice), metadata naming the payable, one charge per Lago
    payment (the idempotency key)."""
    customer = request.customer
    config = customer.billing_configuration or {}
    numbers = [applied.invoice.number for applied in request.applied_invoices.all()]
    description = f"{request.billing_entity.name} - Overdue invoices"
    if len(numbers) == 1:
        description = f"{description}: {numbers[0]}"
    return PaymentRequestParams(
        amount_cents=amount_cents,
        currency=request.amount_currency,
        provider_customer_id=config["provider_customer_id"],
        payment_method_id=_default_method_id(customer, provider),
        payment_method_types=list(config.get("provider_payment_methods") or ["card"]),
        description=description,
        metadata={
            "lago_customer_id": str(customer.pk),
            "lago_payable_id": str(request.pk),
            "lago_payable_type": "PaymentRequest",
            "lago_payment_id": str(payment_id),
        },
        idempotency_key=f"payment-{payment_id}",
    )


def payment_request_payment_intent_create(
    *, request: PaymentRequest, amount_cents: int, payment_id: UUID
) -> ProviderPayment | None:
    """Sends the payment request's PaymentIntent to Stripe; None when the customer has no
    Stripe connection or no Stripe customer. Refusals raise `GatewayError`."""
    provider = payment_provider_of_customer(customer=request.customer)
    config = request.customer.billing_configuration or {}
    if provider is None or not config.get("provider_customer_id"):
        return None
    params = payment_request_payment_params(
        request=request, provider=provider, amount_cents=amount_cents, payment_id=payment_id
    )
    return gateway_for(provider).create_payment(params=params)
