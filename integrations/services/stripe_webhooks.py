"""Incoming Stripe webhooks: verified, recorded once, dispatched by event type (spec §19.3).

Each event is verified with the connection's signing secret (`stripe.Webhook.construct_event`
through the gateway) and recorded as a `ProviderEvent` in the same transaction as what its
handler changes: a replay of the same event id hits the unique constraint and changes nothing,
and a handler that fails rolls the record back so that Stripe's retry is handled.

Handled: `setup_intent.succeeded`, `customer.updated`, `payment_method.detached`;
`payment_intent.*` update the invoice payment through the payment core,
`charge.refund.updated` sets a credit note's refund status, a lost `charge.dispute.closed`
marks the invoice's dispute lost.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from django.db import IntegrityError, transaction

from billing.actors import Actor
from billing.errors import Invalid, NotAllowed
from billing.models import Organization
from customers.models import Customer, PaymentMethod
from customers.services.payment_methods import (
    payment_methods_forget_provider_method,
)
from integrations.gateways import gateway_for
from integrations.models import PaymentProvider, ProviderEvent
from integrations.payment_providers.base import ProviderEventData, WebhookSignatureError
from integrations.payment_providers.stripe import WEBHOOK_EVENTS
from integrations.selectors import customer_by_provider_customer_id, payment_provider_get
from integrations.services.credit_note_refunds import refund_outcome
from integrations.services.payment_request_emails import payment_request_email_send
from integrations.services.provider_customers import (
    provider_payment_method_record,
    provider_payment_method_store,
)
from invoicing.credit_note_models import CreditNote
from invoicing.models import Invoice, Payment, PaymentRequest
from invoicing.payment_models import PayablePaymentStatus
from invoicing.services.credit_notes import credit_note_refund_settle
from invoicing.services.payment_settlement import (
    payment_provider_attach,
    payment_provider_create,
    payment_provider_update,
)
from invoicing.services.payments import invoice_lose_dispute

logger = logging.getLogger(__name__)

ACTOR = Actor.system("stripe")


class WebhookRejected(Exception):
    """The request is not a valid event of a known connection (answered 400)."""


Handler = Callable[[PaymentProvider, ProviderEventData, datetime], str]


def _uuid(value: object) -> uuid.UUID | None:
    """The UUID written in `value`, or None (names nothing of ours)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _customer(provider: PaymentProvider, provider_customer_id: str | None) -> Customer | None:
    if not provider_customer_id:
        return None
    return customer_by_provider_customer_id(
        provider=provider, provider_customer_id=provider_customer_id
    )


def handle_setup_intent_succeeded(
    provider: PaymentProvider, event: ProviderEventData, now: datetime
) -> str:
    """A payment method was saved (Checkout in setup mode): it becomes the customer's default,
    at Stripe and here."""
    customer = _customer(provider, event.obj.get("customer"))
    if customer is None:
        return "ignored: no customer linked to this Stripe customer"
    method_id = event.obj.get("payment_method")
    if not method_id:
        return "ignored: no payment method"
    method = provider_payment_method_store(
        provider=provider, customer=customer, provider_method_id=method_id, actor=ACTOR
    )
    return f"payment method {method.provider_method_id} stored as default"


def handle_customer_updated(
    provider: PaymentProvider, event: ProviderEventData, now: datetime
) -> str:
    """The Stripe customer's default payment method changed at Stripe: it becomes the default
    here too (read from Stripe if not known yet)."""
    customer = _customer(provider, event.obj.get("id"))
    if customer is None:
        return "ignored: no customer linked to this Stripe customer"
    settings = event.obj.get("invoice_settings") or {}
    method_id = settings.get("default_payment_method") or event.obj.get("default_source")
    if not method_id:
        return "ignored: no default payment method"
    known = (
        PaymentMethod.objects.alive()
        .filter(customer=customer, provider_method_id=method_id, is_default=True)
        .exists()
    )
    if known:
        return "ignored: already the default"
    provider_payment_method_record(
        provider=provider, customer=customer, provider_method_id=method_id, actor=ACTOR
    )
    return f"payment method {method_id} stored as default"


