"""Customers with Stripe settings: created or linked at Stripe after commit, checkout links,
outbox events, validation of `provider_payment_methods`."""

from __future__ import annotations

import pytest

from billing.models import OutboxEvent
from customers.models import Customer
from tests.integrations.conftest import SECRET_KEY


@pytest.fixture
def upsert(api, django_capture_on_commit_callbacks):
    """POST /customers, running what waits for the commit (the provider sync)."""

    def send(**fields):
        with django_capture_on_commit_callbacks(execute=True):
            return api.post("/api/v1/customers", {"customer": fields}, format="json")

    return send


def stripe_config(**extra):
    return {"payment_provider": "stripe", "payment_provider_code": "stripe_main", **extra}


def events(kind: str) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.filter(event_type=kind).order_by("id"))


def test_sync_with_provider_creates_the_stripe_customer(stripe_connection, fake_stripe, upsert):
    response = upsert(
        external_id="cus-1",
        name="Ada Lovelace",
        email="ada@example.com,billing@example.com",
        country="FR",
        billing_configuration=stripe_config(sync_with_provider=True),
    )
    assert response.status_code == 200, response.json()
    customer = Customer.objects.get(external_id="cus-1")
    stripe_id = customer.billing_configuration["provider_customer_id"]
    created = fake_stripe.get(stripe_id)
    assert (created["name"], created["email"]) == ("Ada Lovelace", "ada@example.com")
    assert created["metadata"] == {"lago_customer_id": str(customer.pk), "customer_id": "cus-1"}
    [call] = fake_stripe.calls("POST", "/v1/customers")
    assert call.api_key == SECRET_KEY
    assert call.idempotency_key.startswith(str(customer.pk))


def test_the_creation_records_payment_provider_created(stripe_connection, upsert):
    upsert(external_id="cus-1", billing_configuration=stripe_config(sync_with_provider=True))
    customer = Customer.objects.get(external_id="cus-1")
    [event] = events("customer.payment_provider_created")
    assert event.payload == {
        "lago_customer_id": str(customer.pk),
        "external_customer_id": "cus-1",
        "payment_provider": "stripe",
        "payment_provider_code": "stripe_main",
        "provider_customer_id": customer.billing_configuration["provider_customer_id"],
    }


def test_the_creation_records_a_setup_checkout_link(stripe_connection, fake_stripe, upsert):
    upsert(
        external_id="cus-1",
        currency="EUR",
        billing_configuration=stripe_config(
            sync_with_provider=True, provider_payment_methods=["card", "sepa_debit"]
        ),
    )
    [event] = events("customer.checkout_url_generated")
    [call] = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert call.params["mode"] == "setup"
    assert call.params["payment_method_types"] == ["card", "sepa_debit"]
    assert event.payload["checkout_url"].startswith(fake_stripe.url + "/checkout/")


def test_the_api_answers_the_provider_fields(stripe_connection, upsert, api):
    upsert(external_id="cus-1", billing_configuration=stripe_config(sync_with_provider=True))
    body = api.get("/api/v1/customers/cus-1").json()["customer"]["billing_configuration"]
    assert body["payment_provider"] == "stripe"
    assert body["payment_provider_code"] == "stripe_main"
    assert body["provider_customer_id"].startswith("cus_")
    assert body["sync_with_provider"] is True


def test_saving_the_customer_again_creates_no_second_stripe_customer(
    stripe_connection, fake_stripe, upsert
):
    upsert(external_id="cus-1", billing_configuration=stripe_config(sync_with_provider=True))
    upsert(external_id="cus-1", billing_configuration=stripe_config(sync_with_provider=True))
    assert len([c for c in fake_stripe.requests if c.path == "/v1/customers"]) == 1


def test_linking_an_existing_stripe_customer_creates_none(stripe_connection, fake_stripe, upsert):
    existing = fake_stripe.add_customer(SECRET_KEY, name="Ada")
    upsert(
        external_id="cus-1",
        billing_configuration=stripe_config(provider_customer_id=existing["id"]),
    )
    assert [c for c in fake_stripe.requests if c.path == "/v1/customers"] == []
    customer = Customer.objects.get(external_id="cus-1")
    assert customer.billing_configuration["provider_customer_id"] == existing["id"]
    [event] = events("customer.checkout_url_generated")  # as Lago: a link to save a method
    assert event.payload["external_customer_id"] == "cus-1"


def test_without_sync_nothing_is_created_at_stripe(stripe_connection, fake_stripe, upsert):
    upsert(external_id="cus-1", billing_configuration=stripe_config())
    assert fake_stripe.requests[1:] == []  # the first one registered the connection's webhook
    assert events("customer.payment_provider_created") == []


def test_a_code_matching_no_connection_records_an_error(fake_stripe, upsert, organization):
    upsert(
        external_id="cus-1",
        billing_configuration=stripe_config(payment_provider_code="nope", sync_with_provider=True),
    )
    [event] = events("customer.payment_provider_error")
    assert event.payload["provider_error"]["error_code"] == "payment_provider_not_found"


def test_a_stripe_refusal_records_an_error_and_keeps_the_customer(
    stripe_connection, fake_stripe, upsert
):
    stripe_connection.set_secret_key("sk_test_invalid_since")  # the key was revoked at Stripe
    stripe_connection.save()
    response = upsert(
        external_id="cus-1", billing_configuration=stripe_config(sync_with_provider=True)
    )
    assert response.status_code == 200
    [event] = events("customer.payment_provider_error")
    assert event.payload["provider_error"]["error_code"] == "api_key_invalid"
    assert "provider_customer_id" not in Customer.objects.get().billing_configuration


