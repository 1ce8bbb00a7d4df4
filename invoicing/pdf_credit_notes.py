"""Credit note PDFs: WeasyPrint renders `templates/invoicing/credit_note.html` in the invoice's
style and document locale; stored in `CreditNote.file`, `credit_note.generated` recorded."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from celery import shared_task
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import pgettext_lazy

from billing.actors import Actor
from invoicing.locale import DocumentLocale
from invoicing.locks import lock_credit_note
from invoicing.models import CreditNote, CreditNoteItem, Fee
from invoicing.pdf import (
    MINUS,
    TotalRow,
    _bill_to,
    _font_config,
    _issuer,
    _logo_data_uri,
    css_string,
)
from invoicing.presenters import fee_display_name
from invoicing.selectors import document_locale, fees_for_rendering
from invoicing.services.credit_note_events import emit_credit_note_event

TEMPLATE = "invoicing/credit_note.html"

_CREDIT_NOTE = "credit note document"
_REASON = "credit note reason"

# Words of the credit note document (translated in `invoicing/locale/*/LC_MESSAGES/django.po`);
# other words come from the invoice's document locale.
_WORDS = {
    "credit_note": pgettext_lazy(_CREDIT_NOTE, "Credit note"),
    "credit_note_number": pgettext_lazy(_CREDIT_NOTE, "Credit note number"),
    "invoice_reference": pgettext_lazy(_CREDIT_NOTE, "Corrects invoice"),
    "reason": pgettext_lazy(_CREDIT_NOTE, "Reason"),
    "credited_amount": pgettext_lazy(_CREDIT_NOTE, "Credited amount"),
    "coupons_adjustment": pgettext_lazy(_CREDIT_NOTE, "Discounts already granted"),
    "credit_amount": pgettext_lazy(_CREDIT_NOTE, "Credited to the customer's balance"),
    "refund_amount": pgettext_lazy(_CREDIT_NOTE, "Refunded"),
    "offset_amount": pgettext_lazy(_CREDIT_NOTE, "Deducted from the invoice"),
    "total_credited": pgettext_lazy(_CREDIT_NOTE, "Total credited"),
    "voided": pgettext_lazy(_CREDIT_NOTE, "Voided"),
    "remaining": pgettext_lazy(_CREDIT_NOTE, "Credit left to use"),
    "notice": pgettext_lazy(
        _CREDIT_NOTE, "This credit note corrects invoice {number} issued on {date}."
    ),
}
_REASONS = {
    "duplicated_charge": pgettext_lazy(_REASON, "Duplicated charge"),
    "product_unsatisfactory": pgettext_lazy(_REASON, "Product unsatisfactory"),
    "order_change": pgettext_lazy(_REASON, "Order change"),
    "order_cancellation": pgettext_lazy(_REASON, "Order cancellation"),
    "fraudulent_charge": pgettext_lazy(_REASON, "Fraudulent charge"),
    "other": pgettext_lazy(_REASON, "Other"),
}


def _credit_note_for_document(credit_note_id: object) -> CreditNote | None:
    fees = fees_for_rendering(Fee.objects.all())
    items = CreditNoteItem.objects.order_by("created_at", "id").prefetch_related(
        Prefetch("fee", queryset=fees)
    )
    return (
        CreditNote.objects.select_related(
            "invoice__billing_entity", "invoice__customer__billing_entity", "customer"
        )
        .prefetch_related(Prefetch("items", queryset=items), "applied_taxes")
        .filter(pk=credit_note_id)
        .first()
    )


def credit_note_document_context(credit_note: CreditNote) -> dict:
    """Everything the credit note template shows, formatted in the document locale."""
    invoice = credit_note.invoice
    loc = DocumentLocale(document_locale(invoice))
    words = loc.words(_WORDS)
    reasons = loc.words(_REASONS)
    currency = credit_note.currency
    money = lambda cents: loc.money(cents, currency)  # noqa: E731
    rows = []
    for item in credit_note.items.all():
        fee = item.fee
        taxes = ", ".join(loc.percent(tax.tax_rate) for tax in fee.applied_taxes.all())
        rows.append(
            {"name": fee_display_name(fee), "tax": taxes or "", "amount": money(item.amount_cents)}
        )
    totals = [
        TotalRow(
            words["credited_amount"], money(sum(i.amount_cents for i in credit_note.items.all()))
        )
    ]
    if credit_note.coupons_adjustment_amount_cents:
        totals.append(
            TotalRow(
                words["coupons_adjustment"],
                MINUS + money(credit_note.coupons_adjustment_amount_cents),
                "discount",
            )
        )
    totals.append(
        TotalRow(
            loc.t("subtotal_excl_tax"),
            money(credit_note.sub_total_excluding_taxes_amount_cents),
            "subtotal",
        )
    )
    for tax in credit_note.applied_taxes.all():
        totals.append(
            TotalRow(
                loc.t(
                    "tax_line",
                    name=tax.tax_name,
                    rate=loc.percent(tax.tax_rate),
                    base=money(tax.base_amount_cents),
                ),
                money(tax.amount_cents),
            )
        )
    totals.append(TotalRow(words["total_credited"], money(credit_note.total_amount_cents), "grand"))
    split = [
        (words[key], money(getattr(credit_note, f"{key}_cents")))
        for key in ("credit_amount", "refund_amount", "offset_amount")
        if getattr(credit_note, f"{key}_cents")
    ]
    if credit_note.credit_amount_cents:
        split.append((words["remaining"], money(credit_note.balance_amount_cents)))
    page_text = loc.t("page", page="\x00", pages="\x01")
    before, _, rest = page_text.partition("\x00")
    middle, _, after = rest.partition("\x01")
    entity = invoice.billing_entity
    identity = " · ".join(p for p in (entity.legal_name or entity.name, entity.legal_number) if p)
    return {
        "lang": loc.html_lang,
        "t": loc.strings,
        "w": words,
        "number": credit_note.number,
        "invoice_number": invoice.number,
        "issue_date": loc.date(credit_note.issuing_date),
        "reason": reasons.get(credit_note.reason, credit_note.reason),
        "description": credit_note.description,
        "issuer": _issuer(invoice, loc),
        "logo": _logo_data_uri(entity),
        "bill_to": _bill_to(invoice, loc),
        "rows": rows,
        "totals": totals,
        "split": split,
        "voided": credit_note.credit_status == CreditNote.CreditStatus.VOIDED,
        "notice": words["notice"].format(
            number=invoice.number, date=loc.date(invoice.issuing_date)
        ),
        "footer": entity.invoice_footer,
        "css": {
            "page": f"{css_string(before)} counter(page) {css_string(middle)} counter(pages) "
            f"{css_string(after)}",
            "footer_identity": css_string(identity),
        },
        "total": money(credit_note.total_amount_cents),
        "timezone": str(ZoneInfo(invoice.customer.applicable_timezone)),
    }


def render_credit_note_html(credit_note: CreditNote) -> str:
    context = credit_note_document_context(credit_note)
    with translation.override(context["lang"]):
        return render_to_string(TEMPLATE, context)


def render_credit_note_pdf(credit_note: CreditNote) -> bytes:
    """The credit note as a PDF document (A4)."""
    from weasyprint import HTML

    return HTML(string=render_credit_note_html(credit_note)).write_pdf(font_config=_font_config())


def credit_note_pdf_store(*, credit_note_id: object, actor: Actor) -> CreditNote | None:
    """Renders the PDF, stores it in `CreditNote.file` and records `credit_note.generated`."""
    credit_note = _credit_note_for_document(credit_note_id)
    if credit_note is None:
        return None
    content = render_credit_note_pdf(credit_note)
    with transaction.atomic():
        locked = lock_credit_note(credit_note.pk)
        old = locked.file.name if locked.file else None
        locked.file.save(f"{locked.number}.pdf", ContentFile(content), save=False)
        locked.save(update_fields=["file", "updated_at"])
        emit_credit_note_event(locked, "credit_note.generated", actor=actor)
    if old and old != locked.file.name:
        locked.file.storage.delete(old)
    return locked


def credit_note_pdf_ensure(*, credit_note: CreditNote, actor: Actor | None = None) -> CreditNote:
    """The credit note with its PDF, rendered now if it has none yet (download endpoint)."""
    if credit_note.file:
        return credit_note
    stored = credit_note_pdf_store(
        credit_note_id=credit_note.pk, actor=actor or Actor.system("credit note documents")
    )
    if stored is not None:
        credit_note.file = stored.file
    return credit_note


@shared_task(acks_late=True)
def generate_credit_note_pdf_task(credit_note_id: str) -> None:
    """Renders and stores a credit note's PDF (after creation; idempotent: re-renders)."""
    credit_note_pdf_store(
        credit_note_id=credit_note_id, actor=Actor.system("credit note documents")
    )
