"""Percentage charges (spec §7.10): a rate on the paid units, a fixed fee per paid event, free
units or events, and the per-transaction min/max."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from plans.charge_models.common import (
    HUNDRED,
    ZERO,
    ChargeResult,
    dec,
    event_values,
    optional,
    per_unit,
    precise,
    required,
    wire,
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
            rate=required(properties, "rate"),
            fixed_amount=optional(properties, "fixed_amount"),
            free_units_per_events=int(optional(properties, "free_units_per_events")),
            free_units_per_total_aggregation=optional(
                properties, "free_units_per_total_aggregation"
            ),
            min_amount=optional(properties, "per_transaction_min_amount", None),
            max_amount=optional(properties, "per_transaction_max_amount", None),
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


@precise
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
        value = dec(raw_value)
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


@precise
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
    units = dec(units)
    terms = _PercentageTerms.parse(properties)
    values = event_values(per_event_units)
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
        "units": wire(units),
        "free_units": wire(free_units),
        "paid_units": wire(max(units - free_units, ZERO)),
        "free_events": free_events,
        "paid_events": paid_events,
        "rate": wire(terms.rate),
        "per_unit_total_amount": wire(percentage_part),
        "fixed_fee_unit_amount": wire(terms.fixed_amount if paid_events > 0 else ZERO),
        "fixed_fee_total_amount": wire(fixed_part),
        "min_max_adjustment_total_amount": wire(adjustment),
    }
    denominator = units if full_units is None else dec(full_units)
    return ChargeResult(
        amount=amount,
        units=units,
        unit_amount=per_unit(amount, denominator),
        amount_details=details,
    )
