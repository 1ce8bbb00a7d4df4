"""Locks of the metering app, held until the caller's transaction ends (STYLE §7)."""

from __future__ import annotations

import hashlib
from collections.abc import Collection

from django.db import connection

from customers.models import Subscription
from metering.models import LifetimeUsage, UsageAlert


def lock_in_advance_key(subscription: Subscription, code: str) -> None:
    """Serialize the in-advance billing of one subscription's events of one metric until the
    transaction ends (PostgreSQL; SQLite serializes writers anyway).

    An advisory lock, not a row lock: the cached aggregation it guards may not exist yet."""
    if connection.vendor != "postgresql":
        return
    name = f"in_advance:{subscription.organization_id}:{subscription.external_id}:{code}"
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)]
        )


def lock_lifetime_usage(pk: object) -> LifetimeUsage:
    """The lifetime usage row."""
    return LifetimeUsage.objects.select_for_update(of=("self",)).get(pk=pk)


def lock_lifetime_usages(pks: Collection[object]) -> dict[object, LifetimeUsage]:
    """Many lifetime usage rows in one statement, in key order (two passes locking overlapping
    batches never deadlock), by primary key."""
    rows = LifetimeUsage.objects.filter(pk__in=list(pks)).order_by("pk").select_for_update()
    return {row.pk: row for row in rows}


def lock_usage_alert(pk: object) -> UsageAlert | None:
    """The usage alert row (None once deleted), its billable metric read along."""
    return (
        UsageAlert.objects.select_for_update(of=("self",))
        .select_related("billable_metric")
        .filter(pk=pk)
        .first()
    )


def lock_usage_alerts(pks: Collection[object]) -> dict[object, UsageAlert]:
    """Many usage alert rows in one statement, in key order (two batches locking overlapping
    alerts never deadlock), their billable metrics read along; by primary key (the deleted
    ones missing)."""
    rows = (
        UsageAlert.objects.filter(pk__in=list(pks))
        .select_related("billable_metric")
        .order_by("pk")
        .select_for_update(of=("self",))
    )
    return {row.pk: row for row in rows}
