"""The demo's twelve months of invoice history: figures on every chart of the overview."""

from __future__ import annotations

import datetime as dt

import pytest

from customers import demo as customers_demo
from customers.models import Subscription
from invoicing import analytics, demo_history
from invoicing.models import Invoice, Payment
from plans import demo as plans_demo

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def seeded(organization):
    plans_demo.seed(organization=organization, now=NOW)
    customers_demo.seed(organization=organization, now=NOW)
    summary = demo_history.seed(organization=organization, now=NOW)
    organization.refresh_from_db()
    return summary


def window(organization) -> analytics.Filters:
    return analytics.Filters(organization=organization, today=NOW.date(), currency="EUR",
                             months=12)  # fmt: skip


def test_the_history_covers_twelve_months_of_mrr(organization, seeded):
    totals = analytics.mrr_by_month(window(organization))

    months = window(organization).month_list()
    assert len(months) == 12
    assert all(totals.get((month, "EUR"), 0) > 0 for month in months)
    assert totals[(months[-1], "EUR")] > totals[(months[0], "EUR")]


def test_the_history_has_paid_late_overdue_failed_and_voided_invoices(organization, seeded):
    invoices = Invoice.objects.filter(organization=organization, number__startswith="DEMO-H")

    assert invoices.filter(status="voided").count() == 1
    assert invoices.filter(payment_status="succeeded").count() > 50
    assert invoices.filter(payment_overdue=True).exists()
    assert invoices.filter(payment_status="failed").count() == 1


def test_every_paid_history_invoice_has_the_payment_that_paid_it(organization, seeded):
    invoices = Invoice.objects.filter(
        organization=organization, number__startswith="DEMO-H", payment_status="succeeded"
    )

    for invoice in invoices:
        [payment] = Payment.objects.filter(invoice=invoice)
        assert payment.amount_cents == invoice.total_paid_amount_cents
        assert payment.payable_payment_status == "succeeded"
        assert invoice.issuing_date < payment.created_at.date()


def test_history_fees_carry_their_unit_price_and_period(organization, seeded):
    invoice = Invoice.objects.filter(
        organization=organization, number__startswith="DEMO-H", invoice_type="subscription"
    ).latest("issuing_date")

    for fee in invoice.fees.exclude(fee_type="add_on"):
        assert fee.precise_unit_amount * fee.units * 100 == pytest.approx(fee.amount_cents, abs=1)
        assert fee.properties["from_datetime"] < fee.properties["to_datetime"]


def test_the_history_has_an_upgrade_and_a_churned_customer(organization, seeded):
    subscriptions = Subscription.objects.filter(organization=organization)

    upgraded = subscriptions.get(external_id="demo_h_initech_business")
    assert upgraded.previous_subscription.plan.code == "starter"
    churned = subscriptions.get(external_id="demo_h_hooli_main")
    assert churned.status == "terminated"


def test_every_revenue_stream_shows_up(organization, seeded):
    streams = analytics.revenue_by_stream(window(organization))

    for name in ("subscription", "usage", "fixed", "commitment", "one_off"):
        assert sum(month[name] for month in streams.values()) > 0, name


def test_seeding_again_changes_nothing(organization, seeded):
    count = Invoice.objects.filter(organization=organization).count()

    assert demo_history.seed(organization=organization, now=NOW) == "history already there"
    assert Invoice.objects.filter(organization=organization).count() == count
