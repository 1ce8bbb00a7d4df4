"""Payments finishing an invoice at once (real threads, PostgreSQL): the invoice is marked paid
once and never over-paid."""

import datetime as dt
import threading

import pytest
from django.db import close_old_connections, connections

from billing.actors import SYSTEM
from billing.errors import Invalid
from billing.models import OutboxEvent
from invoicing.models import Invoice, Payment, PaymentReceipt
from invoicing.services.payment_settlement import payment_create_manual
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = pytest.mark.django_db(transaction=True)
NOW = dt.datetime(2026, 4, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_receipt_pdf(settings):
    settings.RECEIPT_PDF_ON_CREATE = False


def pay_all_at_once(invoice: Invoice, amounts: list[int]) -> list[Exception]:
    barrier = threading.Barrier(len(amounts))
    errors: list[Exception] = []

    def pay(index: int, amount: int) -> None:
        close_old_connections()
        try:
            barrier.wait()
            payment_create_manual(
                payable=invoice,
                amount_cents=amount,
                reference=f"wire-{index}",
                paid_at=None,
                actor=SYSTEM,
                now=NOW,
            )
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=pay, args=(index, amount)) for index, amount in enumerate(amounts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_two_payments_each_finishing_the_invoice_pay_it_once(organization):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)])
    Invoice.objects.filter(pk=invoice.pk).update(total_paid_amount_cents=4000)

    errors = pay_all_at_once(invoice, [6000, 6000])

    assert len(errors) == 1
    assert isinstance(errors[0], Invalid)
    invoice.refresh_from_db()
    assert invoice.total_paid_amount_cents == 10000
    assert invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED
    assert Payment.objects.count() == 1
    assert OutboxEvent.objects.filter(event_type="invoice.payment_status_updated").count() == 1


def test_ten_partial_payments_at_once_add_up_exactly(organization):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)])

    errors = pay_all_at_once(invoice, [1000] * 10)

    assert errors == []
    invoice.refresh_from_db()
    assert invoice.total_paid_amount_cents == 10000
    assert invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED
    assert OutboxEvent.objects.filter(event_type="invoice.payment_status_updated").count() == 1
    numbers = sorted(PaymentReceipt.objects.values_list("number", flat=True))
    assert len(set(numbers)) == 10  # one gapless counter per customer
    assert numbers[-1].endswith("-RCPT-000010")