def handle_payment_method_detached(
    provider: PaymentProvider, event: ProviderEventData, now: datetime
) -> str:
    """A payment method was removed at Stripe: it is no longer listed here."""
    provider_customer_id = event.obj.get("customer") or event.previous_attributes.get("customer")
    customer = _customer(provider, provider_customer_id)
    if customer is None:
        return "ignored: no customer linked to this Stripe customer"
    rows = payment_methods_forget_provider_method(
        customer=customer, provider_method_id=event.obj.get("id", ""), actor=ACTOR, now=now
    )
    return f"{len(rows)} payment method(s) removed"


_INTENT_OUTCOMES = {
    "payment_intent.succeeded": PayablePaymentStatus.SUCCEEDED,
    "payment_intent.payment_failed": PayablePaymentStatus.FAILED,
    "payment_intent.canceled": PayablePaymentStatus.FAILED,
}


def _payment_of_intent(provider: PaymentProvider, obj: dict) -> Payment | None:
    """The payment this PaymentIntent charges: by its id, or (when Stripe's webhook arrives
    before its synchronous answer was stored) by the `lago_payment_id` of its metadata."""
    payments = Payment.objects.filter(organization_id=provider.organization_id)
    payment = payments.filter(provider_payment_id=obj.get("id")).first()
    if payment is not None:
        return payment
    payment_id = _uuid((obj.get("metadata") or {}).get("lago_payment_id") or "")
    if payment_id is None:
        return None
    return payments.filter(pk=payment_id, provider_payment_id__isnull=True).first()


def _payment_of_checkout(provider: PaymentProvider, obj: dict, now: datetime) -> Payment | None:
    """A PaymentIntent naming one of the organization's invoices (a Checkout payment link) or
    payment requests (its payment lost before it was stored) but no payment of ours: its
    payment is recorded now, as Lago does."""
    metadata = obj.get("metadata") or {}
    payable: Invoice | PaymentRequest | None = None
    invoice_id = _uuid(metadata.get("lago_invoice_id") or "")
    if invoice_id is not None:
        payable = Invoice.objects.filter(
            organization_id=provider.organization_id, pk=invoice_id
        ).first()
    elif metadata.get("lago_payable_type") == "PaymentRequest":
        request_id = _uuid(metadata.get("lago_payable_id") or "")
        payable = (
            PaymentRequest.objects.filter(organization_id=provider.organization_id, pk=request_id)
            .exclude(payment_status=PaymentRequest.PaymentStatus.FAILED)
            .first()
        )
    if payable is None or not obj.get("id"):
        return None
    amount = obj.get("amount")
    try:
        return payment_provider_create(
            payable=payable,
            payment_provider_code=provider.code,
            payment_provider_type=provider.provider_type,
            provider_customer_id=obj.get("customer") or "",
            provider_payment_id=obj["id"],
            amount_cents=amount if isinstance(amount, int) and amount > 0 else None,
            actor=ACTOR,
            now=now,
        )
    except (Invalid, NotAllowed):
        return None  # nothing left to pay, or another collection is in flight


def handle_payment_intent_event(
    provider: PaymentProvider, event: ProviderEventData, now: datetime
) -> str:
    """`payment_intent.succeeded|payment_failed|canceled`: the payment it charges is updated
    through the payment core (a succeeded one pays the invoice, a failed one records
    `invoice.payment_failure`; a succeeded payment stays succeeded)."""
    obj = event.obj
    payment = _payment_of_intent(provider, obj)
    if payment is None:
        payment = _payment_of_checkout(provider, obj, now)
    if payment is None:
        return f"ignored: no payment for payment intent {obj.get('id')}"
    if payment.provider_payment_id is None:
        payment_provider_attach(
            payment=payment, provider_payment_id=obj["id"], actor=ACTOR, now=now
        )
    status = _INTENT_OUTCOMES[event.event_type]
    was = payment.payable_payment_status
    payment = payment_provider_update(
        organization=provider.organization,
        provider_payment_id=obj["id"],
        status=obj.get("status") or status,
        payable_payment_status=status,
        error_code=(obj.get("last_payment_error") or {}).get("code") or "",
        actor=ACTOR,
        now=now,
    )
    if (
        payment.payment_request_id is not None
        and payment.payable_payment_status == PayablePaymentStatus.FAILED
        and was != PayablePaymentStatus.FAILED
    ):
        # Lago e-mails the request again when its collection fails
        request_id = payment.payment_request_id
        transaction.on_commit(
            lambda: payment_request_email_send(payment_request_id=request_id), robust=True
        )
    return f"payment {payment.pk} {payment.payable_payment_status}"


