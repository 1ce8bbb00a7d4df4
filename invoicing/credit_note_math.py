"""Amounts of a credit note from its items (pure: no ORM).

Coupons were applied before taxes, so the credited base of an item is reduced by the item's
share of its fee's coupons; each tax applies to the reduced base of the items it taxes and is
rounded once per tax; the total is the rounded sub-total plus the rounded taxes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import ParamSpec, TypeVar

from billing.money import round_cents

ZERO = Decimal(0)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def _precise(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with localcontext(prec=60):
            return fn(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class ItemTax:
    """A tax that applied to the credited fee."""

    code: str
    rate: Decimal  # percent


@dataclass(frozen=True)
class CreditedItem:
    """One item: the amount credited (excluding taxes) on a fee, and what the fee carried."""

    amount: Decimal  # precise cents
    fee_amount_cents: int
    fee_precise_coupons_amount_cents: Decimal
    taxes: tuple[ItemTax, ...] = ()

    @property
    def coupons_share(self) -> Decimal:
        """The part of the fee's coupons that falls on this item (pro rata of the fee)."""
        if self.fee_amount_cents == 0:
            return ZERO
        return self.fee_precise_coupons_amount_cents * self.amount / self.fee_amount_cents


@dataclass(frozen=True)
class TaxAmount:
    code: str
    rate: Decimal
    precise_base_amount_cents: Decimal
    base_amount_cents: int
    precise_amount_cents: Decimal
    amount_cents: int


@dataclass(frozen=True)
class CreditNoteAmounts:
    items_amount: Decimal  # precise sum of the items
    precise_coupons_adjustment_amount_cents: Decimal
    coupons_adjustment_amount_cents: int
    taxes: tuple[TaxAmount, ...]
    precise_taxes_amount_cents: Decimal
    taxes_amount_cents: int
    taxes_rate: Decimal
    sub_total_excluding_taxes_amount_cents: int
    total_amount_cents: int

    @property
    def precise_total(self) -> Decimal:
        return (
            self.items_amount
            - self.precise_coupons_adjustment_amount_cents
            + (self.precise_taxes_amount_cents)
        )


@_precise
def credit_note_amounts(items: Sequence[CreditedItem]) -> CreditNoteAmounts:
    """Coupon adjustment, taxes per rate, sub-total and total of a credit note's items.

    Each applied tax is rounded on its own, but `taxes_amount_cents` rounds the sum of the
    precise taxes (Lago's credit notes: two 10% taxes of 980.64 each make 1,961, not 1,962);
    the total is the rounded sub-total plus those taxes, so sub-total + taxes = total holds.
    """
    items_amount = sum((item.amount for item in items), ZERO)
    coupons_adjustment = sum((item.coupons_share for item in items), ZERO)
    bases: dict[str, Decimal] = {}
    rates: dict[str, Decimal] = {}
    for item in items:
        for tax in item.taxes:
            bases[tax.code] = bases.get(tax.code, ZERO) + item.amount - item.coupons_share
            rates[tax.code] = tax.rate
    net = items_amount - coupons_adjustment
    taxes = []
    rate_sum = ZERO
    for code in sorted(bases):
        base, rate = bases[code], rates[code]
        precise = base * rate / 100
        taxes.append(
            TaxAmount(
                code=code,
                rate=rate,
                precise_base_amount_cents=base,
                base_amount_cents=round_cents(base),
                precise_amount_cents=precise,
                amount_cents=round_cents(precise),
            )
        )
        if net:
            rate_sum += base / net * rate  # a tax on part of the items weighs pro rata
    precise_taxes = sum((tax.precise_amount_cents for tax in taxes), ZERO)
    taxes_amount = round_cents(precise_taxes)
    sub_total = round_cents(net)
    return CreditNoteAmounts(
        items_amount=items_amount,
        precise_coupons_adjustment_amount_cents=coupons_adjustment,
        coupons_adjustment_amount_cents=round_cents(coupons_adjustment),
        taxes=tuple(taxes),
        precise_taxes_amount_cents=precise_taxes,
        taxes_amount_cents=taxes_amount,
        taxes_rate=rate_sum.quantize(Decimal("0.00001"), rounding=ROUND_HALF_UP),
        sub_total_excluding_taxes_amount_cents=sub_total,
        total_amount_cents=sub_total + taxes_amount,
    )


def split_to_total(credit: int, refund: int, offset: int, total: int) -> tuple[int, int, int]:
    """Moves a rounding difference (at most a cent, checked by the caller) onto the credit,
    else the refund, else the offset, so that credit + refund + offset = total."""
    difference = total - (credit + refund + offset)
    if credit > 0 or (refund == 0 and offset == 0):
        return max(credit + difference, 0), refund, offset
    if refund > 0:
        return credit, max(refund + difference, 0), offset
    return credit, refund, max(offset + difference, 0)
