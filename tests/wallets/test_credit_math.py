"""Credits <-> money (spec §17.2; vectors V86)."""

from decimal import Decimal

import pytest

from wallets.credits import (
    amount_string,
    cents_to_credits,
    credits_to_cents,
    purchased_credits,
)


@pytest.mark.parametrize(
    ("credits", "rate", "currency", "cents"),
    [
        pytest.param("10", "1.5", "EUR", 1_500, id="V86-rate-1.5"),
        pytest.param("17.9699999999999988631316", "1", "EUR", 1_797, id="V86-rounding"),
        pytest.param("0.005", "1", "EUR", 1, id="half-up"),
        pytest.param("3", "100", "JPY", 300, id="zero-exponent"),
    ],
)
def test_credits_to_cents(credits, rate, currency, cents):
    assert credits_to_cents(Decimal(credits), Decimal(rate), currency) == cents


def test_v86_paid_credits_are_worth_whole_cents():
    assert purchased_credits(Decimal("17.9699999999999988631316"), Decimal(1), "EUR") == Decimal(
        "17.97"
    )


def test_cents_to_credits_keeps_five_decimals():
    assert cents_to_credits(1_000, Decimal("1.5"), "EUR") == Decimal("6.66667")


def test_amount_string_uses_the_currency_exponent():
    assert (amount_string(1_797, "EUR"), amount_string(300, "JPY")) == ("17.97", "300")
