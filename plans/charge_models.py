"""Charge models (spec §7) as pure functions: properties + aggregated units -> amount.

No ORM here. Properties are Lago's wire dicts (decimal strings such as `{"amount": "0.10"}`);
every number is read with `billing.money.parse_decimal`, so a float never enters a computation.
Amounts are `Decimal` in major units and stay unrounded (precise); the one rounding to minor units
happens in `ChargeResult.amount_cents` through `billing.money` (half away from zero, spec §28).

`amount_details` are JSON-ready like Lago's: decimals as strings ("10.0"), counts as integers, range
bounds as given in the properties.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from typing import ParamSpec, TypeVar

from billing.money import amount_to_cents, parse_decimal, to_major, to_minor
from plans.choices import AggregationType, ChargeModel, RoundingFunction

# spec §7.2: the only aggregations a pay-in-advance charge accepts.
PAY_IN_ADVANCE_AGGREGATIONS = frozenset(
    {AggregationType.COUNT, AggregationType.SUM, AggregationType.UNIQUE_COUNT}
)
# Validation fields that belong to the charge itself; every other field is a property field,
# which Lago reports under `properties` on the wire (see `wire_error_details`).
CHARGE_LEVEL_FIELDS = frozenset(
    {
        "billable_metric",  # spec §7.2: `billable_metric: invalid_value`, not under properties
        "charge_model",
        "pay_in_advance",
        "invoiceable",
        "regroup_paid_fees",
        "min_amount_cents",
        "prorated",
    }
)

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
# Enough significant digits that no product or quotient of 15-decimal prices and large unit counts
# is cut short before the final rounding (the default context keeps only 28).
_PRECISION = 60
_PRORATION_QUANTUM = Decimal("0.00001")  # spec §28: prorated aggregations ceil to 5 decimals
_PROJECTION_QUANTUM = Decimal("0.01")

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _precise(fn: Callable[_P, _R]) -> Callable[_P, _R]:
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
# Reading properties


def _dec(value: object) -> Decimal:
    return parse_decimal(value)


def _required(properties: dict, key: str) -> Decimal:
    value = properties.get(key)
    if value is None or value == "":
        raise ValueError(f"charge properties miss `{key}`")
    return _dec(value)


def _optional(properties: dict, key: str, default: Decimal | None = ZERO) -> Decimal | None:
    value = properties.get(key)
    if value is None or value == "":
        return default
    return _dec(value)


def _wire(value: Decimal) -> str:
    """A decimal as Lago renders a BigDecimal in JSON: plain notation, at least one decimal."""
    if value == 0:
        return "0.0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text if "." in text else f"{text}.0"


def _wire_bound(value: object) -> object:
    return _wire(value) if isinstance(value, Decimal) else value


def _wire_count(value: Decimal) -> int | str:
    return int(value) if value == value.to_integral_value() else _wire(value)


def _ratio(amount: Decimal, units: Decimal) -> Decimal:
    return ZERO if units == 0 else amount / units


def _ceil_integer(value: Decimal) -> Decimal:
    return value.to_integral_value(rounding=ROUND_CEILING)


@dataclass(frozen=True)
class _Range:
    from_value: Decimal
    to_value: Decimal | None  # None = infinity
    price: Decimal  # per_unit_amount, or the percentage rate of a graduated percentage range
    flat: Decimal
    raw_from: object
    raw_to: object


def _parse_ranges(properties: dict, key: str, price_key: str) -> list[_Range]:
    raw_ranges = properties.get(key)
    if not raw_ranges:
        raise ValueError(f"charge properties miss `{key}`")
    ranges = []
    for raw in raw_ranges:
        to_value = raw.get("to_value")
        ranges.append(
            _Range(
                from_value=_dec(raw.get("from_value", 0)),
                to_value=None if to_value is None else _dec(to_value),
                price=_dec(raw.get(price_key) or 0),
                flat=_dec(raw.get("flat_amount") or 0),
                raw_from=raw.get("from_value"),
                raw_to=to_value,
            )
        )
    return ranges


def _adjacent(ranges: Sequence[_Range]) -> bool:
    """Ranges where each starts at the previous one's end (decimal style, spec §7.7)."""
    return len(ranges) >= 2 and all(
        current.from_value == (previous.to_value or ZERO)
        for previous, current in itertools.pairwise(ranges)
    )


