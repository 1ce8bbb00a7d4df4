"""A manual payment and Stripe's `payment_intent.succeeded` webhook finishing the same invoice
at once (real threads, each on its own PostgreSQL connection): the invoice is paid once, never
over-paid, with one receipt."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import pytest
from django.db import close_old_connections, connections

from billing.actors import SYSTEM
from billing.errors import Invalid
from billing.models import OutboxEvent
from integrations.services.invoice_collection import invoice_payment_collect
from invoicing.models import Invoice, Payment, PaymentReceipt
from invoicing.services.payment_settlement import payment_create_manual
from tests.integrations.test_invoice_collection import intent_event
from tests.integrations.test_invoice_payment_intent import save_card
from tests.integrations.test_stripe_webhooks import post
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = pytest.mark.django_db(transaction=True)
NOW = dt.datetime(2026, 4, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_pdfs(settings):
    settings.RECEIPT_PDF_ON_CREATE = False
    settings.INVOICE_PDF_ON_FINALIZE = False


def all_at_once(*calls: Callable[[], object]) -> list[object]:
    """Runs each call in its own thread, released together; their results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        close_old_connections()
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def pending_stripe_payment(customer, organization, fake_stripe) -> tuple[Invoice, Payment]:
    """A finalized invoice whose Stripe charge waits for 3-D Secure."""
    save_card(customer, fake_stripe, requires_action=True)
    invoice = build_invoice(
        organization, customer=customer, fees=[FeeSpec(amount_cents=10000)], number="ACME-0042"
    )
    payment = invoice_payment_collect(invoice_id=invoice.pk, actor=SYSTEM, now=NOW)
    assert payment.status == "requires_action"
    return invoice, payment


def manual(invoice: Invoice, cents: int) -> Callable[[], object]:
    return lambda: payment_create_manual(
        payable=invoice, amount_cents=cents, reference="wire", paid_at=None, actor=SYSTEM, now=NOW
    )


def webhook(connection, event: dict) -> Callable[[], object]:
    return lambda: post(connection, event).status_code


@pytest.mark.parametrize("repeat", range(3))
def test_a_manual_payment_and_the_stripe_webhook_pay_the_invoice_once(
    stripe_customer, organization, fake_stripe, stripe_connection, repeat
):
    invoice, payment = pending_stripe_payment(stripe_customer, organization, fake_stripe)
    event = intent_event(fake_stripe, payment, "payment_intent.succeeded", "succeeded")

    manual_result, status = all_at_once(manual(invoice, 10000), webhook(stripe_connection, event))

    assert status == 200
    invoice.refresh_from_db()
    assert invoice.total_paid_amount_cents == 10000
    assert invoice.payment_status == "succeeded"
    assert PaymentReceipt.objects.count() == 1
    assert OutboxEvent.objects.filter(event_type="invoice.payment_status_updated").count() == 1
    payment.refresh_from_db()
    if isinstance(manual_result, Exception):  # the webhook came first
        assert isinstance(manual_result, Invalid)
        assert payment.payable_payment_status == "succeeded"
    else:  # the manual payment came first: Stripe's report changes nothing
        assert payment.payable_payment_status == "pending"


def test_a_partial_manual_payment_and_the_stripe_webhook_never_over_pay(
    stripe_customer, organization, fake_stripe, stripe_connection
):
    invoice, payment = pending_stripe_payment(stripe_customer, organization, fake_stripe)
    event = intent_event(fake_stripe, payment, "payment_intent.succeeded", "succeeded")

    all_at_once(manual(invoice, 4000), webhook(stripe_connection, event))

    invoice.refresh_from_db()
    assert invoice.total_paid_amount_cents == 10000
    assert invoice.payment_status == "succeeded"
    assert OutboxEvent.objects.filter(event_type="invoice.payment_status_updated").count() == 1


def test_two_partial_manual_payments_finishing_the_invoice_mark_it_paid_once(
    stripe_customer, organization
):
    invoice = build_invoice(
        organization, customer=stripe_customer, fees=[FeeSpec(amount_cents=10000)]
    )
    Invoice.objects.filter(pk=invoice.pk).update(total_paid_amount_cents=4000)

    results = all_at_once(manual(invoice, 3000), manual(invoice, 3000))

    assert not [r for r in results if isinstance(r, Exception)]
    invoice.refresh_from_db()
    assert invoice.total_paid_amount_cents == 10000
    assert invoice.payment_status == "succeeded"
    assert OutboxEvent.objects.filter(event_type="invoice.payment_status_updated").count() == 1
    assert PaymentReceipt.objects.count() == 2  # one per payment, numbered without a gap
