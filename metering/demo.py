"""Demo usage: a period of events for the demo's business subscription."""

from __future__ import annotations

from datetime import datetime

from billing.actors import SYSTEM
from billing.models import Organization
from customers.models import Subscription
from metering.services.ingestion import event_create_batch
from metering.store import get_event_store

# usage of the business subscription this period: API calls per region and endpoint (the
# endpoint is a presentation key of the demo charge), seats, card payments
DEMO_USAGE_SUBSCRIPTION = "demo_bergmann_business"


def _demo_usage_payloads(now: datetime) -> list[dict]:
    payloads = []
    endpoints = ("/v1/payments", "/v1/refunds", "/v1/customers")
    for i in range(60):
        payloads.append(
            {
                "transaction_id": f"demo_api_{i:03d}",
                "code": "api_calls",
                "properties": {
                    "region": "eu" if i % 3 else "us",
                    "endpoint": endpoints[i % len(endpoints) if i % 4 else 0],
                },
            }
        )
    for i, user in enumerate(("anna", "jonas", "lea", "max", "mia", "paul")):
        payloads.append(
            {"transaction_id": f"demo_seat_{i}", "code": "seats", "properties": {"user_id": user}}
        )
    amounts = ("120.00", "89.90", "1450.00", "35.50", "610.25", "74.99", "212.40")
    for i, amount in enumerate(amounts * 2):  # 14 payments: the first 10 are free
        payloads.append(
            {
                "transaction_id": f"demo_payment_{i}",
                "code": "payments_volume",
                "properties": {"amount": amount},
            }
        )
    for payload in payloads:
        payload["external_subscription_id"] = DEMO_USAGE_SUBSCRIPTION
        payload["timestamp"] = int(now.timestamp()) - 60  # inside the current period
    return payloads


def seed(*, organization: Organization, now: datetime) -> str:
    """Events of the current period for the business subscription, once (the transaction ids
    make a re-run a no-op)."""
    if not (
        Subscription.objects.for_organization(organization)
        .filter(external_id=DEMO_USAGE_SUBSCRIPTION)
        .exists()
    ):
        return ""
    store = get_event_store()
    if store.get_event(organization.id, "demo_api_000", DEMO_USAGE_SUBSCRIPTION) is not None:
        return ""
    payloads = _demo_usage_payloads(now)
    for start in range(0, len(payloads), 100):
        batch = payloads[start : start + 100]
        event_create_batch(organization=organization, payloads=batch, actor=SYSTEM, now=now)
    return f"{len(payloads)} usage events recorded"
