"""Manual and provider payments of invoices: paid totals, payment status, events, receipts."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.actors import SYSTEM
from billing.errors import Invalid, NotAllowed, NotFound
from billing.models import OutboxEvent
from invoicing.models import Invoice, Payment, PaymentReceipt
from invoicing.services.payment_settlement import (
    payment_create_manual,
    payment_provider_attach,
    payment_provider_create,
    payment_provider_update,
    payments_total_succeeded,
)
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_receipt_pdf(settings):
    settings.RECEIPT_PDF_ON_CREATE = False


def pay(invoice, amount_cents, reference="wire-1", paid_at=None):
    return payment_create_manual(
        payable=invoice,
        amount_cents=amount_cents,
        reference=reference,
        paid_at=paid_at,
        actor=SYSTEM,
        now=NOW,
    )


def events(event_type):
    return list(OutboxEvent.objects.filter(event_type=event_type))


def test_a_partial_payment_adds_to_the_paid_total_and_keeps_the_invoice_pending(organization):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)])
    payment = pay(invoice, 4000)
    invoice.refresh_from_db()
    assert invoice.total_paid_amount_cents == 4000
    assert invoice.payment_status == Invoice.PaymentStatus.PENDING
    assert payment.payment_type == "manual"
    assert payment.payable_payment_status == "succeeded"
    assert payment.amount_currency == "EUR"
    assert events("invoice.payment_status_updated") == []


def test_the_payment_completing_the_total_marks_the_invoice_paid_and_not_overdue(organization):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)])
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)
    pay(invoice, 4000)
    pay(invoice, 6000, reference="wire-2")
    invoice.refresh_from_db()
    assert invoice.total_paid_amount_cents == 10000
    assert invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED
    assert invoice.payment_overdue is False
    assert len(events("invoice.payment_status_updated")) == 1
    assert len(events("payment.recorded")) == 2
    assert payments_total_succeeded(invoice_id=invoice.pk) == 10000


def test_an_over_payment_is_refused_and_writes_nothing(organization):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)])
    pay(invoice, 9000)
    with pytest.raises(Invalid) as refused:
        pay(invoice, 1001, reference="wire-2")
    assert refused.value.details == {"amount_cents": ["value_is_out_of_range"]}
    assert Payment.objects.count() == 1
    invoice.refresh_from_db()
    assert invoice.total_paid_amount_cents == 9000


@pytest.mark.parametrize("status", ["draft", "voided"])
def test_only_a_finalized_invoice_takes_a_manual_payment(organization, status):
    invoice = build_invoice(organization, status=status)
    with pytest.raises(NotAllowed, match="invoice_not_finalized"):
        pay(invoice, 100)


@pytest.mark.parametrize(
    ("amount", "reference", "details"),
    [
        pytest.param(0, "ref", {"amount_cents": ["invalid_value"]}, id="zero"),
        pytest.param(-5, "ref", {"amount_cents": ["invalid_value"]}, id="negative"),
        pytest.param("10", "ref", {"amount_cents": ["invalid_value"]}, id="string"),
        pytest.param(10, "", {"reference": ["value_is_mandatory"]}, id="no-reference"),
        pytest.param(10, "x" * 41, {"reference": ["value_is_too_long"]}, id="long-reference"),
    ],
)
def test_bad_manual_payment_input_is_refused(organization, amount, reference, details):
    invoice = build_invoice(organization)
    with pytest.raises(Invalid) as refused:
        pay(invoice, amount, reference=reference)
    assert refused.value.details == details


def test_paid_at_dates_the_payment(organization):
    invoice = build_invoice(organization)
    paid_at = dt.datetime(2026, 3, 15, 9, 30, tzinfo=dt.UTC)
    payment = pay(invoice, 100, paid_at=paid_at)
    payment.refresh_from_db()
    assert payment.created_at == paid_at


def test_each_succeeded_payment_gets_a_receipt_numbered_per_customer(organization):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)])
    invoice.customer.slug = "ACM-001"
    invoice.customer.save()
    pay(invoice, 1000)
    pay(invoice, 2000, reference="wire-2")
    numbers = sorted(PaymentReceipt.objects.values_list("number", flat=True))
    assert numbers == ["ACM-001-RCPT-000001", "ACM-001-RCPT-000002"]
    assert len(events("payment_receipt.created")) == 2


def test_no_receipt_while_the_organization_does_not_issue_them(organization):
    organization.issue_receipts = False
    organization.save()
    pay(build_invoice(organization), 100)
    assert PaymentReceipt.objects.count() == 0


# --- provider payments ------------------------------------------------------------------------


def provider_payment(invoice, provider_payment_id="pi_1", **extra):
    return payment_provider_create(
        payable=invoice,
        payment_provider_code="stripe_main",
        payment_provider_type="stripe",
        provider_customer_id="cus_1",
        provider_payment_id=provider_payment_id,
        actor=SYSTEM,
        now=NOW,
        **extra,
    )


def report(organization, status, payable_status, provider_payment_id="pi_1", **extra):
    return payment_provider_update(
        organization=organization,
        provider_payment_id=provider_payment_id,
        status=status,
        payable_payment_status=payable_status,
        actor=SYSTEM,
        now=NOW,
        **extra,
    )


def test_a_provider_payment_starts_pending_for_what_is_due(organization):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)])
    pay(invoice, 2500)
    payment = provider_payment(invoice)
    assert payment.payable_payment_status == "pending"
    assert payment.amount_cents == 7500
    assert payment.payment_type == "provider"
    assert payment.reference == ""


def test_creating_the_same_provider_payment_twice_returns_the_first(organization):
    invoice = build_invoice(organization)
    first = provider_payment(invoice)
    assert provider_payment(invoice) == first
    assert provider_payment(invoice, provider_payment_id=None) == first
    assert Payment.objects.count() == 1


def test_a_second_collection_while_one_is_in_flight_is_refused(organization):
    invoice = build_invoice(organization)
    provider_payment(invoice)
    with pytest.raises(NotAllowed, match="payment_already_in_progress"):
        provider_payment(invoice, provider_payment_id="pi_2")


def test_a_provider_id_attached_later_finds_the_payment(organization):
    invoice = build_invoice(organization)
    payment = provider_payment(invoice, provider_payment_id=None)
    payment_provider_attach(payment=payment, provider_payment_id="pi_9", actor=SYSTEM, now=NOW)
    assert report(organization, "succeeded", "succeeded", provider_payment_id="pi_9") == payment


def test_a_succeeded_provider_payment_pays_the_invoice_once_however_often_reported(organization):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)])
    provider_payment(invoice)
    report(organization, "processing", "processing")
    report(organization, "succeeded", "succeeded")
    report(organization, "succeeded", "succeeded")
    report(organization, "payment_failed", "failed")  # late: a succeeded payment stays so
    invoice.refresh_from_db()
    assert invoice.payment_status == "succeeded"
    assert invoice.total_paid_amount_cents == 10000
    assert len(events("payment.succeeded")) == 1
    assert len(events("invoice.payment_status_updated")) == 1
    assert PaymentReceipt.objects.count() == 1


def test_a_failed_provider_payment_fails_the_invoice_and_records_the_failure(organization):
    invoice = build_invoice(organization)
    provider_payment(invoice)
    report(organization, "payment_failed", "failed", error_code="card_declined")
    report(organization, "payment_failed", "failed", error_code="card_declined")
    invoice.refresh_from_db()
    assert invoice.payment_status == "failed"
    failures = events("invoice.payment_failure")
    assert len(failures) == 1
    assert failures[0].payload["error_code"] == "card_declined"
    # a new collection may start after a failure
    assert provider_payment(invoice, provider_payment_id="pi_2").payable_payment_status == "pending"


def test_requires_action_keeps_the_next_action_and_records_it(organization):
    invoice = build_invoice(organization)
    provider_payment(invoice)
    action = {"type": "redirect_to_url", "redirect_to_url": {"url": "https://pay.test/3ds"}}
    payment = report(organization, "requires_action", "pending", provider_payment_data=action)
    assert payment.provider_payment_data == action
    assert len(events("payment.requires_action")) == 1


def test_an_unknown_provider_payment_id_is_not_found(organization):
    with pytest.raises(NotFound):
        report(organization, "succeeded", "succeeded", provider_payment_id="pi_unknown")


def test_a_provider_payment_id_is_unique_per_organization(organization):
    first = build_invoice(organization)
    provider_payment(first, provider_payment_id="pi_7")
    other = build_invoice(organization)
    # the same id names the payment already recorded, never a second row
    assert provider_payment(other, provider_payment_id="pi_7").invoice_id == first.pk
    assert Payment.objects.count() == 1


def test_a_partner_accounts_payment_gets_no_receipt(organization):
    from tests.customers.factories import CustomerFactory

    partner = CustomerFactory(organization=organization, account_type="partner")
    pay(build_invoice(organization, customer=partner), 100)
    assert PaymentReceipt.objects.count() == 0
