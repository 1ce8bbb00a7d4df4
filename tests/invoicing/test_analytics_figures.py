"""The pre-summed fee figures stay equal to what the fees sum to, through finalize, void and a
lost dispute, and the figure-based reads give the same numbers as reading every fee."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction

from billing.actors import SYSTEM
from invoicing import analytics
from invoicing.models import MonthlyFeeFigure, SpreadFeeFigure
from invoicing.services.analytics_figures import figures_rebuild, figures_summed
from invoicing.services.finalization import finalize_computed
from invoicing.services.payments import invoice_lose_dispute
from invoicing.services.void import invoice_void
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice
from tests.plans.factories import PlanFactory, TaxFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)


@pytest.fixture
def org(organization):
    type(organization).objects.filter(pk=organization.pk).update(
        created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    )
    organization.refresh_from_db()
    return organization


def snapshot(org) -> tuple[set, set]:
    """The figures summed per key (their rows are signed changes)."""
    summed = figures_summed(org)
    monthly = {
        (*key[2:], net.normalize(), mrr.normalize(), count)
        for key, (net, mrr, count) in summed[MonthlyFeeFigure].items()
    }
    spread = {
        (*key[2:], mrr.normalize(), count) for key, (mrr, count) in summed[SpreadFeeFigure].items()
    }
    return monthly, spread


def invoice_with_fees(org, customer, *, interval="quarterly", status="draft"):
    plan = PlanFactory(organization=org, interval=interval, pay_in_advance=True)
    sub = SubscriptionFactory(organization=org, customer=customer, plan=plan)
    vat = TaxFactory(organization=org, rate="20.00")
    return build_invoice(
        org, customer=customer, subscription=sub, status=status, invoice_type="subscription",
        issuing_date=dt.date(2026, 4, 1), period=(dt.date(2026, 4, 1), dt.date(2026, 6, 30)),
        fees=[FeeSpec(kind="subscription", amount_cents=9000, taxes=[vat]),
              FeeSpec(kind="graduated", units=Decimal(1500), taxes=[vat])],
    )  # fmt: skip


def test_finalizing_records_the_fees_in_the_figures(org):
    invoice = invoice_with_fees(org, CustomerFactory(organization=org, timezone="UTC"))

    with transaction.atomic():
        finalize_computed(invoice, actor=SYSTEM, now=NOW)
    recorded = snapshot(org)
    figures_rebuild(organization=org)

    assert recorded == snapshot(org)
    assert len(recorded[0]) == 2  # the subscription fee and the charge
    assert len(recorded[1]) == 1  # the quarterly fee, spread


def test_voiding_takes_the_fees_out_of_the_figures(org):
    invoice = invoice_with_fees(org, CustomerFactory(organization=org, timezone="UTC"))
    with transaction.atomic():
        finalize_computed(invoice, actor=SYSTEM, now=NOW)

    invoice_void(invoice=invoice, actor=SYSTEM, now=NOW)

    assert snapshot(org) == (set(), set())


def test_a_lost_dispute_takes_the_fees_out_of_the_figures(org):
    invoice = invoice_with_fees(org, CustomerFactory(organization=org, timezone="UTC"))
    with transaction.atomic():
        finalize_computed(invoice, actor=SYSTEM, now=NOW)

    invoice_lose_dispute(invoice=invoice, actor=SYSTEM, now=NOW)

    assert snapshot(org) == (set(), set())


@pytest.mark.parametrize("interval", ["monthly", "weekly", "quarterly", "semiannual", "yearly"])
def test_figure_reads_equal_reads_of_every_fee(org, interval):
    customer = CustomerFactory(organization=org, timezone="UTC", external_id="only")
    invoice_with_fees(org, customer, interval=interval, status="finalized")
    invoice_with_fees(org, customer, interval="monthly", status="finalized")
    figures_rebuild(organization=org)
    from_figures = analytics.Filters(organization=org, today=NOW.date())
    from_fees = analytics.Filters(organization=org, today=NOW.date(), external_customer_id="only")

    mrr_figures, mrr_fees = analytics.mrr_by_month(from_figures), analytics.mrr_by_month(from_fees)
    assert mrr_figures.keys() == mrr_fees.keys()
    for key, amount in mrr_fees.items():
        assert abs(mrr_figures[key] - amount) < Decimal("0.000001"), key
    assert analytics.invoiced_usages(from_figures) == analytics.invoiced_usages(from_fees)
    assert analytics.revenue_by_stream(from_figures) == analytics.revenue_by_stream(from_fees)


def test_the_rebuild_command_reports_without_writing_on_dry_run(org):
    from io import StringIO

    from django.core.management import call_command

    invoice_with_fees(org, CustomerFactory(organization=org, timezone="UTC"), status="finalized")
    out = StringIO()

    call_command("analytics_figures_rebuild", "--organization", org.name, "--dry-run", stdout=out)

    assert "would write 2 monthly and 1 spread rows (they differed)" in out.getvalue()
    assert snapshot(org) == (set(), set())
