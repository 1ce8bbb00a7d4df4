"""The fake Stripe answers the real SDK as Stripe would, for what the gateway uses."""

from __future__ import annotations

import pytest
import stripe

from tests.integrations.fake_stripe import FakeStripe, decode_form


def client(fake: FakeStripe, key: str = "sk_test_one") -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": fake.url}, max_network_retries=0)


def test_form_decoding_rebuilds_nested_dicts_and_lists():
    pairs = [("metadata[a]", "1"), ("types[0]", "card"), ("types[1]", "link"), ("x", "y")]
    assert decode_form(pairs) == {"metadata": {"a": "1"}, "types": ["card", "link"], "x": "y"}


def test_customers_are_created_retrieved_and_updated_through_the_sdk(fake_stripe):
    sdk = client(fake_stripe).v1
    created = sdk.customers.create({"name": "Ada", "metadata": {"lago_customer_id": "42"}})
    sdk.customers.update(created.id, {"invoice_settings": {"default_payment_method": "pm_1"}})
    again = sdk.customers.retrieve(created.id)
    assert again.name == "Ada"
    assert again.metadata.lago_customer_id == "42"
    assert again.invoice_settings.default_payment_method == "pm_1"


def test_an_object_of_another_secret_key_is_not_found(fake_stripe):
    created = client(fake_stripe, "sk_test_one").v1.customers.create({"name": "Ada"})
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client(fake_stripe, "sk_test_two").v1.customers.retrieve(created.id)
    assert caught.value.code == "resource_missing"


def test_a_refused_key_is_an_authentication_error(fake_stripe):
    with pytest.raises(stripe.AuthenticationError):
        client(fake_stripe, "sk_test_invalid").v1.customers.create({"name": "Ada"})


def test_the_same_idempotency_key_replays_the_first_answer(fake_stripe):
    sdk = client(fake_stripe).v1
    first = sdk.customers.create({"name": "Ada"}, {"idempotency_key": "k1"})
    second = sdk.customers.create({"name": "Ada"}, {"idempotency_key": "k1"})
    assert first.id == second.id
    assert len([o for o in fake_stripe.objects.values() if o["object"] == "customer"]) == 1


def test_payment_methods_attach_list_and_detach(fake_stripe):
    sdk = client(fake_stripe).v1
    customer = sdk.customers.create({"name": "Ada"})
    pm = fake_stripe.add_payment_method("sk_test_one")
    sdk.payment_methods.attach(pm["id"], {"customer": customer.id})
    listed = sdk.customers.payment_methods.list(customer.id)
    assert [m.id for m in listed.data] == [pm["id"]]
    sdk.payment_methods.detach(pm["id"])
    assert sdk.customers.payment_methods.list(customer.id).data == []


def test_a_confirmed_payment_intent_records_its_exact_parameters(fake_stripe):
    sdk = client(fake_stripe).v1
    customer = sdk.customers.create({"name": "Ada"})
    pm = fake_stripe.add_payment_method("sk_test_one", customer=customer.id)
    intent = sdk.payment_intents.create(
        {
            "amount": 1250,
            "currency": "eur",
            "customer": customer.id,
            "payment_method": pm["id"],
            "payment_method_types": ["card", "sepa_debit"],
            "confirm": True,
            "off_session": True,
            "metadata": {"lago_invoice_id": "inv-1"},
        },
        {"idempotency_key": "payment-1"},
    )
    assert intent.status == "succeeded"
    [call] = fake_stripe.calls("POST", "/v1/payment_intents")
    assert call.params == {
        "amount": "1250",
        "currency": "eur",
        "customer": customer.id,
        "payment_method": pm["id"],
        "payment_method_types": ["card", "sepa_debit"],
        "confirm": "true",
        "off_session": "true",
        "metadata": {"lago_invoice_id": "inv-1"},
    }
    assert call.idempotency_key == "payment-1"


def test_a_declined_card_is_a_card_error(fake_stripe):
    sdk = client(fake_stripe).v1
    customer = sdk.customers.create({"name": "Ada"})
    pm = fake_stripe.add_payment_method("sk_test_one", customer=customer.id, decline=True)
    with pytest.raises(stripe.CardError) as caught:
        sdk.payment_intents.create(
            {"amount": 1000, "currency": "eur", "customer": customer.id,
             "payment_method": pm["id"], "confirm": True}
        )  # fmt: skip
    assert caught.value.code == "card_declined"


def test_an_amount_below_the_minimum_is_refused(fake_stripe):
    with pytest.raises(stripe.InvalidRequestError) as caught:
        client(fake_stripe).v1.payment_intents.create({"amount": 30, "currency": "eur"})
    assert caught.value.code == "amount_too_small"


def test_a_payment_intent_is_confirmed_later_and_refunded(fake_stripe):
    sdk = client(fake_stripe).v1
    customer = sdk.customers.create({"name": "Ada"})
    pm = fake_stripe.add_payment_method("sk_test_one", customer=customer.id)
    intent = sdk.payment_intents.create({"amount": 900, "currency": "usd", "customer": customer.id})
    assert intent.status == "requires_confirmation"
    confirmed = sdk.payment_intents.confirm(intent.id, {"payment_method": pm["id"]})
    assert sdk.payment_intents.retrieve(intent.id).status == confirmed.status == "succeeded"
    refund = sdk.refunds.create({"payment_intent": intent.id, "amount": 400})
    assert (refund.amount, refund.charge) == (400, confirmed.latest_charge)


def test_checkout_sessions_in_setup_and_payment_mode(fake_stripe):
    sdk = client(fake_stripe).v1
    customer = sdk.customers.create({"name": "Ada"})
    setup = sdk.checkout.sessions.create(
        {"mode": "setup", "customer": customer.id, "success_url": "https://example.com/ok",
         "payment_method_types": ["card"]}
    )  # fmt: skip
    pay = sdk.checkout.sessions.create(
        {"mode": "payment", "customer": customer.id, "success_url": "https://example.com/ok"}
    )
    assert setup.url.startswith(fake_stripe.url)
    assert setup.mode == "setup"
    assert pay.mode == "payment"
    intent = fake_stripe.complete_checkout_setup(setup.id)
    assert sdk.setup_intents.retrieve(intent["id"]).status == "succeeded"


def test_setup_intents_are_created(fake_stripe):
    sdk = client(fake_stripe).v1
    customer = sdk.customers.create({"name": "Ada"})
    intent = sdk.setup_intents.create({"customer": customer.id, "payment_method_types": ["card"]})
    assert intent.status == "requires_payment_method"
    assert intent.client_secret


def test_a_webhook_endpoint_answers_its_secret_once(fake_stripe):
    sdk = client(fake_stripe).v1
    endpoint = sdk.webhook_endpoints.create(
        {"url": "http://127.0.0.1/hook", "enabled_events": ["customer.updated"]}
    )
    assert endpoint.secret.startswith("whsec_")
    assert "secret" not in sdk.webhook_endpoints.retrieve(endpoint.id)


def test_signed_events_verify_with_the_sdk(fake_stripe):
    event = fake_stripe.event("customer.updated", {"id": "cus_1", "object": "customer"})
    payload = __import__("json").dumps(event).encode()
    header = FakeStripe.sign(payload, "whsec_abc")
    verified = stripe.Webhook.construct_event(payload, header, "whsec_abc")
    assert verified.type == "customer.updated"
