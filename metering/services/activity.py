"""Flags of the usage refresh loop: which subscriptions received usage since the last pass
(`metering.services.refresh`). Kept apart from the pass so that ingestion imports no usage
engine."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from django.db import connection, transaction

from billing.db import prepared_cursor
from metering.models import SubscriptionActivity

BATCH_SIZE = 200
_TABLE = SubscriptionActivity._meta.db_table
_FLAG_SQL = f"""
INSERT INTO {_TABLE} (subscription_id, organization_id, flagged_at)
SELECT unnest(%s::uuid[]), %s, %s
ON CONFLICT (subscription_id) DO NOTHING
"""
_CLAIM_SQL = f"""
DELETE FROM {_TABLE} WHERE subscription_id IN (
    SELECT subscription_id FROM {_TABLE} WHERE flagged_at <= %s
    ORDER BY flagged_at, subscription_id LIMIT %s FOR UPDATE SKIP LOCKED
) RETURNING subscription_id
"""


def flag_subscriptions(
    *, organization_id: UUID, subscription_ids: Iterable[UUID], now: datetime
) -> None:
    """Flags subscriptions that received events for the next pass: one statement, no row lock
    held beyond it (ingestion's hot path)."""
    ids = sorted(set(subscription_ids))  # one order for every writer
    if not ids:
        return
    if connection.vendor == "postgresql":
        with prepared_cursor() as cursor:
            cursor.execute(_FLAG_SQL, [ids, organization_id, now])
        return
    SubscriptionActivity.objects.bulk_create(
        [
            SubscriptionActivity(subscription_id=i, organization_id=organization_id, flagged_at=now)
            for i in ids
        ],
        ignore_conflicts=True,
    )


def claim_flagged(*, now: datetime, limit: int = BATCH_SIZE) -> list[UUID]:
    """Takes up to `limit` subscriptions flagged at or before `now` off the flags, oldest
    first; a row another pass is claiming is skipped."""
    if connection.vendor == "postgresql":
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, [now, limit])
            return [row[0] for row in cursor.fetchall()]
    with transaction.atomic():
        ids = list(
            SubscriptionActivity.objects.filter(flagged_at__lte=now)
            .order_by("flagged_at", "subscription_id")
            .values_list("subscription_id", flat=True)[:limit]
        )
        SubscriptionActivity.objects.filter(subscription_id__in=ids).delete()
    return ids
