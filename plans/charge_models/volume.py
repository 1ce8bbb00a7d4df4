"""Volume charges (spec §7.8): every unit at the price of the range the volume falls in."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from plans.charge_models.common import (
    ZERO,
    ChargeResult,
    Range,
    ceil_integer,
    dec,
    parse_ranges,
    per_unit,
    precise,
    wire,
)


def volume_range(ranges: Sequence[Range], volume: Decimal) -> Range | None:
    """The range `volume` falls in; none for a negative volume."""
    # spec §7.8: ceil() puts 100.5 into 101-200 rather than into the gap after 0-100.
    ceiled = ceil_integer(volume)
    for tier in sorted(ranges, key=lambda r: r.from_value):
        if tier.from_value <= ceiled and (tier.to_value is None or volume <= tier.to_value):
            return tier
    return None


@precise
def volume_amount(
    properties: dict, *, units: Decimal, full_units: Decimal | None = None
) -> ChargeResult:
    """Volume (spec §7.8): every unit at the price of the range the volume falls in, plus its flat.

    `full_units`: for a prorated charge, the non-prorated units; they choose the range and divide
    the unit amount while the prorated `units` are priced (V27).
    """
    units = dec(units)
    volume = units if full_units is None else dec(full_units)
    tier = volume_range(parse_ranges(properties, "volume_ranges", "per_unit_amount"), volume)
    if tier is None:  # a negative volume reaches no range
        return ChargeResult(
            amount=ZERO,
            units=units,
            unit_amount=ZERO,
            amount_details={
                "flat_unit_amount": "0.0",
                "per_unit_amount": "0.0",
                "per_unit_total_amount": "0.0",
            },
        )
    per_unit_total = units * tier.price
    amount = per_unit_total + tier.flat
    return ChargeResult(
        amount=amount,
        units=units,
        unit_amount=per_unit(amount, volume),
        amount_details={
            "flat_unit_amount": wire(tier.flat),
            "per_unit_amount": wire(per_unit(per_unit_total, volume)),
            "per_unit_total_amount": wire(per_unit_total),
        },
    )
