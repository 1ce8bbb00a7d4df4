"""Void (spec §12.8), payment status, lost disputes and the overdue job (spec §12.7, §12.12)."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.actors import SYSTEM
from billing.errors import Invalid, NotAllowed
from billing.models import OutboxEvent
from customers.models import AppliedCoupon
from invoicing.models import Invoice
from invoicing.selectors import overdue_cutoff
from invoicing.services.payments import (
    invoice_lose_dispute,
    invoice_mark_paid,
    invoice_update,
    mark_overdue,
)
from invoicing.services.void import invoice_void
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, apply_coupon, build_invoice

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 1, 12, 0, tzinfo=dt.UTC)


def coupon_invoice(organization, **coupon_fields):
    customer = CustomerFactory(organization=organization)
    applied = apply_coupon(organization, customer, **coupon_fields)
    invoice = build_invoice(
        organization,
        customer=customer,
        fees=[FeeSpec(amount_cents=10000)],
        applied_coupon=applied,
        coupon_amount_cents=applied.amount_cents or 0,
    )
    return invoice, applied


# --- void ------------------------------------------------------------------------------------


def test_void_sets_the_status_clears_overdue_and_records_the_invoice_voided_webhook(organization):
    invoice = build_invoice(organization)
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)
    voided = invoice_void(invoice=invoice, actor=SYSTEM, now=NOW)
    assert voided.status == Invoice.Status.VOIDED
    assert voided.voided_at == NOW
    assert voided.payment_overdue is False
    assert OutboxEvent.objects.filter(event_type="invoice.voided", object_id=str(invoice.pk))


@pytest.mark.parametrize(
    "state",
    [
        pytest.param({"status": "draft"}, id="draft"),
        pytest.param({"status": "voided"}, id="already-voided"),
        pytest.param({"payment_status": "succeeded"}, id="paid"),
    ],
)
def test_void_refuses_what_is_not_voidable(organization, state):
    invoice = build_invoice(organization, **state)
    with pytest.raises(NotAllowed, match="not_voidable"):
        invoice_void(invoice=invoice, actor=SYSTEM, now=NOW)


def test_void_refuses_a_lost_dispute_even_when_asked_explicitly(organization):
    invoice = build_invoice(organization)
    invoice_lose_dispute(invoice=invoice, actor=SYSTEM, now=NOW)
    with pytest.raises(NotAllowed, match="not_voidable"):
        invoice_void(invoice=invoice, actor=SYSTEM, now=NOW, generate_credit_note=False)


def test_void_gives_a_fixed_once_coupon_back(organization):
    invoice, applied = coupon_invoice(organization, amount_cents=3000, frequency="once")
    AppliedCoupon.objects.filter(pk=applied.pk).update(status="terminated", terminated_at=NOW)
    invoice_void(invoice=invoice, actor=SYSTEM, now=NOW)
    credit = invoice.credits.get()
    assert credit.voided_at == NOW
    applied.refresh_from_db()
    assert applied.status == AppliedCoupon.Status.ACTIVE
    assert applied.terminated_at is None


def test_void_gives_a_recurring_coupon_one_period_back(organization):
    invoice, applied = coupon_invoice(
        organization, amount_cents=1000, frequency="recurring", frequency_duration=3
    )
    AppliedCoupon.objects.filter(pk=applied.pk).update(
        frequency_duration_remaining=0, status="terminated", terminated_at=NOW
    )
    invoice_void(invoice=invoice, actor=SYSTEM, now=NOW)
    applied.refresh_from_db()
    assert applied.frequency_duration_remaining == 1
    assert applied.status == AppliedCoupon.Status.ACTIVE


def test_void_never_gives_more_periods_than_the_coupon_has(organization):
    invoice, applied = coupon_invoice(
        organization, amount_cents=1000, frequency="recurring", frequency_duration=3
    )
    invoice_void(invoice=invoice, actor=SYSTEM, now=NOW)
    applied.refresh_from_db()
    assert applied.frequency_duration_remaining == 3


def test_void_does_not_restore_an_expired_coupon(organization):
    invoice, applied = coupon_invoice(
        organization,
        amount_cents=1000,
        expiration="time_limit",
        expiration_at=NOW - dt.timedelta(days=1),
    )
    AppliedCoupon.objects.filter(pk=applied.pk).update(status="terminated", terminated_at=NOW)
    invoice_void(invoice=invoice, actor=SYSTEM, now=NOW)
    applied.refresh_from_db()
    assert applied.status == AppliedCoupon.Status.TERMINATED


def test_void_leaves_a_forever_coupon_as_it_is(organization):
    invoice, applied = coupon_invoice(organization, amount_cents=1000, frequency="forever")
    invoice_void(invoice=invoice, actor=SYSTEM, now=NOW)
    applied.refresh_from_db()
    assert applied.status == AppliedCoupon.Status.ACTIVE
    assert invoice.credits.get().voided_at == NOW


# --- payment status and metadata -------------------------------------------------------------


def test_a_payment_clears_the_overdue_flag(organization):
    invoice = build_invoice(organization)
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)
    paid = invoice_mark_paid(invoice=invoice, actor=SYSTEM, now=NOW)
    assert paid.payment_status == Invoice.PaymentStatus.SUCCEEDED
    assert paid.payment_overdue is False
    assert paid.total_paid_amount_cents == invoice.total_amount_cents


def test_the_same_payment_status_records_no_webhook(organization):
    invoice = build_invoice(organization)
    invoice_update(invoice=invoice, actor=SYSTEM, now=NOW, payment_status="pending")
    assert not OutboxEvent.objects.filter(event_type="invoice.payment_status_updated").exists()


def test_metadata_needs_a_key(organization):
    invoice = build_invoice(organization)
    with pytest.raises(Invalid):
        invoice_update(invoice=invoice, actor=SYSTEM, now=NOW, metadata=[{"key": "", "value": "x"}])


def test_metadata_may_change_on_a_draft(organization):
    draft = build_invoice(organization, status="draft")
    invoice_update(invoice=draft, actor=SYSTEM, now=NOW, metadata=[{"key": "po", "value": "1"}])
    assert list(draft.metadata.values_list("key", "value")) == [("po", "1")]


# --- lost dispute ----------------------------------------------------------------------------


def test_lose_dispute_keeps_the_first_instant(organization):
    invoice = build_invoice(organization)
    invoice_lose_dispute(invoice=invoice, actor=SYSTEM, now=NOW)
    later = invoice_lose_dispute(invoice=invoice, actor=SYSTEM, now=NOW + dt.timedelta(days=1))
    assert later.payment_dispute_lost_at == NOW
    assert OutboxEvent.objects.filter(event_type="invoice.payment_dispute_lost").count() == 2


def test_a_voided_invoice_may_lose_a_dispute(organization):
    invoice = build_invoice(organization)
    invoice_void(invoice=invoice, actor=SYSTEM, now=NOW)
    assert (
        invoice_lose_dispute(invoice=invoice, actor=SYSTEM, now=NOW).payment_dispute_lost_at == NOW
    )


# --- overdue job -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "cutoff"),
    [
        pytest.param(dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC), dt.date(2026, 3, 31)),
        pytest.param(dt.datetime(2026, 4, 1, 0, 0, 1, tzinfo=dt.UTC), dt.date(2026, 4, 1)),
        pytest.param(
            dt.datetime(2026, 4, 1, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            dt.date(2026, 3, 31),
            id="aware-non-utc",
        ),
    ],
)
def test_an_invoice_is_overdue_from_midnight_utc_of_its_due_date(now, cutoff):
    assert overdue_cutoff(now) == cutoff


def test_mark_overdue_flags_unpaid_invoices_past_their_due_date(organization):
    due = build_invoice(organization, issuing_date=dt.date(2026, 3, 1), net_payment_term=30)
    not_yet = build_invoice(organization, issuing_date=dt.date(2026, 3, 3), net_payment_term=30)
    paid = build_invoice(organization, issuing_date=dt.date(2026, 2, 1), payment_status="succeeded")
    draft = build_invoice(organization, issuing_date=dt.date(2026, 2, 1), status="draft")
    disputed = build_invoice(organization, issuing_date=dt.date(2026, 2, 1))
    invoice_lose_dispute(invoice=disputed, actor=SYSTEM, now=NOW)
    failed_payment = build_invoice(
        organization, issuing_date=dt.date(2026, 2, 1), payment_status="failed"
    )
    assert mark_overdue(actor=SYSTEM, now=NOW) == 2
    flagged = set(Invoice.objects.filter(payment_overdue=True).values_list("pk", flat=True))
    assert flagged == {due.pk, failed_payment.pk}
    assert {not_yet.pk, paid.pk, draft.pk, disputed.pk}.isdisjoint(flagged)
    events = OutboxEvent.objects.filter(event_type="invoice.payment_overdue")
    assert {e.object_id for e in events} == {str(due.pk), str(failed_payment.pk)}


def test_mark_overdue_twice_flags_nothing_twice(organization):
    build_invoice(organization, issuing_date=dt.date(2026, 1, 1))
    assert mark_overdue(actor=SYSTEM, now=NOW) == 1
    assert mark_overdue(actor=SYSTEM, now=NOW) == 0
    assert OutboxEvent.objects.filter(event_type="invoice.payment_overdue").count() == 1
