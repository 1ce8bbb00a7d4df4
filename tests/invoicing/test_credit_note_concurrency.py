"""Invoices of one customer finalizing at once on PostgreSQL, with real connections: each
credit-note cent is spent once, the balances end exact and never negative."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from billing.actors import SYSTEM
from invoicing.models import Credit, CreditNote, Invoice
from invoicing.services.credit_notes import ItemInput, credit_note_create
from invoicing.services.lifecycle import invoice_finalize
from tests.concurrency import run_at_once
from tests.invoicing.billing_helpers import separate_drafts, utc
from tests.invoicing.credit_note_builders import simple_invoice

pytestmark = pytest.mark.django_db(transaction=True)

DRAFTS = 12
FEE_CENTS = 1000


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def test_concurrent_finalizations_spend_each_credit_once(organization):
    drafts = separate_drafts(organization, DRAFTS, FEE_CENTS)
    old = simple_invoice(organization, customer=drafts[0].customer, amount_cents=20000)
    fee = old.fees.get()
    notes = [
        credit_note_create(
            invoice=old,
            actor=SYSTEM,
            now=utc(2024, 1, 15),
            items=[ItemInput(str(fee.pk), amount)],
            credit_amount_cents=amount * 12 // 10,
        )
        for amount in (2500, 2500)
    ]  # 3,000 + 3,000 of credit for 12 invoices of 1,000

    errors = run_at_once(
        [
            (lambda d=draft: invoice_finalize(invoice=d, actor=SYSTEM, now=utc(2024, 2, 5)))
            for draft in drafts
        ]
    )

    assert errors == []
    finalized = Invoice.objects.filter(pk__in=[d.pk for d in drafts])
    assert {invoice.status for invoice in finalized} == {"finalized"}
    assert finalized.aggregate(total=Sum("credit_notes_amount_cents"))["total"] == 6000
    assert (
        sorted(finalized.values_list("total_amount_cents", flat=True)) == [0] * 6 + [FEE_CENTS] * 6
    )
    spent = Credit.objects.filter(credit_note__in=notes, voided_at__isnull=True)
    assert spent.aggregate(total=Sum("amount_cents"))["total"] == 6000
    for note in CreditNote.objects.filter(pk__in=[n.pk for n in notes]):
        assert (note.balance_amount_cents, note.credit_status) == (0, "consumed")


def test_concurrent_credit_notes_on_one_invoice_never_over_credit(organization):
    invoice = simple_invoice(organization, amount_cents=10000)  # 12,000 with tax
    fee = invoice.fees.get()

    def issue() -> None:
        credit_note_create(
            invoice=invoice,
            actor=SYSTEM,
            now=utc(2024, 1, 15),
            items=[ItemInput(str(fee.pk), 1000)],
            credit_amount_cents=1200,
        )

    errors = run_at_once([issue for _ in range(12)])

    assert len(errors) == 2  # the fee had room for ten
    assert {type(error).__name__ for error in errors} == {"Invalid"}
    notes = CreditNote.objects.filter(invoice=invoice)
    assert notes.aggregate(total=Sum("credit_amount_cents"))["total"] == 12000
    assert sorted(notes.values_list("number", flat=True)) == [
        f"{invoice.number}-CN{n:03d}" for n in range(1, 11)
    ]
