"""The e-mail of a payment request (Lago's `PaymentRequestMailer#requested`), in the customer's
document language: the overdue invoices it lists, what each still owes and the total; a dunning
campaign's request copies the campaign's BCC addresses. Sending it belongs to `integrations`."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import pgettext_lazy

from invoicing.locale import DocumentLocale
from invoicing.models import PaymentRequest
from invoicing.payment_selectors import invoice_amount_due

_EMAIL = "payment request email"

# Words of the e-mail (translated in `invoicing/locale/*/LC_MESSAGES/django.po`).
WORDS = {
    "subject": pgettext_lazy(_EMAIL, "Overdue invoices from {entity}"),
    "greeting": pgettext_lazy(_EMAIL, "Hello {name},"),
    "intro": pgettext_lazy(_EMAIL, "The invoices below are overdue. Please pay {amount}."),
    "invoice": pgettext_lazy(_EMAIL, "Invoice"),
    "due_date": pgettext_lazy(_EMAIL, "Due date"),
    "amount_due": pgettext_lazy(_EMAIL, "Amount due"),
    "total": pgettext_lazy(_EMAIL, "Total due"),
    "thanks": pgettext_lazy(_EMAIL, "Thank you."),
}


@dataclass(frozen=True)
class PaymentRequestEmail:
    subject: str
    body: str
    to: list[str]
    bcc: list[str]
    reply_to: list[str]


def _addresses(value: str) -> list[str]:
    return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]


def payment_request_email(request: PaymentRequest) -> PaymentRequestEmail:
    """Subject, plain-text body and recipients of the request's e-mail."""
    customer, entity = request.customer, request.billing_entity
    loc = DocumentLocale(customer.document_locale or entity.document_locale or "en")
    words = loc.words(WORDS)
    currency = request.amount_currency
    applied = request.applied_invoices.select_related("invoice").order_by(
        "invoice__issuing_date", "invoice__number", "id"
    )
    invoices = [row.invoice for row in applied]
    total = sum(invoice_amount_due(invoice) for invoice in invoices)
    lines = [
        words["greeting"].format(name=customer.name or customer.external_id),
        "",
        words["intro"].format(amount=loc.money(total, currency)),
        "",
    ]
    for invoice in invoices:
        lines.append(
            f"- {words['invoice']} {invoice.number} · {words['due_date']} "
            f"{loc.date(invoice.payment_due_date)} · {words['amount_due']} "
            f"{loc.money(invoice_amount_due(invoice), currency)}"
        )
    lines += ["", f"{words['total']}: {loc.money(total, currency)}", "", words["thanks"]]
    lines.append(entity.legal_name or entity.name)
    campaign = request.dunning_campaign
    return PaymentRequestEmail(
        subject=words["subject"].format(entity=entity.legal_name or entity.name),
        body="\n".join(lines) + "\n",
        to=_addresses(request.email),
        bcc=list(campaign.bcc_emails) if campaign else [],
        reply_to=_addresses(entity.email),
    )
