"""Incoming Stripe webhooks: signature, replays, and the events handled today."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from billing.actors import SYSTEM
from customers.models import PaymentMethod
from customers.services.customers import customer_create
from integrations.models import ProviderEvent
from integrations.services.connections import webhook_url
from tests.integrations.conftest import SECRET_KEY
from tests.integrations.fake_stripe import FakeStripe


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


def path_of(connection) -> str:
    return webhook_url(connection).removeprefix("http://testserver")


def post(connection, event: dict, *, secret: str | None = None, signature: str | None = None):
    payload = json.dumps(event).encode()
    secret = secret if secret is not None else connection.webhook_secret()
    header = signature if signature is not None else FakeStripe.sign(payload, secret)
    return Client().post(
        path_of(connection), data=payload, content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )  # fmt: skip


def stripe_id(customer) -> str:
    return customer.billing_configuration["provider_customer_id"]


def setup_succeeded(fake_stripe, customer) -> dict:
    pm = fake_stripe.add_payment_method(SECRET_KEY, customer=stripe_id(customer), last4="4444")
    intent = {
        "id": fake_stripe.new_id("seti"),
        "object": "setup_intent",
        "customer": stripe_id(customer),
        "payment_method": pm["id"],
        "status": "succeeded",
    }
    return fake_stripe.event("setup_intent.succeeded", intent)


def test_setup_intent_succeeded_stores_the_default_payment_method(
    linked, stripe_connection, fake_stripe
):
    event = setup_succeeded(fake_stripe, linked)
    response = post(stripe_connection, event)
    assert response.status_code == 200
    method = PaymentMethod.objects.get()
    assert (method.customer, method.is_default) == (linked, True)
    assert method.provider_method_id == event["data"]["object"]["payment_method"]
    assert method.details["last4"] == "4444"
    stripe_customer = fake_stripe.get(stripe_id(linked))
    assert (
        stripe_customer["invoice_settings"]["default_payment_method"] == method.provider_method_id
    )


def test_a_second_saved_method_becomes_the_default(linked, stripe_connection, fake_stripe):
    post(stripe_connection, setup_succeeded(fake_stripe, linked))
    second = setup_succeeded(fake_stripe, linked)
    post(stripe_connection, second)
    default = PaymentMethod.objects.alive().get(is_default=True)
    assert default.provider_method_id == second["data"]["object"]["payment_method"]
    assert PaymentMethod.objects.alive().count() == 2


def test_a_bad_signature_is_a_400_and_changes_nothing(linked, stripe_connection, fake_stripe):
    response = post(stripe_connection, setup_succeeded(fake_stripe, linked), secret="whsec_wrong")
    assert response.status_code == 400
    assert not PaymentMethod.objects.exists()
    assert not ProviderEvent.objects.exists()


def test_a_missing_signature_is_a_400(linked, stripe_connection, fake_stripe):
    response = post(stripe_connection, setup_succeeded(fake_stripe, linked), signature="")
    assert response.status_code == 400


def test_an_old_signature_is_a_400(linked, stripe_connection, fake_stripe):
    event = setup_succeeded(fake_stripe, linked)
    payload = json.dumps(event).encode()
    old = FakeStripe.sign(payload, stripe_connection.webhook_secret(), timestamp=1_000_000_000)
    assert post(stripe_connection, event, signature=old).status_code == 400


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("/webhooks/stripe/{org}?code=unknown", id="unknown-code"),
        pytest.param("/webhooks/stripe/00000000-0000-0000-0000-000000000000?code=stripe_main",
                     id="unknown-organization"),
        pytest.param("/webhooks/stripe/not-a-uuid?code=stripe_main", id="not-a-uuid"),
    ],
)  # fmt: skip
def test_an_address_naming_no_connection_is_a_400(linked, stripe_connection, fake_stripe, address):
    payload = json.dumps(setup_succeeded(fake_stripe, linked)).encode()
    response = Client().post(
        address.format(org=stripe_connection.organization_id),
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=FakeStripe.sign(payload, stripe_connection.webhook_secret()),
    )
    assert response.status_code == 400
    assert not ProviderEvent.objects.exists()


def test_a_replayed_event_changes_nothing(linked, stripe_connection, fake_stripe):
    event = setup_succeeded(fake_stripe, linked)
    assert post(stripe_connection, event).status_code == 200
    PaymentMethod.objects.update(is_default=False)  # changed since by someone else
    calls_before = len(fake_stripe.requests)
    assert post(stripe_connection, event).status_code == 200
    assert not PaymentMethod.objects.filter(is_default=True).exists()
    assert len(fake_stripe.requests) == calls_before
    assert ProviderEvent.objects.count() == 1


def test_customer_updated_makes_stripe_default_the_default(linked, stripe_connection, fake_stripe):
    pm = fake_stripe.add_payment_method(SECRET_KEY, customer=stripe_id(linked), last4="5555")
    stripe_customer = fake_stripe.get(stripe_id(linked))
    stripe_customer["invoice_settings"] = {"default_payment_method": pm["id"]}
    assert (
        post(stripe_connection, fake_stripe.event("customer.updated", stripe_customer)).status_code
        == 200
    )
    method = PaymentMethod.objects.get()
    assert (method.provider_method_id, method.is_default) == (pm["id"], True)


def test_payment_method_detached_removes_it(linked, stripe_connection, fake_stripe):
    post(stripe_connection, setup_succeeded(fake_stripe, linked))
    method = PaymentMethod.objects.get()
    detached = fake_stripe.detach(method.provider_method_id)
    event = fake_stripe.event(
        "payment_method.detached", detached, previous_attributes={"customer": stripe_id(linked)}
    )
    assert post(stripe_connection, event).status_code == 200
    assert PaymentMethod.objects.alive().count() == 0


def test_an_event_of_an_unknown_stripe_customer_is_recorded_as_ignored(
    stripe_connection, fake_stripe, db
):
    event = fake_stripe.event("customer.updated", {"id": "cus_elsewhere", "object": "customer"})
    assert post(stripe_connection, event).status_code == 200
    assert ProviderEvent.objects.get().outcome.startswith("ignored")


def test_a_customer_of_another_organization_is_not_touched(
    linked, stripe_connection, fake_stripe, other_organization
):
    from integrations.services.connections import stripe_connection_create

    other = stripe_connection_create(
        organization=other_organization, code="stripe_main", name="", secret_key=SECRET_KEY,
        actor=SYSTEM,
    )  # fmt: skip
    assert post(other, setup_succeeded(fake_stripe, linked)).status_code == 200
    assert not PaymentMethod.objects.exists()


@pytest.mark.parametrize(
    "event_type",
    ["payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled"],
)
def test_payment_intent_events_naming_no_payment_are_recorded_as_ignored(
    stripe_connection, fake_stripe, db, event_type
):
    intent = {"id": "pi_1", "object": "payment_intent", "status": "succeeded", "metadata": {}}
    assert post(stripe_connection, fake_stripe.event(event_type, intent)).status_code == 200
    assert ProviderEvent.objects.get().outcome.startswith("ignored")


@pytest.mark.parametrize(
    ("event_type", "obj"),
    [
        ("charge.refund.updated", {"id": "re_1", "object": "refund", "status": "succeeded"}),
        ("charge.dispute.closed", {"id": "dp_1", "object": "dispute", "status": "lost"}),
    ],
)
def test_refund_and_dispute_events_naming_nothing_of_ours_are_recorded_as_ignored(
    stripe_connection, fake_stripe, db, event_type, obj
):
    assert post(stripe_connection, fake_stripe.event(event_type, obj)).status_code == 200
    assert ProviderEvent.objects.get().outcome.startswith("ignored")


def test_an_event_not_subscribed_is_recorded_as_ignored(stripe_connection, fake_stripe, db):
    event = fake_stripe.event("invoice.created", {"id": "in_1", "object": "invoice"})
    assert post(stripe_connection, event).status_code == 200
    assert ProviderEvent.objects.get().outcome == "ignored: event not subscribed"


@pytest.mark.django_db(transaction=True)
def test_events_sent_over_http_to_a_running_server_are_handled(live_server, settings, organization):
    fake = FakeStripe().start()
    try:
        settings.STRIPE_API_BASE = fake.url
        settings.PUBLIC_URL = live_server.url
        from integrations.services.connections import stripe_connection_create

        connection = stripe_connection_create(
            organization=organization, code="live", name="", secret_key=SECRET_KEY, actor=SYSTEM
        )
        [endpoint] = [o for o in fake.objects.values() if o["object"] == "webhook_endpoint"]
        secret = fake.webhook_secrets[endpoint["id"]]
        event = fake.event("customer.updated", {"id": "cus_none", "object": "customer"})
        assert fake.send_event(endpoint["url"], event, secret=secret)[0] == 200
        assert fake.send_event(endpoint["url"], event, secret="whsec_bad")[0] == 400
        assert ProviderEvent.objects.filter(payment_provider=connection).count() == 1
    finally:
        fake.stop()


def test_a_payment_intent_we_did_not_create_for_one_of_our_invoices_records_its_payment(
    stripe_connection, fake_stripe, organization
):
    """A customer paid through a Checkout payment link: the payment is recorded from the
    webhook and pays the invoice."""
    from invoicing.models import Payment
    from tests.invoicing.invoice_builders import build_invoice

    invoice = build_invoice(organization)
    intent = {
        "id": "pi_2",
        "object": "payment_intent",
        "status": "succeeded",
        "amount": invoice.total_amount_cents,
        "metadata": {"lago_invoice_id": str(invoice.pk)},
    }
    event = fake_stripe.event("payment_intent.succeeded", intent)
    assert post(stripe_connection, event).status_code == 200
    payment = Payment.objects.get(invoice=invoice)
    assert payment.provider_payment_id == "pi_2"
    assert payment.payable_payment_status == "succeeded"
    invoice.refresh_from_db()
    assert invoice.payment_status == "succeeded"


def test_a_payment_intent_naming_another_organization_invoice_is_not_looked_up(
    stripe_connection, fake_stripe, other_organization
):
    from tests.invoicing.invoice_builders import build_invoice

    foreign = build_invoice(other_organization)
    intent = {"id": "pi_3", "object": "payment_intent", "status": "succeeded",
              "metadata": {"lago_invoice_id": str(foreign.pk)}}  # fmt: skip
    assert (
        post(stripe_connection, fake_stripe.event("payment_intent.succeeded", intent)).status_code
        == 200
    )
    assert str(foreign.pk) not in ProviderEvent.objects.get().outcome
