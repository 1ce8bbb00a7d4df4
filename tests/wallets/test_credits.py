"""Pure unit tests of wallets/credits.py beyond test_credit_math.py (spec §17.2, V86)."""

from decimal import Decimal

import pytest

from wallets.credits import (
    cents_to_amount,
    cents_to_credits,
    credits_to_cents,
    purchased_credits,
    quantize_credits,
)


@pytest.mark.parametrize(
    ("credits", "rate", "currency", "expected"),
    [
        pytest.param("10", "1.5", "EUR", "10", id="V86-whole-cents-kept"),
        pytest.param("0.333", "1", "EUR", "0.33", id="rounded-down-to-the-cent"),
        pytest.param("0.335", "1", "EUR", "0.34", id="half-away-from-zero"),
        pytest.param("1", "0.333", "EUR", "0.99099", id="amount-0.33-over-rate"),
        pytest.param("2.5", "1", "JPY", "3", id="zero-exponent-currency"),
        pytest.param("1.0005", "1", "KWD", "1.001", id="three-decimal-currency"),
    ],
)
def test_purchased_credits_are_worth_whole_minor_units(credits, rate, currency, expected):
    assert purchased_credits(Decimal(credits), Decimal(rate), currency) == Decimal(expected)


def test_purchased_credits_round_trip_to_the_same_cents():
    credits = purchased_credits(Decimal("7.777"), Decimal("0.3"), "EUR")
    assert credits_to_cents(credits, Decimal("0.3"), "EUR") == 233


def test_credits_to_cents_rounds_half_away_from_zero():
    assert credits_to_cents(Decimal("0.125"), Decimal("1"), "EUR") == 13
    assert credits_to_cents(Decimal("0.124"), Decimal("1"), "EUR") == 12


def test_cents_to_credits_of_zero_is_zero():
    assert cents_to_credits(0, Decimal("1.5"), "EUR") == Decimal(0)


def test_cents_to_credits_uses_the_currency_exponent():
    assert cents_to_credits(300, Decimal("2"), "JPY") == Decimal("150")


def test_cents_to_amount_is_exact():
    assert cents_to_amount(1_797, "EUR") == Decimal("17.97")
    assert cents_to_amount(1_001, "KWD") == Decimal("1.001")


def test_quantize_credits_keeps_five_decimals():
    assert quantize_credits(Decimal("1.234565")) == Decimal("1.23457")
