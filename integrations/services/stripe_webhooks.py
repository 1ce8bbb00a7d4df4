"""Incoming Stripe webhooks: verified, recorded once, dispatched by event type (spec §19.3).

Each event is verified with the connection's signing secret (`stripe.Webhook.construct_event`
through the gateway) and recorded as a `ProviderEvent` in the same transaction as what its
handler changes: a replay of the same event id hits the unique constraint and changes nothing,
and a handler that fails rolls the record back so that Stripe's retry is handled.

Handled today: `setup_intent.succeeded`, `customer.updated`, `payment_method.detached`.
Payment events (`payment_intent.*`, `charge.refund.updated`, `charge.dispute.closed`) are
recorded with what they refer to, and change nothing: payments are not recorded by this app yet.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from django.db import IntegrityError, transaction

from billing.actors import Actor
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
from integrations.services.provider_customers import (
    provider_payment_method_record,
    provider_payment_method_store,
)
from invoicing.models import Invoice

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


def _invoice_named(provider: PaymentProvider, metadata: dict) -> Invoice | None:
    invoice_id = (metadata or {}).get("lago_invoice_id")
    if not invoice_id:
        return None
    return Invoice.objects.filter(
        organization_id=provider.organization_id, pk=_uuid(invoice_id)
    ).first()


def note_payment_intent_event(
    provider: PaymentProvider, event: ProviderEventData, now: datetime
) -> str:
    """`payment_intent.succeeded|payment_failed|canceled`: names the invoice of the metadata,
    if it is one of this organization's, and changes nothing (no payment records yet)."""
    invoice = _invoice_named(provider, event.obj.get("metadata") or {})
    status = event.obj.get("status")
    if invoice is None:
        return f"not applied: payment intent {status}, no invoice of this organization"
    return f"not applied: payment intent {status} for invoice {invoice.pk} (payments not recorded)"


def note_refund_event(provider: PaymentProvider, event: ProviderEventData, now: datetime) -> str:
    """`charge.refund.updated`: noted with the refund status; credit note refunds are not
    recorded yet."""
    return f"not applied: refund {event.obj.get('id')} {event.obj.get('status')}"


def note_dispute_closed(provider: PaymentProvider, event: ProviderEventData, now: datetime) -> str:
    """`charge.dispute.closed`: noted with its outcome; the invoice is not marked as a lost
    dispute yet (that needs the payment behind the charge)."""
    return f"not applied: dispute {event.obj.get('id')} {event.obj.get('status')}"


HANDLERS: dict[str, Handler] = {
    "setup_intent.succeeded": handle_setup_intent_succeeded,
    "customer.updated": handle_customer_updated,
    "payment_method.detached": handle_payment_method_detached,
    "payment_intent.succeeded": note_payment_intent_event,
    "payment_intent.payment_failed": note_payment_intent_event,
    "payment_intent.canceled": note_payment_intent_event,
    "charge.refund.updated": note_refund_event,
    "charge.dispute.closed": note_dispute_closed,
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
