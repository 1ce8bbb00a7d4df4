"""Invoice PDFs: content in the customer's locale, one page, stored by the task (spec §29)."""

from __future__ import annotations

import io
import os
import re
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from billing.services import billing_entity_update
from invoicing.models import Invoice
from invoicing.pdf import (
    generate_invoice_pdf_task,
    invoice_pdf_ensure,
    render_invoice_html,
    render_invoice_pdf,
)
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, apply_coupon, build_invoice, vat

pytestmark = pytest.mark.django_db

SAMPLES = Path(os.environ.get("INVOICE_SAMPLE_DIR", "/tmp/invoice-samples"))


def pdf_text(content: bytes) -> tuple[str, int]:
    reader = PdfReader(io.BytesIO(content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    # Babel's group and currency separators are (narrow) no-break spaces
    return re.sub(r"[\u00a0\u202f]", " ", text), len(reader.pages)


def keep_sample(name: str, content: bytes) -> None:
    SAMPLES.mkdir(parents=True, exist_ok=True)
    (SAMPLES / f"{name}.pdf").write_bytes(content)


@pytest.fixture
def identity(organization):
    entity = organization.default_billing_entity()
    billing_entity_update(
        billing_entity=entity,
        values={
            "legal_name": "Acme Analytics SAS",
            "address_line1": "12 rue de la Paix",
            "zipcode": "75002",
            "city": "Paris",
            "country": "FR",
            "email": "billing@acme.test",
            "tax_identification_number": "FR12345678901",
            "legal_number": "RCS Paris 123 456 789",
            "invoice_footer": "Bank transfer: IBAN FR76 3000 6000 0112 3456 7890 189 · "
            "BIC AGRIFRPP",
        },
    )
    return organization


def customer_in(organization, locale: str, **fields):
    return CustomerFactory(
        organization=organization,
        name="Globex Corporation",
        document_locale=locale,
        address_line1="1 Main Street",
        city="Springfield",
        zipcode="12345",
        country="US",
        email="ap@globex.test",
        tax_identification_number="US-99-1234567",
        **fields,
    )


def rich_invoice(organization, locale: str) -> Invoice:
    customer = customer_in(
        organization,
        locale,
        shipping_address={"address_line1": "Dock 4", "city": "Shelbyville", "country": "US"},
    )
    tax = vat(organization)
    coupon = apply_coupon(organization, customer, name="Welcome", amount_cents=5000)
    return build_invoice(
        organization,
        customer=customer,
        invoice_type="subscription",
        fees=[
            FeeSpec(kind="subscription", amount_cents=99000, name="Scale plan", taxes=[tax]),
            FeeSpec(kind="graduated", units=Decimal(1500), name="API calls", taxes=[tax]),
            FeeSpec(kind="add_on", amount_cents=123456, name="Onboarding", taxes=[tax]),
        ],
        applied_coupon=coupon,
        coupon_amount_cents=5000,
        number="ACM-202603-001",
    )


def test_pdf_shows_number_dates_fees_and_totals_in_french(identity):
    invoice = rich_invoice(identity, "fr")
    content = render_invoice_pdf(invoice)
    keep_sample("invoice-fr", content)
    text, pages = pdf_text(content)
    assert "FACTURE" in text
    assert "ACM-202603-001" in text
    assert "1 234,56 €" in text  # the onboarding add-on
    assert "990,00 €" in text  # the subscription fee
    assert "Palier 1" in text  # graduated breakdown
    assert "Coupon Welcome" in text
    assert "VAT 20 % sur 2 309,56 €" in text  # tax by rate on its base
    assert "1 mars 2026" in text  # issued
    assert "31 mars 2026" in text  # due
    total = f"{invoice.total_amount_cents // 100:,}".replace(",", " ")
    assert f"{total},{invoice.total_amount_cents % 100:02d} €" in text
    assert pages == 1


def test_pdf_formats_money_in_german(identity):
    customer = customer_in(identity, "de")
    invoice = build_invoice(
        identity, customer=customer, fees=[FeeSpec(amount_cents=123456, name="Einrichtung")]
    )
    text, pages = pdf_text(render_invoice_pdf(invoice))
    assert "RECHNUNG" in text
    assert "1.234,56 €" in text
    assert "Einrichtung" in text
    assert pages == 1


def test_pdf_in_english_with_every_line(identity):
    invoice = rich_invoice(identity, "en")
    content = render_invoice_pdf(invoice)
    keep_sample("invoice-en", content)
    text, pages = pdf_text(content)
    assert "INVOICE" in text
    assert "€1,234.56" in text
    for name in ("Scale plan", "API calls", "Onboarding"):
        assert name in text
    assert "Tier 2" in text
    assert "Acme Analytics SAS" in text
    assert "Globex Corporation" in text
    assert "Dock 4" in text  # shipping address
    assert "FR12345678901" in text
    assert "IBAN FR76" in text  # footer
    assert "Page 1 of 1" in text
    assert pages == 1


@pytest.mark.parametrize(
    ("locale", "word", "money"),
    [
        pytest.param("es", "Factura", "1.234,56 €", id="es"),
        pytest.param("it", "Fattura", "1.234,56 €", id="it"),
        pytest.param("nl", "Factuur", "€ 1.234,56", id="nl"),
        pytest.param("pt-BR", "Fatura", "€ 1.234,56", id="pt-BR"),
    ],
)
def test_pdf_speaks_the_customer_locale(identity, locale, word, money):
    customer = customer_in(identity, locale)
    invoice = build_invoice(identity, customer=customer, fees=[FeeSpec(amount_cents=123456)])
    text, _ = pdf_text(render_invoice_pdf(invoice))
    assert word.upper() in text
    assert money in text


def test_pdf_falls_back_to_the_billing_entity_locale(identity):
    entity = identity.default_billing_entity()
    billing_entity_update(billing_entity=entity, values={"document_locale": "fr"})
    invoice = build_invoice(identity, customer=CustomerFactory(organization=identity))
    assert "FACTURE" in pdf_text(render_invoice_pdf(invoice))[0]


def test_pdf_marks_voided_and_paid_invoices(identity):
    voided = build_invoice(identity, status="voided")
    paid = build_invoice(identity, payment_status="succeeded")
    assert "VOID" in pdf_text(render_invoice_pdf(voided))[0].upper()
    assert "This invoice has been paid" in pdf_text(render_invoice_pdf(paid))[0]


def test_pdf_escapes_customer_data(identity):
    customer = customer_in(identity, "en", legal_name='<script>alert("x")</script>')
    invoice = build_invoice(identity, customer=customer)
    html = render_invoice_html(invoice)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_a_long_invoice_flows_onto_more_pages(identity):
    fees = [FeeSpec(amount_cents=1000 + n, name=f"Service {n}") for n in range(60)]
    invoice = build_invoice(identity, fees=fees)
    text, pages = pdf_text(render_invoice_pdf(invoice))
    assert pages > 1
    assert f"Page 1 of {pages}" in text


def test_the_task_stores_the_pdf_on_the_invoice(identity, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    invoice = build_invoice(identity, number="ACM-0042")
    generate_invoice_pdf_task.delay(str(invoice.pk))
    invoice.refresh_from_db()
    assert invoice.file.name.startswith("invoices/ACM-0042")
    stored = Path(tmp_path, invoice.file.name).read_bytes()
    assert "ACM-0042" in pdf_text(stored)[0]


def test_rendering_again_replaces_the_stored_file(identity, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    invoice = build_invoice(identity)
    generate_invoice_pdf_task.delay(str(invoice.pk))
    invoice.refresh_from_db()
    first = invoice.file.name
    generate_invoice_pdf_task.delay(str(invoice.pk))
    invoice.refresh_from_db()
    assert len(list((tmp_path / "invoices").iterdir())) == 1
    assert invoice.file.name.endswith(".pdf")
    assert first


def test_ensure_renders_only_when_missing(identity, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    invoice = build_invoice(identity)
    invoice = invoice_pdf_ensure(invoice=invoice)
    name = invoice.file.name
    assert name
    assert invoice_pdf_ensure(invoice=invoice).file.name == name


def test_the_task_ignores_a_deleted_invoice(db):
    generate_invoice_pdf_task.delay("00000000-0000-0000-0000-000000000000")


def tier_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Tier ")]


@pytest.mark.parametrize(
    ("currency", "first_tier", "second_tier", "total"),
    [
        pytest.param("JPY", "¥100", "¥35", "¥135", id="jpy-0-decimals"),
        pytest.param("KWD", "KWD100.000", "KWD35.025", "KWD135.025", id="kwd-3-decimals"),
        pytest.param("BHD", "BHD100.000", "BHD35.025", "BHD135.025", id="bhd-3-decimals"),
        pytest.param("EUR", "€100.00", "€35.03", "€135.03", id="eur-half-up"),
    ],
)
def test_pdf_tier_rows_show_the_currency_minor_digits(
    identity, currency, first_tier, second_tier, total
):
    # 500.5 units of the second tier at 0.05 + 10 flat: 35.025 in major units
    customer = customer_in(identity, "en", currency=currency)
    invoice = build_invoice(
        identity,
        customer=customer,
        currency=currency,
        fees=[FeeSpec(kind="graduated", units=Decimal("1500.5"), name="API calls")],
    )
    text, _ = pdf_text(render_invoice_pdf(invoice))
    first, second = tier_lines(text)
    assert first.endswith(f" {first_tier}")
    assert second.endswith(f" {second_tier}")
    assert f"Total due {total}" in text
