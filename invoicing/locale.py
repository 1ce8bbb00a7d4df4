"""Words and formats of invoice documents in the customer's document locale (spec §2.2, §2.4).

Words come from Django's translation catalogs (`invoicing/locale/<lang>/LC_MESSAGES/django.po`,
msgid = the English text, msgctxt = the document), compiled to `.mo` by
`manage.py compile_document_messages`. Each document activates its own locale with
`translation.override` while it reads its words, never the staff member's or a global one.
Numbers and dates come from Babel (CLDR) in the same locale; money from `billing.money`, which
rounds it and formats it with Babel. A locale without a catalog prints the English words (its
numbers and dates still follow the locale).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_decimal, format_percent
from django.utils import translation
from django.utils.translation import pgettext_lazy

from billing.money import format_amount, format_money, format_unit_price

_INVOICE = "invoice document"
_TOTALS = "invoice totals"  # "Tax" as a totals line, worded apart from the column heading

# key -> English wording; the translations live in `invoicing/locale/<lang>/LC_MESSAGES/django.po`
_EN = {
    "fees_total": pgettext_lazy(_INVOICE, "Total before discounts"),
    "invoice": pgettext_lazy(_INVOICE, "Invoice"),
    "invoice_number": pgettext_lazy(_INVOICE, "Invoice number"),
    "issue_date": pgettext_lazy(_INVOICE, "Issue date"),
    "due_date": pgettext_lazy(_INVOICE, "Due date"),
    "bill_from": pgettext_lazy(_INVOICE, "From"),
    "bill_to": pgettext_lazy(_INVOICE, "Bill to"),
    "ship_to": pgettext_lazy(_INVOICE, "Ship to"),
    "tax_id": pgettext_lazy(_INVOICE, "Tax ID"),
    "legal_number": pgettext_lazy(_INVOICE, "Registration no."),
    "customer_id": pgettext_lazy(_INVOICE, "Customer ID"),
    "description": pgettext_lazy(_INVOICE, "Description"),
    "units": pgettext_lazy(_INVOICE, "Qty"),
    "unit_price": pgettext_lazy(_INVOICE, "Unit price"),
    "tax_rate": pgettext_lazy(_INVOICE, "Tax"),
    "amount": pgettext_lazy(_INVOICE, "Amount"),
    "service_period": pgettext_lazy(_INVOICE, "Service period"),
    "period_from_to": pgettext_lazy(_INVOICE, "{start} \u2013 {end}"),
    "tier": pgettext_lazy(_INVOICE, "Tier {index}: {range}"),
    "tier_from_to": pgettext_lazy(_INVOICE, "{start} to {end}"),
    "tier_above": pgettext_lazy(_INVOICE, "{start} and above"),
    "flat_fee": pgettext_lazy(_INVOICE, "flat fee"),
    "per_unit": pgettext_lazy(_INVOICE, "per unit"),
    "package_of": pgettext_lazy(_INVOICE, "per package of {size}"),
    "free_units": pgettext_lazy(_INVOICE, "{count} free units"),
    "subtotal_excl_tax": pgettext_lazy(_INVOICE, "Subtotal (excl. tax)"),
    "coupons": pgettext_lazy(_INVOICE, "Discounts"),
    "coupon": pgettext_lazy(_INVOICE, "Coupon {name}"),
    "progressive_billing_credit": pgettext_lazy(_INVOICE, "Usage already billed"),
    "usage_from_to": pgettext_lazy(_INVOICE, "Fees from {start} to {end}"),
    "reached_usage_threshold": pgettext_lazy(
        _INVOICE,
        "This progressive billing is generated because your cumulative usage has reached "
        "{usage_amount}, exceeding the {threshold_amount} threshold.",
    ),
    "tax_line": pgettext_lazy(_INVOICE, "{name} {rate} on {base}"),
    "no_tax": pgettext_lazy(_TOTALS, "Tax"),
    "total_incl_tax": pgettext_lazy(_INVOICE, "Total (incl. tax)"),
    "credit_notes": pgettext_lazy(_INVOICE, "Credit notes"),
    "prepaid_credits": pgettext_lazy(_INVOICE, "Prepaid credits"),
    "total_due": pgettext_lazy(_INVOICE, "Total due"),
    "amount_paid": pgettext_lazy(_INVOICE, "Amount paid"),
    "payment_terms": pgettext_lazy(_INVOICE, "Payment terms"),
    "payment_due_in": pgettext_lazy(_INVOICE, "Payment due by {date} ({days} days net)."),
    "payment_due_now": pgettext_lazy(_INVOICE, "Payment due on receipt ({date})."),
    "paid_notice": pgettext_lazy(_INVOICE, "This invoice has been paid. Thank you!"),
    "voided_notice": pgettext_lazy(
        _INVOICE, "This invoice has been voided and is no longer payable."
    ),
    "draft_notice": pgettext_lazy(_INVOICE, "Draft — not a valid invoice until finalized."),
    "status_paid": pgettext_lazy(_INVOICE, "Paid"),
    "status_voided": pgettext_lazy(_INVOICE, "Void"),
    "status_draft": pgettext_lazy(_INVOICE, "Draft"),
    "status_overdue": pgettext_lazy(_INVOICE, "Overdue"),
    "page": pgettext_lazy(_INVOICE, "Page {page} of {pages}"),
    "subscription_fee": pgettext_lazy(_INVOICE, "Subscription"),
    "other_fees": pgettext_lazy(_INVOICE, "Other fees"),
    "add_ons": pgettext_lazy(_INVOICE, "Add-ons"),
    "email": pgettext_lazy(_INVOICE, "Email"),
    "currency_note": pgettext_lazy(_INVOICE, "Amounts in {currency}."),
}

# Document locales with their own catalog; any other locale prints the English words.
SUPPORTED = ("en", "fr", "de", "es", "it", "nl", "nb", "sv", "pt-BR", "zh-TW")


class DocumentLocale:
    """Words and Babel formatting of one document locale (`en`, `fr`, `pt-BR`...)."""

    def __init__(self, code: str) -> None:
        self.code = code or "en"
        try:
            self.babel = Locale.parse(self.code.replace("-", "_"))
        except (ValueError, TypeError):
            self.code, self.babel = "en", Locale.parse("en")
        self.strings = self.words(_EN)

    def words(self, table: Mapping[str, object]) -> dict[str, str]:
        """A table of lazily translated words (key -> `pgettext_lazy(...)`) read in this
        document's locale."""
        with translation.override(self.code):
            return {key: str(text) for key, text in table.items()}

    @property
    def html_lang(self) -> str:
        return self.code

    def t(self, key: str, **values: object) -> str:
        return self.strings[key].format(**values)

    def money(self, cents: int | Decimal, currency: str) -> str:
        """Cents -> '1 234,56 €' with the currency's own digits (JPY 0, KWD 3)."""
        return format_money(cents, currency, self.babel)

    def amount(self, amount: Decimal, currency: str) -> str:
        """An amount in major units (a tier total) rounded to the currency's minor unit."""
        return format_amount(amount, currency, self.babel)

    def unit_price(self, amount: Decimal, currency: str) -> str:
        """A unit price in major units, with at least the currency's digits and every further
        significant one (0.0025 € stays 0,0025 €)."""
        return format_unit_price(amount, currency, self.babel)

    def number(self, value: Decimal | int) -> str:
        return format_decimal(
            Decimal(value).normalize(), locale=self.babel, decimal_quantization=False
        )

    def percent(self, rate: Decimal) -> str:
        """A rate in percent (20, 5.5) -> '20 %' / '5,5 %'."""
        return format_percent(Decimal(rate) / 100, locale=self.babel, decimal_quantization=False)

    def date(self, value: date | None) -> str:
        return format_date(value, format="medium", locale=self.babel) if value else ""
