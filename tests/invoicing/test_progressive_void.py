"""Voiding a progressive billing invoice (Lago `Invoices::VoidService`,
`Subscriptions::ProgressiveBilledAmount`): what it billed is billed again, once, by the next
threshold check or by the period's later invoice."""

from __future__ import annotations

from datetime import date

import pytest
import time_machine
from django.test import TestCase

from billing.actors import SYSTEM
from invoicing.models import AppliedUsageThreshold, CreditNote, Invoice
from invoicing.services.credit_notes import ItemInput, credit_note_create
from invoicing.services.void import invoice_void
from metering.models import LifetimeUsage
from metering.services.refresh import refresh_usage
from tests.invoicing.billing_helpers import bill, only_invoice
from tests.invoicing.progressive_builders import progressive_invoices, usage, v92_billing
from tests.metering.usage.conftest import at

pytestmark = pytest.mark.django_db


def void(invoice: Invoice, when: str) -> Invoice:
    with time_machine.travel(at(when), tick=False):
        return invoice_void(invoice=invoice, actor=SYSTEM, now=at(when))


def refresh(when: str) -> None:
    """A refresh pass without new usage (its hooks run)."""
    with time_machine.travel(at(when), tick=False), TestCase.captureOnCommitCallbacks(execute=True):
        refresh_usage(actor=SYSTEM, now=at(when))


def live(invoices: list[Invoice]) -> list[Invoice]:
    return [i for i in invoices if i.status != Invoice.Status.VOIDED]


def test_voiding_releases_the_crossings_and_flags_the_lifetime_usage(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    [invoice] = progressive_invoices(billing)
    LifetimeUsage.objects.filter(subscription=billing.subscription).update(
        recalculate_invoiced_usage=False
    )

    void(invoice, "2022-12-07T10:00:00")

    applied = AppliedUsageThreshold.objects.get(invoice=invoice)
    assert applied.voided_at == at("2022-12-07T10:00:00")
    lifetime = LifetimeUsage.objects.get(subscription=billing.subscription)
    assert lifetime.recalculate_invoiced_usage


def test_next_check_bills_a_voided_progressive_invoices_crossing_again(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    [voided] = progressive_invoices(billing)
    void(voided, "2022-12-07T10:00:00")

    refresh("2022-12-07T10:05:00")

    [again] = live(progressive_invoices(billing))
    assert again.pk != voided.pk
    assert (again.fees_amount_cents, again.total_amount_cents) == (20_000, 20_000)
    assert again.progressive_billing_credit_amount_cents == 0
    refresh("2022-12-07T10:10:00")
    assert len(progressive_invoices(billing)) == 2  # crossed once more only


def test_voided_latest_progressive_invoice_is_rebilled_less_the_earlier_one(api, organization):
    billing = v92_billing(api, organization, [(20_000, False), (50_000, False)])
    for day in ("16", "21", "26"):  # 20,000 of usage each: 60,000 passes 50,000
        usage(billing, f"2022-12-{day}T10:00:00")
    first, second = progressive_invoices(billing)
    void(second, "2022-12-27T10:00:00")

    refresh("2022-12-27T10:05:00")

    assert live(progressive_invoices(billing))[0] == first
    [_, third] = live(progressive_invoices(billing))
    assert (third.fees_amount_cents, third.progressive_billing_credit_amount_cents) == (
        60_000,
        20_000,
    )
    assert third.total_amount_cents == 40_000
    december = only_invoice(bill(billing.customer, date(2023, 1, 1)))
    assert december.progressive_billing_credit_amount_cents == 60_000
    assert december.total_amount_cents == 3_100
    billed = sum(i.total_amount_cents for i in [first, third, december])
    assert billed == 63_100  # the plan and the period's whole usage, once


def test_period_end_after_a_voided_progressive_invoice_deducts_only_the_earlier_one(
    api, organization
):
    billing = v92_billing(api, organization, [(20_000, False), (50_000, False)])
    for day in ("16", "21", "26"):  # 20,000 of usage each: 60,000 passes 50,000
        usage(billing, f"2022-12-{day}T10:00:00")
    first, second = progressive_invoices(billing)
    void(second, "2022-12-27T10:00:00")

    december = only_invoice(bill(billing.customer, date(2023, 1, 1)))

    assert december.fees_amount_cents == 63_100
    assert december.progressive_billing_credit_amount_cents == 20_000
    assert december.total_amount_cents == 43_100
    assert first.total_amount_cents + december.total_amount_cents == 63_100


def test_period_end_after_the_only_progressive_invoice_was_voided_deducts_nothing(
    api, organization
):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    [progressive] = progressive_invoices(billing)
    void(progressive, "2022-12-07T10:00:00")

    december = only_invoice(bill(billing.customer, date(2023, 1, 1)))

    assert december.progressive_billing_credit_amount_cents == 0
    assert december.total_amount_cents == 23_100


def test_a_consumed_credit_note_of_the_progressive_invoice_is_not_deducted_again(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    [progressive] = progressive_invoices(billing)
    with time_machine.travel(at("2022-12-07T10:00:00"), tick=False):
        note = credit_note_create(
            invoice=progressive,
            actor=SYSTEM,
            now=at("2022-12-07T10:00:00"),
            items=[ItemInput(str(progressive.fees.get(fee_type="charge").pk), 5_000)],
            credit_amount_cents=5_000,
            reason=CreditNote.Reason.OTHER,
        )
    # its credit went to another invoice since
    CreditNote.objects.filter(pk=note.pk).update(
        credit_status=CreditNote.CreditStatus.CONSUMED, balance_amount_cents=0
    )

    december = only_invoice(bill(billing.customer, date(2023, 1, 1)))

    assert december.progressive_billing_credit_amount_cents == 15_000
    assert december.total_amount_cents == 8_100  # 3,100 + 20,000 of usage - 15,000 kept
