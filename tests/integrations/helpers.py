"""Shared steps of the webhook tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.utils import timezone

from billing.actors import SYSTEM
from billing.models import Organization
from integrations.models import WebhookDelivery, WebhookEndpoint
from integrations.services.webhook_delivery import endpoint_deliveries_send, outbox_drain
from integrations.services.webhook_endpoints import webhook_endpoint_create


def endpoint_for(organization: Organization, url: str, **values: object) -> WebhookEndpoint:
    return webhook_endpoint_create(
        organization=organization, values={"webhook_url": url, **values}, actor=SYSTEM
    )


def deliver(*, at: datetime | None = None) -> list[WebhookDelivery]:
    """Drains the outbox and runs every endpoint's sender once, at `at` (default now)."""
    now = at or timezone.now()
    outbox_drain(now=now)
    for endpoint in WebhookEndpoint.objects.all():
        endpoint_deliveries_send(endpoint_id=endpoint.pk, clock=lambda: now)
    return list(WebhookDelivery.objects.order_by("created_at", "id"))


def send_at(endpoint: WebhookEndpoint, now: datetime) -> None:
    endpoint_deliveries_send(endpoint_id=endpoint.pk, clock=lambda: now)


def bodies(receiver) -> list[dict]:
    return [json.loads(r.body) for r in receiver.requests]


def later(seconds: float) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)
