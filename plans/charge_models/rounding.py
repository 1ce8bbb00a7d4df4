"""Billable metric rounding of aggregated units (spec §4.4)."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from plans.charge_models.common import ONE, dec, precise
from plans.choices import RoundingFunction

_ROUNDING_MODES = {
    RoundingFunction.ROUND: ROUND_HALF_UP,
    RoundingFunction.CEIL: ROUND_CEILING,
    RoundingFunction.FLOOR: ROUND_FLOOR,
}


@precise
def apply_rounding(
    value: Decimal, rounding_function: str | None, rounding_precision: int | None
) -> Decimal:
    """Round aggregated units (spec §4.4): `round` (half up), `ceil` or `floor` to
    `rounding_precision` decimals (0 when null; negative rounds to tens, hundreds...)."""
    value = dec(value)
    if rounding_function is None:
        return value
    if rounding_function not in _ROUNDING_MODES:
        raise ValueError(f"unknown rounding function {rounding_function!r}")
    precision = rounding_precision or 0
    rounded = value.quantize(ONE.scaleb(-precision), rounding=_ROUNDING_MODES[rounding_function])
    # 1.2E+2 -> 120: keep a plain integer when no decimal is asked for
    return rounded if precision > 0 else Decimal(int(rounded))
