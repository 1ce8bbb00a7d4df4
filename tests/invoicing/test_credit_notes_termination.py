"""Automatic credit notes of pay-in-advance plans terminated or upgraded mid-period: the
unused days, split by `on_termination_credit_note`."""

from __future__ import annotations

import pytest

from billing.actors import SYSTEM
from customers.models import Subscription
from invoicing.models import CreditNote, Invoice
from invoicing.services.generation import (
    invoice_create_for_plan_change,
    invoice_create_for_start,
    invoice_create_for_termination,
)
from tests.invoicing.billing_helpers import customer, plan, subscribe, tax, utc

pytestmark = pytest.mark.django_db

Status = Subscription.Status


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def start_and_terminate(
    organization, *, timezone="UTC", start, end, on_termination=None, **plan_values
):
    who = customer(organization, external_id="v73", timezone=timezone)
    who.taxes.add(tax(organization, "vat20", "20"))
    monthly = plan(organization, amount_cents=5000, pay_in_advance=True, **plan_values)
    subscription = subscribe(organization, who, monthly, start)
    first = invoice_create_for_start(subscription=subscription, actor=SYSTEM, now=start)
    values = {"status": Status.TERMINATED, "terminated_at": end}
    if on_termination:
        values["on_termination_credit_note"] = on_termination
    Subscription.objects.filter(pk=subscription.pk).update(**values)
    closing = invoice_create_for_termination(subscription=subscription, actor=SYSTEM, now=end)
    return first, closing


@pytest.mark.parametrize(
    ("timezone", "start", "first_total", "sub_total", "taxes", "total"),
    [
        pytest.param("UTC", utc(2023, 2, 8, 10), 4500, 3571, 714, 4285, id="V73-utc"),
        pytest.param(
            "America/New_York", utc(2023, 2, 8, 2), 4715, 3750, 750, 4500, id="V73-utc-minus"
        ),
    ],
)
def test_v73_terminated_on_its_first_day(
    organization, timezone, start, first_total, sub_total, taxes, total
):
    first, closing = start_and_terminate(organization, timezone=timezone, start=start, end=start)
    assert first.total_amount_cents == first_total
    note = CreditNote.objects.get()
    assert note.invoice_id == first.pk
    assert (note.sub_total_excluding_taxes_amount_cents, note.taxes_amount_cents) == (
        sub_total,
        taxes,
    )
    assert (note.total_amount_cents, note.credit_amount_cents) == (total, total)
    assert (note.reason, note.credit_status, note.automatic) == (
        "order_cancellation",
        "available",
        True,
    )
    assert closing.total_amount_cents == 0


def test_skip_issues_no_credit_note(organization):
    start = utc(2023, 2, 8, 10)
    start_and_terminate(organization, start=start, end=start, on_termination="skip")
    assert not CreditNote.objects.exists()


def test_refund_refunds_the_paid_unused_part(organization):
    start = utc(2023, 2, 8, 10)
    who = customer(organization, external_id="v73")
    who.taxes.add(tax(organization, "vat20", "20"))
    subscription = subscribe(
        organization, who, plan(organization, amount_cents=5000, pay_in_advance=True), start
    )
    first = invoice_create_for_start(subscription=subscription, actor=SYSTEM, now=start)
    Invoice.objects.filter(pk=first.pk).update(
        payment_status="succeeded", total_paid_amount_cents=first.total_amount_cents
    )
    Subscription.objects.filter(pk=subscription.pk).update(
        status=Status.TERMINATED, terminated_at=start, on_termination_credit_note="refund"
    )
    invoice_create_for_termination(subscription=subscription, actor=SYSTEM, now=start)
    note = CreditNote.objects.get()
    # paid 4,500 for 21 days; 1 day used (180 incl. tax) -> 4,320 refundable, above the 4,285
    assert (note.refund_amount_cents, note.credit_amount_cents) == (4285, 0)
    assert note.refund_status == "pending"


def test_refund_of_an_unpaid_invoice_credits_it_all(organization):
    start = utc(2023, 2, 8, 10)
    start_and_terminate(organization, start=start, end=start, on_termination="refund")
    note = CreditNote.objects.get()
    assert (note.refund_amount_cents, note.credit_amount_cents) == (0, 4285)


def test_offset_of_an_unpaid_invoice_lowers_what_it_asks(organization):
    start = utc(2023, 2, 8, 10)
    first, _ = start_and_terminate(organization, start=start, end=start, on_termination="offset")
    note = CreditNote.objects.get()
    assert (note.offset_amount_cents, note.credit_amount_cents) == (4285, 0)
    first.refresh_from_db()
    assert first.total_offsetted_credit_note_amount_cents == 4285
    assert first.payment_status == "pending"  # 215 still due


def test_running_the_termination_twice_credits_once(organization):
    start = utc(2023, 2, 8, 10)
    start_and_terminate(organization, start=start, end=start)
    subscription = Subscription.objects.get()
    invoice_create_for_termination(subscription=subscription, actor=SYSTEM, now=start)
    assert CreditNote.objects.count() == 1


def test_plan_in_arrears_gets_no_credit_note(organization):
    who = customer(organization, external_id="arrears")
    subscription = subscribe(
        organization, who, plan(organization, amount_cents=5000), utc(2023, 2, 1)
    )
    Subscription.objects.filter(pk=subscription.pk).update(
        status=Status.TERMINATED, terminated_at=utc(2023, 2, 10)
    )
    invoice_create_for_termination(subscription=subscription, actor=SYSTEM, now=utc(2023, 2, 10))
    assert not CreditNote.objects.exists()


def test_days_of_a_trial_are_not_credited(organization):
    # trial of 10 days from 02-01: nothing was billed in advance during the trial
    start = utc(2023, 2, 1, 10)
    start_and_terminate(organization, start=start, end=utc(2023, 2, 5, 10), trial_period=10)
    assert not CreditNote.objects.exists()


def test_v72_upgrade_credits_the_upgrade_day_and_the_new_invoice_consumes_it(organization):
    acme = customer(organization, external_id="acme")
    monthly = plan(organization, amount_cents=1000, pay_in_advance=True)
    yearly = plan(organization, amount_cents=12000, pay_in_advance=True, interval="yearly")
    start, at = utc(2023, 6, 29, 12, 12), utc(2023, 9, 28, 5)
    old = subscribe(
        organization, acme, monthly, start, external_id="seat", billing_time="anniversary"
    )
    # the in-advance fee of the current period 08-29..09-28
    from tests.invoicing.billing_helpers import bill

    bill(acme, utc(2023, 8, 29).date())
    Subscription.objects.filter(pk=old.pk).update(status=Status.TERMINATED, terminated_at=at)
    new = subscribe(
        organization, acme, yearly, start, started_at=at, previous_subscription=old,
        external_id="seat", billing_time="anniversary",
    )  # fmt: skip
    old.refresh_from_db()
    invoice = invoice_create_for_plan_change(
        previous_subscription=old, subscription=new, actor=SYSTEM, now=at
    )
    note = CreditNote.objects.get()
    assert (note.total_amount_cents, note.reason) == (32, "order_change")  # 1000 / 31, one day
    assert invoice.credit_notes_amount_cents == 32
    assert invoice.total_amount_cents == 9016 - 32
    note.refresh_from_db()
    assert note.credit_status == "consumed"
