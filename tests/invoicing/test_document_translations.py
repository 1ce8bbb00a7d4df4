"""Document words come from the translation catalogs: every `.po` compiles to the committed `.mo`,
and each document locale's invoice, credit note and payment receipt print its own words."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from html import unescape

import pytest
from babel.messages.pofile import read_po
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from billing.actors import SYSTEM
from invoicing.document_messages import LOCALE_DIR, catalogs, compile_po, po_files
from invoicing.locale import _EN, SUPPORTED
from invoicing.models import PaymentReceipt
from invoicing.payment_request_email import WORDS as REQUEST_EMAIL_WORDS
from invoicing.pdf import render_invoice_html, render_invoice_pdf
from invoicing.pdf_credit_notes import _REASONS, render_credit_note_html, render_credit_note_pdf
from invoicing.pdf_credit_notes import _WORDS as CREDIT_NOTE_WORDS
from invoicing.receipt_pdf import _WORDS as RECEIPT_WORDS
from invoicing.receipt_pdf import render_receipt_html, render_receipt_pdf
from invoicing.services.credit_notes import ItemInput, credit_note_create
from invoicing.services.payment_settlement import payment_create_manual
from tests.invoicing.billing_helpers import utc
from tests.invoicing.credit_note_builders import simple_invoice
from tests.invoicing.test_pdf import (  # noqa: F401
    customer_in,
    identity,
    keep_sample,
    pdf_text,
    rich_invoice,
)

TRANSLATED = [code for code in SUPPORTED if code != "en"]
INVOICE = ("invoice document", "invoice totals")
CREDIT_NOTE = ("credit note document", "credit note reason", *INVOICE)
RECEIPT = ("payment receipt document", *INVOICE)


# Chinese documents need a CJK font on the machine (`fonts-noto-cjk`, installed by
# `./scripts/test`): without one WeasyPrint draws blank boxes that carry no text, so these tests
# fail rather than skip.
PDF_LOCALES = TRANSLATED


def _catalog(code: str):
    path = LOCALE_DIR / code.replace("-", "_") / "LC_MESSAGES" / "django.po"
    with path.open("rb") as source:
        return read_po(source)


def _english(*tables) -> set[str]:
    with translation.override("en"):
        return {str(text) for table in tables for text in table.values()}


def _fallbacks(text: str, code: str, contexts: tuple[str, ...]) -> list[str]:
    """English wordings the locale translates differently that still show in the text (titles
    are set in capitals, so case is ignored; the literal parts of '{...}' wordings are checked)."""
    found = []
    for message in _catalog(code):
        if not message.id or message.context not in contexts:
            continue
        if message.string.casefold() == message.id.casefold():
            continue
        for part in re.split(r"\{\w+\}", message.id):
            part = part.strip(" .:()\u2013")
            if len(part) < 3 or part.casefold() in message.string.casefold():
                continue
            if re.search(rf"(?<!\w){re.escape(part)}(?!\w)", text, re.IGNORECASE):
                found.append(f"{message.context}: {part}")
    return found


def _html_text(html: str) -> str:
    """The text a reader sees in a document's HTML (styles and tags left out)."""
    html = re.sub(r"<style.*?</style>", " ", html, flags=re.DOTALL)
    return unescape(re.sub(r"<[^>]+>", " ", html))


def _credit_note(identity, code: str):  # noqa: F811
    invoice = simple_invoice(identity, customer=customer_in(identity, code), paid=True)
    return credit_note_create(
        invoice=invoice, actor=SYSTEM, now=utc(2026, 3, 5),
        items=[ItemInput(str(invoice.fees.get().pk), 10000)],
        credit_amount_cents=6000, refund_amount_cents=6000,
        reason="order_cancellation", description="",
    )  # fmt: skip


def _receipt(identity, code: str) -> PaymentReceipt:  # noqa: F811
    invoice = simple_invoice(identity, customer=customer_in(identity, code), amount_cents=100000)
    payment = payment_create_manual(
        payable=invoice, amount_cents=50000, reference="VIR-118",
        paid_at=dt.datetime(2026, 3, 20, 9, 0, tzinfo=dt.UTC), actor=SYSTEM,
        now=dt.datetime(2026, 4, 1, 12, 0, tzinfo=dt.UTC),
    )  # fmt: skip
    return PaymentReceipt.objects.get(payment=payment)


def test_every_po_compiles_to_the_committed_mo():
    items = catalogs()
    assert {item.po.parent.parent.name for item in items} == {
        code.replace("-", "_") for code in TRANSLATED
    }
    for item in items:
        assert item.mo.read_bytes() == compile_po(item.po), item.po


def test_check_fails_when_a_mo_is_stale(tmp_path, monkeypatch):
    call_command("compile_document_messages", "--check")
    fr = tmp_path / "fr" / "LC_MESSAGES"
    fr.mkdir(parents=True)
    (fr / "django.po").write_bytes(po_files()[0].read_bytes())
    (fr / "django.mo").write_bytes(b"")
    monkeypatch.setattr("invoicing.document_messages.LOCALE_DIR", tmp_path)
    monkeypatch.setattr(
        "invoicing.management.commands.compile_document_messages.LOCALE_DIR", tmp_path
    )
    monkeypatch.setattr(
        "invoicing.management.commands.compile_document_messages.catalogs",
        lambda: catalogs(tmp_path),
    )
    with pytest.raises(CommandError):
        call_command("compile_document_messages", "--check")
    call_command("compile_document_messages")
    assert (fr / "django.mo").read_bytes() == compile_po(fr / "django.po")


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_catalog_translates_every_document_word(code):
    catalog = _catalog(code)
    ids = {message.id for message in catalog if message.id}
    assert ids == _english(_EN, CREDIT_NOTE_WORDS, _REASONS, RECEIPT_WORDS, REQUEST_EMAIL_WORDS)
    assert not [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]


