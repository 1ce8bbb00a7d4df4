"""Webhook endpoints and payment methods as the activity log renders them: as the API answers
them (`billing.activity.register_activity_object`)."""

from __future__ import annotations

from billing.activity import register_activity_object
from customers.models import PaymentMethod
from integrations.api.serializers import PaymentMethodSerializer, WebhookEndpointSerializer
from integrations.models import WebhookEndpoint


def register_activity() -> None:
    """Declares both renderings (called at start-up)."""
    register_activity_object(
        "webhook_endpoint",
        load=lambda ids: WebhookEndpoint.objects.filter(pk__in=ids),
        render=lambda rows: WebhookEndpointSerializer(rows, many=True).data,
    )
    register_activity_object(
        "payment_method",
        load=lambda ids: PaymentMethod.objects.filter(pk__in=ids),
        render=lambda rows: PaymentMethodSerializer(rows, many=True).data,
    )