def _walk_tiers(ranges: Sequence[_Range], units: Decimal) -> list[tuple[_Range, Decimal]]:
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


# --------------------------------------------------------------------------------------------
# The models


@_precise
def standard_amount(
    properties: dict, *, units: Decimal, full_units: Decimal | None = None
) -> ChargeResult:
    """Standard (spec §7.5): units x `amount`.

    `full_units`: the non-prorated units of a prorated charge; `unit_amount` divides by them
    (spec §7.4, vector V13).
    """
    units = _dec(units)
    amount = units * _required(properties, "amount")
    denominator = units if full_units is None else _dec(full_units)
    return ChargeResult(amount=amount, units=units, unit_amount=_ratio(amount, denominator))


@_precise
def package_amount(properties: dict, *, units: Decimal) -> ChargeResult:
    """Package (spec §7.6): whole packages of `package_size` units after `free_units`.

    A package is due from its first unit, so the count of packages rounds up.
    """
    units = _dec(units)
    price = _required(properties, "amount")
    size = _required(properties, "package_size")
    if size <= 0:
        raise ValueError("package_size must be positive")
    free_units = _optional(properties, "free_units")
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
            "free_units": _wire(free_units),
            "paid_units": _wire(max(paid_units, ZERO)),
            "per_package_size": _wire_count(size),
            "per_package_unit_amount": _wire(price),
        }
    return ChargeResult(
        amount=amount,
        units=units,
        # V18/V19: the package unit amount is per paid unit (1300 / 121 paid = 10.74), not per unit.
        unit_amount=_ratio(amount, max(paid_units, ZERO)),
        amount_details=details,
    )


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
    units = _dec(units)
    ranges = _parse_ranges(properties, key, price_key)
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
            "from_value": _wire_bound(tier.raw_from),
            "to_value": _wire_bound(tier.raw_to),
            "flat_unit_amount": _wire(flat),
        }
        if percentage:
            detail["rate"] = _wire(tier.price)
        else:
            detail["per_unit_amount"] = _wire(ZERO if tier_units == 0 else tier.price)
        detail["units"] = _wire(tier_units)
        detail["per_unit_total_amount"] = _wire(per_unit_total)
        detail["total_with_flat_amount"] = _wire(total)
        details.append(detail)
    denominator = units if full_units is None else _dec(full_units)
    return ChargeResult(
        amount=amount,
        units=units,
        unit_amount=_ratio(amount, denominator),
        amount_details={key: details},
    )


@_precise
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


@_precise
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


def _volume_range(ranges: Sequence[_Range], volume: Decimal) -> _Range | None:
    # spec §7.8: ceil() puts 100.5 into 101-200 rather than into the gap after 0-100.
    ceiled = _ceil_integer(volume)
    for tier in sorted(ranges, key=lambda r: r.from_value):
        if tier.from_value <= ceiled and (tier.to_value is None or volume <= tier.to_value):
            return tier
    return None


@_precise
def volume_amount(
    properties: dict, *, units: Decimal, full_units: Decimal | None = None
) -> ChargeResult:
    """Volume (spec §7.8): every unit at the price of the range the volume falls in, plus its flat.

    `full_units`: for a prorated charge, the non-prorated units; they choose the range and divide
    the unit amount while the prorated `units` are priced (V27).
    """
    units = _dec(units)
    volume = units if full_units is None else _dec(full_units)
    tier = _volume_range(_parse_ranges(properties, "volume_ranges", "per_unit_amount"), volume)
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
        unit_amount=_ratio(amount, volume),
        amount_details={
            "flat_unit_amount": _wire(tier.flat),
            "per_unit_amount": _wire(_ratio(per_unit_total, volume)),
            "per_unit_total_amount": _wire(per_unit_total),
        },
    )


