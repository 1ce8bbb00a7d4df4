"""Cached aggregations of pay-in-advance charges (spec §7.14, §29: Lago's CachedAggregation):
the state after each billed event, so that the next event resumes instead of replaying the
period."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Context, Decimal

from django.db.models import Q, QuerySet

from customers.models import Subscription
from metering.models import CachedAggregation
from metering.store import (
    ALL_FILTER_VALUES,
    AggregationQuery,
    get_event_store,
)
from metering.usage.buckets import RECURRING, ZERO, Bucket, declared_filter_values
from metering.usage.replay import EventLike, Replay, event_value, group_of, in_scope
from metering.usage.windows import UsageWindow
from plans.models import AggregationType, Charge, ChargeFilter, ChargeModel

# After each event a pay-in-advance task bills, the state of its charge, filter, pricing group,
# subscription and period is stored: running total, period maximum, events count, dynamic
# amounts (`CachedAggregation`, one row per event). The next event resumes from the latest state
# *before* it (events ordered by timestamp, then id) and replays only the events stored since
# that state: usually none but itself, so the cost no longer grows with the period's events.
#
# - count and sum resume from the totals alone; unique count also needs, for each value met,
#   whether it was active at the state: one store aggregation filtered on that value (a single
#   SQL statement, nothing read into Python).
# - max, latest and weighted sum cannot be paid in advance (spec §7.2): never cached.
#   Percentage with free units or a per-transaction min/max needs every value of the period:
#   it stays on the full replay (its states are still stored).
# - An event processed after later ones (late, or processed out of order by parallel workers,
#   or a rerun) deletes the states after it (they may have been computed without it) and
#   resumes from the state before it, if any; no state before it: the full replay, which
#   seeds the cache. A state of another configuration (filters, metric field) is not resumed.
# - Writes run under a transaction-level advisory lock per subscription and metric, so two
#   workers never interleave a read of the latest state and the write of the next one.
#
# Known limit (Lago's too): an event stored late is only accounted for once its own task runs;
# an event of the same key processed in between resumes from a state that does not know it.

CACHED_KINDS = frozenset({AggregationType.COUNT, AggregationType.SUM, AggregationType.UNIQUE_COUNT})
# percentage terms read the period's values one by one (free units, per-transaction min/max)
_PER_EVENT_TERMS = (
    "free_units_per_events",
    "free_units_per_total_aggregation",
    "per_transaction_min_amount",
    "per_transaction_max_amount",
)
_STATE_PLACES, _STATE_DIGITS = 30, 60  # CachedAggregation's decimal columns
_AMOUNT_PLACES = 15
_WIDE = Context(prec=200)
_ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Step:
    """The running aggregation of the period around one event (the last one replayed)."""

    current_before: Decimal
    highest_before: Decimal
    current: Decimal
    highest: Decimal
    events_count: int  # events of the period, this one included
    precise_total_amount_cents: Decimal
    values: list[Decimal] | None  # the period's values in order: the full replay only

    @classmethod
    def of(cls, replay: Replay) -> Step:
        return cls(
            current_before=replay.current_before,
            highest_before=replay.highest_before,
            current=replay.current,
            highest=replay.highest,
            events_count=len(replay.values),
            precise_total_amount_cents=replay.precise_total_amount_cents,
            values=replay.values,
        )


def resumable(charge: Charge, bucket: Bucket) -> bool:
    """Whether the fee can be priced from totals (no per-event values needed)."""
    if charge.charge_model != ChargeModel.PERCENTAGE:
        return True
    return all(bucket.properties.get(key) in (None, "") for key in _PER_EVENT_TERMS)


def _is_before(timestamp: datetime, event_id: int, event: EventLike) -> bool:
    """Whether the stored event at (timestamp, id) comes before `event` (an estimated event,
    without id, comes after every stored event of its timestamp)."""
    if event.id is None:
        return timestamp <= event.timestamp
    return (timestamp, event_id) < (event.timestamp, event.id)


def _before(event: EventLike) -> Q:
    if event.id is None:
        return Q(event_timestamp__lte=event.timestamp)
    return Q(event_timestamp__lt=event.timestamp) | Q(
        event_timestamp=event.timestamp, event_id__lt=event.id
    )


def _storable(value: Decimal, places: int) -> bool:
    """Whether a decimal column of `places` decimals (60 digits) keeps `value` exactly."""
    if not value.is_finite():
        return False
    quantized = value.quantize(Decimal(1).scaleb(-places), context=_WIDE)
    return quantized == value and quantized.adjusted() < _STATE_DIGITS - places


def _plain(value: Decimal) -> Decimal:
    """A column value without the padding zeros of its 30 decimals."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return Decimal(text)


