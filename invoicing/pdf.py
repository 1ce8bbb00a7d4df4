"""Invoice PDFs: WeasyPrint renders `templates/invoicing/invoice.html` in the customer's document
locale (spec §2.4, §29); the Celery task stores the file in `Invoice.file` (under STORAGE_DIR).

The document context is built here as plain strings, every amount formatted by Babel, so the
template only lays it out.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo

from babel import Locale
from celery import shared_task
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Prefetch
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.dateparse import parse_datetime

from billing.money import to_major
from invoicing.locale import DocumentLocale
from invoicing.locks import lock_invoice
from invoicing.models import AppliedUsageThreshold, Fee, Invoice
from invoicing.presenters import fee_breakdowns_on_invoice, fee_display_name, fee_item, fee_window
from invoicing.selectors import document_locale, fees_for_rendering

TEMPLATE = "invoicing/invoice.html"
# WeasyPrint logs each layout step at INFO: seven lines per invoice in the worker's log
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
MINUS = "\u2212 "  # typographic minus before a deducted amount
TIMES = "\u00d7"


@dataclass
class TierRow:
    label: str
    detail: str
    amount: str


@dataclass
class FeeRow:
    name: str
    note: str
    period: str
    units: str
    unit_price: str
    tax: str
    amount: str
    tiers: list[TierRow] = field(default_factory=list)


@dataclass
class Section:
    title: str
    subtitle: str
    rows: list[FeeRow]


@dataclass
class TotalRow:
    label: str
    amount: str
    kind: str = ""  # "", "discount", "subtotal", "grand"


@dataclass
class Party:
    name: str
    lines: list[str]
    details: list[tuple[str, str]]


def _address(
    line1: str,
    line2: str,
    zipcode: str,
    city: str,
    state: str,
    country: str,
    locale: Locale | None = None,
) -> list:
    names = (locale or Locale("en")).territories
    country_name = names.get(country, country) if country else ""
    return [
        part
        for part in (
            line1,
            line2,
            " ".join(p for p in (zipcode, city) if p),
            state,
            country_name,
        )
        if part
    ]


def _logo_data_uri(entity: object) -> str | None:
    logo = getattr(entity, "logo", None)
    if not logo:
        return None
    try:
        with logo.open("rb") as handle:
            content = handle.read()
    except (OSError, ValueError):
        return None
    mime = mimetypes.guess_type(logo.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


def _issuer(invoice: Invoice, loc: DocumentLocale) -> Party:
    entity = invoice.billing_entity
    details = []
    if entity.tax_identification_number:
        details.append((loc.t("tax_id"), entity.tax_identification_number))
    if entity.legal_number:
        details.append((loc.t("legal_number"), entity.legal_number))
    if entity.email:
        details.append((loc.t("email"), entity.email))
    return Party(
        name=entity.legal_name or entity.name,
        lines=_address(
            entity.address_line1,
            entity.address_line2,
            entity.zipcode,
            entity.city,
            entity.state,
            entity.country,
            loc.babel,
        ),
        details=details,
    )


def _customer_name(customer: object) -> str:
    person = " ".join(p for p in (customer.firstname, customer.lastname) if p)
    return customer.legal_name or customer.name or person or customer.external_id


def _bill_to(invoice: Invoice, loc: DocumentLocale) -> Party:
    customer = invoice.customer
    details = [(loc.t("customer_id"), customer.slug or customer.external_id)]
    if customer.tax_identification_number:
        details.append((loc.t("tax_id"), customer.tax_identification_number))
    if customer.legal_number:
        details.append((loc.t("legal_number"), customer.legal_number))
    if customer.email:
        details.append((loc.t("email"), customer.email.split(",")[0].strip()))
    return Party(
        name=_customer_name(customer),
        lines=_address(
            customer.address_line1,
            customer.address_line2,
            customer.zipcode,
            customer.city,
            customer.state,
            customer.country,
            loc.babel,
        ),
        details=details,
    )


def _ship_to(invoice: Invoice, loc: DocumentLocale) -> Party | None:
    shipping = invoice.customer.shipping_address or {}
    lines = _address(
        *(shipping.get(k) or "" for k in ("address_line1", "address_line2", "zipcode", "city")),
        shipping.get("state") or "",
        shipping.get("country") or "",
        loc.babel,
    )
    if not lines:
        return None
    return Party(name=_customer_name(invoice.customer), lines=lines, details=[])


def _local_date(value: str | datetime | None, tz: ZoneInfo) -> datetime | None:
    if not value:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
        if value is None:
            return None
    return value.astimezone(tz)


def _period(start: object, end: object, tz: ZoneInfo, loc: DocumentLocale) -> str:
    start_local, end_local = _local_date(start, tz), _local_date(end, tz)
    if start_local is None or end_local is None:
        return ""
    return loc.t(
        "period_from_to", start=loc.date(start_local.date()), end=loc.date(end_local.date())
    )


def _dec(value: object) -> Decimal:
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return Decimal(0)


def _tiers(fee: Fee, loc: DocumentLocale) -> list[TierRow]:
    """The graduated / volume / package breakdown of a charge fee, from `amount_details`."""
    details = fee.amount_details or {}
    currency = fee.amount_currency
    rows: list[TierRow] = []
    ranges = details.get("graduated_ranges") or details.get("graduated_percentage_ranges")
    if ranges:
        for index, tier in enumerate(ranges, start=1):
            start = loc.number(_dec(tier.get("from_value") or 0))
            end = tier.get("to_value")
            bounds = (
                loc.t("tier_from_to", start=start, end=loc.number(_dec(end)))
                if end is not None
                else loc.t("tier_above", start=start)
            )
            units = loc.number(_dec(tier.get("units") or 0))
            if "rate" in tier:
                price = loc.percent(_dec(tier.get("rate")))
            else:
                price = loc.unit_price(_dec(tier.get("per_unit_amount") or 0), currency)
            detail = f"{units} {TIMES} {price}"
            flat = _dec(tier.get("flat_unit_amount") or 0)
            if flat:
                detail += f" + {loc.unit_price(flat, currency)} {loc.t('flat_fee')}"
            rows.append(
                TierRow(
                    label=loc.t("tier", index=index, range=bounds),
                    detail=detail,
                    amount=loc.amount(_dec(tier.get("total_with_flat_amount") or 0), currency),
                )
            )
    elif "per_package_size" in details and details.get("per_package_size"):
        size = loc.number(_dec(details["per_package_size"]))
        price = loc.unit_price(_dec(details.get("per_package_unit_amount") or 0), currency)
        detail = f"{price} {loc.t('package_of', size=size)}"
        free = _dec(details.get("free_units") or 0)
        if free:
            detail += f" · {loc.t('free_units', count=loc.number(free))}"
        rows.append(TierRow(label="", detail=detail, amount=""))
    elif "per_unit_total_amount" in details and "flat_unit_amount" in details:
        flat = _dec(details.get("flat_unit_amount") or 0)
        detail = f"{loc.unit_price(_dec(details.get('per_unit_amount') or 0), currency)} "
        detail += loc.t("per_unit")
        if flat:
            detail += f" + {loc.unit_price(flat, currency)} {loc.t('flat_fee')}"
        rows.append(TierRow(label="", detail=detail, amount=""))
    return rows


def _breakdown_rows(fee: Fee, loc: DocumentLocale) -> list[TierRow]:
    """The fee's units per presentation values (spec §7.13), unless every presentation key of
    its charge says `display_in_invoice: false`: "eu, aws · Qty 4"."""
    rows = []
    for breakdown in fee_breakdowns_on_invoice(fee):
        values = [str(v) for v in breakdown.presentation_by.values() if v not in (None, "")]
        detail = f"{loc.t('units')} {loc.number(breakdown.units)}"
        rows.append(TierRow(label=", ".join(values) or "\u2014", detail=detail, amount=""))
    return rows


def _fee_row(fee: Fee, loc: DocumentLocale, tz: ZoneInfo, section_period: str = "") -> FeeRow:
    item = fee_item(fee)
    name = fee_display_name(fee, item)
    if fee.fee_type == Fee.FeeType.SUBSCRIPTION and section_period and not fee.invoice_display_name:
        name = loc.t("subscription_fee")  # the plan names the section already
    if item.get("filter_invoice_display_name"):
        name = f"{name} — {item['filter_invoice_display_name']}"
    if fee.fee_type == Fee.FeeType.CREDIT and not fee.invoice_display_name:
        name = loc.t("prepaid_credits")  # "Prepaid credits - <wallet name>" (en dash)
        wallet = fee.wallet_transaction.wallet if fee.wallet_transaction_id else None
        if wallet is not None and wallet.name:
            name = f"{name} \N{EN DASH} {wallet.name}"
    start, end = fee_window(fee)
    currency = fee.amount_currency
    unit_price = fee.precise_unit_amount
    if not unit_price and fee.units:
        unit_price = to_major(fee.amount_cents, currency) / fee.units
    period = _period(start, end, tz, loc)
    return FeeRow(
        name=name,
        note=fee.description or "",
        period="" if period == section_period else period,
        units=loc.number(fee.units),
        unit_price=loc.unit_price(unit_price, currency),
        tax=loc.percent(fee.taxes_rate) if fee.taxes_rate else "—",
        amount=loc.money(fee.amount_cents, currency),
        tiers=(
            _tiers(fee, loc) + _breakdown_rows(fee, loc)
            if fee.fee_type == Fee.FeeType.CHARGE
            else []
        ),
    )


def _sections(invoice: Invoice, loc: DocumentLocale, tz: ZoneInfo) -> list[Section]:
    fees = [fee for fee in invoice.fees.all() if fee.deleted_at is None]
    sections: list[Section] = []
    by_subscription: dict[object, list[Fee]] = {}
    others: list[Fee] = []
    for fee in fees:
        if fee.subscription_id:
            by_subscription.setdefault(fee.subscription_id, []).append(fee)
        else:
            others.append(fee)
    periods = {}
    for period in invoice.invoice_subscriptions.all():
        periods.setdefault(period.subscription_id, period)
    progressive = invoice.invoice_type == Invoice.InvoiceType.PROGRESSIVE_BILLING
    for subscription_id, subscription_fees in by_subscription.items():
        subscription = subscription_fees[0].subscription
        plan = subscription.plan
        period = periods.get(subscription_id)
        subtitle = dates = ""
        if period is not None and progressive:
            # the usage of the period so far, up to the day the threshold was reached (Lago)
            start = _local_date(period.charges_from_datetime, tz)
            subtitle = loc.t(
                "usage_from_to",
                start=loc.date(start.date()) if start else "",
                end=loc.date(invoice.issuing_date),
            )
            # charge rows over the whole usage window repeat nothing the heading does not say
            dates = _period(period.charges_from_datetime, period.charges_to_datetime, tz, loc)
        elif period is not None:
            dates = _period(period.from_datetime, period.to_datetime, tz, loc)
            subtitle = f"{loc.t('service_period')} {dates}"
        title = plan.invoice_display_name or plan.name
        if subscription.name:
            title = f"{title} · {subscription.name}"
        rows = [_fee_row(fee, loc, tz, dates) for fee in subscription_fees]
        sections.append(Section(title, subtitle, rows))
    if others:
        title = (
            loc.t("add_ons")
            if all(fee.fee_type == Fee.FeeType.ADD_ON for fee in others)
            else loc.t("other_fees")
        )
        if not sections:
            title = ""  # a single block needs no heading
        sections.append(Section(title, "", [_fee_row(fee, loc, tz) for fee in others]))
    return sections


def _totals(invoice: Invoice, loc: DocumentLocale) -> list[TotalRow]:
    currency = invoice.currency
    money = lambda cents: loc.money(cents, currency)  # noqa: E731
    rows: list[TotalRow] = []
    discounts = invoice.coupons_amount_cents or invoice.progressive_billing_credit_amount_cents
    if discounts:
        rows.append(TotalRow(loc.t("fees_total"), money(invoice.fees_amount_cents)))
        if invoice.progressive_billing_credit_amount_cents:
            rows.append(
                TotalRow(
                    loc.t("progressive_billing_credit"),
                    MINUS + money(invoice.progressive_billing_credit_amount_cents),
                    "discount",
                )
            )
        for credit in invoice.credits.all():
            if credit.applied_coupon_id and credit.before_taxes:
                rows.append(
                    TotalRow(
                        loc.t("coupon", name=credit.applied_coupon.coupon.name),
                        MINUS + money(credit.amount_cents),
                        "discount",
                    )
                )
    rows.append(
        TotalRow(
            loc.t("subtotal_excl_tax"), money(invoice.sub_total_excluding_taxes_amount_cents), "sub"
        )
    )
    applied = list(invoice.applied_taxes.all())
    for tax in sorted(applied, key=lambda t: (-t.tax_rate, t.tax_name)):
        rows.append(
            TotalRow(
                loc.t(
                    "tax_line",
                    name=tax.tax_name,
                    rate=loc.percent(tax.tax_rate),
                    base=money(tax.fees_amount_cents),
                ),
                money(tax.amount_cents),
            )
        )
    if not applied:
        rows.append(TotalRow(loc.t("no_tax"), money(invoice.taxes_amount_cents)))
    rows.append(
        TotalRow(
            loc.t("total_incl_tax"), money(invoice.sub_total_including_taxes_amount_cents), "sub"
        )
    )
    if invoice.credit_notes_amount_cents:
        rows.append(
            TotalRow(
                loc.t("credit_notes"), MINUS + money(invoice.credit_notes_amount_cents), "discount"
            )
        )
    if invoice.prepaid_credit_amount_cents:
        rows.append(
            TotalRow(
                loc.t("prepaid_credits"),
                MINUS + money(invoice.prepaid_credit_amount_cents),
                "discount",
            )
        )
    rows.append(TotalRow(loc.t("total_due"), money(invoice.total_amount_cents), "grand"))
    return rows


def _status_badge(invoice: Invoice, loc: DocumentLocale) -> tuple[str, str] | None:
    if invoice.status == Invoice.Status.DRAFT:
        return loc.t("status_draft"), "draft"
    if invoice.status == Invoice.Status.VOIDED:
        return loc.t("status_voided"), "void"
    if invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED and invoice.total_amount_cents:
        return loc.t("status_paid"), "paid"
    if invoice.payment_overdue:
        return loc.t("status_overdue"), "overdue"
    return None


def _payment_terms(invoice: Invoice, loc: DocumentLocale) -> str:
    if invoice.status == Invoice.Status.VOIDED:
        return loc.t("voided_notice")
    if invoice.status == Invoice.Status.DRAFT:
        return loc.t("draft_notice")
    if invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED:
        return loc.t("paid_notice")
    due = loc.date(invoice.payment_due_date)
    if invoice.net_payment_term:
        return loc.t("payment_due_in", date=due, days=invoice.net_payment_term)
    return loc.t("payment_due_now", date=due)


def _threshold_note(invoice: Invoice, loc: DocumentLocale) -> str:
    """Why a progressive billing invoice was issued: the lifetime usage reached and the
    threshold it passed, from its last applied threshold (Lago's invoice template); a recurring
    threshold names the multiple passed."""
    if invoice.invoice_type != Invoice.InvoiceType.PROGRESSIVE_BILLING:
        return ""
    applied = (
        AppliedUsageThreshold.objects.filter(invoice_id=invoice.pk)
        .select_related("usage_threshold")
        .order_by("created_at", "id")
        .last()
    )
    if applied is None:
        return ""
    lifetime = applied.lifetime_usage_amount_cents
    threshold = applied.usage_threshold
    passed = (
        lifetime - lifetime % threshold.amount_cents
        if threshold.recurring
        else threshold.amount_cents
    )
    return loc.t(
        "reached_usage_threshold",
        usage_amount=loc.money(lifetime, invoice.currency),
        threshold_amount=loc.money(passed, invoice.currency),
    )


def invoice_number_for_display(invoice: Invoice) -> str:
    if invoice.number:
        return invoice.number
    prefix = invoice.billing_entity.document_number_prefix or "INV"
    return f"{prefix}-DRAFT"


def invoice_document_context(invoice: Invoice) -> dict:
    """Everything the template shows, formatted in the invoice's document locale."""
    loc = DocumentLocale(document_locale(invoice))
    tz = ZoneInfo(invoice.customer.applicable_timezone)
    entity = invoice.billing_entity
    page_text = loc.t("page", page="\x00", pages="\x01")
    before, _, rest = page_text.partition("\x00")
    middle, _, after = rest.partition("\x01")
    footer_identity = " · ".join(
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
            entity.legal_number,
            f"{loc.t('tax_id')} {entity.tax_identification_number}"
            if entity.tax_identification_number
            else "",
        )
        if part
    )
    return {
        "lang": loc.html_lang,
        "t": loc.strings,
        "number": invoice_number_for_display(invoice),
        "issue_date": loc.date(invoice.issuing_date),
        "due_date": loc.date(invoice.payment_due_date),
        "issuer": _issuer(invoice, loc),
        "logo": _logo_data_uri(entity),
        "bill_to": _bill_to(invoice, loc),
        "ship_to": _ship_to(invoice, loc),
        "sections": _sections(invoice, loc, tz),
        "totals": _totals(invoice, loc),
        "badge": _status_badge(invoice, loc),
        "payment_terms": _payment_terms(invoice, loc),
        "threshold_note": _threshold_note(invoice, loc),
        "footer": invoice.billing_entity.invoice_footer,
        "footer_identity": footer_identity,
        "css": {
            "page": f"{css_string(before)} counter(page) {css_string(middle)} counter(pages) "
            f"{css_string(after)}",
            "footer_identity": css_string(footer_identity),
        },
        "total_due": loc.money(invoice.total_amount_cents, invoice.currency),
        "currency_note": loc.t("currency_note", currency=invoice.currency),
    }