def handle_refund_updated(
    provider: PaymentProvider, event: ProviderEventData, now: datetime
) -> str:
    """`charge.refund.updated`: the refund of a credit note (named in its metadata) sets the
    credit note's `refund_status` (succeeded, or failed/canceled: failed)."""
    obj = event.obj
    credit_note_id = _uuid((obj.get("metadata") or {}).get("lago_credit_note_id") or "")
    credit_note = (
        CreditNote.objects.filter(
            organization_id=provider.organization_id, pk=credit_note_id
        ).first()
        if credit_note_id
        else None
    )
    if credit_note is None:
        return f"ignored: refund {obj.get('id')} names no credit note of this organization"
    outcome = refund_outcome(obj.get("status") or "")
    if outcome is None:
        return f"ignored: refund {obj.get('id')} {obj.get('status')}"
    credit_note_refund_settle(
        credit_note_id=credit_note.pk, succeeded=outcome, actor=ACTOR, now=now
    )
    return f"credit note {credit_note.pk} refund {obj.get('status')}"


def handle_dispute_closed(
    provider: PaymentProvider, event: ProviderEventData, now: datetime
) -> str:
    """`charge.dispute.closed`: a lost dispute marks the invoice of the disputed payment as
    lost (`invoice.payment_dispute_lost`); a won one changes nothing."""
    obj = event.obj
    if obj.get("status") != "lost":
        return f"ignored: dispute {obj.get('id')} {obj.get('status')}"
    payment = (
        Payment.objects.filter(
            organization_id=provider.organization_id,
            provider_payment_id=obj.get("payment_intent") or "",
        )
        .select_related("invoice")
        .first()
    )
    if payment is None or payment.invoice is None:
        return f"ignored: dispute {obj.get('id')} names no invoice payment"
    try:
        invoice_lose_dispute(invoice=payment.invoice, actor=ACTOR, now=now)
    except NotAllowed as exc:
        return f"ignored: invoice {payment.invoice_id} {exc.code}"[:255]
    return f"invoice {payment.invoice_id} dispute lost"


HANDLERS: dict[str, Handler] = {
    "setup_intent.succeeded": handle_setup_intent_succeeded,
    "customer.updated": handle_customer_updated,
    "payment_method.detached": handle_payment_method_detached,
    "payment_intent.succeeded": handle_payment_intent_event,
    "payment_intent.payment_failed": handle_payment_intent_event,
    "payment_intent.canceled": handle_payment_intent_event,
    "charge.refund.updated": handle_refund_updated,
    "charge.dispute.closed": handle_dispute_closed,
}
assert set(HANDLERS) == set(WEBHOOK_EVENTS)  # every event we subscribe to has a handler


def stripe_webhook_receive(
    *, organization_id: str, code: str | None, payload: bytes, signature: str, now: datetime
) -> ProviderEvent | None:
    """Verifies and handles one Stripe event. Returns its record, or None for a replay of an
    event already handled. Raises `WebhookRejected` for an unknown connection or a bad
    signature (nothing is written then)."""
    organization = Organization.objects.filter(pk=_uuid(organization_id)).first()
    provider = (
        payment_provider_get(organization=organization, provider_type="stripe", code=code)
        if organization is not None
        else None
    )
    if provider is None:
        raise WebhookRejected("no Stripe connection for this address")
    try:
        event = gateway_for(provider).parse_webhook(
            payload=payload, signature=signature, secret=provider.webhook_secret()
        )
    except WebhookSignatureError as exc:
        raise WebhookRejected("invalid signature") from exc
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = ProviderEvent.objects.create(
                    organization_id=provider.organization_id,
                    payment_provider=provider,
                    provider_event_id=event.event_id,
                    event_type=event.event_type,
                )
        except IntegrityError:
            return None  # handled before (Stripe delivers at least once)
        handler = HANDLERS.get(event.event_type)
        outcome = handler(provider, event, now) if handler else "ignored: event not subscribed"
        record.outcome = outcome[:255]
        record.save(update_fields=["outcome", "updated_at"])
    return record
