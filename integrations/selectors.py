"""Reads of webhook endpoints and the delivery log, scoped by organization."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from billing.errors import NotFound
from billing.models import Organization
from integrations.models import WebhookDelivery, WebhookEndpoint


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