@dataclass(frozen=True)
class _PercentageTerms:
    rate: Decimal
    fixed_amount: Decimal
    free_units_per_events: int  # 0 = not set
    free_units_per_total_aggregation: Decimal  # 0 = not set
    min_amount: Decimal | None
    max_amount: Decimal | None

    @classmethod
    def parse(cls, properties: dict) -> _PercentageTerms:
        return cls(
            rate=_required(properties, "rate"),
            fixed_amount=_optional(properties, "fixed_amount"),
            free_units_per_events=int(_optional(properties, "free_units_per_events")),
            free_units_per_total_aggregation=_optional(
                properties, "free_units_per_total_aggregation"
            ),
            min_amount=_optional(properties, "per_transaction_min_amount", None),
            max_amount=_optional(properties, "per_transaction_max_amount", None),
        )

    @property
    def has_min_max(self) -> bool:
        return self.min_amount is not None or self.max_amount is not None

    def running_total(self, values: Sequence[Decimal]) -> list[Decimal]:
        """Cumulative values of the free window: the first k events, else up to passing F."""
        totals: list[Decimal] = []
        total = ZERO
        if self.free_units_per_events > 0:
            for value in values[: self.free_units_per_events]:
                total += value
                totals.append(total)
        elif self.free_units_per_total_aggregation > 0:
            for value in values:
                if total > self.free_units_per_total_aggregation:
                    break
                total += value
                totals.append(total)
        return totals

    def free_amount(self, totals: Sequence[Decimal]) -> Decimal:
        """Units exempt from the rate: S_k or min(U, F), capped by F when both are set."""
        last = totals[-1] if totals else ZERO
        if last == 0 or self.free_units_per_total_aggregation == 0:
            return last
        return min(last, self.free_units_per_total_aggregation)

    def free_events(self, totals: Sequence[Decimal]) -> int:
        """Events exempt from `fixed_amount`: the smallest non-zero of k and #(totals < F)."""
        candidates = [self.free_units_per_events]
        if self.free_units_per_total_aggregation > 0:
            limit = self.free_units_per_total_aggregation
            candidates.append(sum(1 for total in totals if total < limit))
        return min((c for c in candidates if c != 0), default=0)

    def clamp(self, amount: Decimal) -> Decimal:
        if self.min_amount is not None and amount < self.min_amount:
            return self.min_amount
        if self.max_amount is not None and amount > self.max_amount:
            return self.max_amount
        return amount


def _event_values(per_event_units: Sequence[Decimal] | None) -> list[Decimal]:
    return [] if per_event_units is None else [_dec(value) for value in per_event_units]


@_precise
def percentage_transaction_amounts(
    properties: dict, *, per_event_units: Sequence[Decimal]
) -> list[Decimal | None]:
    """Per-transaction amounts of a percentage charge with a min/max (spec §7.10), in event order.

    `per_event_units`: each event's value, in timestamp order. A free event (covered by
    `free_units_per_events` or `free_units_per_total_aggregation`) is `None`; every other event
    costs value x rate / 100 + fixed_amount, clamped to [per_transaction_min_amount,
    per_transaction_max_amount].
    """
    terms = _PercentageTerms.parse(properties)
    free_events_left = terms.free_units_per_events
    free_amount_left = terms.free_units_per_total_aggregation
    amounts: list[Decimal | None] = []
    for raw_value in per_event_units:
        value = _dec(raw_value)
        if free_events_left > 0 or free_amount_left > 0:
            free_events_left -= 1
            if free_amount_left <= 0:
                amounts.append(None)
                continue
            if free_amount_left > value:
                free_amount_left -= value
                amounts.append(None)
                continue
            value -= free_amount_left
            free_amount_left, free_events_left = ZERO, 0
        amounts.append(terms.clamp(value * terms.rate / HUNDRED + terms.fixed_amount))
    return amounts