def test_an_unreachable_stripe_keeps_the_customer_and_records_no_creation(
    stripe_connection, fake_stripe, upsert
):
    fake_stripe.stop()  # the task gives up after its retries; the customer stays saved
    response = upsert(
        external_id="cus-1", billing_configuration=stripe_config(sync_with_provider=True)
    )
    assert response.status_code == 200
    assert Customer.objects.filter(external_id="cus-1").exists()
    assert events("customer.payment_provider_created") == []


def test_the_only_connection_is_used_when_no_code_is_given(stripe_connection, fake_stripe, upsert):
    upsert(
        external_id="cus-1",
        billing_configuration={"payment_provider": "stripe", "sync_with_provider": True},
    )
    customer = Customer.objects.get(external_id="cus-1")
    assert customer.billing_configuration["provider_customer_id"].startswith("cus_")


@pytest.mark.parametrize(
    ("currency", "methods", "code"),
    [
        pytest.param("EUR", ["paypal"], "value_is_invalid", id="unknown-type"),
        pytest.param("EUR", ["link"], "value_is_invalid", id="link-without-card"),
        pytest.param(
            "USD", ["customer_balance", "card"], "value_is_invalid", id="balance-not-alone"
        ),
        pytest.param("USD", ["sepa_debit"], "invalid_currency", id="sepa-only-eur"),
        pytest.param("EUR", ["us_bank_account"], "invalid_currency", id="ach-only-usd"),
        pytest.param("EUR", ["bacs_debit"], "invalid_currency", id="bacs-only-gbp"),
        pytest.param("USD", ["boleto"], "invalid_currency", id="boleto-only-brl"),
        pytest.param("EUR", ["crypto"], "invalid_currency", id="crypto-only-usd"),
    ],
)
def test_provider_payment_methods_are_refused(stripe_connection, upsert, currency, methods, code):
    response = upsert(
        external_id="cus-1",
        currency=currency,
        billing_configuration=stripe_config(provider_payment_methods=methods),
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == {"provider_payment_methods": [code]}
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    ("currency", "methods"),
    [
        pytest.param("EUR", ["card", "link", "sepa_debit"], id="eur-card-link-sepa"),
        pytest.param("USD", ["customer_balance"], id="balance-alone"),
        pytest.param("GBP", ["bacs_debit"], id="bacs-gbp"),
        pytest.param("", ["crypto"], id="no-currency-yet"),
    ],
)
def test_provider_payment_methods_are_accepted(stripe_connection, upsert, currency, methods):
    response = upsert(
        external_id="cus-1",
        currency=currency or None,
        billing_configuration=stripe_config(provider_payment_methods=methods),
    )
    assert response.status_code == 200, response.json()


@pytest.mark.django_db(transaction=True)
def test_sync_true_answers_the_stripe_customer_id_at_once(stripe_connection, api):
    # no on-commit capture: the request's own commit runs the creation before it answers
    response = api.post(
        "/api/v1/customers",
        {
            "customer": {
                "external_id": "cus-1",
                "billing_configuration": stripe_config(sync_with_provider=True, sync=True),
            }
        },
        format="json",
    )
    body = response.json()["customer"]["billing_configuration"]
    assert body["provider_customer_id"].startswith("cus_")


def test_linking_a_stripe_customer_with_a_default_card_records_it(
    stripe_connection, fake_stripe, upsert
):
    existing = fake_stripe.add_customer(SECRET_KEY, name="Ada")
    card = fake_stripe.add_payment_method(SECRET_KEY, customer=existing["id"], last4="9999")
    fake_stripe.objects[existing["id"]]["invoice_settings"]["default_payment_method"] = card["id"]
    upsert(
        external_id="cus-1",
        billing_configuration=stripe_config(provider_customer_id=existing["id"]),
    )
    [method] = Customer.objects.get(external_id="cus-1").payment_methods.all()
    assert (method.provider_method_id, method.is_default) == (card["id"], True)
    assert method.details["last4"] == "9999"


def test_linking_a_stripe_customer_without_default_records_no_method(
    stripe_connection, fake_stripe, upsert
):
    existing = fake_stripe.add_customer(SECRET_KEY, name="Ada")
    upsert(
        external_id="cus-1",
        billing_configuration=stripe_config(provider_customer_id=existing["id"]),
    )
    assert not Customer.objects.get(external_id="cus-1").payment_methods.exists()


def test_saving_a_linked_customer_updates_the_stripe_customer(
    stripe_connection, fake_stripe, upsert
):
    existing = fake_stripe.add_customer(SECRET_KEY, name="Old name")
    config = stripe_config(provider_customer_id=existing["id"])
    upsert(external_id="cus-1", name="Ada", billing_configuration=config)
    upsert(
        external_id="cus-1",
        name="Ada Lovelace",
        email="ada@example.com",
        city="Paris",
        billing_configuration=config,
    )
    updated = fake_stripe.get(existing["id"])
    assert (updated["name"], updated["email"]) == ("Ada Lovelace", "ada@example.com")
    assert updated["address"] == {"city": "Paris"}
    assert updated["metadata"] == {}  # the creation metadata is not Lago's to rewrite here
