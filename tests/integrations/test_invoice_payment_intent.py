"""The PaymentIntent an invoice would be charged with, sent to the fake Stripe. Nothing is
recorded on our side: the payment records that will call this are built elsewhere."""

from __future__ import annotations

import uuid

import pytest

from billing.actors import SYSTEM
from customers.services.payment_methods import payment_method_record_from_provider
from integrations.invoice_payments import invoice_payment_intent_create
from integrations.payment_providers.base import GatewayError
from invoicing.models import Invoice
from tests.customers.factories import CustomerFactory
from tests.integrations.conftest import SECRET_KEY
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

PAYMENT_ID = uuid.UUID("00000000-0000-0000-0000-0000000000aa")


def save_card(customer, fake_stripe, **options):
    remote_id = customer.billing_configuration["provider_customer_id"]
    pm = fake_stripe.add_payment_method(SECRET_KEY, customer=remote_id, **options)
    return payment_method_record_from_provider(
        customer=customer, payment_provider_type="stripe", payment_provider_code="stripe_main",
        provider_customer_id=remote_id, provider_method_id=pm["id"], provider_method_type="card",
        details={}, actor=SYSTEM,
    )  # fmt: skip


def invoice_of(customer, organization, cents: int = 12000) -> Invoice:
    return build_invoice(
        organization, customer=customer, fees=[FeeSpec(amount_cents=cents)], number="ACME-0042"
    )


def test_the_payment_intent_carries_the_invoice_parameters(
    stripe_customer, organization, fake_stripe
):
    card = save_card(stripe_customer, fake_stripe)
    invoice = invoice_of(stripe_customer, organization)
    result = invoice_payment_intent_create(invoice=invoice, payment_id=PAYMENT_ID)
    [call] = fake_stripe.calls("POST", "/v1/payment_intents")
    assert call.params == {
        "amount": str(invoice.total_amount_cents),
        "currency": "eur",
        "customer": stripe_customer.billing_configuration["provider_customer_id"],
        "payment_method": card.provider_method_id,
        "payment_method_types": ["card", "sepa_debit"],
        "confirm": "true",
        "off_session": "true",
        "description": f"{invoice.billing_entity.name} - Invoice ACME-0042",
        "metadata": {
            "lago_invoice_id": str(invoice.pk),
            "lago_customer_id": str(stripe_customer.pk),
            "invoice_issuing_date": invoice.issuing_date.isoformat(),
            "invoice_type": "one_off",
            "lago_payment_id": str(PAYMENT_ID),
        },
    }
    assert call.idempotency_key == f"payment-{PAYMENT_ID}"
    assert result.status == "succeeded"


def test_a_partly_paid_invoice_charges_what_is_left(stripe_customer, organization, fake_stripe):
    save_card(stripe_customer, fake_stripe)
    invoice = invoice_of(stripe_customer, organization)
    invoice.total_paid_amount_cents = invoice.total_amount_cents - 700
    invoice_payment_intent_create(invoice=invoice, payment_id=PAYMENT_ID)
    assert fake_stripe.calls("POST", "/v1/payment_intents")[0].params["amount"] == "700"


def test_an_amount_below_stripe_minimum_is_refused_by_stripe(
    stripe_customer, organization, fake_stripe
):
    save_card(stripe_customer, fake_stripe)
    invoice = invoice_of(stripe_customer, organization)
    invoice.total_paid_amount_cents = invoice.total_amount_cents - 30
    with pytest.raises(GatewayError) as caught:
        invoice_payment_intent_create(invoice=invoice, payment_id=PAYMENT_ID)
    assert caught.value.code == "amount_too_small"


def test_a_declined_card_is_refused_with_stripe_code(stripe_customer, organization, fake_stripe):
    save_card(stripe_customer, fake_stripe, decline=True)
    with pytest.raises(GatewayError) as caught:
        invoice_payment_intent_create(
            invoice=invoice_of(stripe_customer, organization), payment_id=PAYMENT_ID
        )
    assert caught.value.code == "card_declined"


def test_a_customer_without_stripe_is_not_charged(organization, fake_stripe):
    customer = CustomerFactory(organization=organization, currency="EUR")
    invoice = invoice_of(customer, organization)
    assert invoice_payment_intent_create(invoice=invoice, payment_id=PAYMENT_ID) is None
    assert fake_stripe.calls("POST", "/v1/payment_intents") == []


def test_the_same_payment_id_charges_once(stripe_customer, organization, fake_stripe):
    save_card(stripe_customer, fake_stripe)
    invoice = invoice_of(stripe_customer, organization)
    first = invoice_payment_intent_create(invoice=invoice, payment_id=PAYMENT_ID)
    again = invoice_payment_intent_create(invoice=invoice, payment_id=PAYMENT_ID)
    assert first.provider_payment_id == again.provider_payment_id