@_precise
def percentage_amount(
    properties: dict,
    *,
    units: Decimal,
    events_count: int | None = None,
    per_event_units: Sequence[Decimal] | None = None,
    full_units: Decimal | None = None,
    premium: bool = True,
) -> ChargeResult:
    """Percentage (spec §7.10): `rate` % of the paid units plus `fixed_amount` per paid event.

    `units`: the total (sum of event values). `events_count`: number of events (defaults to the
    length of `per_event_units`). `per_event_units`: each event's value in timestamp order; needed
    as soon as free units or a per-transaction min/max are set and there are events.
    `premium=False` ignores the per-transaction min/max, as Lago does without a license.
    """
    units = _dec(units)
    terms = _PercentageTerms.parse(properties)
    values = _event_values(per_event_units)
    count = len(values) if events_count is None else events_count
    needs_events = (
        terms.free_units_per_events > 0
        or terms.free_units_per_total_aggregation > 0
        or (premium and terms.has_min_max)
    )
    if per_event_units is None and count > 0 and needs_events:
        raise ValueError("per_event_units is required with free units or a min/max")

    totals = terms.running_total(values)
    free_units = terms.free_amount(totals)
    free_count = terms.free_events(totals)
    percentage_part = ZERO if free_units > units else (units - free_units) * terms.rate / HUNDRED
    if units == 0 or free_count >= count:
        fixed_part = ZERO
    else:
        fixed_part = (count - free_count) * terms.fixed_amount

    amount = percentage_part + fixed_part
    adjustment = ZERO
    if premium and terms.has_min_max:
        charged = percentage_transaction_amounts(properties, per_event_units=values)
        amount = sum((a for a in charged if a is not None), ZERO)
        adjustment = amount - (percentage_part + fixed_part)

    free_events = min(count, free_count)
    paid_events = count - free_events
    details = {
        "units": _wire(units),
        "free_units": _wire(free_units),
        "paid_units": _wire(max(units - free_units, ZERO)),
        "free_events": free_events,
        "paid_events": paid_events,
        "rate": _wire(terms.rate),
        "per_unit_total_amount": _wire(percentage_part),
        "fixed_fee_unit_amount": _wire(terms.fixed_amount if paid_events > 0 else ZERO),
        "fixed_fee_total_amount": _wire(fixed_part),
        "min_max_adjustment_total_amount": _wire(adjustment),
    }
    denominator = units if full_units is None else _dec(full_units)
    return ChargeResult(
        amount=amount, units=units, unit_amount=_ratio(amount, denominator), amount_details=details
    )


@_precise
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
    units = _dec(units)
    total_units = units if full_units is None else _dec(full_units)
    if total_units == 0:
        amount = ZERO
    elif precise_total_amount_cents is None:
        raise ValueError("precise_total_amount_cents is required by the dynamic model")
    else:
        amount = to_major(_dec(precise_total_amount_cents), currency)
    return ChargeResult(amount=amount, units=units, unit_amount=_ratio(amount, total_units))


# --------------------------------------------------------------------------------------------
# Prorated charges (spec §7.15)


def _cumulative_bounds(ranges: Sequence[_Range]) -> list[tuple[Decimal | None, Decimal | None]]:
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


@_precise
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
    units = _dec(units)
    ranges = _parse_ranges(properties, "graduated_ranges", "per_unit_amount")
    full_values = _event_values(per_event_units)
    prorated_values = _event_values(per_event_prorated_units)
    if len(full_values) != len(prorated_values):
        raise ValueError("per_event_units and per_event_prorated_units differ in length")
    full_units = sum(full_values, ZERO)

    if units == 0:
        amount = ranges[0].flat
        return ChargeResult(amount=amount, units=units, unit_amount=_ratio(amount, full_units))

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
    return ChargeResult(amount=amount, units=units, unit_amount=_ratio(amount, full_units))


@_precise
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
    total = _dec(carried_over) * _dec(ratio_existing)
    for value, days in contributions:
        total += _dec(value) * Decimal(days) / Decimal(period_days)
    return total.quantize(_PRORATION_QUANTUM, rounding=ROUND_CEILING)


# --------------------------------------------------------------------------------------------
# Dispatch, projections, pay in advance


