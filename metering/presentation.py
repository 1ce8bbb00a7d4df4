"""Presentation breakdowns (spec §7.13): a charge's `presentation_group_keys` split the units of
each fee by the values of up to two event properties, without changing its price.

Pure helpers: which keys a charge (or charge filter) presents, how breakdowns are ordered, and
how the breakdowns of several fees add up (the usage endpoint's charge, filter and group
levels, Lago's `PresentationBreakdownBuilder`). The units themselves come from the event store,
aggregated per pricing group and presentation values (`metering.usage.charge_usage`).

    keys = presentation_keys(bucket_properties, charge.properties)     # ("region",)
    rows = [PresentationBreakdown({"region": "eu"}, Decimal("1.00269")), ...]
    payload = breakdowns_payload(merge(rows))   # [{"presentation_by": {...}, "units": "1.00269"}]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing.money import decimal_string

ZERO = Decimal(0)


@dataclass(frozen=True)
class PresentationBreakdown:
    """The units of one fee that carry one combination of presentation values."""

    presentation_by: dict[str, str | None]
    units: Decimal


def presentation_keys(*properties: dict | None) -> tuple[str, ...]:
    """The presentation group keys of the first properties declaring some (a charge filter's,
    then its charge's), in declaration order."""
    for props in properties:
        declared = (props or {}).get("presentation_group_keys") or []
        keys = tuple(
            str(entry["value"])
            for entry in declared
            if isinstance(entry, dict) and entry.get("value") not in (None, "")
        )
        if keys:
            return keys
    return ()


def displayed_on_invoice(*properties: dict | None) -> bool:
    """Whether the PDF shows the breakdowns: unless every key says `display_in_invoice: false`
    (the API always returns them)."""
    for props in properties:
        declared = (props or {}).get("presentation_group_keys") or []
        entries = [entry for entry in declared if isinstance(entry, dict)]
        if entries:
            return any(
                (entry.get("options") or {}).get("display_in_invoice", True) is not False
                for entry in entries
            )
    return False


def _order(breakdown: PresentationBreakdown) -> tuple:
    # rows with a missing value go last (Lago), then by values
    values = list(breakdown.presentation_by.values())
    return (any(value is None for value in values), [str(value or "") for value in values])


def ordered(breakdowns: Iterable[PresentationBreakdown]) -> list[PresentationBreakdown]:
    return sorted(breakdowns, key=_order)


def merge(breakdowns: Iterable[PresentationBreakdown]) -> list[PresentationBreakdown]:
    """Breakdowns of several fees added up per combination of values."""
    totals: dict[tuple, PresentationBreakdown] = {}
    for breakdown in breakdowns:
        key = tuple(sorted(breakdown.presentation_by.items(), key=lambda item: item[0]))
        known = totals.get(key)
        units = breakdown.units + (known.units if known is not None else ZERO)
        totals[key] = PresentationBreakdown(dict(breakdown.presentation_by), units)
    return ordered(totals.values())


def breakdowns_payload(breakdowns: Sequence[PresentationBreakdown]) -> list[dict]:
    return [
        {"presentation_by": dict(b.presentation_by), "units": decimal_string(b.units)}
        for b in breakdowns
    ]


def breakdowns_from_payload(rows: Iterable[dict] | None) -> list[PresentationBreakdown]:
    """Breakdowns stored on a fee (its JSON column) back into values."""
    return [
        PresentationBreakdown(dict(row.get("presentation_by") or {}), Decimal(row["units"]))
        for row in rows or ()
        if isinstance(row, dict) and "units" in row
    ]


def label(breakdown: PresentationBreakdown) -> str:
    """ "/v1/payments, eu: 25.0" for the admin pages (a missing value shows as a dash)."""
    values = [str(value) for value in breakdown.presentation_by.values() if value not in (None, "")]
    return f"{', '.join(values) or '—'}: {decimal_string(breakdown.units)}"
