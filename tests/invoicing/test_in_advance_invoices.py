"""Invoices of invoiceable pay-in-advance charge fees (spec §7.14, §12.2, §15.3): an event on
such a charge bills its fee and, in the same transaction, one `subscription` invoice
(`invoicing_reason: in_advance_charge`), finalized at once, coupons and taxes applied; the
event's transaction id guards against a second fee and a second invoice."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from lago_python_client.models.event import Event as LagoEvent

from billing.models import OutboxEvent
from customers.models import AppliedCoupon
from invoicing.models import Credit, Fee, Invoice, InvoiceSubscription
from invoicing.tasks import in_advance_fees_create_task
from metering.store import EventInput, get_event_store
from tests.invoicing.invoice_builders import apply_coupon
from tests.metering.usage.conftest import Billing, at, make_billing, unix
from tests.plans.factories import TaxFactory

RECEIVED = "2023-02-15T10:00:00"


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def _billing(api, organization) -> Billing:
    """V44's subscription (created 2023-01-24, calendar monthly, EUR, UTC customer)."""
    return make_billing(api, organization, started_at="2023-01-24")


def _send(billing: Billing, capture, code: str, timestamp: str = RECEIVED, **event):
    """POST /events at `RECEIVED` (or `event['received']`) and run what ingestion triggers
    after commit: the in-advance task, eager."""
    received = event.pop("received", RECEIVED)
    with time_machine.travel(at(received), tick=False), capture(execute=True):
        return billing.send(code, timestamp, **event)


def _calls_charge(billing: Billing, **fields):
    metric = billing.metric("calls", "count_agg")
    fields.setdefault("properties", {"amount": "10"})
    return billing.charge(metric, pay_in_advance=True, **fields)


