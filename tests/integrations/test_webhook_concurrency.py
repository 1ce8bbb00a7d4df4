"""Stripe delivers at least once, sometimes twice at the same moment: real threads on
PostgreSQL show that one event is handled once, and that one customer keeps one default
payment method when several are saved at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest
from django.db import close_old_connections, connections
from django.utils import timezone

from billing.actors import SYSTEM
from customers.models import PaymentMethod
from customers.services.customers import customer_create
from customers.services.payment_methods import payment_method_record_from_provider
from integrations.models import ProviderEvent
from integrations.services.stripe_webhooks import stripe_webhook_receive
from tests.integrations.conftest import SECRET_KEY
from tests.integrations.fake_stripe import FakeStripe

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 8


def at_once(work: list[Callable[[], object]]) -> tuple[list[object], list[Exception]]:
    barrier = threading.Barrier(len(work))
    results: list[object] = []
    errors: list[Exception] = []

    def run(job: Callable[[], object]) -> None:
        close_old_connections()
        try:
            barrier.wait()
            results.append(job())
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


@pytest.fixture
def linked(stripe_connection, fake_stripe, organization):
    stripe_customer = fake_stripe.add_customer(SECRET_KEY, name="Ada")
    return customer_create(
        organization=organization,
        values={
            "external_id": "cus-1",
            "billing_configuration": {
                "payment_provider": "stripe",
                "payment_provider_code": "stripe_main",
                "provider_customer_id": stripe_customer["id"],
            },
        },
        actor=SYSTEM,
    )


def test_the_same_event_delivered_at_once_is_handled_once(linked, stripe_connection, fake_stripe):
    stripe_id = linked.billing_configuration["provider_customer_id"]
    pm = fake_stripe.add_payment_method(SECRET_KEY, customer=stripe_id)
    event = fake_stripe.event(
        "setup_intent.succeeded",
        {
            "id": "seti_1",
            "object": "setup_intent",
            "customer": stripe_id,
            "payment_method": pm["id"],
        },
    )
    payload = json.dumps(event).encode()
    signature = FakeStripe.sign(payload, stripe_connection.webhook_secret())

    def deliver() -> object:
        return stripe_webhook_receive(
            organization_id=str(stripe_connection.organization_id),
            code="stripe_main",
            payload=payload,
            signature=signature,
            now=timezone.now(),
        )

    results, errors = at_once([deliver] * THREADS)
    assert errors == []
    assert len([r for r in results if r is not None]) == 1  # the others were replays
    assert ProviderEvent.objects.count() == 1
    assert PaymentMethod.objects.count() == 1
    # Stripe was asked to make it the default once, by the one delivery that handled it
    calls = fake_stripe.calls("POST", f"/v1/customers/{stripe_id}")
    assert len([c for c in calls if "invoice_settings" in c.params]) == 1


def test_methods_saved_at_once_leave_one_default(linked, fake_stripe):
    stripe_id = linked.billing_configuration["provider_customer_id"]

    def save(index: int) -> Callable[[], object]:
        return lambda: payment_method_record_from_provider(
            customer=linked,
            payment_provider_type="stripe",
            payment_provider_code="stripe_main",
            provider_customer_id=stripe_id,
            provider_method_id=f"pm_{index}",
            provider_method_type="card",
            details={},
            actor=SYSTEM,
        )

    _, errors = at_once([save(i) for i in range(THREADS)])
    assert errors == []
    assert PaymentMethod.objects.alive().count() == THREADS
    assert PaymentMethod.objects.alive().filter(is_default=True).count() == 1