@pytest.mark.django_db
@pytest.mark.parametrize("code", PDF_LOCALES)
def test_invoice_pdf_prints_no_english_word_the_locale_translates(identity, code):  # noqa: F811
    text, _ = pdf_text(render_invoice_pdf(rich_invoice(identity, code)))
    assert _catalog(code).get("Invoice", context="invoice document").string.upper() in text
    assert _fallbacks(text, code, INVOICE) == []


@pytest.mark.django_db
@pytest.mark.parametrize("code", PDF_LOCALES)
def test_credit_note_pdf_prints_no_english_word_the_locale_translates(identity, code):  # noqa: F811
    text, _ = pdf_text(render_credit_note_pdf(_credit_note(identity, code)))
    catalog = _catalog(code)
    title = catalog.get("Credit note", context="credit note document").string
    assert title.upper() in text.upper()
    assert catalog.get("Order cancellation", context="credit note reason").string in text
    assert _fallbacks(text, code, CREDIT_NOTE) == []


@pytest.mark.django_db
@pytest.mark.parametrize("code", PDF_LOCALES)
def test_receipt_pdf_prints_no_english_word_the_locale_translates(identity, code, settings):  # noqa: F811
    settings.RECEIPT_PDF_ON_CREATE = False
    text, _ = pdf_text(render_receipt_pdf(_receipt(identity, code)))
    title = _catalog(code).get("Payment receipt", context="payment receipt document").string
    assert title.upper() in text.upper()
    assert _fallbacks(text, code, RECEIPT) == []


@pytest.mark.django_db
def test_zh_tw_pdfs_draw_chinese_glyphs_with_the_cjk_font(identity, tmp_path):  # noqa: F811
    pdf = tmp_path / "zh-TW.pdf"
    pdf.write_bytes(render_invoice_pdf(rich_invoice(identity, "zh-TW")))
    fonts = subprocess.run(["pdffonts", pdf], capture_output=True, text=True, check=True).stdout
    assert re.search(r"Noto-?Sans-?CJK-?TC", fonts)  # the CSS falls back to Noto Sans CJK TC
    subprocess.run(
        ["pdftoppm", "-png", "-r", "100", "-f", "1", "-l", "1", pdf, tmp_path / "page"],
        check=True,
    )
    assert (tmp_path / "page-1.png").stat().st_size > 0
    keep_sample("invoice-zh-TW", pdf.read_bytes())
    text, _ = pdf_text(pdf.read_bytes())
    title = _catalog("zh-TW").get("Invoice", context="invoice document").string
    assert title in text  # drawn as glyphs (a box carries no text)


@pytest.mark.django_db
@pytest.mark.parametrize("code", TRANSLATED)
def test_invoice_html_shows_no_english_word_the_locale_translates(identity, code):  # noqa: F811
    text = _html_text(render_invoice_html(rich_invoice(identity, code)))
    title = _catalog(code).get("Invoice", context="invoice document").string
    assert title.casefold() in text.casefold()
    assert _fallbacks(text, code, INVOICE) == []


@pytest.mark.django_db
@pytest.mark.parametrize("code", TRANSLATED)
def test_credit_note_html_shows_no_english_word_the_locale_translates(identity, code):  # noqa: F811
    text = _html_text(render_credit_note_html(_credit_note(identity, code)))
    catalog = _catalog(code)
    title = catalog.get("Credit note", context="credit note document").string
    assert title.casefold() in text.casefold()
    assert catalog.get("Order cancellation", context="credit note reason").string in text
    assert _fallbacks(text, code, CREDIT_NOTE) == []


@pytest.mark.django_db
@pytest.mark.parametrize("code", TRANSLATED)
def test_receipt_html_shows_no_english_word_the_locale_translates(identity, code, settings):  # noqa: F811
    settings.RECEIPT_PDF_ON_CREATE = False
    text = _html_text(render_receipt_html(_receipt(identity, code)))
    title = _catalog(code).get("Payment receipt", context="payment receipt document").string
    assert title.casefold() in text.casefold()
    assert _fallbacks(text, code, RECEIPT) == []


def test_rendering_leaves_the_active_language_alone(identity):  # noqa: F811
    with translation.override("de"):
        render_invoice_pdf(rich_invoice(identity, "fr"))
        assert translation.get_language() == "de"


@pytest.mark.django_db
def test_the_fallback_check_finds_the_english_words_of_an_english_pdf(identity):  # noqa: F811
    text, _ = pdf_text(render_invoice_pdf(rich_invoice(identity, "en")))
    found = _fallbacks(text, "fr", INVOICE)
    assert "invoice document: Invoice number" in found
    assert "invoice document: Total due" in found


@pytest.mark.django_db
def test_the_fallback_check_finds_the_english_words_of_an_english_invoice_html(identity):  # noqa: F811
    text = _html_text(render_invoice_html(rich_invoice(identity, "en")))
    found = _fallbacks(text, "zh-TW", INVOICE)
    assert "invoice document: Invoice number" in found
    assert "invoice document: Total due" in found
