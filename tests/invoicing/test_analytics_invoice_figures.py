"""The invoice totals pre-summed per issuing month (`MonthlyInvoiceFigure`) follow finalization,
refunds by credit note, void and a lost dispute through the services, equal a rebuild, and the
gross revenue read from them equals the one read from every invoice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction

from billing.actors import SYSTEM
from invoicing import analytics
from invoicing.models import Invoice, MonthlyInvoiceFigure
from invoicing.services.analytics_figures import figures_rebuild, figures_summed
from invoicing.services.credit_notes import ItemInput, credit_note_create
from invoicing.services.finalization import finalize_computed
from invoicing.services.payments import invoice_lose_dispute
from invoicing.services.void import invoice_void
from tests.customers.factories import CustomerFactory
from tests.invoicing.credit_note_builders import simple_invoice

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)


@pytest.fixture
def org(organization):
    type(organization).objects.filter(pk=organization.pk).update(
        created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    )
    organization.refresh_from_db()
    return organization


@pytest.fixture
def cust(org):
    return CustomerFactory(organization=org, timezone="UTC", currency="EUR", external_id="only")


def figures(org) -> set[tuple]:
    """The figures summed per key (their rows are signed changes)."""
    return {
        (month, currency, count, total, refund)
        for (_, currency, month), (count, total, refund) in figures_summed(org)[
            MonthlyInvoiceFigure
        ].items()
        if count
    }


def finalized(org, cust, *, amount_cents=10000, issuing=dt.date(2026, 3, 5)) -> Invoice:
    invoice = simple_invoice(
        org, customer=cust, status="draft", amount_cents=amount_cents, issuing_date=issuing
    )
    with transaction.atomic():
        finalize_computed(invoice, actor=SYSTEM, now=NOW)
    invoice.refresh_from_db()
    return invoice


def refund(invoice: Invoice, amount_cents: int, refund_cents: int):
    Invoice.objects.filter(pk=invoice.pk).update(
        payment_status="succeeded", total_paid_amount_cents=invoice.total_amount_cents
    )
    invoice.refresh_from_db()
    fee = invoice.fees.get()
    return credit_note_create(
        invoice=invoice, actor=SYSTEM, now=NOW, refund_amount_cents=refund_cents,
        items=[ItemInput(fee_id=str(fee.pk), amount_cents=Decimal(amount_cents))],
    )  # fmt: skip


def test_finalization_and_a_refund_are_recorded_as_a_rebuild_finds_them(org, cust):
    invoice = finalized(org, cust)
    total = invoice.total_amount_cents
    refund(invoice, 5000, 6000)
    recorded = figures(org)

    figures_rebuild(organization=org)

    assert recorded == figures(org) == {(dt.date(2026, 3, 1), "EUR", 1, total, 6000)}


def test_gross_revenue_from_the_figures_nets_the_refund_without_a_rebuild(org, cust):
    # 12,000 and 24,000 issued in March, 6,000 refunded: 30,000
    refund(finalized(org, cust), 5000, 6000)
    finalized(org, cust, amount_cents=20000, issuing=dt.date(2026, 3, 25))
    read = analytics.Filters(organization=org, today=NOW.date())

    [row] = [r for r in analytics.gross_revenues(read) if r["month"] == "2026-03-01T00:00:00Z"]

    assert (row["amount_cents"], row["invoices_count"]) == (30000, 2)


def test_void_takes_the_invoice_out_of_the_figures(org, cust):
    invoice = finalized(org, cust)

    invoice_void(invoice=invoice, actor=SYSTEM, now=NOW)

    assert figures(org) == set()


def test_a_lost_dispute_takes_the_invoice_and_its_refunds_out(org, cust):
    invoice = finalized(org, cust)
    refund(invoice, 2000, 2400)
    invoice.refresh_from_db()

    invoice_lose_dispute(invoice=invoice, actor=SYSTEM, now=NOW)

    assert figures(org) == set()


def test_gross_revenue_from_figures_equals_the_read_of_every_invoice(org, cust):
    refund(finalized(org, cust), 5000, 6000)
    finalized(org, cust, amount_cents=7000, issuing=dt.date(2026, 5, 2))
    simple_invoice(org, customer=cust, issuing_date=dt.date(2026, 4, 9))  # written in bulk
    figures_rebuild(organization=org)
    from_figures = analytics.Filters(organization=org, today=NOW.date())
    from_invoices = analytics.Filters(
        organization=org, today=NOW.date(), external_customer_id="only"
    )

    assert analytics.gross_revenues(from_figures) == analytics.gross_revenues(from_invoices)
