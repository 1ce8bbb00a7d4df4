"""Fixtures of the payment provider tests: a local fake Stripe (never the internet) and a
Stripe connection of the main test organization.

Webhook tests: private (loopback) receivers allowed unless a test turns it off.
"""

from __future__ import annotations

import pytest

from billing.actors import SYSTEM
from customers.services.customers import customer_update
from integrations.services.connections import stripe_connection_create
from tests.customers.factories import CustomerFactory
from tests.integrations.fake_stripe import FakeStripe
from tests.integrations.receiver import running_receiver

SECRET_KEY = "sk_test_acme0123456789"


@pytest.fixture
def fake_stripe(settings):
    """A fresh fake Stripe on a free local port; the SDK is pointed at it."""
    fake = FakeStripe().start()
    settings.STRIPE_API_BASE = fake.url
    settings.PUBLIC_URL = "http://testserver"
    yield fake
    fake.stop()


@pytest.fixture
def stripe_connection(fake_stripe, organization):
    """The main organization's Stripe connection, code `stripe_main`."""
    return stripe_connection_create(
        organization=organization,
        code="stripe_main",
        name="Stripe",
        secret_key=SECRET_KEY,
        actor=SYSTEM,
    )


@pytest.fixture
def stripe_customer(stripe_connection, fake_stripe, organization):
    """A EUR customer linked to a Stripe customer of `stripe_main` (card and SEPA)."""
    customer = CustomerFactory(organization=organization, currency="EUR")
    remote = fake_stripe.add_customer(SECRET_KEY, name="Ada")
    return customer_update(
        customer=customer,
        values={
            "billing_configuration": {
                "payment_provider": "stripe",
                "payment_provider_code": "stripe_main",
                "provider_customer_id": remote["id"],
                "provider_payment_methods": ["card", "sepa_debit"],
            }
        },
        actor=SYSTEM,
    )


@pytest.fixture(autouse=True)
def _allow_private_urls(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True


@pytest.fixture
def receiver():
    with running_receiver() as running:
        yield running


@pytest.fixture
def other_receiver():
    with running_receiver() as running:
        yield running
