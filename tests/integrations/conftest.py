"""Fixtures of the payment provider tests: a local fake Stripe (never the internet) and a
Stripe connection of the main test organization."""

from __future__ import annotations

import pytest

from billing.actors import SYSTEM
from integrations.services.connections import stripe_connection_create
from tests.integrations.fake_stripe import FakeStripe

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
