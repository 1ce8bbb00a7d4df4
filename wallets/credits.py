"""Credits <-> money (spec §17.2): pure functions, no ORM.

A credit is worth `rate_amount` currency units. Amounts are rounded to the currency's minor unit
through `billing.money` (half away from zero); credits are kept to 5 decimals (numeric(30,5)).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from billing.money import amount_to_cents, exponent, to_major

CREDIT_QUANTUM = Decimal("0.00001")
# numeric(30, 5) keeps 25 digits before the point: more is a database error, not a balance
CREDITS_LIMIT = Decimal(10) ** 25


def credits_in_range(credits: Decimal) -> bool:
    """Whether an amount of credits (or a rate) fits the numeric(30, 5) columns."""
    return credits.is_finite() and abs(credits) < CREDITS_LIMIT


def quantize_credits(credits: Decimal) -> Decimal:
    return credits.quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_UP)


def credits_to_cents(credits: Decimal, rate_amount: Decimal, currency: str) -> int:
    """amount = credits * rate, rounded to the currency exponent, in minor units.

    V86: 10 credits at rate 1.5 -> 15.00 -> 1,500 cents.
    """
    return amount_to_cents(credits * rate_amount, currency)


def cents_to_credits(cents: int, rate_amount: Decimal, currency: str) -> Decimal:
    """credits = (cents / 10**exponent) / rate_amount, kept to 5 decimals."""
    return quantize_credits(to_major(cents, currency) / rate_amount)


def cents_to_amount(cents: int, currency: str) -> Decimal:
    """Minor units -> the transaction `amount` (currency units, exact)."""
    return to_major(cents, currency)


def purchased_credits(credits: Decimal, rate_amount: Decimal, currency: str) -> Decimal:
    """Paid credits must be worth whole cents: credits = rounded amount / rate (spec §17.2).

    V86: "17.9699999999999988631316" credits at rate 1 -> 17.97.
    """
    cents = credits_to_cents(credits, rate_amount, currency)
    return quantize_credits(to_major(cents, currency) / rate_amount)


def amount_string(cents: int, currency: str) -> str:
    """A currency amount as Lago writes it ("17.97"), from minor units."""
    return f"{to_major(cents, currency):.{exponent(currency)}f}"