def _compute(
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
        return projected_units * _required(properties, "amount")
    if charge_model == ChargeModel.PACKAGE:
        paid = projected_units - _optional(properties, "free_units")
        if projected_units == 0 or paid <= 0:
            return ZERO
        packages = _ceil_integer(paid / _required(properties, "package_size"))
        return packages * _required(properties, "amount")
    if charge_model == ChargeModel.VOLUME:
        ranges = _parse_ranges(properties, "volume_ranges", "per_unit_amount")
        tier = _volume_range(ranges, projected_units) if projected_units != 0 else None
        return ZERO if tier is None else projected_units * tier.price + tier.flat
    if charge_model == ChargeModel.GRADUATED and not prorated:
        if projected_units == 0:
            return ZERO
        remaining, priced, total = projected_units, ZERO, ZERO
        for tier in _parse_ranges(properties, "graduated_ranges", "per_unit_amount"):
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


@_precise
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
    result = _compute(
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
        result = replace(result, total_aggregated_units=_dec(total_aggregated_units))
    if period_ratio is not None:
        ratio = _dec(period_ratio)
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


_PERCENTAGE_DELTA_KEYS = (
    "units",
    "free_units",
    "paid_units",
    "free_events",
    "paid_events",
    "fixed_fee_total_amount",
    "min_max_adjustment_total_amount",
    "per_unit_total_amount",
)


def _percentage_delta_details(after: dict, before: dict) -> dict:
    details: dict[str, object] = {
        "rate": after["rate"],
        "fixed_fee_unit_amount": after["fixed_fee_unit_amount"],
    }
    for key in _PERCENTAGE_DELTA_KEYS:
        if isinstance(after[key], int):
            details[key] = after[key] - before[key]
        else:
            details[key] = _wire(Decimal(after[key]) - Decimal(before[key]))
    # The event's free units are what it did not pay for.
    details["free_units"] = _wire(Decimal(details["units"]) - Decimal(details["paid_units"]))
    return details


def _graduated_percentage_delta_details(after: dict, before: dict) -> dict:
    ranges = []
    for tier in after["graduated_percentage_ranges"]:
        previous = next(
            (
                r
                for r in before["graduated_percentage_ranges"]
                if (r["from_value"], r["to_value"]) == (tier["from_value"], tier["to_value"])
            ),
            None,
        )
        delta = {}
        for key in ("flat_unit_amount", "units", "per_unit_total_amount", "total_with_flat_amount"):
            base = ZERO if previous is None else Decimal(previous[key])
            delta[key] = _wire(Decimal(tier[key]) - base)
        ranges.append(
            {
                "from_value": tier["from_value"],
                "to_value": tier["to_value"],
                "flat_unit_amount": delta["flat_unit_amount"],
                "rate": tier["rate"],
                "units": delta["units"],
                "per_unit_total_amount": delta["per_unit_total_amount"],
                "total_with_flat_amount": delta["total_with_flat_amount"],
            }
        )
    return {"graduated_percentage_ranges": ranges}


@_precise
def in_advance_amount(
    charge_model: str,
    properties: dict,
    *,
    units: Decimal,
    event_units: Decimal,
    events_count: int | None = None,
    per_event_units: Sequence[Decimal] | None = None,
    precise_total_amount_cents: Decimal | None = None,
    event_precise_total_amount_cents: Decimal | None = None,
    currency: str = "EUR",
    fee_units: Decimal | None = None,
    premium: bool = True,
) -> ChargeResult:
    """Fee of one pay-in-advance event (spec §7.14): model(with the event) - model(without it).

    - `units`: the period's units including the event; `event_units`: what the event added (for
      sum/unique count, the increase of the period maximum, see `in_advance_units`; for a
      prorated charge, both in prorated units, see `prorated_units`).
    - `events_count`: events of the period including this one (defaults to the length of
      `per_event_units`, else 1); `per_event_units`: their values in order, this event last.
    - `precise_total_amount_cents` / `event_precise_total_amount_cents`: dynamic only, period
      total including the event / the event's own price.
    - `fee_units`: units shown on the fee when they differ from `event_units` (prorated charges
      show the full units).
    Volume is refused: it cannot be paid in advance (spec §7.2).
    """
    if charge_model == ChargeModel.VOLUME:
        raise ValueError("a volume charge cannot be paid in advance")
    units, event_units = _dec(units), _dec(event_units)
    if events_count is None:
        events_count = 1 if per_event_units is None else len(per_event_units)
    before_events = None if per_event_units is None else list(per_event_units)[:-1]
    before_precise = None
    if precise_total_amount_cents is not None:
        before_precise = _dec(precise_total_amount_cents) - _dec(
            event_precise_total_amount_cents or 0
        )
    common = {
        "per_event_prorated_units": None,
        "full_units": None,
        "currency": currency,
        "prorated": False,
        "premium": premium,
    }
    after = _compute(
        charge_model,
        properties,
        units=units,
        events_count=events_count,
        per_event_units=per_event_units,
        precise_total_amount_cents=precise_total_amount_cents,
        **common,
    )
    before = _compute(
        charge_model,
        properties,
        units=units - event_units,
        events_count=max(events_count - 1, 0),
        per_event_units=before_events,
        precise_total_amount_cents=before_precise,
        # the first tier's flat fee is billed by the first event, not netted out (V49)
        first_tier_flat_at_zero=False,
        **common,
    )
    amount = after.amount - before.amount
    shown_units = event_units if fee_units is None else _dec(fee_units)
    if charge_model == ChargeModel.PERCENTAGE:
        details = _percentage_delta_details(after.amount_details, before.amount_details)
    elif charge_model == ChargeModel.GRADUATED_PERCENTAGE:
        details = _graduated_percentage_delta_details(after.amount_details, before.amount_details)
    else:
        details = {}
    return ChargeResult(
        amount=amount,
        units=shown_units,
        unit_amount=_ratio(amount, shown_units),
        amount_details=details,
    )


@dataclass(frozen=True)
class InAdvanceUnits:
    """Units billed by one in-advance event on a sum/unique count metric (spec §7.14)."""

    units: Decimal  # what this event bills: the increase of the period maximum
    current_aggregation: Decimal  # running total after the event
    max_aggregation: Decimal  # period maximum after the event


@_precise
def in_advance_units(
    event_value: Decimal,
    *,
    current_aggregation: Decimal = ZERO,
    max_aggregation: Decimal = ZERO,
) -> InAdvanceUnits:
    """Bill only what exceeds the period maximum: a decrease bills 0, and so does re-adding up to
    the previous maximum (spec §7.14, V45). Feed the returned state to the next event."""
    current = _dec(current_aggregation) + _dec(event_value)
    previous_max = _dec(max_aggregation)
    new_max = max(previous_max, current)
    return InAdvanceUnits(
        units=new_max - previous_max, current_aggregation=current, max_aggregation=new_max
    )


# --------------------------------------------------------------------------------------------
# Billable metric rounding (spec §4.4)

_ROUNDING_MODES = {
    RoundingFunction.ROUND: ROUND_HALF_UP,
    RoundingFunction.CEIL: ROUND_CEILING,
    RoundingFunction.FLOOR: ROUND_FLOOR,
}


@_precise
def apply_rounding(
    value: Decimal, rounding_function: str | None, rounding_precision: int | None
) -> Decimal:
    """Round aggregated units (spec §4.4): `round` (half up), `ceil` or `floor` to
    `rounding_precision` decimals (0 when null; negative rounds to tens, hundreds...)."""
    value = _dec(value)
    if rounding_function is None:
        return value
    if rounding_function not in _ROUNDING_MODES:
        raise ValueError(f"unknown rounding function {rounding_function!r}")
    precision = rounding_precision or 0
    rounded = value.quantize(ONE.scaleb(-precision), rounding=_ROUNDING_MODES[rounding_function])
    # 1.2E+2 -> 120: keep a plain integer when no decimal is asked for
    return rounded if precision > 0 else Decimal(int(rounded))


# --------------------------------------------------------------------------------------------
# Validation (spec §7.2 compatibility matrix, §7.3 properties)


def _add(errors: dict[str, list[str]], field_name: str, code: str) -> None:
    codes = errors.setdefault(field_name, [])
    if code not in codes:
        codes.append(code)


def _valid_amount(value: object) -> bool:
    """Lago's decimal amount rule: a string holding a finite, non-negative decimal."""
    if not isinstance(value, str):  # numbers are refused: a JSON float may already be inexact
        return False
    try:
        return parse_decimal(value) >= 0
    except ValueError:
        return False


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bound(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        return None
    try:
        return parse_decimal(value)
    except ValueError:
        return None


def _range_bounds_valid(raw_ranges: list, index: int, previous_to: Decimal | None) -> bool:
    tier = raw_ranges[index]
    from_value = _bound(tier.get("from_value"))
    raw_to = tier.get("to_value")
    to_value = None if raw_to is None else _bound(raw_to)
    if from_value is None or (raw_to is not None and to_value is None):
        return False
    if index == 0:
        chained = from_value == 0
    else:
        # adjacent (decimal) style or integer style, spec §7.3; V23 mixes both in one list
        chained = previous_to is not None and from_value in (previous_to, previous_to + 1)
    if index == len(raw_ranges) - 1:
        return chained and raw_to is None
    return chained and to_value is not None and to_value > from_value


def _validate_ranges(
    errors: dict[str, list[str]], properties: dict, key: str, *, percentage: bool
) -> None:
    raw_ranges = properties.get(key)
    if not isinstance(raw_ranges, list) or not raw_ranges:
        _add(errors, key, f"missing_{key}")
        return
    previous_to: Decimal | None = None
    for index, tier in enumerate(raw_ranges):
        if not isinstance(tier, dict):
            _add(errors, key, f"invalid_{key}")
            previous_to = None
            continue
        if percentage:
            if not _valid_amount(tier.get("rate")):
                _add(errors, "rate", "invalid_rate")
        elif not _valid_amount(tier.get("per_unit_amount")):
            _add(errors, "per_unit_amount", "invalid_amount")
        if not _valid_amount(tier.get("flat_amount")):
            _add(errors, "flat_amount", "invalid_amount")
        if not _range_bounds_valid(raw_ranges, index, previous_to):
            _add(errors, key, f"invalid_{key}")
        to_value = tier.get("to_value")
        previous_to = None if to_value is None else _bound(to_value)


def _validate_standard(errors: dict[str, list[str]], properties: dict) -> None:
    if not _valid_amount(properties.get("amount")):
        _add(errors, "amount", "invalid_amount")


def _validate_package(errors: dict[str, list[str]], properties: dict) -> None:
    if not _valid_amount(properties.get("amount")):
        _add(errors, "amount", "invalid_amount")
    free_units = properties.get("free_units")
    if not (_is_integer(free_units) and free_units >= 0):
        _add(errors, "free_units", "invalid_free_units")
    package_size = properties.get("package_size")
    if not (_is_integer(package_size) and package_size > 0):
        _add(errors, "package_size", "invalid_package_size")


def _validate_percentage(errors: dict[str, list[str]], properties: dict) -> None:
    if not _valid_amount(properties.get("rate")):
        _add(errors, "rate", "invalid_rate")
    fixed_amount = properties.get("fixed_amount")
    if fixed_amount is not None and not _valid_amount(fixed_amount):
        _add(errors, "fixed_amount", "invalid_fixed_amount")
    per_events = properties.get("free_units_per_events")
    if per_events is not None and not (_is_integer(per_events) and per_events > 0):
        _add(errors, "free_units_per_events", "invalid_free_units_per_events")
    per_total = properties.get("free_units_per_total_aggregation")
    if per_total is not None and not _valid_amount(per_total):
        _add(
            errors,
            "free_units_per_total_aggregation",
            "invalid_free_units_per_total_aggregation",
        )
    minimum = properties.get("per_transaction_min_amount")
    maximum = properties.get("per_transaction_max_amount")
    min_ok = minimum in (None, "") or _valid_amount(minimum)
    max_ok = maximum in (None, "") or _valid_amount(maximum)
    if not min_ok:
        _add(errors, "per_transaction_min_amount", "invalid_amount")
    if not max_ok:
        _add(errors, "per_transaction_max_amount", "invalid_amount")
    both_set = minimum not in (None, "") and maximum not in (None, "")
    if min_ok and max_ok and both_set and parse_decimal(minimum) > parse_decimal(maximum):
        _add(
            errors,
            "per_transaction_max_amount",
            "per_transaction_max_lower_than_per_transaction_min",
        )


def _validate_group_keys(errors: dict[str, list[str]], properties: dict) -> None:
    key = "pricing_group_keys" if properties.get("pricing_group_keys") is not None else "grouped_by"
    group_keys = properties.get(key)
    if group_keys is not None and group_keys != []:
        valid = isinstance(group_keys, list) and all(isinstance(k, str) and k for k in group_keys)
        if not valid:
            _add(errors, key, "invalid_type")
    presentation = properties.get("presentation_group_keys")
    if presentation:
        # Lago's own (sentence-like) codes for these two rules
        if not (
            isinstance(presentation, list)
            and all(isinstance(k, dict) and "value" in k for k in presentation)
        ):
            _add(
                errors,
                "presentation_group_keys",
                "presentation_group_keys must be an array of hashes with a 'value' key",
            )
        elif len(presentation) > 2:
            _add(
                errors,
                "presentation_group_keys",
                "presentation_group_keys have a maximum of 2 elements",
            )


_PROPERTY_VALIDATORS: dict[str, Callable[[dict[str, list[str]], dict], None]] = {
    ChargeModel.STANDARD: _validate_standard,
    ChargeModel.PACKAGE: _validate_package,
    ChargeModel.PERCENTAGE: _validate_percentage,
    ChargeModel.GRADUATED: functools.partial(
        _validate_ranges, key="graduated_ranges", percentage=False
    ),
    ChargeModel.VOLUME: functools.partial(_validate_ranges, key="volume_ranges", percentage=False),
    ChargeModel.GRADUATED_PERCENTAGE: functools.partial(
        _validate_ranges, key="graduated_percentage_ranges", percentage=True
    ),
    ChargeModel.DYNAMIC: lambda errors, properties: None,  # no price properties (spec §7.3)
}


def validate_properties(
    charge_model: str,
    properties: dict | None,
    *,
    billable_metric_aggregation: str | None = None,
    billable_metric_recurring: bool = False,
    pay_in_advance: bool = False,
    invoiceable: bool = True,
    regroup_paid_fees: str | None = None,
    prorated: bool = False,
    min_amount_cents: int = 0,
) -> dict[str, list[str]]:
    """Lago's validation errors of a charge, `{field: [code, ...]}`; empty when valid.

    Property fields are named as in the properties (`amount`, `graduated_ranges`,
    `per_unit_amount`, `rate`, ...), compatibility rules (spec §7.2) by the charge field they
    refuse. `wire_error_details` turns the result into Lago's `error_details`. Aggregation rules
    are checked only when `billable_metric_aggregation` is given; `prorated` is valid only on a
    recurring metric, so pass `billable_metric_recurring` with it.
    """
    errors: dict[str, list[str]] = {}
    if charge_model not in ChargeModel.values:
        _add(errors, "charge_model", "value_is_invalid")
        return errors
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        _add(errors, "properties", "invalid_value")
    else:
        _PROPERTY_VALIDATORS[charge_model](errors, properties)
        _validate_group_keys(errors, properties)

    aggregation = billable_metric_aggregation
    if charge_model == ChargeModel.PERCENTAGE and aggregation == AggregationType.LATEST:
        _add(errors, "billable_metric", "invalid_value")
    if (
        charge_model == ChargeModel.DYNAMIC
        and aggregation is not None
        and aggregation != AggregationType.SUM
    ):
        _add(errors, "charge_model", "invalid_aggregation_type_or_charge_model")
    if pay_in_advance and (
        charge_model == ChargeModel.VOLUME
        or (aggregation is not None and aggregation not in PAY_IN_ADVANCE_AGGREGATIONS)
    ):
        _add(errors, "pay_in_advance", "invalid_aggregation_type_or_charge_model")
    if not pay_in_advance and not invoiceable:
        _add(errors, "invoiceable", "must_be_true_unless_pay_in_advance")
    if regroup_paid_fees is not None:
        if regroup_paid_fees != "invoice":
            _add(errors, "regroup_paid_fees", "value_is_invalid")
        elif not (pay_in_advance and not invoiceable):
            _add(
                errors,
                "regroup_paid_fees",
                "only_compatible_with_pay_in_advance_and_non_invoiceable",
            )
    if min_amount_cents < 0:
        _add(errors, "min_amount_cents", "value_is_out_of_range")
    elif pay_in_advance and min_amount_cents > 0:
        _add(errors, "min_amount_cents", "not_compatible_with_pay_in_advance")
    if prorated:
        allowed_models = (
            (ChargeModel.STANDARD,)
            if pay_in_advance
            else (ChargeModel.STANDARD, ChargeModel.GRADUATED, ChargeModel.VOLUME)
        )
        if not (
            billable_metric_recurring
            and aggregation != AggregationType.WEIGHTED_SUM  # already time-weighted
            and charge_model in allowed_models
        ):
            _add(errors, "prorated", "invalid_billable_metric_or_charge_model")
    return errors


def wire_error_details(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """Lago's `error_details` for a charge: property-level codes are reported under `properties`."""
    details: dict[str, list[str]] = {}
    for field_name, codes in errors.items():
        target = field_name if field_name in CHARGE_LEVEL_FIELDS else "properties"
        for code in codes:
            _add(details, target, code)
    return details
