"""A chunk of the billing run reads its customers' usage ahead (`read_usage_ahead`, the event
store's `aggregate_many`) and bills them in one transaction, each customer in a savepoint: the
same invoices and fees as one customer at a time on a mix of aggregations, charge models,
filters and groups; usage statements that do not grow with the chunk; a failed customer that
leaves the others billed and is billed once, alone, when the chunk comes again."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import date

import pytest
from django.db import close_old_connections, connection, connections
from django.test.utils import CaptureQueriesContext

from billing.actors import SYSTEM
from customers.models import Customer
from invoicing.models import Invoice, InvoiceSubscription
from invoicing.services.billing_run import bill_customer, bill_customers
from metering.usage import charge_usage, read_usage_ahead, usage_window
from plans.models import BillableMetric, BillableMetricFilter, Charge, ChargeFilter
from tests.invoicing.billing_helpers import customer, plan, send_event, set_entity, subscribe, utc

DAY = date(2024, 2, 1)
NOW = utc(2024, 2, 1, 0, 10)


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def _metric(organization, code: str, kind: str, field: str | None = None, **fields):
    return BillableMetric.objects.create(
        organization=organization,
        name=code,
        code=code,
        aggregation_type=kind,
        field_name=field,
        **fields,
    )


def _charge(organization, on_plan, metric, model: str, properties: dict, **fields) -> Charge:
    return Charge.objects.create(
        organization=organization,
        plan=on_plan,
        billable_metric=metric,
        code=f"{metric.code}_{model}",
        charge_model=model,
        properties=properties,
        **fields,
    )


def _mixed_plan(organization, *, recurring: bool = True):
    """Count with filters (one priced apart), sum graduated per user group, unique count
    package, max, latest, percentage on a sum (per-event values), a recurring sum (read by
    each customer, not ahead)."""
    mixed = plan(organization, code="mixed", amount_cents=1000)
    calls = _metric(organization, "calls", "count_agg")
    BillableMetricFilter.objects.create(
        organization=organization, billable_metric=calls, key="region", values=["eu", "us"]
    )
    by_region = _charge(organization, mixed, calls, "standard", {"amount": "0.5"})
    ChargeFilter.objects.create(
        organization=organization,
        charge=by_region,
        values={"region": ["eu"]},
        properties={"amount": "2"},
    )
    storage = _metric(organization, "storage", "sum_agg", "gb")
    tiers = [
        {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "1"},
        {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "0"},
    ]
    _charge(
        organization,
        mixed,
        storage,
        "graduated",
        {"graduated_ranges": tiers, "pricing_group_keys": ["user"]},
    )
    users = _metric(organization, "users", "unique_count_agg", "user")
    _charge(organization, mixed, users, "package", {"amount": "10", "package_size": 2})
    peak = _metric(organization, "peak", "max_agg", "gb")
    _charge(organization, mixed, peak, "standard", {"amount": "3"})
    seats = _metric(organization, "seats", "latest_agg", "gb")
    _charge(organization, mixed, seats, "standard", {"amount": "4"})
    volume = _metric(organization, "volume", "sum_agg", "gb")
    _charge(organization, mixed, volume, "percentage", {"rate": "1.5", "fixed_amount": "0.1"})
    kept = _metric(organization, "kept", "sum_agg", "gb", recurring=True)
    if recurring:
        _charge(organization, mixed, kept, "standard", {"amount": "1"})
    return mixed


def _customers(organization, prefix: str, on_plan, count: int) -> list[Customer]:
    """`count` customers, the n-th with n + 1 rounds of every kind of event in January."""
    made = []
    for n in range(count):
        who = customer(organization, external_id=f"{prefix}_{n}")
        sub = subscribe(organization, who, on_plan, utc(2024, 1, 1), external_id=f"{prefix}_s{n}")
        for k in range(n + 1):
            at = utc(2024, 1, 3 + k, n)
            send_event(organization, sub, "calls", at, region="eu")
            send_event(organization, sub, "calls", utc(2024, 1, 4 + k, n), region="us")
            send_event(organization, sub, "calls", utc(2024, 1, 5 + k, n), region="asia")
            send_event(organization, sub, "storage", at, gb=4 + k, user=f"u{k % 2}")
            send_event(organization, sub, "users", at, user=f"u{k}")
            send_event(organization, sub, "peak", at, gb=7 * k + n)
            send_event(organization, sub, "seats", at, gb=k + 1)
            send_event(organization, sub, "volume", at, gb=100 + k)
            send_event(organization, sub, "kept", at, gb=2)
        made.append(who)
    return made


def _invoice_summary(invoice: Invoice) -> tuple:
    fees = sorted(
        (
            fee.fee_type,
            fee.charge.billable_metric.code if fee.charge_id else "",
            fee.charge_filter_id is not None,
            sorted((fee.grouped_by or {}).items()),
            str(fee.units),
            fee.events_count,
            fee.amount_cents,
            str(fee.precise_amount_cents),
            fee.taxes_amount_cents,
        )
        for fee in invoice.fees.select_related("charge__billable_metric")
    )
    return (invoice.status, invoice.fees_amount_cents, invoice.total_amount_cents, fees)


@pytest.mark.django_db
def test_a_chunk_bills_the_same_fees_as_one_customer_at_a_time_on_mixed_charges(organization):
    mixed = _mixed_plan(organization)
    alone = _customers(organization, "alone", mixed, 3)
    chunk = _customers(organization, "chunk", mixed, 3)

    singles = [
        bill_customer(customer=who, billing_date=DAY, actor=SYSTEM, now=NOW).invoices[0]
        for who in alone
    ]
    results = bill_customers(due=[(who.pk, DAY) for who in chunk], actor=SYSTEM, now=NOW)

    summaries = [_invoice_summary(r.invoices[0]) for r in results]
    assert summaries == [_invoice_summary(invoice) for invoice in singles]
    # every kind of charge billed something (the comparison is not between empty invoices)
    assert {fee[1] for fee in summaries[-1][3]} == {
        "",
        "calls",
        "storage",
        "users",
        "peak",
        "seats",
        "volume",
        "kept",
    }


def _usage_statements(queries) -> int:
    return sum("billing_event" in q["sql"] or "metering_event" in q["sql"] for q in queries)


@pytest.mark.django_db
def test_a_chunks_usage_statements_do_not_grow_with_its_customers(organization):
    mixed = _mixed_plan(organization, recurring=False)
    small = _customers(organization, "small", mixed, 1)
    large = _customers(organization, "large", mixed, 4)

    with CaptureQueriesContext(connection) as one:
        bill_customers(due=[(who.pk, DAY) for who in small], actor=SYSTEM, now=NOW)
    with CaptureQueriesContext(connection) as four:
        bill_customers(due=[(who.pk, DAY) for who in large], actor=SYSTEM, now=NOW)

    assert Invoice.objects.count() == 5
    assert _usage_statements(four.captured_queries) == _usage_statements(one.captured_queries)


@pytest.mark.django_db
def test_usage_read_ahead_for_another_window_is_read_again(organization):
    mixed = _mixed_plan(organization)
    [who] = _customers(organization, "w", mixed, 1)
    sub = who.subscriptions.get()
    storage = Charge.objects.get(plan=mixed, billable_metric__code="storage")
    january = usage_window(subscription=sub, at=utc(2024, 1, 20))
    late_january = replace(january, charges_from_datetime=utc(2024, 1, 15))
    ahead = read_usage_ahead([(sub, storage, late_january, sub.started_at)])

    found = charge_usage(
        subscription=sub, charge=storage, window=january, answers=ahead, chain_started_at=None
    )

    direct = charge_usage(subscription=sub, charge=storage, window=january)
    assert [(u.grouped_by, u.units, u.amount_cents) for u in found] == [
        (u.grouped_by, u.units, u.amount_cents) for u in direct
    ]
    assert sum(u.units for u in found) == 4  # one round of 4 GB in January
    assert len(ahead) == 1  # the other window's answer stayed unused


@pytest.mark.django_db
def test_a_failed_customer_is_billed_once_when_the_chunk_comes_again(organization):
    mixed = _mixed_plan(organization)
    first, second, third = _customers(organization, "f", mixed, 3)
    broken = Charge.objects.get(plan=mixed, billable_metric__code="peak")
    second.subscriptions.update(plan=plan(organization, code="broken", amount_cents=100))
    broken_plan = second.subscriptions.get().plan
    Charge.objects.create(
        organization=organization,
        plan=broken_plan,
        billable_metric=broken.billable_metric,
        code="broken",
        charge_model="standard",
        properties={"amount": "two"},  # no number (written around the API): billing fails
    )
    due = [(who.pk, DAY) for who in (first, second, third)]

    with pytest.raises(ValueError, match="not a number"):
        bill_customers(due=due, actor=SYSTEM, now=NOW)
    billed_first = set(Invoice.objects.values_list("customer_id", flat=True))
    Charge.objects.filter(plan=broken_plan).update(properties={"amount": "2"})
    again = bill_customers(due=due, actor=SYSTEM, now=NOW)

    assert billed_first == {first.pk, third.pk}
    assert [len(r.invoices) for r in again] == [0, 1, 0]
    assert sorted(Invoice.objects.values_list("customer_id", flat=True)) == sorted(
        [first.pk, second.pk, third.pk]
    )


@pytest.mark.django_db
def test_customers_numbered_per_billing_entity_are_billed_with_the_chunk(organization):
    set_entity(organization, document_numbering="per_billing_entity", document_number_prefix="ORG")
    mixed = _mixed_plan(organization)
    made = _customers(organization, "e", mixed, 3)

    results = bill_customers(due=[(who.pk, DAY) for who in made], actor=SYSTEM, now=NOW)

    assert [r.customer_id for r in results] == [who.pk for who in made]
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == ["ORG-202402-001", "ORG-202402-002", "ORG-202402-003"]


@pytest.mark.django_db(transaction=True)
def test_one_chunk_billed_by_two_connections_at_once_bills_each_customer_once(organization):
    mixed = _mixed_plan(organization)
    due = [(who.pk, DAY) for who in _customers(organization, "c", mixed, 4)]
    barrier = threading.Barrier(2)
    errors: list[Exception] = []

    def run() -> None:
        close_old_connections()
        try:
            barrier.wait()
            bill_customers(due=due, actor=SYSTEM, now=NOW)
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Invoice.objects.count() == 4
    assert InvoiceSubscription.objects.count() == 4
