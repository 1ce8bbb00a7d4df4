"""Credit note refunds become Stripe refunds of the invoice's payment, `charge.refund.updated`
sets the credit note's refund status, and a lost `charge.dispute.closed` marks the invoice's
dispute lost; through the real `stripe` SDK against the local fake Stripe."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from integrations.models import ProviderEvent
from integrations.services.invoice_collection import invoice_payment_collect
from invoicing.services.credit_notes import ItemInput, credit_note_create
from tests.integrations.test_invoice_payment_intent import save_card
from tests.integrations.test_stripe_webhooks import post
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

NOW = dt.datetime(2026, 3, 5, 12, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_pdfs(settings):
    settings.RECEIPT_PDF_ON_CREATE = False


@pytest.fixture
def paid(stripe_customer, organization, fake_stripe):
    """An invoice of 120.00 EUR paid through Stripe, and its payment."""
    save_card(stripe_customer, fake_stripe)
    invoice = build_invoice(
        organization, customer=stripe_customer, fees=[FeeSpec(amount_cents=12000)],
        number="ACME-0042",
    )  # fmt: skip
    payment = invoice_payment_collect(invoice_id=invoice.pk, actor=SYSTEM, now=NOW)
    invoice.refresh_from_db()
    assert invoice.payment_status == "succeeded"
    return invoice, payment


def refund_note(invoice, cents: int = 3000):
    return credit_note_create(
        invoice=invoice,
        actor=SYSTEM,
        now=NOW,
        items=[ItemInput(str(invoice.fees.get().pk), cents)],
        refund_amount_cents=cents,
    )


def test_a_credit_note_refund_is_refunded_at_stripe(
    paid, fake_stripe, django_capture_on_commit_callbacks
):
    invoice, payment = paid
    with django_capture_on_commit_callbacks(execute=True):
        note = refund_note(invoice)
    (call,) = fake_stripe.calls("POST", "/v1/refunds")
    assert call.params["payment_intent"] == payment.provider_payment_id
    assert call.params["amount"] == "3000"
    assert call.params["metadata"] == {
        "lago_customer_id": str(invoice.customer_id),
        "lago_credit_note_id": str(note.pk),
        "lago_invoice_id": str(invoice.pk),
    }
    assert call.idempotency_key == f"credit-note-refund-{note.pk}"
    note.refresh_from_db()
    assert note.refund_status == "pending"  # Stripe answers the refund pending


def refund_event(fake_stripe, note, status: str) -> dict:
    return fake_stripe.event(
        "charge.refund.updated",
        {
            "id": "re_1",
            "object": "refund",
            "status": status,
            "amount": note.refund_amount_cents,
            "metadata": {"lago_credit_note_id": str(note.pk)},
        },
    )


def test_refund_succeeded_at_stripe_sets_the_refund_status(
    paid, fake_stripe, stripe_connection, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        note = refund_note(paid[0])
    assert post(stripe_connection, refund_event(fake_stripe, note, "succeeded")).status_code == 200
    note.refresh_from_db()
    assert note.refund_status == "succeeded"
    assert note.refunded_at is not None


@pytest.mark.parametrize("status", ["failed", "canceled"])
def test_refund_failed_at_stripe_records_the_failure_once(
    paid, fake_stripe, stripe_connection, django_capture_on_commit_callbacks, status
):
    with django_capture_on_commit_callbacks(execute=True):
        note = refund_note(paid[0])
    event = refund_event(fake_stripe, note, status)
    assert post(stripe_connection, event).status_code == 200
    assert post(stripe_connection, event).status_code == 200  # a replay
    note.refresh_from_db()
    assert note.refund_status == "failed"
    assert OutboxEvent.objects.filter(event_type="credit_note.refund_failure").count() == 1


def test_a_refund_of_another_organization_credit_note_changes_nothing(
    paid, fake_stripe, stripe_connection, other_organization
):
    from tests.invoicing.credit_note_builders import simple_invoice

    foreign_invoice = simple_invoice(other_organization, paid=True)
    foreign = credit_note_create(
        invoice=foreign_invoice, actor=SYSTEM, now=NOW,
        items=[ItemInput(str(foreign_invoice.fees.get().pk), 1000)], refund_amount_cents=1200,
    )  # fmt: skip
    assert (
        post(stripe_connection, refund_event(fake_stripe, foreign, "succeeded")).status_code == 200
    )
    foreign.refresh_from_db()
    assert foreign.refund_status == "pending"
    assert ProviderEvent.objects.get().outcome.startswith("ignored")


def dispute_event(fake_stripe, payment, status: str) -> dict:
    return fake_stripe.event(
        "charge.dispute.closed",
        {
            "id": "dp_1",
            "object": "dispute",
            "status": status,
            "payment_intent": payment.provider_payment_id,
        },
    )


def test_a_lost_dispute_marks_the_invoice_dispute_lost(paid, fake_stripe, stripe_connection):
    invoice, payment = paid
    assert post(stripe_connection, dispute_event(fake_stripe, payment, "lost")).status_code == 200
    invoice.refresh_from_db()
    assert invoice.payment_dispute_lost_at is not None
    assert OutboxEvent.objects.filter(event_type="invoice.payment_dispute_lost").count() == 1
    assert ProviderEvent.objects.get().outcome == f"invoice {invoice.pk} dispute lost"


def test_a_won_dispute_changes_nothing(paid, fake_stripe, stripe_connection):
    invoice, payment = paid
    assert post(stripe_connection, dispute_event(fake_stripe, payment, "won")).status_code == 200
    invoice.refresh_from_db()
    assert invoice.payment_dispute_lost_at is None
    assert not OutboxEvent.objects.filter(event_type="invoice.payment_dispute_lost").exists()
