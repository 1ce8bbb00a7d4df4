"""A pay-in-advance subscription terminated while its last invoice is still a draft (grace
period): the unused days are credited by a draft credit note on that draft, which follows the
draft through its refreshes (Lago `CreditNotes::RefreshDraftService`: the same subscription's
new fee, the amount scaled by new fee / old fee) and takes effect when it is finalized.

V73 figures: 50.00 a month in advance with 20 % VAT from 2023-02-08 10:00 (UTC): the first
invoice bills 21 / 28 days = 3,750 + 750 VAT; terminated the same day, the 20 days after it are
unused: 5,000 / 28 x 20 = 3,571.43 + 714.29 VAT = 4,285."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.actors import SYSTEM
from customers.models import Subscription
from invoicing.models import CreditNote, CreditNoteItem, Fee, Invoice
from invoicing.services.generation import invoice_create_for_start, invoice_create_for_termination
from invoicing.services.lifecycle import invoice_finalize, invoice_refresh
from plans.models import Plan
from tests.invoicing.billing_helpers import customer, plan, subscribe, tax, utc

pytestmark = pytest.mark.django_db

START = utc(2023, 2, 8, 10)


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


@pytest.fixture
def draft_first_invoice(organization) -> Invoice:
    """The first invoice of the V73 subscription, a draft for a 3-day grace period; the
    subscription is then terminated on its first day."""
    who = customer(organization, external_id="v73", invoice_grace_period=3)
    who.taxes.add(tax(organization, "vat20", "20"))
    monthly = plan(organization, amount_cents=5000, pay_in_advance=True)
    subscription = subscribe(organization, who, monthly, START)
    first = invoice_create_for_start(subscription=subscription, actor=SYSTEM, now=START)
    assert first.status == Invoice.Status.DRAFT
    Subscription.objects.filter(pk=subscription.pk).update(
        status=Subscription.Status.TERMINATED, terminated_at=START
    )
    invoice_create_for_termination(subscription=subscription, actor=SYSTEM, now=START)
    return first


def _subscription_fee(invoice: Invoice) -> Fee:
    return Fee.objects.get(invoice=invoice, fee_type=Fee.FeeType.SUBSCRIPTION)


def test_termination_credits_the_unused_days_of_a_draft_with_a_draft_credit_note(
    draft_first_invoice,
):
    note = CreditNote.objects.get()

    assert note.invoice_id == draft_first_invoice.pk
    assert (note.status, note.number) == (CreditNote.Status.DRAFT, "")
    assert (note.sub_total_excluding_taxes_amount_cents, note.taxes_amount_cents) == (3571, 714)
    assert note.credit_amount_cents == 4285


def test_refreshing_the_draft_keeps_its_credit_note_on_the_new_fee(draft_first_invoice):
    invoice_refresh(invoice=draft_first_invoice, actor=SYSTEM, now=START)

    note = CreditNote.objects.get()
    [item] = CreditNoteItem.objects.filter(credit_note=note)
    assert item.fee == _subscription_fee(draft_first_invoice)
    assert item.precise_amount_cents == Decimal("3571.42857")
    assert (note.status, note.credit_amount_cents, note.total_amount_cents) == ("draft", 4285, 4285)


def test_a_refresh_that_changes_the_fee_scales_the_credit_note(draft_first_invoice):
    Plan.objects.filter(pk=_subscription_fee(draft_first_invoice).subscription.plan_id).update(
        amount_cents=10_000
    )

    invoice_refresh(invoice=draft_first_invoice, actor=SYSTEM, now=START)

    assert _subscription_fee(draft_first_invoice).amount_cents == 7_500
    note = CreditNote.objects.get()
    # 3,571.42857 x 7,500 / 3,750 = 7,142.85714 -> 7,143; VAT 1,428.57 -> 1,429; the total is
    # the sum of the rounded parts, as V73's 3,571 + 714 = 4,285
    assert note.sub_total_excluding_taxes_amount_cents == 7_143
    assert note.taxes_amount_cents == 1_429
    assert (note.credit_amount_cents, note.balance_amount_cents) == (8_572, 8_572)


def test_finalizing_the_refreshed_draft_makes_its_credit_available(draft_first_invoice):
    invoice_refresh(invoice=draft_first_invoice, actor=SYSTEM, now=START)

    invoice = invoice_finalize(invoice=draft_first_invoice, actor=SYSTEM, now=START)

    note = CreditNote.objects.get()
    assert note.status == CreditNote.Status.FINALIZED
    assert note.number == f"{invoice.number}-CN001"
    assert (note.credit_status, note.balance_amount_cents) == ("available", 4285)
