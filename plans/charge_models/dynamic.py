"""Dynamic charges (spec §7.11): the events carry their own prices."""

from __future__ import annotations

from decimal import Decimal

from billing.money import to_major
from plans.charge_models.common import ZERO, ChargeResult, dec, per_unit, precise


@precise
def dynamic_amount(
    properties: dict,
    *,
    units: Decimal,
    precise_total_amount_cents: Decimal | None,
    currency: str,
    full_units: Decimal | None = None,
) -> ChargeResult:
    """Dynamic (spec §7.11): the events' own prices, `precise_total_amount_cents` summed.

    `properties` carry no price (kept for a uniform signature); `precise_total_amount_cents`:
    the sum over the aggregated events (minor units, decimal); `units` only serve the unit
    amount. No units -> no amount.
    """
    units = dec(units)
    total_units = units if full_units is None else dec(full_units)
    if total_units == 0:
        amount = ZERO
    elif precise_total_amount_cents is None:
        raise ValueError("precise_total_amount_cents is required by the dynamic model")
    else:
        amount = to_major(dec(precise_total_amount_cents), currency)
    return ChargeResult(amount=amount, units=units, unit_amount=per_unit(amount, total_units))
