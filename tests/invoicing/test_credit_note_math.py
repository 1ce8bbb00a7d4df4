"""Amounts of a credit note from its items: coupon adjustment pro rata, taxes per rate."""

from __future__ import annotations

from decimal import Decimal

import pytest

from invoicing.credit_note_math import CreditedItem, ItemTax, credit_note_amounts, split_to_total

VAT20 = ItemTax("vat_20", Decimal(20))


def test_partially_couponed_fee_reduces_the_credited_base_pro_rata():
    # fee2 39,900 carries the whole 25,000 coupon; item 26,260 on it, taxes 10% + 10%
    items = [
        CreditedItem(
            amount=Decimal(26260),
            fee_amount_cents=39900,
            fee_precise_coupons_amount_cents=Decimal(25000),
            taxes=(ItemTax("tax_a", Decimal(10)), ItemTax("tax_b", Decimal(10))),
        )
    ]
    amounts = credit_note_amounts(items)
    assert amounts.coupons_adjustment_amount_cents == 16454
    assert amounts.sub_total_excluding_taxes_amount_cents == 9806
    assert [tax.amount_cents for tax in amounts.taxes] == [981, 981]  # 980.64 each
    assert amounts.taxes_amount_cents == 1961  # the precise sum 1,961.28, rounded once
    assert amounts.total_amount_cents == 11767
    assert amounts.taxes_rate == Decimal(20)


@pytest.mark.parametrize(
    ("item", "taxes", "sub_total", "expected_total"),
    [
        pytest.param(26260, 1961, 9806, 11767, id="V75-couponed-fee2"),
        pytest.param(6833, 1367, 6833, 8200, id="V76-rounding-small-item"),
    ],
)
def test_vectors_single_tax(item, taxes, sub_total, expected_total):
    coupons = Decimal(25000) if item == 26260 else Decimal(0)
    fee = 39900 if item == 26260 else 6833
    amounts = credit_note_amounts([CreditedItem(Decimal(item), fee, coupons, (VAT20,))])
    assert amounts.sub_total_excluding_taxes_amount_cents == sub_total
    assert amounts.taxes_amount_cents == taxes
    assert amounts.total_amount_cents == expected_total


def test_two_tax_rates_on_two_items_with_a_coupon():
    # fee A 10,000 (coupon share 500) taxed 20%; fee B 5,000 (coupon share 250) taxed 5.5%
    items = [
        CreditedItem(Decimal(3333), 10000, Decimal(500), (ItemTax("vat_20", Decimal(20)),)),
        CreditedItem(Decimal(5000), 5000, Decimal(250), (ItemTax("vat_5_5", Decimal("5.5")),)),
    ]
    amounts = credit_note_amounts(items)
    # A: share 166.65 -> base 3166.35 -> tax 633.27; B: share 250 -> base 4750 -> tax 261.25
    assert amounts.precise_coupons_adjustment_amount_cents == Decimal("416.65")
    assert amounts.coupons_adjustment_amount_cents == 417
    assert [(t.code, t.amount_cents) for t in amounts.taxes] == [("vat_20", 633), ("vat_5_5", 261)]
    assert amounts.taxes_amount_cents == 895  # 894.52
    assert amounts.sub_total_excluding_taxes_amount_cents == 7916  # 7916.35
    assert amounts.total_amount_cents == 8811
    # rate weighted by base: 3166.35/7916.35*20 + 4750/7916.35*5.5
    assert amounts.taxes_rate == Decimal("11.29965")


def test_a_fee_of_zero_has_no_coupon_share():
    amounts = credit_note_amounts([CreditedItem(Decimal(0), 0, Decimal(10), ())])
    assert amounts.coupons_adjustment_amount_cents == 0
    assert amounts.total_amount_cents == 0


@pytest.mark.parametrize(
    ("given", "total", "expected"),
    [
        pytest.param((11768, 0, 0), 11767, (11767, 0, 0), id="credit-absorbs"),
        pytest.param((0, 11768, 0), 11767, (0, 11767, 0), id="refund-absorbs"),
        pytest.param((0, 0, 101), 100, (0, 0, 100), id="offset-absorbs"),
        pytest.param((50, 50, 0), 100, (50, 50, 0), id="already-equal"),
    ],
)
def test_split_to_total_moves_the_rounding_cent(given, total, expected):
    assert split_to_total(*given, total) == expected
