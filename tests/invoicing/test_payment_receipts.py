"""Payment receipts: the organization's switch, the localized PDF and its storage."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from invoicing.models import PaymentReceipt
from invoicing.receipt_pdf import payment_receipt_pdf_store, render_receipt_pdf
from invoicing.services.payment_requests import payment_request_create
from invoicing.services.payment_settlement import payment_create_manual
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice
from tests.invoicing.test_pdf import pdf_text

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 1, 12, 0, tzinfo=dt.UTC)
SAMPLES = Path(os.environ.get("INVOICE_SAMPLE_DIR", "/tmp/invoice-samples"))


@pytest.fixture(autouse=True)
def _no_receipt_pdf(settings):
    settings.RECEIPT_PDF_ON_CREATE = False


def pay(payable, amount_cents, reference="VIR-2026-03-118"):
    return payment_create_manual(
        payable=payable,
        amount_cents=amount_cents,
        reference=reference,
        paid_at=dt.datetime(2026, 3, 20, 9, 0, tzinfo=dt.UTC),
        actor=SYSTEM,
        now=NOW,
    )


def test_put_organizations_turns_receipts_off_and_on(api, organization):
    response = api.put(
        "/api/v1/organizations", {"organization": {"issue_receipts": False}}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["organization"]["issue_receipts"] is False
    pay(build_invoice(organization), 100)
    assert PaymentReceipt.objects.count() == 0
    api.put("/api/v1/organizations", {"organization": {"issue_receipts": True}}, format="json")
    pay(build_invoice(organization), 100)
    assert PaymentReceipt.objects.count() == 1


def test_a_french_receipt_pdf_names_the_payment_the_invoice_and_what_is_still_due(organization):
    customer = CustomerFactory(
        organization=organization, name="Bergmann SARL", document_locale="fr", slug="ACM-007"
    )
    invoice = build_invoice(
        organization, customer=customer, fees=[FeeSpec(amount_cents=120000)], number="ACM-0042"
    )
    receipt = PaymentReceipt.objects.get(payment=pay(invoice, 50000))
    content = render_receipt_pdf(receipt)
    text, pages = pdf_text(content)
    assert pages == 1
    assert "REÇU DE PAIEMENT" in text  # the title is set in capitals
    assert "ACM-007-RCPT-000001" in text
    assert "Bergmann SARL" in text
    assert "ACM-0042" in text
    assert "500,00 €" in text  # received
    assert "700,00 €" in text  # still due
    assert "VIR-2026-03-118" in text
    assert "20 mars 2026" in text
    SAMPLES.mkdir(parents=True, exist_ok=True)
    (SAMPLES / "payment-receipt-fr.pdf").write_bytes(content)


def test_a_payment_request_receipt_lists_every_invoice_paid(organization):
    customer = CustomerFactory(organization=organization, external_id="globex")
    invoices = [
        build_invoice(organization, customer=customer, number=f"ACM-01{i}") for i in range(3)
    ]
    for invoice in invoices:
        invoice.payment_overdue = True
        invoice.save()
    request = payment_request_create(
        organization=organization,
        external_customer_id="globex",
        lago_invoice_ids=[str(i.pk) for i in invoices],
        actor=SYSTEM,
        now=NOW,
    )
    receipt = PaymentReceipt.objects.get(payment=pay(request, request.amount_cents))
    text, pages = pdf_text(render_receipt_pdf(receipt))
    assert pages == 1
    assert "PAYMENT RECEIPT" in text
    assert all(number in text for number in ("ACM-010", "ACM-011", "ACM-012"))


def test_storing_the_pdf_records_payment_receipt_generated(api, organization):
    receipt = PaymentReceipt.objects.get(payment=pay(build_invoice(organization), 100))
    stored = payment_receipt_pdf_store(receipt_id=receipt.pk)
    assert stored.file.name.endswith(".pdf")
    assert OutboxEvent.objects.filter(event_type="payment_receipt.generated").count() == 1
    body = api.get(f"/api/v1/payment_receipts/{receipt.pk}").json()["payment_receipt"]
    download = api.get(body["file_url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"%PDF")
