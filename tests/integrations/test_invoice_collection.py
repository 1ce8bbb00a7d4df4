"""Finalized invoices of Stripe customers are charged through the payment core, with the real
`stripe` SDK against the local fake Stripe."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from integrations.models import ProviderEvent
from integrations.services.invoice_collection import invoice_payment_collect
from invoicing.models import Invoice, Payment
from invoicing.services.finalization import finalize_computed
from tests.integrations.test_invoice_payment_intent import save_card
from tests.integrations.test_stripe_webhooks import post
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_pdfs(settings):
    settings.RECEIPT_PDF_ON_CREATE = False


def finalized(customer, organization, cents: int = 12000) -> Invoice:
    return build_invoice(
        organization, customer=customer, fees=[FeeSpec(amount_cents=cents)], number="ACME-0042"
    )


def collect(invoice: Invoice) -> Payment | None:
    return invoice_payment_collect(invoice_id=invoice.pk, actor=SYSTEM, now=NOW)


def events(invoice: Invoice, event_type: str) -> int:
    return OutboxEvent.objects.filter(object_id=str(invoice.pk), event_type=event_type).count()


def intents(fake_stripe):
    return fake_stripe.calls("POST", "/v1/payment_intents")


def test_finalizing_a_draft_charges_it_after_commit(
    stripe_customer, organization, fake_stripe, django_capture_on_commit_callbacks
):
    save_card(stripe_customer, fake_stripe)
    draft = build_invoice(
        organization, customer=stripe_customer, fees=[FeeSpec(amount_cents=12000)],
        status="draft",
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        finalize_computed(draft, actor=SYSTEM, now=NOW)
    draft.refresh_from_db()
    payment = Payment.objects.get(invoice=draft)
    assert draft.status == "finalized"
    assert draft.payment_status == "succeeded"
    assert draft.total_paid_amount_cents == draft.total_amount_cents
    assert payment.payment_type == "provider"
    assert payment.payable_payment_status == "succeeded"
    assert payment.provider_payment_id.startswith("pi_")
    assert len(intents(fake_stripe)) == 1
    assert intents(fake_stripe)[0].idempotency_key == f"payment-{payment.pk}"


def test_a_succeeded_charge_pays_the_invoice_with_a_receipt(
    stripe_customer, organization, fake_stripe
):
    save_card(stripe_customer, fake_stripe)
    invoice = finalized(stripe_customer, organization)
    payment = collect(invoice)
    invoice.refresh_from_db()
    assert payment.payable_payment_status == "succeeded"
    assert payment.status == "succeeded"
    assert payment.amount_cents == invoice.total_amount_cents
    assert invoice.payment_status == "succeeded"
    assert OutboxEvent.objects.filter(event_type="payment.succeeded").count() == 1
    assert OutboxEvent.objects.filter(event_type="payment_receipt.created").count() == 1


def test_collecting_twice_charges_once(stripe_customer, organization, fake_stripe):
    save_card(stripe_customer, fake_stripe, requires_action=True)
    invoice = finalized(stripe_customer, organization)
    first = collect(invoice)
    second = collect(invoice)
    assert first.pk == second.pk
    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert len(intents(fake_stripe)) == 1


def test_a_paid_invoice_is_not_charged_again(stripe_customer, organization, fake_stripe):
    save_card(stripe_customer, fake_stripe)
    invoice = finalized(stripe_customer, organization)
    collect(invoice)
    assert collect(invoice) is None
    assert len(intents(fake_stripe)) == 1


def test_3ds_keeps_the_invoice_pending_with_the_next_action(
    stripe_customer, organization, fake_stripe
):
    save_card(stripe_customer, fake_stripe, requires_action=True)
    invoice = finalized(stripe_customer, organization)
    payment = collect(invoice)
    invoice.refresh_from_db()
    assert payment.payable_payment_status == "pending"
    assert payment.status == "requires_action"
    assert payment.provider_payment_data["type"] == "redirect_to_url"
    assert "/3ds/" in payment.provider_payment_data["redirect_to_url"]["url"]
    assert invoice.payment_status == "pending"
    assert OutboxEvent.objects.filter(event_type="payment.requires_action").count() == 1


@pytest.mark.parametrize(
    ("card", "cents", "code"),
    [
        ({"decline": True}, 12000, "card_declined"),
        (None, 12000, "payment_intent_unexpected_state"),  # no payment method
        ({}, 30, "amount_too_small"),
    ],
    ids=["declined", "no_payment_method", "under_stripe_minimum"],
)
def test_a_refused_charge_fails_the_payment_and_records_the_failure(
    stripe_customer, organization, fake_stripe, card, cents, code
):
    if card is not None:
        save_card(stripe_customer, fake_stripe, **card)
    invoice = finalized(stripe_customer, organization, cents=cents)
    payment = collect(invoice)
    invoice.refresh_from_db()
    assert payment.payable_payment_status == "failed"
    assert payment.error_code == code
    assert invoice.payment_status == "failed"
    assert events(invoice, "invoice.payment_failure") == 1
    failure = OutboxEvent.objects.get(event_type="invoice.payment_failure")
    assert code in str(failure.payload)


def test_a_customer_without_stripe_is_not_charged(organization, fake_stripe, stripe_connection):
    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(organization=organization, currency="EUR")
    invoice = finalized(customer, organization)
    assert collect(invoice) is None
    assert not Payment.objects.filter(invoice=invoice).exists()
    assert intents(fake_stripe) == []


def intent_event(fake_stripe, payment: Payment, event_type: str, status: str, intent_id=None):
    return fake_stripe.event(
        event_type,
        {
            "id": intent_id or payment.provider_payment_id,
            "object": "payment_intent",
            "status": status,
            "amount": payment.amount_cents,
            "metadata": {"lago_payment_id": str(payment.pk)},
            "last_payment_error": {"code": "card_declined"} if "failed" in event_type else None,
        },
    )


def test_payment_intent_succeeded_after_3ds_pays_the_invoice(
    stripe_customer, organization, fake_stripe, stripe_connection
):
    save_card(stripe_customer, fake_stripe, requires_action=True)
    invoice = finalized(stripe_customer, organization)
    payment = collect(invoice)
    event = intent_event(fake_stripe, payment, "payment_intent.succeeded", "succeeded")
    assert post(stripe_connection, event).status_code == 200
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.payable_payment_status == "succeeded"
    assert invoice.payment_status == "succeeded"
    assert invoice.total_paid_amount_cents == invoice.total_amount_cents
    # a replay changes nothing
    assert post(stripe_connection, event).status_code == 200
    invoice.refresh_from_db()
    assert invoice.total_paid_amount_cents == invoice.total_amount_cents
    assert OutboxEvent.objects.filter(event_type="payment.succeeded").count() == 1
    assert ProviderEvent.objects.get().outcome == f"payment {payment.pk} succeeded"


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("payment_intent.payment_failed", "requires_payment_method"),
        ("payment_intent.canceled", "canceled"),
    ],
)
def test_payment_intent_failure_fails_the_invoice_payment_once(
    stripe_customer, organization, fake_stripe, stripe_connection, event_type, status
):
    save_card(stripe_customer, fake_stripe, requires_action=True)
    invoice = finalized(stripe_customer, organization)
    payment = collect(invoice)
    event = intent_event(fake_stripe, payment, event_type, status)
    assert post(stripe_connection, event).status_code == 200
    assert post(stripe_connection, event).status_code == 200
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.payable_payment_status == "failed"
    assert payment.status == status
    assert invoice.payment_status == "failed"
    assert events(invoice, "invoice.payment_failure") == 1


def test_a_succeeded_payment_stays_succeeded_when_a_late_failure_arrives(
    stripe_customer, organization, fake_stripe, stripe_connection
):
    save_card(stripe_customer, fake_stripe)
    invoice = finalized(stripe_customer, organization)
    payment = collect(invoice)
    event = intent_event(fake_stripe, payment, "payment_intent.payment_failed", "failed")
    assert post(stripe_connection, event).status_code == 200
    payment.refresh_from_db()
    invoice.refresh_from_db()
    assert payment.payable_payment_status == "succeeded"
    assert invoice.payment_status == "succeeded"
    assert events(invoice, "invoice.payment_failure") == 0


def test_a_webhook_before_the_synchronous_answer_charges_once(
    stripe_customer, organization, fake_stripe, stripe_connection, monkeypatch
):
    """Stripe's `payment_intent.succeeded` reaches us while the PaymentIntent call is still
    waiting for its answer: the webhook pays the invoice, the answer then changes nothing."""
    save_card(stripe_customer, fake_stripe)
    invoice = finalized(stripe_customer, organization)
    from integrations.services import invoice_collection

    real_send = invoice_collection.invoice_payment_intent_create

    def send_then_webhook(*, invoice, payment_id):
        answer = real_send(invoice=invoice, payment_id=payment_id)
        payment = Payment.objects.get(pk=payment_id)
        event = intent_event(
            fake_stripe, payment, "payment_intent.succeeded", "succeeded",
            intent_id=answer.provider_payment_id,
        )  # fmt: skip
        assert post(stripe_connection, event).status_code == 200
        return answer

    monkeypatch.setattr(invoice_collection, "invoice_payment_intent_create", send_then_webhook)
    payment = collect(invoice)
    invoice.refresh_from_db()
    assert payment.payable_payment_status == "succeeded"
    assert invoice.total_paid_amount_cents == invoice.total_amount_cents
    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert OutboxEvent.objects.filter(event_type="payment.succeeded").count() == 1
    assert len(intents(fake_stripe)) == 1


def test_a_payment_intent_naming_no_payment_changes_nothing(
    stripe_customer, organization, fake_stripe, stripe_connection
):
    event = fake_stripe.event(
        "payment_intent.succeeded",
        {"id": "pi_unknown", "object": "payment_intent", "status": "succeeded", "metadata": {}},
    )
    assert post(stripe_connection, event).status_code == 200
    assert (
        ProviderEvent.objects.get().outcome == "ignored: no payment for payment intent pi_unknown"
    )


def test_the_finalization_hook_received_twice_charges_once(
    stripe_customer, organization, fake_stripe
):
    from integrations import tasks

    save_card(stripe_customer, fake_stripe)
    invoice = finalized(stripe_customer, organization)
    tasks.on_invoice_finalized(invoice_id=invoice.pk)
    tasks.on_invoice_finalized(invoice_id=invoice.pk)
    invoice.refresh_from_db()
    assert invoice.total_paid_amount_cents == invoice.total_amount_cents
    assert Payment.objects.filter(invoice=invoice).count() == 1
    assert len(intents(fake_stripe)) == 1


def test_a_second_collection_while_the_first_waits_for_stripe_reuses_its_payment_intent(
    stripe_customer, organization, fake_stripe, monkeypatch
):
    """Two collections of the same invoice overlap: the second finds the pending payment not
    yet answered, sends it with the same idempotency key, and Stripe answers the same
    PaymentIntent."""
    from integrations.services import invoice_collection

    save_card(stripe_customer, fake_stripe)
    invoice = finalized(stripe_customer, organization)
    real_send = invoice_collection.invoice_payment_intent_create
    nested = []

    def send_while_another_collects(*, invoice, payment_id):
        if not nested:
            nested.append(None)
            nested[0] = collect(invoice)  # the overlapping collection, before our answer
        return real_send(invoice=invoice, payment_id=payment_id)

    monkeypatch.setattr(
        invoice_collection, "invoice_payment_intent_create", send_while_another_collects
    )
    payment = collect(invoice)
    invoice.refresh_from_db()
    keys = {call.idempotency_key for call in intents(fake_stripe)}
    created = [o for o in fake_stripe.objects.values() if o.get("object") == "payment_intent"]
    assert keys == {f"payment-{payment.pk}"}
    assert len(created) == 1
    assert nested[0].pk == payment.pk
    assert invoice.total_paid_amount_cents == invoice.total_amount_cents
    assert OutboxEvent.objects.filter(event_type="payment.succeeded").count() == 1
