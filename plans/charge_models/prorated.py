"""Prorated charges (spec §7.15): prorated units of a recurring metric and the graduated tier
walk on them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import ROUND_CEILING, Decimal

from plans.charge_models.common import (
    ONE,
    ZERO,
    ChargeResult,
    Range,
    dec,
    event_values,
    parse_ranges,
    per_unit,
    precise,
)

_PRORATION_QUANTUM = Decimal("0.00001")  # spec §28: prorated aggregations ceil to 5 decimals


def _cumulative_bounds(ranges: Sequence[Range]) -> list[tuple[Decimal | None, Decimal | None]]:
    """Each range as the slice (lower, upper] of the running unit total it prices.

    Integer (0-10, 11-20) and adjacent (0-10, 10-20) ranges both cover (0, 10] then (10, 20];
    a running total below zero is priced in the first range.
    """
    bounds: list[tuple[Decimal | None, Decimal | None]] = []
    lower: Decimal | None = None
    for tier in ranges:
        bounds.append((lower, tier.to_value))
        lower = tier.to_value
    return bounds


def _overlap(low: Decimal, high: Decimal, lower: Decimal | None, upper: Decimal | None) -> Decimal:
    start = low if lower is None else max(low, lower)
    end = high if upper is None else min(high, upper)
    return max(end - start, ZERO)


@precise
def prorated_graduated_amount(
    properties: dict,
    *,
    units: Decimal,
    per_event_units: Sequence[Decimal],
    per_event_prorated_units: Sequence[Decimal],
) -> ChargeResult:
    """Graduated on a prorated recurring metric (spec §7.15).

    `per_event_units`: each event's full value in order; `per_event_prorated_units`: the same
    events weighted by the share of the period they were effective; `units`: the prorated total.
    Full units fill the tiers in event order; each tier is priced on the prorated share of the
    units that fall in it (an event spanning two tiers is split pro rata); the flat fee of every
    tier reached by the highest running total is added. No prorated units -> first tier's flat fee.
    """
    units = dec(units)
    ranges = parse_ranges(properties, "graduated_ranges", "per_unit_amount")
    full_values = event_values(per_event_units)
    prorated_values = event_values(per_event_prorated_units)
    if len(full_values) != len(prorated_values):
        raise ValueError("per_event_units and per_event_prorated_units differ in length")
    full_units = sum(full_values, ZERO)

    if units == 0:
        amount = ranges[0].flat
        return ChargeResult(amount=amount, units=units, unit_amount=per_unit(amount, full_units))

    bounds = _cumulative_bounds(ranges)
    running = ZERO
    highest = ZERO
    money = ZERO
    for full, prorated in zip(full_values, prorated_values, strict=True):
        # An add with no weight in the period (removed before it) does not move the tiers, and
        # neither does the remove of an add so skipped (it would drive the total below zero).
        if prorated == 0 and (full > 0 or (full < 0 and running + full < 0)):
            continue
        if full == 0:
            tier_index = next(
                (i for i, (_, upper) in enumerate(bounds) if upper is None or running <= upper),
                len(bounds) - 1,
            )
            money += prorated * ranges[tier_index].price
            continue
        low, high = sorted((running, running + full))
        sign = ONE if full > 0 else -ONE
        for tier, (lower, upper) in zip(ranges, bounds, strict=True):
            # the tier's share of the event's prorated value; dividing last keeps it exact
            share = sign * _overlap(low, high, lower, upper) * prorated / full
            money += share * tier.price
        running += full
        highest = max(highest, running)

    if running < 0:  # more removed than added: nothing to bill
        return ChargeResult(amount=ZERO, units=units, unit_amount=ZERO)
    amount = max(money, ZERO)
    for tier in ranges:
        amount += tier.flat
        if tier.to_value is None or highest <= tier.to_value:
            break
    return ChargeResult(amount=amount, units=units, unit_amount=per_unit(amount, full_units))


@precise
def prorated_units(
    contributions: Iterable[tuple[Decimal, int]],
    *,
    period_days: int,
    carried_over: Decimal = ZERO,
    ratio_existing: Decimal = ONE,
) -> Decimal:
    """Prorated units of a recurring metric (spec §7.15), ceiled to 5 decimals (spec §28).

    `contributions`: (value, days) per event, days counted from the event's day (inclusive) to the
    period end or termination; `period_days`: the full period length (`charges_duration`);
    `carried_over` x `ratio_existing`: the value carried from earlier periods times the share of
    the period the subscription existed. A pay-in-advance prorated event is one contribution.
    """
    if period_days <= 0:
        raise ValueError("period_days must be positive")
    total = dec(carried_over) * dec(ratio_existing)
    for value, days in contributions:
        total += dec(value) * Decimal(days) / Decimal(period_days)
    return total.quantize(_PRORATION_QUANTUM, rounding=ROUND_CEILING)
