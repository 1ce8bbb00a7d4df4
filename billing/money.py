"""Money: integer minor units, Decimal in between, one rounding helper (half away from zero).

Nothing in this module touches the ORM. Every rounding of money in the codebase goes through
`round_cents`; amounts are never floats (spec §28).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from copy import copy
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from babel import Locale
from babel.numbers import NumberPattern, format_currency, format_decimal

# ISO 4217 minor-unit exponents. CLDR (and so babel) differs for a few currencies (e.g. it says
# 0 for HUF cash and ISK), so the table is ours. Currencies not listed have exponent 2.
_EXPONENT_OVERRIDES: dict[str, int] = {
    # exponent 0
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    # exponent 3
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    # exponent 4
    "CLF": 4, "UYW": 4,
}  # fmt: skip

# Currencies Lago accepts (ISO 4217 active codes); used to validate `currency` inputs.
CURRENCIES: frozenset[str] = frozenset((
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLF", "CLP", "CNY", "COP", "CRC", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD",
    "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "ISK", "JMD", "JOD", "JPY", "KES",
    "KGS", "KHR", "KMF", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD", "LSL", "LYD",
    "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRO", "MUR", "MVR", "MWK", "MXN", "MYR",
    "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR",
    "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SEK", "SGD", "SHP",
    "SLL", "SOS", "SRD", "STD", "SZL", "THB", "TJS", "TND", "TOP", "TRY", "TTD", "TWD", "TZS",
    "UAH", "UGX", "USD", "UYU", "UZS", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER",
    "ZAR", "ZMW",
))  # fmt: skip

ZERO = Decimal(0)
ONE = Decimal(1)


def exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (JPY 0, USD 2, KWD 3)."""
    return _EXPONENT_OVERRIDES.get(currency.upper(), 2)


def round_cents(precise_cents: Decimal) -> int:
    """Minor units, half away from zero: the only rounding of money in the codebase."""
    return int(precise_cents.quantize(ONE, rounding=ROUND_HALF_UP))


def to_minor(amount: Decimal, currency: str) -> Decimal:
    """Major units -> precise minor units (exact, no rounding): 1.005 EUR -> 100.5."""
    return amount.scaleb(exponent(currency))


def to_major(cents: int | Decimal, currency: str) -> Decimal:
    """Minor units -> major units, exact: 1050 EUR cents -> Decimal('10.50')."""
    return Decimal(cents).scaleb(-exponent(currency))


def amount_to_cents(amount: Decimal, currency: str) -> int:
    """A charge-model amount in major units -> rounded fee cents (spec §28)."""
    return round_cents(to_minor(amount, currency))


def parse_decimal(value: object) -> Decimal:
    """A wire value ("0.1", 3, "1e-3") -> Decimal, refusing floats so no binary error sneaks in.

    Raises ValueError on anything that is not a finite decimal number.
    """
    if isinstance(value, bool):
        raise ValueError("not a number")
    if isinstance(value, float):
        # JSON numbers with a fraction arrive as float; repr keeps what was typed (0.1 -> "0.1").
        value = repr(value)
    if isinstance(value, Decimal):
        result = value
    else:
        try:
            result = Decimal(str(value).strip())
        except (InvalidOperation, ValueError) as exc:
            raise ValueError("not a number") from exc
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result


# The locale of screens (the admin sets its organization's for each request); documents pass
# their own locale explicitly.
_display_locale: ContextVar[str] = ContextVar("billing_display_locale", default="en")


@contextmanager
def display_locale(locale: str) -> Iterator[None]:
    """Formats money and numbers in `locale` where no locale is passed (one screen request)."""
    token = _display_locale.set(locale or "en")
    try:
        yield
    finally:
        _display_locale.reset(token)


def _babel_locale(locale: str | Locale | None) -> Locale:
    if locale is None:
        locale = _display_locale.get()
    if isinstance(locale, Locale):
        return locale
    try:
        return Locale.parse(locale.replace("-", "_"))
    except (ValueError, TypeError):
        return Locale.parse("en")


def _pattern(locale: Locale, digits: int) -> NumberPattern:
    # the locale's currency layout (symbol, separators) with the currency's ISO 4217 digits:
    # babel's own digits come from CLDR, which shows IQD with 0 decimals, not 3
    pattern = copy(locale.currency_formats["standard"])
    pattern.frac_prec = (digits, digits)
    return pattern


def format_money(
    cents: int | Decimal | None, currency: str, locale: str | Locale | None = None
) -> str:
    """Human display with babel: 123456 EUR cents, 'fr' -> '1 234,56 €'; JPY shows no decimals,
    KWD three. Precise cents are rounded by `round_cents` first, so babel never rounds. Without
    a locale: the screen's (`display_locale`), English by default."""
    if cents is None:
        return "—"
    code = currency.upper()
    babel_locale = _babel_locale(locale)
    return format_currency(
        to_major(round_cents(Decimal(cents)), code),
        code,
        format=_pattern(babel_locale, exponent(code)),
        locale=babel_locale,
        currency_digits=False,
    )


def format_amount(amount: Decimal, currency: str, locale: str | Locale | None = None) -> str:
    """An amount in major units (a tier total: 34.975) shown as money: rounded to the currency's
    minor unit by `round_cents` (half away from zero), then as `format_money`."""
    return format_money(amount_to_cents(amount, currency), currency, locale)


def format_unit_price(amount: Decimal, currency: str, locale: str | Locale | None = None) -> str:
    """A price per unit in major units, exact (never rounded: 0.0025 € stays 0,0025 €), with at
    least the currency's minor digits."""
    code = currency.upper()
    babel_locale = _babel_locale(locale)
    return format_currency(
        Decimal(amount).normalize(),
        code,
        format=_pattern(babel_locale, exponent(code)),
        locale=babel_locale,
        currency_digits=False,
        decimal_quantization=False,
    )


def format_units(value: Decimal | int | str | None, locale: str | Locale | None = None) -> str:
    """A quantity for people, exact, with the locale's separators: 5186.08 -> "5,186.08"
    (English), "5 186,08" (French); never rounded."""
    if value is None or value == "":
        return "—"
    number = Decimal(str(value)).normalize()
    if number == number.to_integral_value():
        number = number.quantize(ONE)  # 1E+3 -> 1000
    return format_decimal(number, locale=_babel_locale(locale), decimal_quantization=False)


def decimal_string(value: Decimal | None) -> str:
    """A decimal as Lago renders a BigDecimal: plain notation, at least one decimal ("4.0");
    None renders "0.0"."""
    if value is None or value == 0:
        return "0.0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if "." in text else f"{text}.0"
