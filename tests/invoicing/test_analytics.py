"""Analytics figures against invoices whose amounts are computed by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.services import billing_entity_create
from invoicing import analytics
from invoicing.analytics import Filters
from invoicing.models import Fee, Invoice
from invoicing.services.analytics_figures import figures_rebuild
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.invoicing.invoice_builders import FeeSpec, apply_coupon, build_invoice
from tests.plans.factories import PlanFactory, TaxFactory

pytestmark = pytest.mark.django_db

TODAY = dt.date(2026, 6, 15)


@pytest.fixture
def org(organization):
    type(organization).objects.filter(pk=organization.pk).update(
        created_at=dt.datetime(2025, 1, 10, tzinfo=dt.UTC)
    )
    organization.refresh_from_db()
    return organization


def filters(org, **kwargs) -> Filters:
    """Filters of a read; the fee figures are rebuilt first (the builders write rows directly,
    not through the services that keep the figures)."""
    figures_rebuild(organization=org)
    return Filters(organization=org, today=TODAY, **kwargs)


def customer(org, **kwargs):
    return CustomerFactory(organization=org, timezone="UTC", **kwargs)


def subscription(org, cust, *, interval="monthly", pay_in_advance=False, amount=0):
    plan = PlanFactory(
        organization=org, interval=interval, pay_in_advance=pay_in_advance, amount_cents=amount
    )
    return SubscriptionFactory(organization=org, customer=cust, plan=plan)


def subscription_invoice(org, cust, sub, amount, *, issuing, period, taxes=(), **kwargs):
    return build_invoice(
        org,
        customer=cust,
        subscription=sub,
        invoice_type="subscription",
        issuing_date=issuing,
        period=period,
        fees=[FeeSpec(kind="subscription", amount_cents=amount, taxes=list(taxes))],
        **kwargs,
    )


# --- months ------------------------------------------------------------------------------------


def test_months_run_from_the_organization_creation_month_to_the_current_month(org):
    months = filters(org).month_list()
    assert months[0] == dt.date(2025, 1, 1)
    assert months[-1] == dt.date(2026, 6, 1)
    assert len(months) == 18


def test_months_filter_keeps_the_last_n_months(org):
    assert filters(org, months=2).month_list() == [dt.date(2026, 5, 1), dt.date(2026, 6, 1)]


# --- gross revenue ----------------------------------------------------------------------------


def test_gross_revenue_sums_finalized_invoice_totals_per_issuing_month_and_currency(org):
    cust = customer(org)
    vat = TaxFactory(organization=org, rate="20.00")
    # 100.00 + 20% VAT = 120.00
    build_invoice(org, customer=cust, issuing_date=dt.date(2026, 3, 5),
                  fees=[FeeSpec(amount_cents=10000, taxes=[vat])])  # fmt: skip
    # 50.00 - 10.00 coupon = 40.00
    coupon = apply_coupon(org, cust, amount_cents=1000)
    build_invoice(org, customer=cust, issuing_date=dt.date(2026, 3, 20), applied_coupon=coupon,
                  coupon_amount_cents=1000, fees=[FeeSpec(amount_cents=5000)])  # fmt: skip
    usd = customer(org, currency="USD")
    build_invoice(org, customer=usd, currency="USD", issuing_date=dt.date(2026, 4, 2),
                  fees=[FeeSpec(amount_cents=3000)])  # fmt: skip
    # none of these count: voided, draft, self-billed, lost dispute
    build_invoice(org, customer=cust, status="voided", issuing_date=dt.date(2026, 3, 6))
    build_invoice(org, customer=cust, status="draft", issuing_date=dt.date(2026, 3, 6))
    Invoice.objects.filter(
        pk=build_invoice(org, customer=cust, issuing_date=dt.date(2026, 3, 7)).pk
    ).update(self_billed=True)
    Invoice.objects.filter(
        pk=build_invoice(org, customer=cust, issuing_date=dt.date(2026, 3, 8)).pk
    ).update(payment_dispute_lost_at=dt.datetime(2026, 4, 1, tzinfo=dt.UTC))

    rows = analytics.gross_revenues(filters(org))

    entity = str(org.default_billing_entity().pk)
    assert rows == [
        {"month": "2026-03-01T00:00:00Z", "amount_cents": 16000, "currency": "EUR",
         "invoices_count": 2, "billing_entity_id": entity},
        {"month": "2026-04-01T00:00:00Z", "amount_cents": 3000, "currency": "USD",
         "invoices_count": 1, "billing_entity_id": entity},
    ]  # fmt: skip


def test_gross_revenue_adds_uninvoiced_pay_in_advance_fees_by_creation_month(org):
    cust = customer(org)
    sub = subscription(org, cust)
    fee = Fee.objects.create(
        organization=org, customer=cust, subscription=sub, fee_type="charge",
        amount_cents=250, amount_currency="EUR", pay_in_advance=True, invoiceable=False,
    )  # fmt: skip
    Fee.objects.filter(pk=fee.pk).update(created_at=dt.datetime(2026, 5, 31, 23, tzinfo=dt.UTC))

    rows = analytics.gross_revenues(filters(org))

    assert [(r["month"], r["amount_cents"], r["invoices_count"]) for r in rows] == [
        ("2026-05-01T00:00:00Z", 250, 0)
    ]


def test_gross_revenue_filters_by_customer_currency_entity_and_months(org):
    first, second = customer(org), customer(org)
    other_entity = billing_entity_create(organization=org, code="eu", name="EU")
    build_invoice(org, customer=first, issuing_date=dt.date(2026, 5, 2),
                  fees=[FeeSpec(amount_cents=1000)])  # fmt: skip
    build_invoice(org, customer=second, issuing_date=dt.date(2026, 5, 3),
                  fees=[FeeSpec(amount_cents=2000)])  # fmt: skip
    build_invoice(org, customer=first, issuing_date=dt.date(2026, 3, 3),
                  fees=[FeeSpec(amount_cents=4000)])  # fmt: skip
    moved = build_invoice(org, customer=first, issuing_date=dt.date(2026, 5, 4),
                          fees=[FeeSpec(amount_cents=8000)])  # fmt: skip
    Invoice.objects.filter(pk=moved.pk).update(billing_entity=other_entity)

    def total(**kwargs):
        return sum(r["amount_cents"] for r in analytics.gross_revenues(filters(org, **kwargs)))

    assert total() == 15000
    assert total(external_customer_id=first.external_id) == 13000
    assert total(billing_entity=other_entity) == 8000
    assert total(months=2) == 11000
    assert total(currency="USD") == 0


# --- MRR --------------------------------------------------------------------------------------


def test_mrr_counts_a_monthly_fee_with_taxes_less_coupons_in_its_issuing_month(org):
    cust = customer(org)
    sub = subscription(org, cust)
    vat = TaxFactory(organization=org, rate="20.00")
    coupon = apply_coupon(org, cust, amount_cents=1000)
    # 30.00 - 10.00 coupon = 20.00, + 20% VAT = 24.00
    subscription_invoice(org, cust, sub, 3000, issuing=dt.date(2026, 4, 1), taxes=[vat],
                         period=(dt.date(2026, 3, 1), dt.date(2026, 3, 31)),
                         applied_coupon=coupon, coupon_amount_cents=1000)  # fmt: skip

    totals = analytics.mrr_by_month(filters(org))

    assert {k: round(v) for k, v in totals.items()} == {(dt.date(2026, 4, 1), "EUR"): 2400}


def test_mrr_spreads_a_quarterly_fee_in_arrears_backward_from_the_issuing_month(org):
    cust = customer(org)
    sub = subscription(org, cust, interval="quarterly")
    subscription_invoice(org, cust, sub, 9000, issuing=dt.date(2026, 4, 1),
                         period=(dt.date(2026, 1, 1), dt.date(2026, 3, 31)))  # fmt: skip

    rows = analytics.mrrs(filters(org, months=4))

    # 89 days 23:59 = 2.956613 months of 30.44 days: 9000 / 2.956613 = 3044.02 a month,
    # the earliest month gets what is left: 9000 - 2 x 3044.02 = 2911.95
    assert [(r["month"][:7], r["amount_cents"]) for r in rows] == [
        ("2026-03", 3044), ("2026-04", 3044), ("2026-05", None), ("2026-06", None),
    ]  # fmt: skip
    assert analytics.mrr_by_month(filters(org))[(dt.date(2026, 2, 1), "EUR")].quantize(
        Decimal("0.01")
    ) == Decimal("2911.95")


def test_mrr_spreads_a_yearly_fee_in_advance_forward_with_a_pro_rata_first_month(org):
    cust = customer(org)
    sub = subscription(org, cust, interval="yearly", pay_in_advance=True)
    subscription_invoice(org, cust, sub, 120000, issuing=dt.date(2026, 3, 15),
                         period=(dt.date(2026, 3, 15), dt.date(2027, 3, 14)))  # fmt: skip

    rows = analytics.mrrs(filters(org, currency="EUR", months=4))

    # 364 days 23:59 = 11.990779 months: 120000 / 11.990779 = 10007.69 a month;
    # March: 17 days of 31 left from the 15th = 5488.09
    assert [(r["month"][:7], r["amount_cents"]) for r in rows] == [
        ("2026-03", 5488), ("2026-04", 10008), ("2026-05", 10008), ("2026-06", 10008),
    ]  # fmt: skip


def test_mrr_of_a_yearly_fee_in_advance_adds_up_to_the_fee(org):
    cust = customer(org)
    sub = subscription(org, cust, interval="yearly", pay_in_advance=True)
    subscription_invoice(org, cust, sub, 120000, issuing=dt.date(2025, 3, 15),
                         period=(dt.date(2025, 3, 15), dt.date(2026, 3, 14)))  # fmt: skip

    totals = analytics.mrr_by_month(filters(org))

    # the days of March not billed in March (14 of 31) land in the last month, February
    assert sum(totals.values()).quantize(Decimal("0.000001")) == Decimal(120000)
    assert len(totals) == 12
    assert round(totals[(dt.date(2026, 2, 1), "EUR")]) == 14435


def test_mrr_of_weekly_plans_is_the_average_weekly_fee_times_4_33(org):
    cust = customer(org)
    sub = subscription(org, cust, interval="weekly")
    subscription_invoice(org, cust, sub, 1000, issuing=dt.date(2026, 3, 9),
                         period=(dt.date(2026, 3, 2), dt.date(2026, 3, 8)))  # fmt: skip
    subscription_invoice(org, cust, sub, 2000, issuing=dt.date(2026, 3, 16),
                         period=(dt.date(2026, 3, 9), dt.date(2026, 3, 15)))  # fmt: skip

    totals = analytics.mrr_by_month(filters(org))

    assert totals == {(dt.date(2026, 3, 1), "EUR"): Decimal("6495.00")}  # 1500 x 4.33


def test_mrr_leaves_out_voided_invoices(org):
    cust = customer(org)
    sub = subscription(org, cust)
    subscription_invoice(org, cust, sub, 3000, issuing=dt.date(2026, 4, 1), status="voided",
                         period=(dt.date(2026, 3, 1), dt.date(2026, 3, 31)))  # fmt: skip

    assert analytics.mrr_by_month(filters(org)) == {}


def test_mrr_lists_every_month_with_nulls_where_there_is_none(org):
    rows = analytics.mrrs(filters(org, months=2))

    assert rows == [
        {"month": "2026-05-01T00:00:00Z", "amount_cents": None, "currency": None},
        {"month": "2026-06-01T00:00:00Z", "amount_cents": None, "currency": None},
    ]


# --- invoiced usage ---------------------------------------------------------------------------


def test_invoiced_usage_sums_charge_fees_per_metric_and_fee_creation_month(org):
    cust = customer(org)
    invoice = build_invoice(
        org,
        customer=cust,
        invoice_type="subscription",
        fees=[FeeSpec(kind="graduated", units=Decimal(1500), name="Storage")],
    )
    # graduated: 1000 units x 0.10 = 100.00, then 500 x 0.05 + 10.00 flat = 35.00
    invoice.fees.update(created_at=dt.datetime(2026, 3, 1, 2, tzinfo=dt.UTC))
    code = invoice.fees.get().charge.billable_metric.code
    build_invoice(org, customer=cust, status="draft",
                  fees=[FeeSpec(kind="graduated", units=Decimal(10))])  # fmt: skip

    rows = analytics.invoiced_usages(filters(org))

    assert rows == [
        {"month": "2026-03-01T00:00:00Z", "code": code, "currency": "EUR", "amount_cents": 13500}
    ]


# --- invoice collection -----------------------------------------------------------------------


def test_invoice_collection_counts_invoices_by_payment_status(org):
    cust = customer(org)
    for status, amount in (("succeeded", 1000), ("succeeded", 2000), ("failed", 500),
                           ("pending", 700)):  # fmt: skip
        build_invoice(org, customer=cust, issuing_date=dt.date(2026, 6, 2), payment_status=status,
                      fees=[FeeSpec(amount_cents=amount)])  # fmt: skip
    build_invoice(org, customer=cust, status="voided", issuing_date=dt.date(2026, 6, 3))

    rows = analytics.invoice_collections(filters(org, months=2))

    assert rows == [
        {"month": "2026-05-01T00:00:00Z", "payment_status": None, "invoices_count": 0,
         "amount_cents": 0, "currency": None},
        {"month": "2026-06-01T00:00:00Z", "payment_status": "failed", "invoices_count": 1,
         "amount_cents": 500, "currency": "EUR"},
        {"month": "2026-06-01T00:00:00Z", "payment_status": "pending", "invoices_count": 1,
         "amount_cents": 700, "currency": "EUR"},
        {"month": "2026-06-01T00:00:00Z", "payment_status": "succeeded", "invoices_count": 2,
         "amount_cents": 3000, "currency": "EUR"},
    ]  # fmt: skip


# --- overdue balance --------------------------------------------------------------------------


def test_overdue_balance_is_what_is_left_to_pay_by_due_month(org):
    cust = customer(org)
    late = build_invoice(org, customer=cust, issuing_date=dt.date(2026, 3, 5),
                         net_payment_term=30, fees=[FeeSpec(amount_cents=12000)])  # fmt: skip
    Invoice.objects.filter(pk=late.pk).update(payment_overdue=True, total_paid_amount_cents=2000)
    paid = build_invoice(org, customer=cust, issuing_date=dt.date(2026, 3, 5))
    Invoice.objects.filter(pk=paid.pk).update(payment_overdue=False)

    rows = analytics.overdue_balances(filters(org))

    assert rows == [
        {"month": "2026-04-01T00:00:00Z", "amount_cents": 10000, "currency": "EUR",
         "lago_invoice_ids": [str(late.pk)],
         "billing_entity_id": str(org.default_billing_entity().pk)},
    ]  # fmt: skip


# --- overview figures -------------------------------------------------------------------------


def test_revenue_by_stream_splits_fees_by_type(org):
    cust = customer(org)
    sub = subscription(org, cust)
    build_invoice(org, customer=cust, subscription=sub, issuing_date=dt.date(2026, 6, 1),
                  invoice_type="subscription",
                  fees=[FeeSpec(kind="subscription", amount_cents=5000),
                        FeeSpec(kind="graduated", units=Decimal(100)),
                        FeeSpec(amount_cents=700)])  # fmt: skip

    streams = analytics.revenue_by_stream(filters(org, months=1))

    # graduated: 100 units x 0.10 = 10.00
    assert streams == {dt.date(2026, 6, 1): {"subscription": 5000, "usage": 1000, "fixed": 0,
                                             "commitment": 0, "one_off": 700}}  # fmt: skip


def test_receivables_sum_outstanding_overdue_and_failed_amounts(org):
    cust = customer(org)
    build_invoice(org, customer=cust, payment_status="pending", fees=[FeeSpec(amount_cents=1000)])
    overdue = build_invoice(org, customer=cust, payment_status="failed",
                            fees=[FeeSpec(amount_cents=3000)])  # fmt: skip
    Invoice.objects.filter(pk=overdue.pk).update(payment_overdue=True)
    build_invoice(org, customer=cust, payment_status="succeeded", fees=[FeeSpec(amount_cents=9)])
    build_invoice(org, customer=cust, status="voided", payment_status="pending")

    figures = analytics.receivables(filters(org))

    assert figures == {"EUR": analytics.Receivables(4000, 2, 3000, 1, 3000, 1)}


def test_top_customers_are_ordered_by_invoiced_total(org):
    small, big = customer(org, name="Small"), customer(org, name="Big")
    build_invoice(org, customer=small, issuing_date=dt.date(2026, 6, 1),
                  fees=[FeeSpec(amount_cents=100)])  # fmt: skip
    build_invoice(org, customer=big, issuing_date=dt.date(2026, 6, 1),
                  fees=[FeeSpec(amount_cents=900)])  # fmt: skip

    rows = analytics.top_customers(filters(org))

    assert [(r["name"], r["amount_cents"]) for r in rows] == [("Big", 900), ("Small", 100)]
