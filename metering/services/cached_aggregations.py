"""Pruning of the pay-in-advance cached aggregations (`CachedAggregation`, spec §7.14).

A state is stored after every billed in-advance event; only the latest state of a charge, filter,
pricing group, subscription and period is read by the next event in order. Older states serve
only events that arrive out of order, so after `CACHED_AGGREGATION_RETENTION` they are deleted,
the latest of each key always kept. The table is a derived cache: an event whose state was
pruned replays its period from the event store instead, with the same fee.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q

from metering.models import CachedAggregation

CACHED_AGGREGATION_RETENTION = timedelta(days=35)


def cached_aggregations_prune(*, now: datetime) -> int:
    """Deletes the states older than the retention that a later state of their key supersedes;
    returns how many were deleted."""
    later = CachedAggregation.objects.filter(
        charge_id=OuterRef("charge_id"),
        subscription_id=OuterRef("subscription_id"),
        bucket_key=OuterRef("bucket_key"),
        period_from=OuterRef("period_from"),
    ).filter(
        Q(event_timestamp__gt=OuterRef("event_timestamp"))
        | Q(event_timestamp=OuterRef("event_timestamp"), event_id__gt=OuterRef("event_id"))
    )
    stale = CachedAggregation.objects.filter(
        created_at__lt=now - CACHED_AGGREGATION_RETENTION
    ).filter(Exists(later))
    deleted, _ = stale.delete()
    return deleted
