"""Graduated (spec §7.7) and graduated percentage (spec §7.9) charges: the same tier walk, priced
per unit or at a percentage rate, plus the flat fee of each reached tier."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import Decimal

from plans.charge_models.common import (
    HUNDRED,
    ZERO,
    ChargeResult,
    Range,
    dec,
    parse_ranges,
    per_unit,
    precise,
    wire,
    wire_bound,
)


def _adjacent(ranges: Sequence[Range]) -> bool:
    """Ranges where each starts at the previous one's end (decimal style, spec §7.7)."""
    return len(ranges) >= 2 and all(
        current.from_value == (previous.to_value or ZERO)
        for previous, current in itertools.pairwise(ranges)
    )


def _walk_tiers(ranges: Sequence[Range], units: Decimal) -> list[tuple[Range, Decimal]]:
    """Each reached range with the units billed in it (spec §7.7 tier walk)."""
    adjacent = _adjacent(ranges)
    reached = []
    for tier in ranges:
        top = units if tier.to_value is None or units < tier.to_value else tier.to_value
        if tier.from_value == 0:
            tier_units = top
        elif adjacent:
            tier_units = top - tier.from_value
        else:  # integer style 0-10, 11-20: the step between tiers is one unit
            tier_units = top - tier.from_value + 1
        reached.append((tier, tier_units))
        if tier.to_value is None or tier.to_value >= units:
            break
    return reached


def _graduated(
    properties: dict,
    *,
    key: str,
    price_key: str,
    units: Decimal,
    full_units: Decimal | None,
    first_tier_flat_at_zero: bool,
    percentage: bool,
) -> ChargeResult:
    units = dec(units)
    ranges = parse_ranges(properties, key, price_key)
    details = []
    amount = ZERO
    for tier, tier_units in _walk_tiers(ranges, units):
        # spec §7.7 (V22, V25, V30): a reached tier's flat fee is due even at 0 units, except
        # for the "before" side of a pay-in-advance delta (spec §7.14, V49).
        flat = tier.flat if units != 0 or first_tier_flat_at_zero else ZERO
        if percentage:
            per_unit_total = tier_units * tier.price / HUNDRED
        else:
            per_unit_total = tier_units * (ZERO if tier_units == 0 else tier.price)
        total = per_unit_total + flat
        amount += total
        detail: dict[str, object] = {
            "from_value": wire_bound(tier.raw_from),
            "to_value": wire_bound(tier.raw_to),
            "flat_unit_amount": wire(flat),
        }
        if percentage:
            detail["rate"] = wire(tier.price)
        else:
            detail["per_unit_amount"] = wire(ZERO if tier_units == 0 else tier.price)
        detail["units"] = wire(tier_units)
        detail["per_unit_total_amount"] = wire(per_unit_total)
        detail["total_with_flat_amount"] = wire(total)
        details.append(detail)
    denominator = units if full_units is None else dec(full_units)
    return ChargeResult(
        amount=amount,
        units=units,
        unit_amount=per_unit(amount, denominator),
        amount_details={key: details},
    )


@precise
def graduated_amount(
    properties: dict,
    *,
    units: Decimal,
    full_units: Decimal | None = None,
    first_tier_flat_at_zero: bool = True,
) -> ChargeResult:
    """Graduated (spec §7.7): each tier priced separately, plus the flat fee of each reached tier.

    `first_tier_flat_at_zero=False` drops the first tier's flat fee at 0 units: the in-advance
    delta uses it for its "before" side so the flat fee is billed by the first event.
    """
    return _graduated(
        properties,
        key="graduated_ranges",
        price_key="per_unit_amount",
        units=units,
        full_units=full_units,
        first_tier_flat_at_zero=first_tier_flat_at_zero,
        percentage=False,
    )


@precise
def graduated_percentage_amount(
    properties: dict,
    *,
    units: Decimal,
    full_units: Decimal | None = None,
    first_tier_flat_at_zero: bool = True,
) -> ChargeResult:
    """Graduated percentage (spec §7.9): the graduated tier walk with `rate` percent per unit.

    Units are money (typically the sum of transaction amounts).
    """
    return _graduated(
        properties,
        key="graduated_percentage_ranges",
        price_key="rate",
        units=units,
        full_units=full_units,
        first_tier_flat_at_zero=first_tier_flat_at_zero,
        percentage=True,
    )
