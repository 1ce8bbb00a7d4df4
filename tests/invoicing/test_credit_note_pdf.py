"""Credit note PDFs: the invoice's style, one page, the amounts and the invoice corrected."""

from __future__ import annotations

import pytest

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from invoicing.pdf_credit_notes import credit_note_pdf_store, render_credit_note_pdf
from invoicing.services.credit_notes import ItemInput, credit_note_create
from tests.invoicing.billing_helpers import utc
from tests.invoicing.credit_note_builders import simple_invoice, v75_invoice
from tests.invoicing.test_pdf import keep_sample, pdf_text

pytestmark = pytest.mark.django_db


def test_credit_note_pdf_shows_items_coupon_adjustment_taxes_and_split(organization):
    invoice = v75_invoice(organization, total_paid_amount_cents=11767)
    _, fee2 = invoice.fees.order_by("created_at", "id")
    note = credit_note_create(
        invoice=invoice,
        actor=SYSTEM,
        now=utc(2026, 3, 5),
        items=[ItemInput(str(fee2.pk), 26260)],
        refund_amount_cents=11767,
        reason="product_unsatisfactory",
        description="Service outage in March",
    )
    content = render_credit_note_pdf(note)
    keep_sample("credit-note-v75", content)
    text, pages = pdf_text(content)
    assert pages == 1
    assert "Credit note" in text
    assert note.number in text
    assert invoice.number in text
    assert "Product unsatisfactory" in text
    assert "Service outage in March" in text
    assert "€262.60" in text  # the item
    assert "€164.54" in text  # coupon adjustment
    assert "€98.06" in text  # sub-total
    assert "€117.67" in text  # total and refund


def test_french_customer_gets_french_words(organization):
    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(organization=organization, currency="EUR", document_locale="fr")
    invoice = simple_invoice(organization, customer=customer)
    fee = invoice.fees.get()
    note = credit_note_create(
        invoice=invoice, actor=SYSTEM, now=utc(2026, 3, 5),
        items=[ItemInput(str(fee.pk), 1000)], credit_amount_cents=1200,
    )  # fmt: skip
    text, _ = pdf_text(render_credit_note_pdf(note))
    assert "Numéro d'avoir" in text
    assert "12,00 €" in text


def test_stored_pdf_records_credit_note_generated(organization):
    invoice = simple_invoice(organization)
    fee = invoice.fees.get()
    note = credit_note_create(
        invoice=invoice, actor=SYSTEM, now=utc(2026, 3, 5),
        items=[ItemInput(str(fee.pk), 1000)], credit_amount_cents=1200,
    )  # fmt: skip
    stored = credit_note_pdf_store(credit_note_id=note.pk, actor=SYSTEM)
    assert stored.file.name.endswith(".pdf")
    assert OutboxEvent.objects.filter(
        event_type="credit_note.generated", object_id=str(note.pk)
    ).exists()
