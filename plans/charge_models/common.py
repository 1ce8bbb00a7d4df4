"""Shared by every charge model: `ChargeResult`, the wide decimal context (`precise`), reading
Lago's property dicts (`required`, `optional`, `parse_ranges`) and writing `amount_details`
values the way Lago renders them (`wire`, `wire_bound`, `wire_count`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal, localcontext
from typing import ParamSpec, TypeVar

from billing.money import amount_to_cents, parse_decimal, to_minor

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
# Enough significant digits that no product or quotient of 15-decimal prices and large unit counts
# is cut short before the final rounding (the default context keeps only 28).
_PRECISION = 60

_P = ParamSpec("_P")
_R = TypeVar("_R")


def precise(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run `fn` with a wide decimal context so intermediate results keep every digit."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with localcontext(prec=_PRECISION):
            return fn(*args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class ChargeResult:
    """What a charge model returns for one fee (spec §7.4)."""

    amount: Decimal  # major units, unrounded (precise)
    units: Decimal
    unit_amount: Decimal  # amount / units (0 when units == 0), major units
    amount_details: dict = field(default_factory=dict)
    total_aggregated_units: Decimal | None = None  # passed through (weighted sum fees)
    projected_units: Decimal | None = None  # set when a period_ratio is given (spec §25)
    projected_amount: Decimal | None = None

    def amount_cents(self, currency: str) -> int:
        """Fee `amount_cents`: the amount rounded half away from zero to the currency's unit."""
        return amount_to_cents(self.amount, currency)

    def precise_amount_cents(self, currency: str) -> Decimal:
        """Fee `precise_amount_cents`: the amount in minor units, unrounded."""
        return to_minor(self.amount, currency)

    def projected_amount_cents(self, currency: str) -> int | None:
        """`projected_amount_cents` of the projected usage endpoint, rounded like a fee."""
        if self.projected_amount is None:
            return None
        return amount_to_cents(self.projected_amount, currency)


# --------------------------------------------------------------------------------------------
# Reading properties, writing amount details


def dec(value: object) -> Decimal:
    """A property or unit value as a `Decimal` (`billing.money.parse_decimal`: no float)."""
    return parse_decimal(value)


def required(properties: dict, key: str) -> Decimal:
    """The decimal at `key`; missing or empty is an error."""
    value = properties.get(key)
    if value is None or value == "":
        raise ValueError(f"charge properties miss `{key}`")
    return dec(value)


def optional(properties: dict, key: str, default: Decimal | None = ZERO) -> Decimal | None:
    """The decimal at `key`, `default` when missing or empty."""
    value = properties.get(key)
    if value is None or value == "":
        return default
    return dec(value)


def wire(value: Decimal) -> str:
    """A decimal as Lago renders a BigDecimal in JSON: plain notation, at least one decimal."""
    if value == 0:
        return "0.0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if "." in text else f"{text}.0"


def wire_bound(value: object) -> object:
    """A range bound for `amount_details`: as given, a decimal rendered like Lago."""
    return wire(value) if isinstance(value, Decimal) else value


def wire_count(value: Decimal) -> int | str:
    """A count for `amount_details`: an integer when whole, else a decimal string."""
    return int(value) if value == value.to_integral_value() else wire(value)


def per_unit(amount: Decimal, units: Decimal) -> Decimal:
    """`amount / units`, 0 when there are no units (`ChargeResult.unit_amount`)."""
    return ZERO if units == 0 else amount / units


def ceil_integer(value: Decimal) -> Decimal:
    """`value` rounded up to an integer."""
    return value.to_integral_value(rounding=ROUND_CEILING)


@dataclass(frozen=True)
class Range:
    """One range of graduated, graduated percentage or volume properties, read."""

    from_value: Decimal
    to_value: Decimal | None  # None = infinity
    price: Decimal  # per_unit_amount, or the percentage rate of a graduated percentage range
    flat: Decimal
    raw_from: object
    raw_to: object


def parse_ranges(properties: dict, key: str, price_key: str) -> list[Range]:
    """The ranges at `key`, each priced by `price_key`; missing or empty is an error."""
    raw_ranges = properties.get(key)
    if not raw_ranges:
        raise ValueError(f"charge properties miss `{key}`")
    ranges = []
    for raw in raw_ranges:
        to_value = raw.get("to_value")
        ranges.append(
            Range(
                from_value=dec(raw.get("from_value", 0)),
                to_value=None if to_value is None else dec(to_value),
                price=dec(raw.get(price_key) or 0),
                flat=dec(raw.get("flat_amount") or 0),
                raw_from=raw.get("from_value"),
                raw_to=to_value,
            )
        )
    return ranges


def event_values(per_event_units: Sequence[Decimal] | None) -> list[Decimal]:
    """Each event's value as a `Decimal`; none when not given."""
    return [] if per_event_units is None else [dec(value) for value in per_event_units]
