"""One entry point over every charge model (`compute`), with the projection of usage to the
end of the period (spec §25)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal

from plans.charge_models.common import (
    ZERO,
    ChargeResult,
    ceil_integer,
    dec,
    optional,
    parse_ranges,
    precise,
    required,
)
from plans.charge_models.dynamic import dynamic_amount
from plans.charge_models.graduated import graduated_amount, graduated_percentage_amount
from plans.charge_models.percentage import percentage_amount
from plans.charge_models.prorated import prorated_graduated_amount
from plans.charge_models.standard import package_amount, standard_amount
from plans.charge_models.volume import volume_amount, volume_range
from plans.choices import ChargeModel

_PROJECTION_QUANTUM = Decimal("0.01")


def model_amount(
    charge_model: str,
    properties: dict,
    *,
    units: Decimal,
    events_count: int | None,
    per_event_units: Sequence[Decimal] | None,
    per_event_prorated_units: Sequence[Decimal] | None,
    full_units: Decimal | None,
    precise_total_amount_cents: Decimal | None,
    currency: str,
    prorated: bool,
    premium: bool,
    first_tier_flat_at_zero: bool = True,
) -> ChargeResult:
    """The named model applied to the units, unprojected: `compute` and both in-advance sides."""
    match charge_model:
        case ChargeModel.STANDARD:
            return standard_amount(properties, units=units, full_units=full_units)
        case ChargeModel.PACKAGE:
            return package_amount(properties, units=units)
        case ChargeModel.GRADUATED if prorated:
            if per_event_units is None or per_event_prorated_units is None:
                raise ValueError(
                    "a prorated graduated charge needs per-event full and prorated units"
                )
            return prorated_graduated_amount(
                properties,
                units=units,
                per_event_units=per_event_units,
                per_event_prorated_units=per_event_prorated_units,
            )
        case ChargeModel.GRADUATED:
            return graduated_amount(
                properties,
                units=units,
                full_units=full_units,
                first_tier_flat_at_zero=first_tier_flat_at_zero,
            )
        case ChargeModel.GRADUATED_PERCENTAGE:
            return graduated_percentage_amount(
                properties,
                units=units,
                full_units=full_units,
                first_tier_flat_at_zero=first_tier_flat_at_zero,
            )
        case ChargeModel.VOLUME:
            return volume_amount(properties, units=units, full_units=full_units)
        case ChargeModel.PERCENTAGE:
            return percentage_amount(
                properties,
                units=units,
                events_count=events_count,
                per_event_units=per_event_units,
                full_units=full_units,
                premium=premium,
            )
        case ChargeModel.DYNAMIC:
            return dynamic_amount(
                properties,
                units=units,
                precise_total_amount_cents=precise_total_amount_cents,
                currency=currency,
                full_units=full_units,
            )
    raise ValueError(f"unknown charge model {charge_model!r}")


def _projected_amount(
    charge_model: str,
    properties: dict,
    result: ChargeResult,
    *,
    projected_units: Decimal,
    ratio: Decimal,
    prorated: bool,
) -> Decimal:
    """Amount at the end of the period if usage keeps its pace (Lago's per-model projection)."""
    if charge_model == ChargeModel.STANDARD:
        return projected_units * required(properties, "amount")
    if charge_model == ChargeModel.PACKAGE:
        paid = projected_units - optional(properties, "free_units")
        if projected_units == 0 or paid <= 0:
            return ZERO
        packages = ceil_integer(paid / required(properties, "package_size"))
        return packages * required(properties, "amount")
    if charge_model == ChargeModel.VOLUME:
        ranges = parse_ranges(properties, "volume_ranges", "per_unit_amount")
        tier = volume_range(ranges, projected_units) if projected_units != 0 else None
        return ZERO if tier is None else projected_units * tier.price + tier.flat
    if charge_model == ChargeModel.GRADUATED and not prorated:
        if projected_units == 0:
            return ZERO
        remaining, priced, total = projected_units, ZERO, ZERO
        for tier in parse_ranges(properties, "graduated_ranges", "per_unit_amount"):
            capacity = remaining if tier.to_value is None else tier.to_value - priced
            in_tier = min(remaining, capacity)
            if in_tier > 0:
                total += in_tier * tier.price + tier.flat
                remaining -= in_tier
                priced += in_tier
            if remaining <= 0:
                break
        return total
    # percentage, graduated percentage, dynamic, prorated graduated: current amount / ratio
    return ZERO if result.amount == 0 or ratio <= 0 else result.amount / ratio


@precise
def compute(
    charge_model: str,
    properties: dict,
    *,
    units: Decimal,
    events_count: int | None = None,
    total_aggregated_units: Decimal | None = None,
    per_event_units: Sequence[Decimal] | None = None,
    per_event_prorated_units: Sequence[Decimal] | None = None,
    full_units: Decimal | None = None,
    precise_total_amount_cents: Decimal | None = None,
    currency: str = "EUR",
    period_ratio: Decimal | None = None,
    prorated: bool = False,
    premium: bool = True,
) -> ChargeResult:
    """Apply a charge model (spec §7) to the aggregated units of one fee.

    - `units`: the aggregation (after billable metric rounding); prorated units when prorated.
    - `events_count`: number of aggregated events (percentage fixed fees; defaults to the length
      of `per_event_units`).
    - `total_aggregated_units`: passed through to the result (weighted sum fees).
    - `per_event_units`: each event's value in timestamp order (percentage free units and
      per-transaction min/max; prorated graduated: the full values).
    - `per_event_prorated_units`: prorated graduated only, each event's prorated value.
    - `full_units`: the non-prorated units of a prorated charge (volume range, unit amount).
    - `precise_total_amount_cents`: dynamic only, sum of the events' own prices.
    - `currency`: dynamic only, to turn those cents into major units.
    - `period_ratio`: elapsed share of the period; when given, the result carries
      `projected_units` and `projected_amount` (projected usage, spec §25).
    - `prorated`: the charge is prorated (graduated then uses the prorated tier walk).
    - `premium`: apply premium-only rules (percentage per-transaction min/max).
    """
    result = model_amount(
        charge_model,
        properties,
        units=units,
        events_count=events_count,
        per_event_units=per_event_units,
        per_event_prorated_units=per_event_prorated_units,
        full_units=full_units,
        precise_total_amount_cents=precise_total_amount_cents,
        currency=currency,
        prorated=prorated,
        premium=premium,
    )
    if total_aggregated_units is not None:
        result = replace(result, total_aggregated_units=dec(total_aggregated_units))
    if period_ratio is not None:
        ratio = dec(period_ratio)
        if result.units == 0 or ratio <= 0:
            projected_units = ZERO
        else:  # units, not money: Lago rounds projected units to 2 decimals, half up
            projected_units = (result.units / ratio).quantize(
                _PROJECTION_QUANTUM, rounding=ROUND_HALF_UP
            )
        projected_amount = _projected_amount(
            charge_model,
            properties,
            result,
            projected_units=projected_units,
            ratio=ratio,
            prorated=prorated,
        )
        result = replace(result, projected_units=projected_units, projected_amount=projected_amount)
    return result
