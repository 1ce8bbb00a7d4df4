"""Credit-note balances consumed by the customer's next invoices: after taxes, before prepaid
credits, oldest first, partially; a draft consumes nothing; a voided invoice gives it back."""

from __future__ import annotations

from datetime import date

import pytest

from billing.actors import SYSTEM
from invoicing.models import CreditNote, Invoice
from invoicing.services.credit_notes import ItemInput, credit_note_create
from invoicing.services.lifecycle import invoice_finalize
from invoicing.services.void import invoice_void
from tests.invoicing.billing_helpers import bill, customer, only_invoice, plan, subscribe, utc
from tests.invoicing.credit_note_builders import simple_invoice

pytestmark = pytest.mark.django_db

NOW = utc(2024, 1, 20)


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def credit(invoice: Invoice, cents_excl_tax: int, *, now=NOW) -> CreditNote:
    """A credit note crediting `cents_excl_tax` (+20% tax) of the invoice's first fee."""
    fee = invoice.fees.order_by("created_at", "id").first()
    return credit_note_create(
        invoice=invoice,
        actor=SYSTEM,
        now=now,
        items=[ItemInput(str(fee.pk), cents_excl_tax)],
        credit_amount_cents=cents_excl_tax * 12 // 10,
    )


def test_next_invoice_consumes_credit_oldest_first_and_partially(organization):
    acme = customer(organization, external_id="acme")
    old = simple_invoice(organization, customer=acme)
    first = credit(old, 1000)  # 1,200 of credit
    second = credit(old, 2000)  # 2,400
    subscribe(organization, acme, plan(organization, amount_cents=3000), utc(2024, 1, 1))
    invoice = only_invoice(bill(acme, date(2024, 2, 1)))
    assert invoice.sub_total_including_taxes_amount_cents == 3000
    assert invoice.credit_notes_amount_cents == 3000
    assert invoice.total_amount_cents == 0
    assert invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.balance_amount_cents, first.credit_status) == (0, "consumed")
    assert (second.balance_amount_cents, second.credit_status) == (600, "available")
    credits = invoice.credits.filter(credit_note__isnull=False).order_by("amount_cents")
    assert [(c.credit_note_id, c.amount_cents, c.before_taxes) for c in credits] == [
        (first.pk, 1200, False),
        (second.pk, 1800, False),
    ]


def test_credit_in_another_currency_is_not_consumed(organization):
    acme = customer(organization, external_id="acme")
    old = simple_invoice(organization, customer=acme, currency="USD")
    note = credit(old, 1000)
    subscribe(organization, acme, plan(organization, amount_cents=3000), utc(2024, 1, 1))
    invoice = only_invoice(bill(acme, date(2024, 2, 1)))
    assert invoice.credit_notes_amount_cents == 0
    note.refresh_from_db()
    assert note.balance_amount_cents == 1200


def test_a_draft_consumes_nothing_until_finalized(organization):
    from tests.invoicing.billing_helpers import set_entity

    set_entity(organization, invoice_grace_period=3)
    acme = customer(organization, external_id="acme")
    note = credit(simple_invoice(organization, customer=acme), 1000)
    subscribe(organization, acme, plan(organization, amount_cents=3000), utc(2024, 1, 1))
    draft = only_invoice(bill(acme, date(2024, 2, 1)))
    assert (draft.status, draft.credit_notes_amount_cents) == ("draft", 0)
    note.refresh_from_db()
    assert note.balance_amount_cents == 1200
    invoice_finalize(invoice=draft, actor=SYSTEM, now=utc(2024, 2, 3))
    draft.refresh_from_db()
    assert (draft.credit_notes_amount_cents, draft.total_amount_cents) == (1200, 1800)
    note.refresh_from_db()
    assert (note.balance_amount_cents, note.credit_status) == (0, "consumed")


def test_voiding_the_invoice_gives_the_credit_back(organization):
    acme = customer(organization, external_id="acme")
    note = credit(simple_invoice(organization, customer=acme), 1000)
    subscribe(organization, acme, plan(organization, amount_cents=3000), utc(2024, 1, 1))
    invoice = only_invoice(bill(acme, date(2024, 2, 1)))
    invoice_void(invoice=invoice, actor=SYSTEM, now=utc(2024, 2, 2), generate_credit_note=False)
    note.refresh_from_db()
    assert (note.balance_amount_cents, note.credit_status) == (1200, "available")


def test_voided_credit_note_is_not_consumed(organization):
    from invoicing.services.credit_notes import credit_note_void

    acme = customer(organization, external_id="acme")
    note = credit(simple_invoice(organization, customer=acme), 1000)
    credit_note_void(credit_note=note, actor=SYSTEM, now=NOW)
    subscribe(organization, acme, plan(organization, amount_cents=3000), utc(2024, 1, 1))
    invoice = only_invoice(bill(acme, date(2024, 2, 1)))
    assert invoice.credit_notes_amount_cents == 0


def test_the_invoice_lists_the_credit_note_it_consumed(api, organization):
    acme = customer(organization, external_id="acme")
    note = credit(simple_invoice(organization, customer=acme), 1000)
    subscribe(organization, acme, plan(organization, amount_cents=3000), utc(2024, 1, 1))
    invoice = only_invoice(bill(acme, date(2024, 2, 1)))
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()["invoice"]
    assert body["credit_notes_amount_cents"] == 1200
    [line] = [c for c in body["credits"] if c["item"]["type"] == "credit_note"]
    assert line["item"] == {
        "lago_item_id": str(note.pk),
        "type": "credit_note",
        "code": note.number,
        "name": note.number,
    }
    assert (line["amount_cents"], line["before_taxes"]) == (1200, False)
