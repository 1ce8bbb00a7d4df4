"""A chunk of the billing run (`bill_customers`): the same invoices as billing each customer on
its own, one read of the plans' charges for the whole chunk, prepaid credits still drawn for
the customers with a wallet, nothing billed twice when the chunk comes again."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.actors import SYSTEM
from customers.models import Customer
from invoicing.models import Invoice
from invoicing.services.billing_run import bill_customer, bill_customers, chunked
from tests.invoicing.billing_helpers import customer, plan, send_event, subscribe, tax, utc
from tests.plans.factories import BillableMetricFactory, ChargeFactory
from tests.wallets.factories import WalletFactory, fund_wallet

pytestmark = pytest.mark.django_db

DAY = date(2024, 2, 1)
NOW = utc(2024, 2, 1, 0, 10)


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def _usage_plan(organization, code: str):
    usage = plan(organization, code=code, amount_cents=4900)
    usage.taxes.add(tax(organization, f"vat_{code}", "20"))
    metric = BillableMetricFactory(organization=organization, code=f"calls_{code}", count=True)
    ChargeFactory(
        organization=organization, plan=usage, billable_metric=metric, properties={"amount": "2"}
    )
    return usage, metric


def _customers(organization, prefix: str, usage, metric) -> list[Customer]:
    """Three customers with 1, 2 and 3 calls in January; the last one has a funded wallet."""
    made = []
    for n in range(3):
        who = customer(organization, external_id=f"{prefix}_{n}")
        subscription = subscribe(
            organization, who, usage, utc(2024, 1, 1), external_id=f"{prefix}_sub_{n}"
        )
        for call in range(n + 1):
            send_event(organization, subscription, metric.code, utc(2024, 1, 10, call))
        made.append(who)
    fund_wallet(WalletFactory(organization=organization, customer=made[-1]), "30")
    return made


def _summary(invoice: Invoice) -> tuple:
    fees = sorted(invoice.fees.values_list("fee_type", "amount_cents", "taxes_amount_cents"))
    return (
        invoice.status,
        invoice.fees_amount_cents,
        invoice.taxes_amount_cents,
        invoice.prepaid_credit_amount_cents,
        invoice.total_amount_cents,
        fees,
    )


def test_a_chunk_bills_the_same_invoices_as_one_customer_at_a_time(organization):
    usage, metric = _usage_plan(organization, "usage")
    alone = _customers(organization, "alone", usage, metric)
    chunk = _customers(organization, "chunk", usage, metric)

    singles = [
        bill_customer(customer=who, billing_date=DAY, actor=SYSTEM, now=NOW).invoices[0]
        for who in alone
    ]
    results = bill_customers(due=[(who.pk, DAY) for who in chunk], actor=SYSTEM, now=NOW)

    assert [_summary(r.invoices[0]) for r in results] == [_summary(i) for i in singles]
    assert singles[-1].prepaid_credit_amount_cents == 3000  # the wallet paid its part


def test_a_chunk_reads_each_plans_charges_once(organization):
    usage, metric = _usage_plan(organization, "usage")
    other, other_metric = _usage_plan(organization, "other")
    chunk = _customers(organization, "a", usage, metric) + _customers(
        organization, "b", other, other_metric
    )

    with CaptureQueriesContext(connection) as queries:
        bill_customers(due=[(who.pk, DAY) for who in chunk], actor=SYSTEM, now=NOW)

    charge_reads = [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "plans_charge"')
    ]
    assert len(charge_reads) == 2  # one per plan, not one per customer
    assert Invoice.objects.count() == 6


def test_a_chunk_delivered_again_bills_nothing_more(organization):
    usage, metric = _usage_plan(organization, "usage")
    due = [(who.pk, DAY) for who in _customers(organization, "c", usage, metric)]

    first = bill_customers(due=due, actor=SYSTEM, now=NOW)
    again = bill_customers(due=due, actor=SYSTEM, now=NOW)

    assert [len(r.invoices) for r in first] == [1, 1, 1]
    assert [len(r.invoices) for r in again] == [0, 0, 0]
    assert [r.already_billed for r in again] == [r.invoices for r in first]
    assert Invoice.objects.count() == 3


def test_a_customer_no_longer_found_is_skipped(organization):
    usage, metric = _usage_plan(organization, "usage")
    kept = _customers(organization, "d", usage, metric)[0]

    results = bill_customers(due=[(uuid4(), DAY), (kept.pk, DAY)], actor=SYSTEM, now=NOW)

    assert [r.customer_id for r in results] == [kept.pk]


def test_a_customer_whose_billing_fails_does_not_stop_the_others(organization):
    broken, broken_metric = _usage_plan(organization, "broken")
    # a charge amount that is no number (written around the API's validation): billing fails
    broken.charges.update(properties={"amount": "two"})
    usage, metric = _usage_plan(organization, "usage")
    failing = _customers(organization, "e", broken, broken_metric)[0]
    billed = _customers(organization, "f", usage, metric)[0]

    with pytest.raises(ValueError, match="not a number"):
        bill_customers(due=[(failing.pk, DAY), (billed.pk, DAY)], actor=SYSTEM, now=NOW)

    assert list(Invoice.objects.values_list("customer_id", flat=True)) == [billed.pk]


def test_chunks_keep_the_order_and_the_size():
    pairs = [(n, DAY) for n in range(5)]

    assert chunked(pairs, 2) == [pairs[0:2], pairs[2:4], pairs[4:5]]
