"""Payment requests and wallet top-up invoices of Stripe customers are charged through the
payment core, with the real `stripe` SDK against the local fake Stripe (Lago's
`PaymentRequests::Payments::CreateService` and `Invoices::PaidCreditService`)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from integrations.services.invoice_collection import payment_request_collect
from invoicing.models import CustomerDunning, Invoice, Payment, PaymentReceipt, PaymentRequest
from invoicing.services.dunning import (
    billing_entity_dunning_campaign_set,
    dunning_campaign_create,
    process_dunning_campaigns,
)
from invoicing.services.payment_requests import payment_request_create
from tests.integrations.test_invoice_collection import intent_event
from tests.integrations.test_invoice_payment_intent import save_card
from tests.integrations.test_stripe_webhooks import post
from tests.invoicing.invoice_builders import FeeSpec, build_invoice
from tests.wallets.factories import WalletFactory
from wallets.models import WalletTransaction
from wallets.services.transactions import wallet_top_up

NOW = dt.datetime(2026, 5, 2, 9, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_pdfs(settings):
    settings.RECEIPT_PDF_ON_CREATE = False
    settings.INVOICE_PDF_ON_FINALIZE = False


def overdue(customer, organization, cents: int, number: str) -> Invoice:
    invoice = build_invoice(
        organization, customer=customer, fees=[FeeSpec(amount_cents=cents)], number=number
    )
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)
    invoice.refresh_from_db()
    return invoice


def request_for(customer, invoices, capture) -> PaymentRequest:
    """A payment request created in a committed transaction: its collection runs after it."""
    with capture(execute=True), transaction.atomic():
        request = payment_request_create(
            organization=customer.organization,
            external_customer_id=customer.external_id,
            lago_invoice_ids=[str(invoice.pk) for invoice in invoices],
            actor=SYSTEM,
            now=NOW,
        )
    request.refresh_from_db()
    return request


def intents(fake_stripe):
    return fake_stripe.calls("POST", "/v1/payment_intents")


def count(event_type: str) -> int:
    return OutboxEvent.objects.filter(event_type=event_type).count()


def test_a_payment_request_sends_one_payment_intent_with_lago_parameters(
    stripe_customer, organization, fake_stripe, django_capture_on_commit_callbacks
):
    card = save_card(stripe_customer, fake_stripe)
    first = overdue(stripe_customer, organization, 12000, "ACME-0001")
    second = overdue(stripe_customer, organization, 3000, "ACME-0002")

    request = request_for(stripe_customer, [first, second], django_capture_on_commit_callbacks)

    payment = Payment.objects.get(payment_request=request)
    [call] = intents(fake_stripe)
    assert call.params == {
        "amount": "15000",
        "currency": "eur",
        "customer": stripe_customer.billing_configuration["provider_customer_id"],
        "payment_method": card.provider_method_id,
        "payment_method_types": ["card", "sepa_debit"],
        "confirm": "true",
        "off_session": "true",
        "description": f"{stripe_customer.billing_entity.name} - Overdue invoices",
        "metadata": {
            "lago_customer_id": str(stripe_customer.pk),
            "lago_payable_id": str(request.pk),
            "lago_payable_type": "PaymentRequest",
            "lago_payment_id": str(payment.pk),
        },
    }
    assert call.idempotency_key == f"payment-{payment.pk}"
    assert request.payment_attempts == 1


def test_a_request_of_one_invoice_names_its_number(
    stripe_customer, organization, fake_stripe, django_capture_on_commit_callbacks
):
    save_card(stripe_customer, fake_stripe)
    invoice = overdue(stripe_customer, organization, 12000, "ACME-0007")
    request_for(stripe_customer, [invoice], django_capture_on_commit_callbacks)
    [call] = intents(fake_stripe)
    assert call.params["description"].endswith(" - Overdue invoices: ACME-0007")


def test_a_succeeded_charge_pays_every_invoice_of_the_request(
    stripe_customer, organization, fake_stripe, django_capture_on_commit_callbacks
):
    save_card(stripe_customer, fake_stripe)
    invoices = [
        overdue(stripe_customer, organization, 12000, "ACME-0001"),
        overdue(stripe_customer, organization, 3000, "ACME-0002"),
    ]
    request = request_for(stripe_customer, invoices, django_capture_on_commit_callbacks)

    assert request.payment_status == "succeeded"
    for invoice in invoices:
        invoice.refresh_from_db()
        assert invoice.payment_status == "succeeded"
        assert invoice.total_paid_amount_cents == invoice.total_amount_cents
        assert invoice.payment_overdue is False
    assert PaymentReceipt.objects.count() == 1
    assert count("payment.succeeded") == 1


def test_the_webhook_after_3ds_pays_every_invoice_of_the_request_once(
    stripe_customer, organization, fake_stripe, stripe_connection,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    save_card(stripe_customer, fake_stripe, requires_action=True)
    invoices = [
        overdue(stripe_customer, organization, 12000, "ACME-0001"),
        overdue(stripe_customer, organization, 3000, "ACME-0002"),
    ]
    request = request_for(stripe_customer, invoices, django_capture_on_commit_callbacks)
    payment = Payment.objects.get(payment_request=request)
    assert (request.payment_status, payment.status) == ("pending", "requires_action")

    event = intent_event(fake_stripe, payment, "payment_intent.succeeded", "succeeded")
    assert post(stripe_connection, event).status_code == 200
    assert post(stripe_connection, event).status_code == 200  # Stripe's retry

    request.refresh_from_db()
    assert request.payment_status == "succeeded"
    assert [i.payment_status for i in Invoice.objects.filter(pk__in=[i.pk for i in invoices])] == [
        "succeeded",
        "succeeded",
    ]
    assert (
        sum(
            Invoice.objects.filter(pk__in=[i.pk for i in invoices]).values_list(
                "total_paid_amount_cents", flat=True
            )
        )
        == 15000
    )
    assert PaymentReceipt.objects.count() == 1


def test_a_refused_charge_fails_the_request_and_its_invoices(
    stripe_customer, organization, fake_stripe, django_capture_on_commit_callbacks
):
    save_card(stripe_customer, fake_stripe, decline=True)
    invoice = overdue(stripe_customer, organization, 12000, "ACME-0001")
    request = request_for(stripe_customer, [invoice], django_capture_on_commit_callbacks)

    invoice.refresh_from_db()
    payment = Payment.objects.get(payment_request=request)
    assert (payment.payable_payment_status, payment.error_code) == ("failed", "card_declined")
    assert request.payment_status == "failed"
    assert request.payment_attempts == 1
    assert invoice.payment_status == "failed"
    assert invoice.total_paid_amount_cents == 0
    failure = OutboxEvent.objects.get(event_type="payment_request.payment_failure")
    assert failure.payload["error_code"] == "card_declined"


def test_a_failed_request_can_be_charged_again(
    stripe_customer, organization, fake_stripe, django_capture_on_commit_callbacks
):
    save_card(stripe_customer, fake_stripe, decline=True)
    invoice = overdue(stripe_customer, organization, 12000, "ACME-0001")
    request = request_for(stripe_customer, [invoice], django_capture_on_commit_callbacks)
    save_card(stripe_customer, fake_stripe)  # the customer's new default card

    payment = payment_request_collect(payment_request_id=request.pk, actor=SYSTEM, now=NOW)

    request.refresh_from_db()
    assert payment.payable_payment_status == "succeeded"
    assert (request.payment_status, request.payment_attempts) == ("succeeded", 2)
    assert len(intents(fake_stripe)) == 2


def test_a_request_of_a_customer_without_stripe_is_not_charged(
    organization, fake_stripe, stripe_connection, django_capture_on_commit_callbacks
):
    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(organization=organization, currency="EUR")
    invoice = overdue(customer, organization, 12000, "ACME-0001")
    request = request_for(customer, [invoice], django_capture_on_commit_callbacks)
    assert request.payment_status == "pending"
    assert not Payment.objects.exists()
    assert intents(fake_stripe) == []


def dunned(organization, customer, capture, **campaign) -> None:
    billing_entity_dunning_campaign_set(
        billing_entity=customer.billing_entity,
        campaign=dunning_campaign_create(
            organization=organization, name="Reminders", code="reminders", actor=SYSTEM,
            now=NOW, max_attempts=3, thresholds=[{"currency": "EUR", "amount_cents": 100}],
            **campaign,
        ),
        actor=SYSTEM,
        now=NOW,
    )  # fmt: skip
    with capture(execute=True):
        assert process_dunning_campaigns(actor=SYSTEM, now=NOW) == 1


def test_a_failed_campaign_request_keeps_the_campaign_attempt(
    stripe_customer, organization, fake_stripe, django_capture_on_commit_callbacks
):
    save_card(stripe_customer, fake_stripe, decline=True)
    overdue(stripe_customer, organization, 12000, "ACME-0001")
    dunned(organization, stripe_customer, django_capture_on_commit_callbacks)

    request = PaymentRequest.objects.get()
    state = CustomerDunning.objects.get(customer=stripe_customer)
    assert request.payment_status == "failed"
    assert state.currency_attempts == {"EUR": 1}
    assert state.last_attempt_at == NOW


def test_a_paid_campaign_request_restarts_the_currency_attempts(
    stripe_customer, organization, fake_stripe, django_capture_on_commit_callbacks
):
    save_card(stripe_customer, fake_stripe)
    overdue(stripe_customer, organization, 12000, "ACME-0001")
    dunned(organization, stripe_customer, django_capture_on_commit_callbacks)

    state = CustomerDunning.objects.get(customer=stripe_customer)
    assert PaymentRequest.objects.get().payment_status == "succeeded"
    assert state.currency_attempts == {"EUR": 0}
    assert state.last_attempt_at is None


def top_up(customer, capture, **options) -> tuple[WalletTransaction, Invoice]:
    wallet = WalletFactory(organization=customer.organization, customer=customer, currency="EUR")
    with capture(execute=True), transaction.atomic():
        [purchase] = wallet_top_up(
            wallet=wallet, paid_credits="50", actor=SYSTEM, now=NOW, **options
        )
    purchase.refresh_from_db()
    return purchase, Invoice.objects.get(pk=purchase.invoice_id)


def test_a_top_up_paid_only_on_payment_grants_its_credits_when_stripe_pays(
    stripe_customer, fake_stripe, django_capture_on_commit_callbacks
):
    save_card(stripe_customer, fake_stripe)
    purchase, invoice = top_up(
        stripe_customer, django_capture_on_commit_callbacks,
        invoice_requires_successful_payment=True,
    )  # fmt: skip

    [call] = intents(fake_stripe)
    assert call.params["amount"] == "5000"
    assert call.params["metadata"]["lago_invoice_id"] == str(invoice.pk)
    assert call.params["metadata"]["invoice_type"] == "credit"
    assert (purchase.status, purchase.transaction_status) == ("settled", "purchased")
    assert purchase.wallet.balance_cents == 5000
    assert (invoice.status, invoice.payment_status) == ("finalized", "succeeded")
    assert invoice.number


def test_a_top_up_paid_only_on_payment_grants_nothing_when_stripe_refuses(
    stripe_customer, fake_stripe, django_capture_on_commit_callbacks
):
    save_card(stripe_customer, fake_stripe, decline=True)
    purchase, invoice = top_up(
        stripe_customer, django_capture_on_commit_callbacks,
        invoice_requires_successful_payment=True,
    )  # fmt: skip

    assert purchase.status == "failed"
    assert purchase.wallet.balance_cents == 0
    assert (invoice.status, invoice.payment_status) == ("open", "failed")


def test_a_finalized_top_up_invoice_is_charged_and_its_credits_settle_on_the_webhook(
    stripe_customer, fake_stripe, stripe_connection, django_capture_on_commit_callbacks
):
    save_card(stripe_customer, fake_stripe, requires_action=True)
    purchase, invoice = top_up(stripe_customer, django_capture_on_commit_callbacks)
    payment = Payment.objects.get(invoice=invoice)
    assert (invoice.status, purchase.status) == ("finalized", "pending")

    event = intent_event(fake_stripe, payment, "payment_intent.succeeded", "succeeded")
    assert post(stripe_connection, event).status_code == 200

    purchase.refresh_from_db()
    invoice.refresh_from_db()
    assert purchase.status == "settled"
    assert purchase.wallet.balance_cents == 5000
    assert invoice.payment_status == "succeeded"
