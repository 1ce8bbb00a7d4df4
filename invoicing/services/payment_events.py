"""Outbox events of payments, receipts, payment requests and dunning campaigns: one writer per
event type, each taking the actor (webhook names as Lago spells them)."""

from __future__ import annotations

from billing.actors import Actor
from billing.models import OutboxEvent
from billing.outbox import emit
from customers.models import Customer
from invoicing.models import Payment, PaymentReceipt, PaymentRequest


def payment_payload(payment: Payment) -> dict:
    """The fields integrations need to render Lago's payment object."""
    return {
        "lago_id": str(payment.pk),
        "lago_customer_id": str(payment.customer_id),
        "lago_payable_id": str(payment.payable_id),
        "payable_type": payment.payable_type,
        "amount_cents": payment.amount_cents,
        "amount_currency": payment.amount_currency,
        "status": payment.status,
        "payment_status": payment.payable_payment_status,
        "type": payment.payment_type,
        "reference": payment.reference or None,
        "payment_provider_code": payment.payment_provider_code or None,
        "provider_payment_id": payment.provider_payment_id,
        "next_action": payment.provider_payment_data or {},
    }


def payment_request_payload(request: PaymentRequest) -> dict:
    return {
        "lago_id": str(request.pk),
        "lago_customer_id": str(request.customer_id),
        "email": request.email,
        "amount_cents": request.amount_cents,
        "amount_currency": request.amount_currency,
        "payment_status": request.payment_status,
        "lago_invoice_ids": [
            str(pk) for pk in request.applied_invoices.values_list("invoice_id", flat=True)
        ],
    }


def record_payment_succeeded(payment: Payment, *, actor: Actor) -> OutboxEvent:
    """`payment.succeeded`: a provider collected the money."""
    return emit(
        event_type="payment.succeeded", actor=actor, obj=payment, payload=payment_payload(payment)
    )


def record_payment_requires_action(payment: Payment, *, actor: Actor) -> OutboxEvent:
    """`payment.requires_action`: the customer must authenticate (3-D Secure)."""
    return emit(
        event_type="payment.requires_action",
        actor=actor,
        obj=payment,
        payload=payment_payload(payment),
    )


def record_payment_recorded(payment: Payment, *, actor: Actor) -> OutboxEvent:
    """`payment.recorded`: a payment received outside a provider was entered (activity log)."""
    return emit(
        event_type="payment.recorded", actor=actor, obj=payment, payload=payment_payload(payment)
    )


def record_receipt_event(receipt: PaymentReceipt, event_type: str, *, actor: Actor) -> OutboxEvent:
    """`payment_receipt.created` (numbered) or `payment_receipt.generated` (its PDF stored)."""
    return emit(
        event_type=event_type,
        actor=actor,
        obj=receipt,
        payload={
            "lago_id": str(receipt.pk),
            "number": receipt.number,
            "payment": payment_payload(receipt.payment),
        },
    )


def record_payment_request_event(
    request: PaymentRequest, event_type: str, *, actor: Actor, **extra: object
) -> OutboxEvent:
    """`payment_request.created`, `payment_request.payment_status_updated` or
    `payment_request.payment_failure`."""
    return emit(
        event_type=event_type,
        actor=actor,
        obj=request,
        payload={**payment_request_payload(request), **extra},
    )


def record_dunning_campaign_finished(
    customer: Customer, *, campaign_code: str, overdue_balances: dict[str, int], actor: Actor
) -> OutboxEvent:
    """`dunning_campaign.finished`: every dunned currency reached the campaign's attempts."""
    return emit(
        event_type="dunning_campaign.finished",
        actor=actor,
        obj=customer,
        object_type="dunning_campaign",
        payload={
            "external_customer_id": customer.external_id,
            "dunning_campaign_code": campaign_code,
            "overdue_balance_cents": overdue_balances.get(customer.currency, 0),
            "overdue_balance_currency": customer.currency or None,
            "overdue_balances": [
                {"currency": currency, "amount_cents": cents}
                for currency, cents in sorted(overdue_balances.items())
            ],
        },
    )
