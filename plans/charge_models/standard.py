"""Standard (spec §7.5) and package (spec §7.6) charges: one price per unit, or per whole
package of units."""

from __future__ import annotations

from decimal import Decimal

from plans.charge_models.common import (
    ZERO,
    ChargeResult,
    dec,
    optional,
    per_unit,
    precise,
    required,
    wire,
    wire_count,
)


@precise
def standard_amount(
    properties: dict, *, units: Decimal, full_units: Decimal | None = None
) -> ChargeResult:
    """Standard (spec §7.5): units x `amount`.

    `full_units`: the non-prorated units of a prorated charge; `unit_amount` divides by them
    (spec §7.4, vector V13).
    """
    units = dec(units)
    amount = units * required(properties, "amount")
    denominator = units if full_units is None else dec(full_units)
    return ChargeResult(amount=amount, units=units, unit_amount=per_unit(amount, denominator))


@precise
def package_amount(properties: dict, *, units: Decimal) -> ChargeResult:
    """Package (spec §7.6): whole packages of `package_size` units after `free_units`.

    A package is due from its first unit, so the count of packages rounds up.
    """
    units = dec(units)
    price = required(properties, "amount")
    size = required(properties, "package_size")
    if size <= 0:
        raise ValueError("package_size must be positive")
    free_units = optional(properties, "free_units")
    paid_units = units - free_units
    if paid_units > 0:
        whole, remainder = divmod(paid_units, size)
        amount = (whole + (1 if remainder else 0)) * price
    else:
        amount = ZERO
    if units == 0:
        details = {
            "free_units": "0.0",
            "paid_units": "0.0",
            "per_package_size": 0,
            "per_package_unit_amount": "0.0",
        }
    else:
        details = {
            "free_units": wire(free_units),
            "paid_units": wire(max(paid_units, ZERO)),
            "per_package_size": wire_count(size),
            "per_package_unit_amount": wire(price),
        }
    return ChargeResult(
        amount=amount,
        units=units,
        # V18/V19: the package unit amount is per paid unit (1300 / 121 paid = 10.74), not per unit.
        unit_amount=per_unit(amount, max(paid_units, ZERO)),
        amount_details=details,
    )
