"""Stripe connections: webhook registration at Stripe, encrypted secrets, codes per organization."""

from __future__ import annotations

import pytest
from django.db import connection as db
from django.utils import timezone

from billing.actors import SYSTEM
from billing.errors import Invalid
from integrations.crypto import SecretUnreadable
from integrations.models import PaymentProvider
from integrations.services.connections import (
    payment_provider_destroy,
    stripe_connection_create,
    webhook_url,
)
from tests.integrations.conftest import SECRET_KEY


def test_connecting_registers_the_organization_webhook_url_at_stripe(
    stripe_connection, fake_stripe
):
    [call] = fake_stripe.calls("POST", "/v1/webhook_endpoints")
    organization_id = stripe_connection.organization_id
    assert (
        call.params["url"]
        == f"http://testserver/webhooks/stripe/{organization_id}?code=stripe_main"
    )
    assert "setup_intent.succeeded" in call.params["enabled_events"]
    assert call.api_key == SECRET_KEY
    assert stripe_connection.webhook_id == call_endpoint_id(fake_stripe)


def call_endpoint_id(fake_stripe) -> str:
    return next(o["id"] for o in fake_stripe.objects.values() if o["object"] == "webhook_endpoint")


def test_the_signing_secret_stripe_answered_is_kept(stripe_connection, fake_stripe):
    expected = fake_stripe.webhook_secrets[stripe_connection.webhook_id]
    assert PaymentProvider.objects.get().webhook_secret() == expected


def test_secrets_are_stored_encrypted(stripe_connection, fake_stripe):
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT encrypted_secret_key, encrypted_webhook_secret "
            "FROM integrations_paymentprovider"
        )
        stored_key, stored_secret = cursor.fetchone()
    assert SECRET_KEY not in stored_key
    assert "whsec_" not in stored_secret
    assert PaymentProvider.objects.get().secret_key() == SECRET_KEY


def test_a_dedicated_encryption_key_replaces_the_derived_one(settings, stripe_connection):
    from cryptography.fernet import Fernet

    settings.PAYMENT_SECRETS_KEY = Fernet.generate_key().decode()
    with pytest.raises(SecretUnreadable):
        PaymentProvider.objects.get().secret_key()


def test_an_organization_may_have_several_connections(stripe_connection, organization):
    stripe_connection_create(
        organization=organization,
        code="stripe_us",
        name="US",
        secret_key="sk_test_us1",
        actor=SYSTEM,
    )
    assert sorted(PaymentProvider.objects.values_list("code", flat=True)) == [
        "stripe_main",
        "stripe_us",
    ]


def test_a_code_is_unique_in_an_organization(stripe_connection, organization, fake_stripe):
    with pytest.raises(Invalid) as caught:
        stripe_connection_create(
            organization=organization,
            code="stripe_main",
            name="",
            secret_key="sk_test_x",
            actor=SYSTEM,
        )
    assert caught.value.details == {"code": ["value_already_exist"]}
    assert len(fake_stripe.calls("POST", "/v1/webhook_endpoints")) == 1


def test_another_organization_may_use_the_same_code(stripe_connection, other_organization):
    other = stripe_connection_create(
        organization=other_organization,
        code="stripe_main",
        name="",
        secret_key="sk_test_o",
        actor=SYSTEM,
    )
    assert other.name == "stripe_main"


def test_a_key_stripe_refuses_saves_nothing(fake_stripe, organization):
    with pytest.raises(Invalid) as caught:
        stripe_connection_create(
            organization=organization, code="s", name="", secret_key="sk_test_invalid", actor=SYSTEM
        )
    assert caught.value.details == {"secret_key": ["invalid_api_key"]}
    assert not PaymentProvider.objects.exists()


def test_a_value_that_is_no_stripe_key_is_refused_before_calling_stripe(fake_stripe, organization):
    with pytest.raises(Invalid) as caught:
        stripe_connection_create(
            organization=organization, code="s", name="", secret_key="pk_test_123", actor=SYSTEM
        )
    assert caught.value.details == {"secret_key": ["value_is_invalid"]}
    assert fake_stripe.requests == []


def test_removing_a_connection_deletes_its_webhook_endpoint(stripe_connection, fake_stripe):
    payment_provider_destroy(provider=stripe_connection, actor=SYSTEM, now=timezone.now())
    assert fake_stripe.calls("DELETE", f"/v1/webhook_endpoints/{stripe_connection.webhook_id}")
    assert PaymentProvider.objects.alive().count() == 0


def test_a_removed_code_can_be_connected_again(stripe_connection, organization):
    payment_provider_destroy(provider=stripe_connection, actor=SYSTEM, now=timezone.now())
    again = stripe_connection_create(
        organization=organization, code="stripe_main", name="", secret_key=SECRET_KEY, actor=SYSTEM
    )
    assert again.pk != stripe_connection.pk


def test_the_webhook_url_names_the_organization_and_the_code(stripe_connection, settings):
    settings.PUBLIC_URL = "https://billing.example.com"
    assert webhook_url(stripe_connection) == (
        f"https://billing.example.com/webhooks/stripe/{stripe_connection.organization_id}"
        "?code=stripe_main"
    )


def test_the_key_is_shown_only_as_its_kind(stripe_connection):
    assert stripe_connection.secret_key_hint == "sk_test_••••"