def css_string(text: str) -> str:
    """A CSS string literal for `content:` (quotes, backslashes and `<` escaped)."""
    escaped = (
        text.replace("\n", " ").replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ")
    )
    return f'"{escaped}"'


def render_invoice_html(invoice: Invoice) -> str:
    context = invoice_document_context(invoice)
    with translation.override(context["lang"]):
        return render_to_string(TEMPLATE, context)


@cache
def _font_config() -> object:
    from weasyprint.text.fonts import FontConfiguration

    return FontConfiguration()


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as a PDF document (A4), in the customer's document locale."""
    from weasyprint import HTML

    html = render_invoice_html(invoice)
    return HTML(string=html).write_pdf(font_config=_font_config())


def _invoice_for_document(invoice_id: object) -> Invoice | None:
    fees = (
        fees_for_rendering(Fee.objects.filter(deleted_at__isnull=True))
        .select_related("wallet_transaction__wallet")
        .order_by("created_at", "id")
    )
    return (
        Invoice.objects.select_related("customer__billing_entity", "billing_entity")
        .prefetch_related(
            Prefetch("fees", queryset=fees),
            "invoice_subscriptions",
            "applied_taxes",
            "credits__applied_coupon__coupon",
        )
        .filter(pk=invoice_id)
        .first()
    )


