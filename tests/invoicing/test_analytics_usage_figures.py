"""The daily usage figures stay equal to what the charge fees sum to (finalize, void, a lost
dispute, a customer's new type or country, pay-in-advance fees without invoice), and the usage
analytics read from them give what a read of every fee gives, with each of Lago's filters."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import transaction

from billing.actors import SYSTEM
from invoicing import analytics
from invoicing.models import DailyUsageFigure, Fee
from invoicing.services.analytics_figures import figures_rebuild, figures_summed
from invoicing.services.finalization import finalize_computed
from invoicing.services.payments import invoice_lose_dispute
from invoicing.services.void import invoice_void
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice
from tests.plans.factories import PlanFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)
# fee creation instants spread over weeks and months (and both sides of a UTC midnight)
DAYS = [
    dt.datetime(2026, 3, 30, 23, 59, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 31, 0, 0, 1, tzinfo=dt.UTC),
    dt.datetime(2026, 4, 1, 8, tzinfo=dt.UTC),
    dt.datetime(2026, 4, 6, 12, tzinfo=dt.UTC),
    dt.datetime(2026, 5, 17, 18, tzinfo=dt.UTC),
    dt.datetime(2026, 6, 1, 0, 0, tzinfo=dt.UTC),
]


def snapshot(org) -> set:
    """The figures summed per key (their rows are signed changes)."""
    return {
        (*key, amount, units.normalize(), count)
        for key, (amount, units, count) in figures_summed(org)[DailyUsageFigure].items()
    }


def reference(org, filters: analytics.UsageFilters) -> list[dict]:
    """What `analytics.usages` should answer, from every fee, in Python."""
    totals: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0)])
    fees = Fee.objects.filter(organization=org, fee_type=Fee.FeeType.CHARGE).select_related(
        "invoice", "customer", "subscription", "charge__plan", "charge__billable_metric"
    )
    for fee in fees:
        invoice = fee.invoice
        if fee.deleted_at is not None:
            continue
        if invoice is None and not fee.pay_in_advance:
            continue
        if invoice is not None and (
            invoice.status != "finalized" or invoice.self_billed or invoice.payment_dispute_lost_at
        ):
            continue
        day = fee.created_at.astimezone(dt.UTC).date()
        metric = fee.charge.billable_metric
        if (filters.from_date and day < filters.from_date) or (
            filters.to_date and day > filters.to_date
        ):
            continue
        checks = [
            (filters.currency, fee.amount_currency),
            (filters.customer_type, fee.customer.customer_type),
            (filters.customer_country, fee.customer.country),
            (filters.external_customer_id, fee.customer.external_id),
            (filters.external_subscription_id, fee.subscription.external_id),
            (filters.plan_code, fee.charge.plan.code),
            (filters.billable_metric_code, metric.code),
            (filters.is_billable_metric_recurring, metric.recurring),
        ]
        if any(wanted is not None and wanted != actual for wanted, actual in checks):
            continue
        if filters.time_granularity == "weekly":
            start = day - dt.timedelta(days=day.weekday())
        elif filters.time_granularity == "monthly":
            start = day.replace(day=1)
        else:
            start = day
        entry = totals[(start, fee.amount_currency, metric.code, metric.deleted_at)]
        entry[0] += fee.amount_cents
        entry[1] += fee.units
    return sorted(
        (start.isoformat(), currency, code, amount, units.normalize(), deleted is not None)
        for (start, currency, code, deleted), (amount, units) in totals.items()
    )


def read(org, filters: analytics.UsageFilters) -> list[tuple]:
    return sorted(
        (row["start_of_period_dt"], row["amount_currency"], row["billable_metric_code"],
         row["amount_cents"], Decimal(row["units"]).normalize(), row["is_billable_metric_deleted"])
        for row in analytics.usages(org, filters)
    )  # fmt: skip


@pytest.fixture
def world(organization):
    """Customers of each type and two countries on monthly, quarterly and yearly plans, each with
    finalized invoices whose charge fees were created on the days above, in two currencies; one
    pay-in-advance fee without invoice."""
    org = organization
    customers = [
        CustomerFactory(organization=org, external_id="c-fr", customer_type="company",
                        country="FR", timezone="UTC"),
        CustomerFactory(organization=org, external_id="c-de", customer_type="individual",
                        country="DE", timezone="UTC"),
        CustomerFactory(organization=org, external_id="c-none", customer_type=None, country="",
                        timezone="UTC"),
    ]  # fmt: skip
    invoices = []
    for index, interval in enumerate(["monthly", "quarterly", "yearly", "monthly", "yearly"]):
        customer = customers[index % len(customers)]
        plan = PlanFactory(organization=org, interval=interval, code=f"plan-{index}-{interval}")
        subscription = SubscriptionFactory(
            organization=org, customer=customer, plan=plan, external_id=f"sub-{index}"
        )
        for number, created in enumerate(DAYS[index % 2 :: 2]):
            invoice = build_invoice(
                org, customer=customer, subscription=subscription, status="draft",
                invoice_type="subscription", currency="USD" if index == 3 else "EUR",
                period=(dt.date(2025, 1 + number, 1), dt.date(2025, 1 + number, 28)),
                fees=[FeeSpec(kind="subscription", amount_cents=5000),
                      FeeSpec(kind="graduated", units=Decimal(100 + 37 * index + number)),
                      FeeSpec(kind="graduated", units=Decimal("12.5"))],
            )  # fmt: skip
            invoice.fees.update(created_at=created)
            with transaction.atomic():
                finalize_computed(invoice, actor=SYSTEM, now=NOW)
            invoices.append(invoice)
    charge_fee = Fee.objects.filter(organization=org, fee_type=Fee.FeeType.CHARGE).first()
    Fee.objects.create(
        organization=org, customer=charge_fee.customer, subscription=charge_fee.subscription,
        charge=charge_fee.charge, fee_type=Fee.FeeType.CHARGE, amount_cents=333,
        amount_currency="EUR", units=Decimal(3), pay_in_advance=True, invoiceable=False,
        pay_in_advance_event_transaction_id="tr-1",
    )  # fmt: skip
    Fee.objects.filter(pay_in_advance_event_transaction_id="tr-1").update(created_at=DAYS[2])
    return org, invoices


FILTERS = [
    analytics.UsageFilters(),
    analytics.UsageFilters(time_granularity="weekly"),
    analytics.UsageFilters(time_granularity="monthly"),
    analytics.UsageFilters(from_date=dt.date(2026, 3, 31), to_date=dt.date(2026, 4, 6)),
    analytics.UsageFilters(time_granularity="monthly", from_date=dt.date(2026, 4, 1)),
    analytics.UsageFilters(currency="USD"),
    analytics.UsageFilters(customer_type="company"),
    analytics.UsageFilters(customer_type="individual", time_granularity="weekly"),
    analytics.UsageFilters(customer_country="DE"),
    analytics.UsageFilters(external_customer_id="c-fr"),
    analytics.UsageFilters(external_subscription_id="sub-1", time_granularity="monthly"),
    analytics.UsageFilters(plan_code="plan-2-yearly"),
    analytics.UsageFilters(is_billable_metric_recurring=False),
    analytics.UsageFilters(is_billable_metric_recurring=True),
]


@pytest.mark.parametrize("filters", FILTERS, ids=repr)
def test_usage_read_equals_a_read_of_every_fee(world, filters):
    org, _ = world

    assert read(org, filters) == reference(org, filters)


def test_usage_read_with_a_metric_code_equals_a_read_of_every_fee(world):
    org, _ = world
    code = Fee.objects.filter(organization=org, fee_type="charge").first().charge.billable_metric
    filters = analytics.UsageFilters(billable_metric_code=code.code)

    assert read(org, filters) == reference(org, filters)
    assert read(org, filters)  # the metric has usage


def test_finalizing_records_the_usage_that_the_rebuild_finds(world):
    org, _ = world
    recorded = snapshot(org)

    figures_rebuild(organization=org)

    assert recorded
    assert snapshot(org) == recorded


def test_voiding_takes_the_usage_out(world):
    org, invoices = world
    invoice_void(invoice=invoices[0], actor=SYSTEM, now=NOW)

    assert read(org, FILTERS[0]) == reference(org, FILTERS[0])
    recorded = snapshot(org)
    figures_rebuild(organization=org)
    assert snapshot(org) == recorded


def test_a_lost_dispute_takes_the_usage_out(world):
    org, invoices = world
    invoice_lose_dispute(invoice=invoices[3], actor=SYSTEM, now=NOW)

    assert read(org, FILTERS[5]) == reference(org, FILTERS[5])
    recorded = snapshot(org)
    figures_rebuild(organization=org)
    assert snapshot(org) == recorded


@pytest.mark.parametrize(
    ("field", "value", "filters"),
    [
        ("country", "DE", analytics.UsageFilters(customer_country="DE")),
        ("customer_type", "individual", analytics.UsageFilters(customer_type="individual")),
        ("customer_type", None, analytics.UsageFilters(customer_type="company")),
    ],
)
def test_a_customer_changing_type_or_country_moves_its_usage(world, field, value, filters):
    org, _ = world
    customer = type(Fee.objects.first().customer).objects.get(organization=org, external_id="c-fr")
    setattr(customer, field, value)
    customer.save()

    assert read(org, filters) == reference(org, filters)
    recorded = snapshot(org)
    figures_rebuild(organization=org)
    assert snapshot(org) == recorded


def test_pay_in_advance_fees_without_invoice_count_at_once(world):
    org, _ = world
    before = sum(row[3] for row in read(org, FILTERS[0]))
    fee = Fee.objects.filter(pay_in_advance_event_transaction_id="tr-1").get()
    fee.pk, fee.pay_in_advance_event_transaction_id = None, "tr-2"
    fee.save()

    assert sum(row[3] for row in read(org, FILTERS[0])) == before + 333
    assert read(org, FILTERS[0]) == reference(org, FILTERS[0])


def test_the_rebuild_command_writes_the_usage_figures(world):
    from django.core.management import call_command

    org, _ = world
    recorded = snapshot(org)
    DailyUsageFigure.objects.filter(organization=org).delete()

    call_command("analytics_figures_rebuild", "--organization", org.name, stdout=None)

    assert snapshot(org) == recorded