@dataclass(frozen=True)
class CacheKey:
    """Where the states of one charge filter and pricing group of a period are stored."""

    subscription: Subscription
    charge: Charge
    charge_filter: ChargeFilter | None
    group: dict[str, str | None]
    bucket_key: str
    period_from: datetime
    digest: str

    @classmethod
    def of(
        cls,
        *,
        subscription: Subscription,
        charge: Charge,
        bucket: Bucket,
        group: dict[str, str | None],
        window: UsageWindow,
    ) -> CacheKey:
        metric = charge.billable_metric
        configuration = [
            metric.aggregation_type,
            metric.field_name,
            bool(metric.recurring),
            bucket.scope.filters,
            list(bucket.scope.exclude_filters),
            list(bucket.group_by),
            declared_filter_values(charge),
        ]
        digest = hashlib.blake2b(
            json.dumps(configuration, sort_keys=True, default=str).encode(), digest_size=16
        ).hexdigest()
        filter_id = bucket.charge_filter.pk if bucket.charge_filter else None
        return cls(
            subscription=subscription,
            charge=charge,
            charge_filter=bucket.charge_filter,
            group=group,
            bucket_key=json.dumps([str(filter_id) if filter_id else None, sorted(group.items())]),
            period_from=window.charges_from_datetime,
            digest=digest,
        )

    def rows(self) -> QuerySet[CachedAggregation]:
        return CachedAggregation.objects.filter(
            charge_id=self.charge.pk,
            subscription_id=self.subscription.pk,
            bucket_key=self.bucket_key,
            period_from=self.period_from,
        ).order_by("-event_timestamp", "-event_id")

    def checkpoint(self, event: EventLike, *, invalidate: bool) -> CachedAggregation | None:
        """The latest state before `event`, if of this configuration. `invalidate`: delete the
        states at or after it first (they may have been computed without it)."""
        latest = self.rows().first()
        if latest is None:
            return None
        if not _is_before(latest.event_timestamp, latest.event_id, event):
            if invalidate:
                self.rows().exclude(_before(event)).delete()
            latest = self.rows().filter(_before(event)).first()
        if latest is None or latest.scope_digest != self.digest:
            return None
        return latest

    def store(self, event: EventLike, step: Step) -> None:
        """The state after `event` (kept only when the columns hold it exactly: otherwise the
        next event resumes from an earlier state)."""
        if not (
            _storable(step.current, _STATE_PLACES)
            and _storable(step.highest, _STATE_PLACES)
            and _storable(step.precise_total_amount_cents, _AMOUNT_PLACES)
        ):
            return
        row = CachedAggregation(
            organization_id=self.subscription.organization_id,
            subscription_id=self.subscription.pk,
            charge_id=self.charge.pk,
            charge_filter_id=self.charge_filter.pk if self.charge_filter else None,
            grouped_by=self.group,
            bucket_key=self.bucket_key,
            scope_digest=self.digest,
            period_from=self.period_from,
            event_id=event.id,
            event_transaction_id=event.transaction_id,
            event_timestamp=event.timestamp,
            current_aggregation=step.current,
            max_aggregation=step.highest,
            events_count=step.events_count,
            precise_total_amount_cents=step.precise_total_amount_cents,
        )
        CachedAggregation.objects.bulk_create(
            [row],
            update_conflicts=True,  # same event, another group or period (configuration change)
            unique_fields=["event_transaction_id", "subscription", "charge", "charge_filter"],
            update_fields=[
                "grouped_by",
                "bucket_key",
                "scope_digest",
                "period_from",
                "event_id",
                "event_timestamp",
                "current_aggregation",
                "max_aggregation",
                "events_count",
                "precise_total_amount_cents",
            ],
        )


def _portable(raw: object) -> bool:
    """A unique-count value the store's `properties ->> key` renders as `json_text` does
    (floats and objects may be spelled differently: those events take the full replay)."""
    if isinstance(raw, str):
        return raw != ALL_FILTER_VALUES
    return isinstance(raw, int)  # bool included