def invoice_pdf_store(*, invoice_id: object) -> Invoice | None:
    """Renders the invoice's PDF and stores it in `Invoice.file` (replacing an older one)."""
    invoice = _invoice_for_document(invoice_id)
    if invoice is None:
        return None  # deleted since: nothing to render
    content = render_invoice_pdf(invoice)
    name = f"{invoice_number_for_display(invoice)}.pdf"
    with transaction.atomic():
        locked = lock_invoice(invoice.pk)
        old = locked.file.name if locked.file else None
        locked.file.save(name, ContentFile(content), save=False)
        locked.save(update_fields=["file", "updated_at"])
    if old and old != locked.file.name:
        locked.file.storage.delete(old)
    return locked


def invoice_pdf_ensure(*, invoice: Invoice) -> Invoice:
    """The invoice with its PDF, rendered now if it has none yet (download endpoint)."""
    if invoice.file:
        return invoice
    stored = invoice_pdf_store(invoice_id=invoice.pk)
    if stored is not None:
        invoice.file = stored.file
    return invoice


@shared_task(acks_late=True)
def generate_invoice_pdf_task(invoice_id: str) -> None:
    """Renders and stores an invoice's PDF (after finalization; idempotent: re-renders)."""
    invoice_pdf_store(invoice_id=invoice_id)
