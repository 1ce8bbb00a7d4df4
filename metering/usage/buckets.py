"""Charge buckets: a charge's filters (and its default bucket) with the properties that price
each, and the small helpers every part of the usage engine shares (spec §7.12, §7.13)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from metering.presentation import (
    presentation_keys,
)
from metering.store import (
    FilterScope,
    charge_filter_scopes,
)
from plans.models import AggregationType, Charge, ChargeFilter, ChargeModel

ZERO = Decimal(0)


HUNDRED = Decimal(100)


PRORATABLE = frozenset({AggregationType.SUM, AggregationType.UNIQUE_COUNT})


RECURRING = frozenset(
    {AggregationType.SUM, AggregationType.UNIQUE_COUNT, AggregationType.WEIGHTED_SUM}
)
# spec §5.2: estimate_fees needs a number for these (`value_is_not_valid_number`)


NUMBER_REQUIRED = frozenset({AggregationType.SUM, AggregationType.MAX, AggregationType.LATEST})
# estimates refuse what the event store cannot keep as a number (numeric(40, 15)): 422, not 500


ESTIMATE_UNITS_LIMIT = Decimal(10) ** 25
# Keys of the properties that price each model (Lago's FilterPropertiesService); a bucket without
# them has no price: the default bucket of a charge priced only by its filters (spec §7.12).


_PRICE_KEYS = {
    ChargeModel.STANDARD: "amount",
    ChargeModel.PACKAGE: "amount",
    ChargeModel.GRADUATED: "graduated_ranges",
    ChargeModel.GRADUATED_PERCENTAGE: "graduated_percentage_ranges",
    ChargeModel.VOLUME: "volume_ranges",
    ChargeModel.PERCENTAGE: "rate",
}


@dataclass(frozen=True)
class Bucket:
    charge_filter: ChargeFilter | None
    scope: FilterScope
    properties: dict
    group_by: tuple[str, ...]
    presentation_by: tuple[str, ...] = ()  # presentation group keys (§7.13)


def pricing_group_keys(properties: dict) -> tuple[str, ...]:
    keys = properties.get("pricing_group_keys")
    if keys is None:
        keys = properties.get("grouped_by")
    return tuple(str(key) for key in keys or ())


def live_filters(charge: Charge) -> list[ChargeFilter]:
    prefetched = getattr(charge, "live_filters", None)
    if prefetched is not None:
        return prefetched
    return list(charge.filters.alive().order_by("created_at", "id"))


def declared_filter_values(charge: Charge) -> dict[str, list[str]]:
    metric = charge.billable_metric
    filters = getattr(metric, "live_filters", None)
    if filters is None:
        filters = list(metric.filters.alive())
    return {f.key: [str(value) for value in f.values] for f in filters}


def charge_buckets(charge: Charge) -> list[Bucket]:
    """Each charge filter, oldest first, then the default bucket (spec §7.12)."""
    filters = live_filters(charge)
    declared = declared_filter_values(charge)
    scopes = charge_filter_scopes([f.values for f in filters], declared)
    charge_keys = pricing_group_keys(charge.properties or {})
    buckets = []
    for charge_filter, scope in zip([*filters, None], scopes, strict=True):
        properties = charge.properties if charge_filter is None else charge_filter.properties
        properties = properties or {}
        buckets.append(
            Bucket(
                charge_filter=charge_filter,
                scope=scope,
                properties=properties,
                group_by=pricing_group_keys(properties) or charge_keys,
                presentation_by=presentation_keys(properties, charge.properties),
            )
        )
    return buckets


def is_priced(charge_model: str, properties: dict) -> bool:
    key = _PRICE_KEYS.get(charge_model)
    return key is None or properties.get(key) not in (None, "", [])


def is_prorated(charge: Charge) -> bool:
    metric = charge.billable_metric
    return bool(charge.prorated and metric.recurring and metric.aggregation_type in PRORATABLE)


def display_name(charge: Charge, charge_filter: ChargeFilter | None) -> str:
    if charge_filter is not None and charge_filter.invoice_display_name:
        return charge_filter.invoice_display_name
    return charge.invoice_display_name or charge.billable_metric.name


def group_key(grouped_by: dict[str, str | None]) -> tuple:
    return tuple(sorted(grouped_by.items(), key=lambda item: item[0]))
