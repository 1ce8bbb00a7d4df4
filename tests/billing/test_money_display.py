"""Money shown to people: babel's layout per locale, the currency's ISO 4217 digits, and every
rounding done by `round_cents` (half away from zero), never by the formatter."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.money import format_amount, format_money, format_unit_price


@pytest.mark.parametrize(
    ("cents", "currency", "locale", "shown"),
    [
        pytest.param(123456, "EUR", "en", "€1,234.56", id="eur-2-decimals"),
        pytest.param(123456, "EUR", "fr", "1\u202f234,56\xa0€", id="eur-in-french"),
        pytest.param(123456, "JPY", "en", "¥123,456", id="jpy-0-decimals"),
        pytest.param(123456, "KWD", "en", "KWD123.456", id="kwd-3-decimals"),
        pytest.param(123456, "BHD", "de", "123,456\xa0BHD", id="bhd-3-decimals-in-german"),
        pytest.param(1500, "IQD", "en", "IQD1.500", id="iqd-iso-3-decimals-where-cldr-says-0"),
        pytest.param(None, "EUR", "en", "—", id="no-amount"),
    ],
)
def test_format_money_shows_the_currency_minor_digits(cents, currency, locale, shown):
    assert format_money(cents, currency, locale) == shown


@pytest.mark.parametrize(
    ("precise_cents", "currency", "shown"),
    [
        pytest.param(Decimal("12.5"), "EUR", "€0.13", id="half-cent-rounds-up"),
        pytest.param(Decimal("-12.5"), "EUR", "-€0.13", id="half-cent-rounds-away-from-zero"),
        pytest.param(Decimal("2.5"), "JPY", "¥3", id="half-yen-rounds-up-not-to-even"),
    ],
)
def test_format_money_rounds_precise_cents_half_away_from_zero(precise_cents, currency, shown):
    assert format_money(precise_cents, currency) == shown


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        pytest.param("35.025", "EUR", "€35.03", id="eur-half-up-not-to-even"),
        pytest.param("35.025", "JPY", "¥35", id="jpy-whole-yen"),
        pytest.param("35.5", "JPY", "¥36", id="jpy-half-yen-up"),
        pytest.param("35.025", "KWD", "KWD35.025", id="kwd-keeps-3-decimals"),
        pytest.param("35.0255", "BHD", "BHD35.026", id="bhd-rounds-the-4th-decimal"),
    ],
)
def test_format_amount_rounds_major_units_to_the_minor_unit(amount, currency, shown):
    assert format_amount(Decimal(amount), currency) == shown


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "shown"),
    [
        pytest.param("0.0025", "EUR", "fr", "0,0025\xa0€", id="sub-cent-price-kept"),
        pytest.param("5", "EUR", "en", "€5.00", id="padded-to-2-decimals"),
        pytest.param("0.5", "JPY", "en", "¥0.5", id="sub-yen-price-kept"),
        pytest.param("5", "KWD", "en", "KWD5.000", id="padded-to-3-decimals"),
    ],
)
def test_format_unit_price_is_exact_with_at_least_the_minor_digits(amount, currency, locale, shown):
    assert format_unit_price(Decimal(amount), currency, locale) == shown
