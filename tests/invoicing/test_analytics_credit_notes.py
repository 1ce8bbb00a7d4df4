"""Credit notes in the analytics, as Lago counts them: refunds lower gross revenue (in the
invoice's issuing month), offsets lower the overdue balance and the receivables, and invoice
collection still shows the invoices' totals. The credit notes are made by the credit-note
service; every amount is computed by hand in the comments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.actors import SYSTEM
from invoicing import analytics
from invoicing.analytics import Filters
from invoicing.models import Invoice
from invoicing.services.analytics_figures import figures_rebuild
from invoicing.services.credit_notes import ItemInput, credit_note_create
from tests.customers.factories import CustomerFactory
from tests.invoicing.credit_note_builders import simple_invoice

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 15)
NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)
MARCH = "2026-03-01T00:00:00Z"


@pytest.fixture
def org(organization):
    type(organization).objects.filter(pk=organization.pk).update(
        created_at=dt.datetime(2025, 1, 10, tzinfo=dt.UTC)
    )
    organization.refresh_from_db()
    return organization


@pytest.fixture
def cust(org):
    return CustomerFactory(organization=org, timezone="UTC", currency="EUR")


def read(org) -> Filters:
    figures_rebuild(organization=org)
    return Filters(organization=org, today=TODAY)


def credit_note(invoice, amount_cents: int, **split):
    fee = invoice.fees.get()
    return credit_note_create(
        invoice=invoice, actor=SYSTEM, now=NOW,
        items=[ItemInput(fee_id=str(fee.pk), amount_cents=Decimal(amount_cents))], **split,
    )  # fmt: skip


def march(rows: list[dict]) -> list[dict]:
    return [row for row in rows if row["month"] == MARCH and row["currency"] == "EUR"]


def test_a_refund_lowers_gross_revenue_of_the_invoice_month(org, cust):
    # 10,000 + 20% tax = 12,000, paid; a refund of 5,000 + 1,000 tax = 6,000
    invoice = simple_invoice(org, customer=cust, paid=True, issuing_date=dt.date(2026, 3, 5))
    note = credit_note(invoice, 5000, refund_amount_cents=6000)
    assert note.refund_amount_cents == 6000

    [row] = march(analytics.gross_revenues(read(org)))

    assert (row["amount_cents"], row["invoices_count"]) == (12000 - 6000, 1)


def test_credit_to_the_customer_does_not_lower_gross_revenue(org, cust):
    # a credit (to be used on later invoices) is not money given back: Lago nets refunds only
    invoice = simple_invoice(org, customer=cust, paid=True, issuing_date=dt.date(2026, 3, 5))
    credit_note(invoice, 5000, credit_amount_cents=6000)

    [row] = march(analytics.gross_revenues(read(org)))

    assert row["amount_cents"] == 12000


def test_two_refunds_on_two_invoices_of_the_month(org, cust):
    # 12,000 - 2,400 (2,000 + tax) and 24,000 - 1,200 (1,000 + tax): 36,000 - 3,600 = 32,400
    first = simple_invoice(org, customer=cust, paid=True, issuing_date=dt.date(2026, 3, 5))
    second = simple_invoice(org, customer=cust, paid=True, amount_cents=20000,
                            issuing_date=dt.date(2026, 3, 20))  # fmt: skip
    credit_note(first, 2000, refund_amount_cents=2400)
    credit_note(second, 1000, refund_amount_cents=1200)

    [row] = march(analytics.gross_revenues(read(org)))

    assert (row["amount_cents"], row["invoices_count"]) == (32400, 2)


def test_invoice_collection_keeps_the_invoice_totals(org, cust):
    invoice = simple_invoice(org, customer=cust, paid=True, issuing_date=dt.date(2026, 3, 5))
    credit_note(invoice, 5000, refund_amount_cents=6000)

    rows = march(analytics.invoice_collections(read(org)))

    assert [(r["payment_status"], r["invoices_count"], r["amount_cents"]) for r in rows] == [
        ("succeeded", 1, 12000)
    ]


def test_an_offset_lowers_the_overdue_balance(org, cust):
    # 12,000 due, 2,000 paid, 4,800 (4,000 + tax) offset: 5,200 left, due in April
    invoice = simple_invoice(org, customer=cust, issuing_date=dt.date(2026, 3, 5))
    Invoice.objects.filter(pk=invoice.pk).update(total_paid_amount_cents=2000)
    invoice.refresh_from_db()
    credit_note(invoice, 4000, offset_amount_cents=4800)
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)

    rows = analytics.overdue_balances(read(org))

    assert [(r["month"], r["amount_cents"], r["lago_invoice_ids"]) for r in rows] == [
        ("2026-04-01T00:00:00Z", 5200, [str(invoice.pk)])
    ]


def test_an_offset_lowers_outstanding_and_overdue_receivables(org, cust):
    # 12,000 with 4,800 offset: 7,200 outstanding and overdue; 24,000 untouched and not overdue
    offset = simple_invoice(org, customer=cust, issuing_date=dt.date(2026, 3, 5))
    credit_note(offset, 4000, offset_amount_cents=4800)
    Invoice.objects.filter(pk=offset.pk).update(payment_overdue=True)
    simple_invoice(org, customer=cust, amount_cents=20000, issuing_date=dt.date(2026, 5, 5))

    figures = analytics.receivables(read(org))

    assert figures == {"EUR": analytics.Receivables(7200 + 24000, 2, 7200, 1, 0, 0)}


def test_an_invoice_fully_offset_is_no_longer_outstanding(org, cust):
    invoice = simple_invoice(org, customer=cust, issuing_date=dt.date(2026, 3, 5))
    credit_note(invoice, 10000, offset_amount_cents=12000)

    assert analytics.receivables(read(org)) == {}
