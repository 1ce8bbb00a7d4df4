"""Thin Celery wrappers around the integrations services."""

from __future__ import annotations

from uuid import UUID

from celery import shared_task

from billing.actors import SYSTEM
from integrations.payment_providers.base import GatewayConnectionError
from integrations.services.provider_customers import provider_customer_sync


@shared_task(
    acks_late=True, autoretry_for=(GatewayConnectionError,), retry_backoff=True, max_retries=5
)
def provider_customer_sync_task(customer_id: str, provider_customer_id_changed: bool) -> None:
    provider_customer_sync(
        customer_id=UUID(customer_id),
        provider_customer_id_changed=provider_customer_id_changed,
        actor=SYSTEM,
    )


def on_customer_payment_provider_set(
    *, customer_id: UUID, provider_customer_id_changed: bool, sync: bool
) -> None:
    """Receiver of `customers.hooks.on_customer_payment_provider_set`: at once when the caller
    asked for `sync`, else in a task."""
    if sync:
        provider_customer_sync(
            customer_id=customer_id,
            provider_customer_id_changed=provider_customer_id_changed,
            actor=SYSTEM,
        )
    else:
        provider_customer_sync_task.delay(str(customer_id), provider_customer_id_changed)
