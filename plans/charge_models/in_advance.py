"""Pay-in-advance charges (spec §7.14): the fee of one event, and the units it bills on a
sum/unique count metric."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from plans.charge_models.common import ZERO, ChargeResult, dec, per_unit, precise, wire
from plans.charge_models.dispatch import model_amount
from plans.choices import ChargeModel

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
            details[key] = wire(Decimal(after[key]) - Decimal(before[key]))
    # The event's free units are what it did not pay for.
    details["free_units"] = wire(Decimal(details["units"]) - Decimal(details["paid_units"]))
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
            delta[key] = wire(Decimal(tier[key]) - base)
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


@precise
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
    units, event_units = dec(units), dec(event_units)
    if events_count is None:
        events_count = 1 if per_event_units is None else len(per_event_units)
    before_events = None if per_event_units is None else list(per_event_units)[:-1]
    before_precise = None
    if precise_total_amount_cents is not None:
        before_precise = dec(precise_total_amount_cents) - dec(
            event_precise_total_amount_cents or 0
        )
    common = {
        "per_event_prorated_units": None,
        "full_units": None,
        "currency": currency,
        "prorated": False,
        "premium": premium,
    }
    after = model_amount(
        charge_model,
        properties,
        units=units,
        events_count=events_count,
        per_event_units=per_event_units,
        precise_total_amount_cents=precise_total_amount_cents,
        **common,
    )
    before = model_amount(
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
    shown_units = event_units if fee_units is None else dec(fee_units)
    if charge_model == ChargeModel.PERCENTAGE:
        details = _percentage_delta_details(after.amount_details, before.amount_details)
    elif charge_model == ChargeModel.GRADUATED_PERCENTAGE:
        details = _graduated_percentage_delta_details(after.amount_details, before.amount_details)
    else:
        details = {}
    return ChargeResult(
        amount=amount,
        units=shown_units,
        unit_amount=per_unit(amount, shown_units),
        amount_details=details,
    )


@dataclass(frozen=True)
class InAdvanceUnits:
    """Units billed by one in-advance event on a sum/unique count metric (spec §7.14)."""

    units: Decimal  # what this event bills: the increase of the period maximum
    current_aggregation: Decimal  # running total after the event
    max_aggregation: Decimal  # period maximum after the event


@precise
def in_advance_units(
    event_value: Decimal,
    *,
    current_aggregation: Decimal = ZERO,
    max_aggregation: Decimal = ZERO,
) -> InAdvanceUnits:
    """Bill only what exceeds the period maximum: a decrease bills 0, and so does re-adding up to
    the previous maximum (spec §7.14, V45). Feed the returned state to the next event."""
    current = dec(current_aggregation) + dec(event_value)
    previous_max = dec(max_aggregation)
    new_max = max(previous_max, current)
    return InAdvanceUnits(
        units=new_max - previous_max, current_aggregation=current, max_aggregation=new_max
    )