@pytest.mark.django_db
class TestInvoiceableCharge:
    def test_v44_event_bills_one_finalized_invoice_with_its_fee(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        billing = _billing(api, organization)
        charge = _calls_charge(billing)
        charge.taxes.add(TaxFactory(organization=organization, code="vat20", rate="20"))

        _send(billing, django_capture_on_commit_callbacks, "calls", transaction_id="tx_1")

        [invoice] = Invoice.objects.all()
        [fee] = Fee.objects.filter(charge=charge)
        assert fee.invoice_id == invoice.pk
        assert (invoice.invoice_type, invoice.status) == ("subscription", "finalized")
        assert not invoice.number.endswith("DRAFT")
        assert (invoice.fees_amount_cents, invoice.taxes_amount_cents) == (1000, 200)
        assert (invoice.sub_total_including_taxes_amount_cents, invoice.total_amount_cents) == (
            1200,
            1200,
        )
        assert invoice.payment_status == "pending"
        assert (fee.amount_cents, fee.taxes_amount_cents, fee.payment_status) == (
            1000,
            200,
            "pending",
        )
        assert [(t.tax_code, t.amount_cents) for t in invoice.applied_taxes.all()] == [
            ("vat20", 200)
        ]
        [row] = InvoiceSubscription.objects.filter(invoice=invoice)
        assert (row.subscription_id, row.invoicing_reason) == (
            billing.subscription.pk,
            "in_advance_charge",
        )
        assert row.timestamp == at(RECEIVED)
        assert OutboxEvent.objects.filter(
            event_type="invoice.created", object_id=str(invoice.pk)
        ).exists()

    def test_each_event_gets_its_own_invoice(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        billing = _billing(api, organization)
        _calls_charge(billing)
        _send(billing, django_capture_on_commit_callbacks, "calls")
        _send(billing, django_capture_on_commit_callbacks, "calls", "2023-02-17T10:00:00")

        invoices = Invoice.objects.order_by("sequential_id")
        assert [(i.fees_amount_cents, i.sequential_id) for i in invoices] == [(1000, 1), (1000, 2)]

    def test_issuing_date_is_the_event_day_as_in_lago(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        # Lago enqueues the invoice job with `timestamp: event.timestamp`: the invoice is
        # issued on the event's day (customer timezone), finalized when processed
        billing = _billing(api, organization)
        _calls_charge(billing)
        # an event of Feb 15 sent (and processed) on Feb 20
        _send(
            billing,
            django_capture_on_commit_callbacks,
            "calls",
            "2023-02-15T10:00:00",
            received="2023-02-20T08:00:00",
        )

        [invoice] = Invoice.objects.all()
        assert invoice.issuing_date == date(2023, 2, 15)
        assert invoice.finalized_at == at("2023-02-20T08:00:00")

    def test_issuing_date_is_the_event_day_in_the_customer_timezone(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        billing = _billing(api, organization)
        billing.customer.timezone = "America/New_York"
        billing.customer.save(update_fields=["timezone"])
        _calls_charge(billing)
        # 02:00 UTC on Feb 16 is still Feb 15 in New York
        _send(billing, django_capture_on_commit_callbacks, "calls", "2023-02-16T02:00:00")

        [invoice] = Invoice.objects.all()
        assert invoice.issuing_date == date(2023, 2, 15)

    def test_grace_period_does_not_make_a_draft(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        billing = _billing(api, organization)
        billing.customer.invoice_grace_period = 3
        billing.customer.save(update_fields=["invoice_grace_period"])
        _calls_charge(billing)
        _send(billing, django_capture_on_commit_callbacks, "calls")

        [invoice] = Invoice.objects.all()
        assert invoice.status == "finalized"
        assert invoice.issuing_date == date(2023, 2, 15)

    def test_v45_zero_fee_gets_its_own_finalized_invoice(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        # Lago invoices every fee of an invoiceable in-advance charge, 0 included (§12.6 decides)
        billing = _billing(api, organization)
        metric = billing.metric("storage", "sum_agg", "amount")
        charge = billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
        _send(billing, django_capture_on_commit_callbacks, "storage", properties={"amount": 10})
        _send(
            billing,
            django_capture_on_commit_callbacks,
            "storage",
            "2023-02-16T10:00:00",
            properties={"amount": -4},
        )

        fees = Fee.objects.filter(charge=charge).order_by("amount_cents")
        assert [f.amount_cents for f in fees] == [0, 1000]
        zero = fees[0].invoice
        assert (zero.status, zero.fees_amount_cents, zero.total_amount_cents) == ("finalized", 0, 0)
        assert zero.payment_status == "succeeded"
        assert zero.number
        assert Invoice.objects.count() == 2

    def test_zero_fee_invoice_is_closed_when_the_customer_skips_zero_invoices(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        billing = _billing(api, organization)
        billing.customer.finalize_zero_amount_invoice = "skip"
        billing.customer.save(update_fields=["finalize_zero_amount_invoice"])
        metric = billing.metric("storage", "sum_agg", "amount")
        billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
        _send(billing, django_capture_on_commit_callbacks, "storage", properties={"amount": -4})

        [invoice] = Invoice.objects.all()
        assert invoice.status == "closed"
        assert invoice.number.endswith("-DRAFT")  # never numbered


@pytest.mark.django_db
def test_the_invoice_pdf_is_rendered_after_commit(
    api, organization, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.INVOICE_PDF_ON_FINALIZE = True
    settings.MEDIA_ROOT = tmp_path
    billing = _billing(api, organization)
    _calls_charge(billing)
    _send(billing, django_capture_on_commit_callbacks, "calls")

    [invoice] = Invoice.objects.all()
    assert invoice.file.name.endswith(".pdf")
    assert invoice.file.read(4) == b"%PDF"


@pytest.mark.django_db
def test_same_transaction_id_again_bills_nothing_new(
    api, organization, django_capture_on_commit_callbacks
):
    billing = _billing(api, organization)
    _calls_charge(billing)
    _send(billing, django_capture_on_commit_callbacks, "calls", transaction_id="tx_once")

    args = (str(organization.id), "sub_1", "tx_once")
    assert in_advance_fees_create_task.apply(args=args).result == 0

    assert Fee.objects.count() == 1
    assert Invoice.objects.count() == 1


@pytest.mark.django_db
def test_non_invoiceable_charge_bills_a_fee_without_invoice(
    api, organization, django_capture_on_commit_callbacks
):
    billing = _billing(api, organization)
    charge = _calls_charge(billing, invoiceable=False)
    _send(billing, django_capture_on_commit_callbacks, "calls")

    [fee] = Fee.objects.filter(charge=charge)
    assert (fee.amount_cents, fee.invoice_id, fee.invoiceable) == (1000, None, False)
    assert not Invoice.objects.exists()
    assert OutboxEvent.objects.filter(event_type="fee.created", object_id=str(fee.pk)).exists()


@pytest.mark.django_db
def test_applied_coupon_is_consumed_by_the_in_advance_invoice(
    api, organization, django_capture_on_commit_callbacks
):
    billing = _billing(api, organization)
    charge = _calls_charge(billing)
    charge.taxes.add(TaxFactory(organization=organization, code="vat20", rate="20"))
    applied = apply_coupon(
        organization, billing.customer, amount_cents=300, amount_currency="EUR", frequency="once"
    )

    _send(billing, django_capture_on_commit_callbacks, "calls")

    [invoice] = Invoice.objects.all()
    # spec §12.3: 10.00 - coupon 3.00 = 7.00; VAT 20 % on the net = 1.40 -> 8.40
    assert invoice.coupons_amount_cents == 300
    assert invoice.sub_total_excluding_taxes_amount_cents == 700
    assert (invoice.taxes_amount_cents, invoice.total_amount_cents) == (140, 840)
    [fee] = Fee.objects.filter(charge=charge)
    assert (fee.precise_coupons_amount_cents, fee.taxes_amount_cents) == (Decimal(300), 140)
    [credit] = Credit.objects.filter(invoice=invoice)
    assert (credit.applied_coupon_id, credit.amount_cents) == (applied.pk, 300)
    applied.refresh_from_db()
    assert applied.status == AppliedCoupon.Status.TERMINATED  # fixed once, fully used


@pytest.mark.django_db
def test_coupon_larger_than_the_fee_carries_over_to_the_next_event(
    api, organization, django_capture_on_commit_callbacks
):
    billing = _billing(api, organization)
    _calls_charge(billing)
    applied = apply_coupon(
        organization, billing.customer, amount_cents=1500, amount_currency="EUR", frequency="once"
    )
    _send(billing, django_capture_on_commit_callbacks, "calls")
    _send(billing, django_capture_on_commit_callbacks, "calls", "2023-02-17T10:00:00")

    invoices = Invoice.objects.order_by("sequential_id")
    assert [(i.coupons_amount_cents, i.total_amount_cents) for i in invoices] == [
        (1000, 0),
        (500, 500),
    ]
    assert [i.payment_status for i in invoices] == ["succeeded", "pending"]
    applied.refresh_from_db()
    assert applied.status == AppliedCoupon.Status.TERMINATED


@pytest.mark.django_db(transaction=True)
def test_task_run_twice_concurrently_bills_one_fee_and_one_invoice(api, organization):
    billing = _billing(api, organization)
    _calls_charge(billing)
    # stored without ingestion's after-commit hook: the two tasks below are the only billers
    get_event_store().write_batch(
        organization.id,
        [
            EventInput(
                transaction_id="tx_race",
                external_subscription_id="sub_1",
                code="calls",
                timestamp=at(RECEIVED),
                subscription_id=billing.subscription.pk,
                customer_id=billing.customer.pk,
            )
        ],
        now=at(RECEIVED),
    )
    barrier = threading.Barrier(2)
    results: list[object] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            outcome = in_advance_fees_create_task.apply(
                args=(str(organization.id), "sub_1", "tx_race")
            ).result
        finally:
            connection.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(results) == [0, 1]
    assert Fee.objects.count() == 1
    [invoice] = Invoice.objects.all()
    assert invoice.fees_amount_cents == 1000


@pytest.mark.django_db(transaction=True)
def test_client_sends_the_event_and_lists_the_in_advance_invoice(lago, api, organization):
    billing = _billing(api, organization)
    charge = _calls_charge(billing, properties={"amount": "12.5"})
    charge.taxes.add(TaxFactory(organization=organization, code="vat10", rate="10"))

    with time_machine.travel(at(RECEIVED), tick=False):
        lago.events.create(
            LagoEvent(
                transaction_id="tx_client",
                external_subscription_id="sub_1",
                code="calls",
                timestamp=unix(RECEIVED),
                properties={},
            )
        )
        listing = lago.invoices.find_all({"external_customer_id": "cust_1"})

    [invoice] = listing["invoices"]
    assert (invoice.invoice_type, invoice.status) == ("subscription", "finalized")
    assert invoice.issuing_date == "2023-02-15"
    assert (invoice.fees_amount_cents, invoice.taxes_amount_cents) == (1250, 125)
    assert invoice.total_amount_cents == 1375
    detail = lago.invoices.find(invoice.lago_id)
    [fee] = detail.fees.__root__
    assert (fee.item.code, fee.amount_cents, fee.event_transaction_id) == (
        "calls",
        1250,
        "tx_client",
    )


@pytest.mark.django_db(transaction=True)
def test_concurrent_events_of_one_customer_are_invoiced_without_deadlock(api, organization):
    billing = _billing(api, organization)
    _calls_charge(billing)
    ids = [f"tx_{i}" for i in range(4)]
    get_event_store().write_batch(
        organization.id,
        [
            EventInput(
                transaction_id=tx,
                external_subscription_id="sub_1",
                code="calls",
                timestamp=at(RECEIVED),
                subscription_id=billing.subscription.pk,
                customer_id=billing.customer.pk,
            )
            for tx in ids
        ],
        now=at(RECEIVED),
    )
    barrier = threading.Barrier(len(ids))
    outcomes: list[object] = []
    lock = threading.Lock()

    def run(tx: str) -> None:
        barrier.wait()
        try:
            result = in_advance_fees_create_task.apply(args=(str(organization.id), "sub_1", tx))
            outcome = result.result if result.successful() else repr(result.result)
        finally:
            connection.close()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=run, args=(tx,)) for tx in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert outcomes == [1, 1, 1, 1]
    assert Invoice.objects.filter(status="finalized").count() == 4