@dataclass
class Resume:
    """The period's state at `event`, from a checkpoint and the events stored since it."""

    subscription: Subscription
    charge: Charge
    bucket: Bucket
    group: dict[str, str | None]
    window: UsageWindow
    chain_started_at: datetime
    checkpoint: CachedAggregation

    def until(self, event: EventLike) -> Step | None:
        """None when the events since the checkpoint need the full replay."""
        metric = self.charge.billable_metric
        kind = metric.aggregation_type
        mark = self.checkpoint
        rows = list(
            get_event_store().list_events(
                self.subscription.organization_id,
                external_subscription_id=self.subscription.external_id,
                code=metric.code,
                timestamp_from=mark.event_timestamp,
                timestamp_to=event.timestamp,
            )
        )
        rows.reverse()  # oldest first, (timestamp, id) order
        head: list[object] = []  # stamped like the checkpoint, up to it
        since: list[object] = []
        for row in rows:
            if row.transaction_id == event.transaction_id:
                continue
            if row.timestamp == mark.event_timestamp and row.id <= mark.event_id:
                head.append(row)
            elif _is_before(row.timestamp, row.id, event):
                since.append(row)
        since.append(event)

        current = _plain(mark.current_aggregation)
        highest = _plain(mark.max_aggregation)
        events_count = mark.events_count
        ptac = _plain(mark.precise_total_amount_cents)
        current_before, highest_before = current, highest
        active: dict[str, bool] = {}
        for row in since:
            properties = row.properties or {}
            if not self._counts(properties):
                continue
            value = event_value(row, kind, metric.field_name)
            if value is None:
                continue
            current_before, highest_before = current, highest
            if kind == AggregationType.UNIQUE_COUNT:
                if not _portable(properties.get(metric.field_name)):
                    return None
                was = active[value] if value in active else self._active_at_mark(value, head)
                active[value] = properties.get("operation_type") != "remove"
                current += int(active[value]) - int(was)
            else:
                current += value
            highest = max(highest, current)
            events_count += 1
            ptac += Decimal(getattr(row, "precise_total_amount_cents", ZERO) or ZERO)
        return Step(
            current_before=current_before,
            highest_before=highest_before,
            current=current,
            highest=highest,
            events_count=events_count,
            precise_total_amount_cents=ptac,
            values=None,
        )

    def _counts(self, properties: dict) -> bool:
        declared = declared_filter_values(self.charge)
        return (
            in_scope(properties, self.bucket.scope, declared)
            and group_of(properties, self.bucket.group_by) == self.group
        )

    def _active_at_mark(self, value: str, head: Sequence[object]) -> bool:
        """Whether a unique value was active at the checkpoint: its last operation among the
        events stamped like the checkpoint (up to it), else before that instant."""
        metric = self.charge.billable_metric
        active = None
        for row in head:
            properties = row.properties or {}
            if (
                self._counts(properties)
                and event_value(row, metric.aggregation_type, metric.field_name) == value
            ):
                active = properties.get("operation_type") != "remove"
        if active is not None:
            return active
        return self._active_before(value, self.checkpoint.event_timestamp)

    def _active_before(self, value: str, instant: datetime) -> bool:
        """One store aggregation: the unique count of `value` in the key's scope strictly
        before `instant` (recurring metrics: since the subscription's start)."""
        metric = self.charge.billable_metric
        recurring = bool(metric.recurring and metric.aggregation_type in RECURRING)
        upper = instant - _ONE_MICROSECOND
        if upper < self.chain_started_at or (
            not recurring and upper < self.window.charges_from_datetime
        ):
            return False
        filters = dict(self.bucket.scope.filters or {})
        filters[metric.field_name] = [value]
        query = AggregationQuery(
            organization_id=self.subscription.organization_id,
            external_subscription_id=self.subscription.external_id,
            code=metric.code,
            aggregation_type=AggregationType.UNIQUE_COUNT,
            field_name=metric.field_name,
            from_datetime=min(self.window.charges_from_datetime, upper),
            to_datetime=upper,
            recurring=recurring,
            subscription_started_at=self.chain_started_at,
            filters=filters,
            declared_filter_values=declared_filter_values(self.charge),
            exclude_filters=self.bucket.scope.exclude_filters,
            group_by=self.bucket.group_by,
            timezone=self.window.timezone,
        )
        return any(
            result.group == self.group and result.units > 0
            for result in get_event_store().aggregate(query)
        )
