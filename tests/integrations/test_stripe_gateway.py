"""The Stripe gateway (the provider interface's Stripe implementation) against the fake Stripe,
through the official SDK: what it sends and how it reads the answers."""

from __future__ import annotations

import pytest

from integrations.payment_providers.base import (
    CustomerDetails,
    GatewayAuthenticationError,
    GatewayConnectionError,
    GatewayError,
    PaymentRequestParams,
    WebhookSignatureError,
)
from integrations.payment_providers.stripe import StripeGateway
from tests.integrations.fake_stripe import FakeStripe

KEY = "sk_test_gateway1"


@pytest.fixture
def gateway(fake_stripe):
    return StripeGateway(KEY)


def payment(customer: str, method: str | None, amount: int = 1999) -> PaymentRequestParams:
    return PaymentRequestParams(
        amount_cents=amount,
        currency="EUR",
        provider_customer_id=customer,
        payment_method_id=method,
        payment_method_types=["card"],
        description="Acme - Invoice ACME-001",
        metadata={"lago_invoice_id": "inv-1", "invoice_type": "subscription"},
        idempotency_key="payment-p1",
    )


def test_each_gateway_uses_its_own_key(fake_stripe):
    StripeGateway("sk_test_one1").create_customer(
        details=CustomerDetails(name="A", email=""), idempotency_key="a"
    )
    StripeGateway("sk_test_two2").create_customer(
        details=CustomerDetails(name="B", email=""), idempotency_key="b"
    )
    assert [r.api_key for r in fake_stripe.calls("POST", "/v1/customers")] == [
        "sk_test_one1",
        "sk_test_two2",
    ]


def test_create_customer_sends_the_details_and_the_idempotency_key(gateway, fake_stripe):
    customer_id = gateway.create_customer(
        details=CustomerDetails(
            name="Ada", email="ada@example.com", phone="+33 1", address={"country": "FR"},
            metadata={"lago_customer_id": "l1"},
        ),
        idempotency_key="l1-1700000000",
    )  # fmt: skip
    [call] = fake_stripe.calls("POST", "/v1/customers")
    assert call.params == {
        "name": "Ada",
        "email": "ada@example.com",
        "phone": "+33 1",
        "address": {"country": "FR"},
        "metadata": {"lago_customer_id": "l1"},
    }
    assert call.idempotency_key == "l1-1700000000"
    assert fake_stripe.get(customer_id)["name"] == "Ada"


def test_update_customer_changes_it_at_stripe(gateway, fake_stripe):
    customer = fake_stripe.add_customer(KEY, name="Old")
    gateway.update_customer(
        provider_customer_id=customer["id"], details=CustomerDetails(name="New", email="n@x.io")
    )
    assert fake_stripe.get(customer["id"])["name"] == "New"


def test_payment_methods_are_listed_read_made_default_and_detached(gateway, fake_stripe):
    customer = fake_stripe.add_customer(KEY)
    pm = fake_stripe.add_payment_method(KEY, customer=customer["id"], brand="mastercard")
    [listed] = gateway.list_payment_methods(provider_customer_id=customer["id"])
    assert listed.details == {
        "type": "card", "brand": "mastercard", "last4": "4242",
        "expiration_month": 12, "expiration_year": 2030,
    }  # fmt: skip
    assert gateway.retrieve_payment_method(provider_method_id=pm["id"]) == listed
    gateway.set_default_payment_method(
        provider_customer_id=customer["id"], provider_method_id=pm["id"]
    )
    assert fake_stripe.get(customer["id"])["invoice_settings"]["default_payment_method"] == pm["id"]
    gateway.detach_payment_method(provider_method_id=pm["id"])
    assert gateway.list_payment_methods(provider_customer_id=customer["id"]) == []


def test_create_payment_sends_exactly_the_payment_intent_of_an_invoice(gateway, fake_stripe):
    customer = fake_stripe.add_customer(KEY)
    pm = fake_stripe.add_payment_method(KEY, customer=customer["id"])
    result = gateway.create_payment(params=payment(customer["id"], pm["id"]))
    [call] = fake_stripe.calls("POST", "/v1/payment_intents")
    assert call.params == {
        "amount": "1999",
        "currency": "eur",
        "customer": customer["id"],
        "payment_method": pm["id"],
        "payment_method_types": ["card"],
        "confirm": "true",
        "off_session": "true",
        "description": "Acme - Invoice ACME-001",
        "metadata": {"lago_invoice_id": "inv-1", "invoice_type": "subscription"},
    }
    assert call.idempotency_key == "payment-p1"
    assert (result.status, result.amount_cents, result.currency) == ("succeeded", 1999, "EUR")
    assert gateway.retrieve_payment(provider_payment_id=result.provider_payment_id) == result


