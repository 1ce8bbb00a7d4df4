"""Reads of payment provider connections and recorded provider events.

Reads of webhook endpoints and the delivery log, scoped by organization.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from django.db.models import QuerySet

from billing.errors import NotFound
from billing.models import Organization
from customers.models import Customer, PaymentMethod
from integrations.models import PaymentProvider, ProviderEvent, WebhookDelivery, WebhookEndpoint


def payment_provider_list(*, organization: Organization) -> QuerySet[PaymentProvider]:
    """The organization's alive connections, by code."""
    return PaymentProvider.objects.for_organization(organization).alive().order_by("code")


def payment_provider_get(
    *, organization: Organization, provider_type: str, code: str | None
) -> PaymentProvider | None:
    """The alive connection with this code; without a code, the only one of this type (None
    when there is none, or several and no code says which)."""
    connections = payment_provider_list(organization=organization).filter(
        provider_type=provider_type
    )
    if code:
        return connections.filter(code=code).first()
    only = list(connections[:2])
    return only[0] if len(only) == 1 else None


def payment_provider_of_customer(*, customer: Customer) -> PaymentProvider | None:
    """The connection named by the customer's `billing_configuration`, if it still exists."""
    config = customer.billing_configuration or {}
    if not config.get("payment_provider"):
        return None
    return payment_provider_get(
        organization=customer.organization,
        provider_type=config["payment_provider"],
        code=config.get("payment_provider_code"),
    )


def customer_by_provider_customer_id(
    *, provider: PaymentProvider, provider_customer_id: str
) -> Customer | None:
    """The alive customer of the connection's organization linked to this provider customer
    through this connection (its code, or no code at all)."""
    candidates = (
        Customer.objects.for_organization(provider.organization)
        .alive()
        .filter(
            billing_configuration__payment_provider=provider.provider_type,
            billing_configuration__provider_customer_id=provider_customer_id,
        )
        .order_by("created_at")
    )
    for customer in candidates:
        if (customer.billing_configuration or {}).get("payment_provider_code") in (
            None,
            "",
            provider.code,
        ):
            return customer
    return None


def provider_event_list(*, provider: PaymentProvider) -> QuerySet[ProviderEvent]:
    """Events received from this connection, newest first."""
    return ProviderEvent.objects.filter(payment_provider=provider).order_by("-created_at", "-id")


def payment_method_of_customer(*, customer: Customer, lago_id: str) -> PaymentMethod:
    """The customer's alive payment method with this id (404 otherwise)."""
    try:
        pk = UUID(str(lago_id))
    except ValueError as exc:
        raise NotFound("payment_method") from exc
    method = PaymentMethod.objects.alive().filter(customer=customer, pk=pk).first()
    if method is None:
        raise NotFound("payment_method")
    return method


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def webhook_endpoint_list(*, organization: Organization) -> QuerySet[WebhookEndpoint]:
    """The organization's endpoints, oldest first."""
    return WebhookEndpoint.objects.for_organization(organization).order_by("created_at", "id")


def webhook_endpoint_get(*, organization: Organization, lago_id: object) -> WebhookEndpoint:
    """The endpoint with this id, else 404 `webhook_endpoint_not_found` (another tenant's too)."""
    pk = _uuid(lago_id)
    endpoint = (
        webhook_endpoint_list(organization=organization).filter(pk=pk).first() if pk else None
    )
    if endpoint is None:
        raise NotFound("webhook_endpoint")
    return endpoint


def delivery_list(*, organization: Organization) -> QuerySet[WebhookDelivery]:
    """The organization's delivery log, newest first."""
    return (
        WebhookDelivery.objects.for_organization(organization)
        .select_related("endpoint")
        .order_by("-created_at", "-id")
    )
