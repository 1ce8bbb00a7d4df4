"""The full replay of a bucket's events (spec §7.14): events read from the store in (timestamp,
id) order and folded into the running total a pay-in-advance charge bills from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from customers.models import Subscription
from metering.services.ingestion import (
    number_of,
)
from metering.store import (
    ALL_FILTER_VALUES,
    FilterScope,
    get_event_store,
)
from metering.store.aggregation import json_text
from metering.usage.buckets import (
    RECURRING,
    ZERO,
    Bucket,
    charge_buckets,
    declared_filter_values,
)
from metering.usage.windows import UsageWindow, selection_end
from plans.models import AggregationType, Charge


@dataclass(frozen=True)
class EventLike:
    """An event as the in-advance pricing reads it: stored, or only estimated (`id` None)."""

    transaction_id: str
    external_subscription_id: str
    code: str
    timestamp: datetime
    properties: dict
    precise_total_amount_cents: Decimal = ZERO
    value: Decimal | None = None
    id: int | None = None  # None: after every stored event of its timestamp (an estimate)


def _expand(values: dict, declared: dict[str, list[str]]) -> dict[str, set[str]]:
    expanded = {}
    for key, accepted in values.items():
        accepted = [str(v) for v in accepted]
        expanded[key] = (
            set(declared.get(key, [])) if ALL_FILTER_VALUES in accepted else set(accepted)
        )
    return expanded


def _matches(properties: dict, values: dict[str, set[str]]) -> bool:
    return all(json_text(properties.get(key)) in accepted for key, accepted in values.items())


def in_scope(properties: dict, scope: FilterScope, declared: dict[str, list[str]]) -> bool:
    """The store's filter semantics (docs/event-store.md "Filters"), for a handful of events."""
    if scope.filters is not None and not _matches(properties, _expand(scope.filters, declared)):
        return False
    return not any(
        _matches(properties, _expand(excluded, declared)) for excluded in scope.exclude_filters
    )


def group_of(properties: dict, group_by: Sequence[str]) -> dict[str, str | None]:
    # spec §7.13 (store semantics): a missing, null or empty property is the null group
    return {key: (json_text(properties.get(key)) or None) for key in group_by}


def event_bucket(charge: Charge, event: EventLike) -> Bucket:
    declared = declared_filter_values(charge)
    buckets = charge_buckets(charge)
    for bucket in buckets:
        if in_scope(event.properties, bucket.scope, declared):
            return bucket
    return buckets[-1]


@dataclass(frozen=True)
class Replay:
    """The period replayed up to an event: values in order, running total, maximum."""

    values: list[Decimal]  # the period's values (count: 1 each), this event last if included
    precise_total_amount_cents: Decimal
    carried: Decimal  # running total at the period start (recurring metrics)
    current_before: Decimal  # running total just before the event
    highest_before: Decimal  # period maximum just before the event
    current: Decimal  # after the event (or at the end of the replay)
    highest: Decimal
    # (timestamp, increase) of each event of the period raising its maximum: what pay-in-advance
    # fees billed, in order
    raises: list[tuple[datetime, Decimal]] = field(default_factory=list)


def event_value(event: object, kind: str, field_name: str | None) -> Decimal | str | None:
    """What the store aggregates from an event (None: not aggregated)."""
    if kind == AggregationType.COUNT:
        return Decimal(1)
    properties = event.properties or {}
    if kind == AggregationType.UNIQUE_COUNT:
        return json_text(properties.get(field_name))
    stored = getattr(event, "value", None)
    return stored if stored is not None else number_of(properties.get(field_name))


def replay_events(
    *,
    subscription: Subscription,
    charge: Charge,
    bucket: Bucket,
    window: UsageWindow,
    group: dict[str, str | None],
    until: EventLike | None,
    chain_started_at: datetime,
) -> Replay:
    """Replay the events of one bucket and group, in (timestamp, id) order, up to `until`
    (included; None: the whole window). Reads the events through the store."""
    metric = charge.billable_metric
    kind = metric.aggregation_type
    recurring = bool(metric.recurring and kind in RECURRING)
    period_from = max(window.charges_from_datetime, chain_started_at)
    lower = chain_started_at if recurring else period_from
    upper = until.timestamp if until is not None else selection_end(window, subscription)
    declared = declared_filter_values(charge)
    stored = get_event_store().list_events(
        subscription.organization_id,
        external_subscription_id=subscription.external_id,
        code=metric.code,
        timestamp_from=lower,
        timestamp_to=upper,
    )
    rows = list(stored)
    rows.reverse()  # newest first -> oldest first, (timestamp, id) order
    if until is not None:
        rows = [
            row
            for row in rows
            if row.transaction_id != until.transaction_id
            and (until.id is None or row.timestamp < until.timestamp or row.id < until.id)
        ]
        rows.append(until)

    values: list[Decimal] = []
    ptac = ZERO
    carried = current = highest = ZERO
    current_before = highest_before = ZERO
    active: dict[str, bool] = {}
    raises: list[tuple[datetime, Decimal]] = []
    in_period = False
    for row in rows:
        properties = row.properties or {}
        if not in_scope(properties, bucket.scope, declared):
            continue
        if group_of(properties, bucket.group_by) != group:
            continue
        value = event_value(row, kind, metric.field_name)
        if value is None:
            continue
        if not in_period and row.timestamp >= period_from:
            in_period = True
            carried = highest = current
        current_before, highest_before = current, highest
        if kind == AggregationType.UNIQUE_COUNT:
            active[value] = properties.get("operation_type") != "remove"
            current = Decimal(sum(active.values()))
        else:
            current += value
        if in_period:
            if current > highest:
                raises.append((row.timestamp, current - highest))
                highest = current
            values.append(Decimal(1) if kind == AggregationType.UNIQUE_COUNT else value)
            ptac += Decimal(getattr(row, "precise_total_amount_cents", ZERO) or ZERO)
    if not in_period:
        carried = highest = current
    return Replay(
        values=values,
        precise_total_amount_cents=ptac,
        carried=carried,
        current_before=current_before,
        highest_before=highest_before,
        current=current,
        highest=highest,
        raises=raises,
    )
