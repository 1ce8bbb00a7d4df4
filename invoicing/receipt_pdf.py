"""Payment receipt PDFs: WeasyPrint renders `templates/invoicing/payment_receipt.html` in the
customer's document locale, with the invoice PDF's style sheet; the Celery task stores the file
in `PaymentReceipt.file` and records `payment_receipt.generated`."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from celery import shared_task
from django.core.files.base import ContentFile
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import pgettext_lazy

from billing.actors import SYSTEM, Actor
from invoicing.locale import DocumentLocale
from invoicing.locks import lock_payment_receipt
from invoicing.models import Invoice, PaymentReceipt
from invoicing.payment_selectors import invoice_amount_due
from invoicing.pdf import _address, _bill_to, _font_config, _issuer, _logo_data_uri, css_string
from invoicing.services.payment_events import record_receipt_event

TEMPLATE = "invoicing/payment_receipt.html"

_RECEIPT = "payment receipt document"

# Words of the receipt (translated in `invoicing/locale/*/LC_MESSAGES/django.po`).
_WORDS = {
    "receipt": pgettext_lazy(_RECEIPT, "Payment receipt"),
    "paid": pgettext_lazy(_RECEIPT, "Paid"),
    "received_from": pgettext_lazy(_RECEIPT, "Received from"),
    "receipt_number": pgettext_lazy(_RECEIPT, "Receipt number"),
    "payment_date": pgettext_lazy(_RECEIPT, "Payment date"),
    "payment_method": pgettext_lazy(_RECEIPT, "Payment method"),
    "manual": pgettext_lazy(_RECEIPT, "Manual payment"),
    "reference": pgettext_lazy(_RECEIPT, "Reference"),
    "amount_received": pgettext_lazy(_RECEIPT, "Amount received"),
    "invoice": pgettext_lazy(_RECEIPT, "Invoice"),
    "issue_date": pgettext_lazy(_RECEIPT, "Issue date"),
    "invoice_total": pgettext_lazy(_RECEIPT, "Invoice total"),
    "amount_due_after": pgettext_lazy(_RECEIPT, "Still due"),
    "thanks": pgettext_lazy(_RECEIPT, "Thank you for your payment."),
}


def _receipt_for_document(receipt_id: object) -> PaymentReceipt | None:
    return (
        PaymentReceipt.objects.select_related(
            "billing_entity",
            "payment__customer__billing_entity",
            "payment__invoice",
            "payment__payment_request",
        )
        .filter(pk=receipt_id)
        .first()
    )


def _paid_invoices(receipt: PaymentReceipt) -> list[Invoice]:
    payment = receipt.payment
    if payment.invoice_id:
        return [payment.invoice]
    return list(
        Invoice.objects.filter(
            pk__in=payment.payment_request.applied_invoices.values("invoice_id")
        ).order_by("issuing_date", "number")
    )


def receipt_document_context(receipt: PaymentReceipt) -> dict:
    """Everything the receipt shows, formatted in the customer's document locale."""
    payment = receipt.payment
    customer = payment.customer
    entity = receipt.billing_entity
    code = customer.document_locale or entity.document_locale or "en"
    loc = DocumentLocale(code)
    words = {**loc.strings, **loc.words(_WORDS)}
    tz = ZoneInfo(customer.applicable_timezone)
    # the invoice helpers read `billing_entity` and `customer` off the document
    holder = Invoice(billing_entity=entity, customer=customer)
    page_text = loc.t("page", page="\x00", pages="\x01")
    before, _, rest = page_text.partition("\x00")
    middle, _, after = rest.partition("\x01")
    identity = " · ".join(
        part
        for part in (
            entity.legal_name or entity.name,
            ", ".join(
                _address(
                    entity.address_line1,
                    entity.address_line2,
                    entity.zipcode,
                    entity.city,
                    entity.state,
                    entity.country,
                    loc.babel,
                )
            ),
        )
        if part
    )
    currency = payment.amount_currency
    method = (
        words["manual"]
        if payment.payment_type == payment.PaymentType.MANUAL
        else (payment.payment_provider_type or payment.payment_provider_code).title()
    )
    return {
        "lang": loc.html_lang,
        "t": words,
        "number": receipt.number,
        "payment_date": loc.date(payment.created_at.astimezone(tz).date()),
        "method": method,
        "reference": payment.reference or payment.provider_payment_id or "",
        "amount": loc.money(payment.amount_cents, currency),
        "issuer": _issuer(holder, loc),
        "logo": _logo_data_uri(entity),
        "bill_to": _bill_to(holder, loc),
        "invoices": [
            {
                "number": invoice.number,
                "issue_date": loc.date(invoice.issuing_date),
                "total": loc.money(invoice.total_amount_cents, invoice.currency),
                "due": loc.money(invoice_amount_due(invoice), invoice.currency),
            }
            for invoice in _paid_invoices(receipt)
        ],
        "currency_note": loc.t("currency_note", currency=currency),
        "css": {
            "page": f"{css_string(before)} counter(page) {css_string(middle)} counter(pages) "
            f"{css_string(after)}",
            "footer_identity": css_string(identity),
        },
    }


def render_receipt_html(receipt: PaymentReceipt) -> str:
    context = receipt_document_context(receipt)
    with translation.override(context["lang"]):
        return render_to_string(TEMPLATE, context)


def render_receipt_pdf(receipt: PaymentReceipt) -> bytes:
    """The receipt as a PDF document (A4)."""
    from weasyprint import HTML

    return HTML(string=render_receipt_html(receipt)).write_pdf(font_config=_font_config())


def payment_receipt_pdf_store(
    *, receipt_id: object, actor: Actor = SYSTEM
) -> PaymentReceipt | None:
    """Renders the receipt's PDF, stores it and records `payment_receipt.generated`."""
    receipt = _receipt_for_document(receipt_id)
    if receipt is None:
        return None
    content = render_receipt_pdf(receipt)
    with transaction.atomic():
        locked = lock_payment_receipt(receipt.pk)
        old = locked.file.name if locked.file else None
        locked.file.save(f"{locked.number}.pdf", ContentFile(content), save=False)
        locked.save(update_fields=["file", "updated_at"])
        locked.payment = receipt.payment
        record_receipt_event(locked, "payment_receipt.generated", actor=actor)
    if old and old != locked.file.name:
        locked.file.storage.delete(old)
    return locked


@shared_task(acks_late=True)
def generate_payment_receipt_pdf_task(receipt_id: str) -> None:
    """Renders and stores a payment receipt's PDF (idempotent: re-renders)."""
    payment_receipt_pdf_store(receipt_id=receipt_id)