def test_a_retried_payment_with_the_same_key_charges_once(gateway, fake_stripe):
    customer = fake_stripe.add_customer(KEY)
    pm = fake_stripe.add_payment_method(KEY, customer=customer["id"])
    first = gateway.create_payment(params=payment(customer["id"], pm["id"]))
    again = gateway.create_payment(params=payment(customer["id"], pm["id"]))
    assert first.provider_payment_id == again.provider_payment_id
    assert len([o for o in fake_stripe.objects.values() if o["object"] == "charge"]) == 1


def test_a_declined_card_is_a_gateway_error_with_stripe_code(gateway, fake_stripe):
    customer = fake_stripe.add_customer(KEY)
    pm = fake_stripe.add_payment_method(KEY, customer=customer["id"], decline=True)
    with pytest.raises(GatewayError) as caught:
        gateway.create_payment(params=payment(customer["id"], pm["id"]))
    assert caught.value.code == "card_declined"


def test_an_amount_below_stripe_minimum_is_a_gateway_error(gateway, fake_stripe):
    customer = fake_stripe.add_customer(KEY)
    with pytest.raises(GatewayError) as caught:
        gateway.create_payment(params=payment(customer["id"], None, amount=20))
    assert caught.value.code == "amount_too_small"


def test_3d_secure_answers_requires_action_with_the_redirect(gateway, fake_stripe):
    customer = fake_stripe.add_customer(KEY)
    pm = fake_stripe.add_payment_method(KEY, customer=customer["id"], requires_action=True)
    result = gateway.create_payment(params=payment(customer["id"], pm["id"]))
    assert result.status == "requires_action"
    assert result.next_action_url.startswith(fake_stripe.url)


def test_refund_of_a_payment(gateway, fake_stripe):
    customer = fake_stripe.add_customer(KEY)
    pm = fake_stripe.add_payment_method(KEY, customer=customer["id"])
    paid = gateway.create_payment(params=payment(customer["id"], pm["id"]))
    refund = gateway.refund(
        provider_payment_id=paid.provider_payment_id,
        amount_cents=500,
        metadata={"lago_credit_note_id": "cn-1"},
        idempotency_key="refund-cn-1",
    )
    assert (refund.amount_cents, refund.status) == (500, "pending")
    [call] = fake_stripe.calls("POST", "/v1/refunds")
    assert call.params["payment_intent"] == paid.provider_payment_id
    assert call.idempotency_key == "refund-cn-1"


def test_a_refused_key_is_an_authentication_error(fake_stripe):
    with pytest.raises(GatewayAuthenticationError):
        StripeGateway("sk_test_invalid").create_customer(
            details=CustomerDetails(name="A", email=""), idempotency_key="a"
        )


def test_an_unreachable_stripe_is_a_connection_error(fake_stripe):
    fake_stripe.stop()
    with pytest.raises(GatewayConnectionError):
        StripeGateway(KEY).list_payment_methods(provider_customer_id="cus_1")


def test_webhooks_are_registered_and_deleted(gateway, fake_stripe):
    endpoint = gateway.register_webhook(url="http://127.0.0.1/w", events=["customer.updated"])
    assert endpoint.secret == fake_stripe.webhook_secrets[endpoint.provider_webhook_id]
    gateway.delete_webhook(provider_webhook_id=endpoint.provider_webhook_id)
    gateway.delete_webhook(provider_webhook_id=endpoint.provider_webhook_id)  # gone: no error


def test_parse_webhook_verifies_the_signature(gateway, fake_stripe):
    import json

    event = fake_stripe.event("setup_intent.succeeded", {"id": "seti_1", "customer": "cus_1"})
    payload = json.dumps(event).encode()
    parsed = gateway.parse_webhook(
        payload=payload, signature=FakeStripe.sign(payload, "whsec_1"), secret="whsec_1"
    )
    assert (parsed.event_id, parsed.event_type, parsed.obj["customer"]) == (
        event["id"],
        "setup_intent.succeeded",
        "cus_1",
    )
    with pytest.raises(WebhookSignatureError):
        gateway.parse_webhook(
            payload=payload, signature=FakeStripe.sign(payload, "whsec_2"), secret="whsec_1"
        )
    with pytest.raises(WebhookSignatureError):
        gateway.parse_webhook(payload=b"{not json", signature="t=1,v1=0", secret="whsec_1")
