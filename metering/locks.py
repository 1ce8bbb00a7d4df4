"""Locks of the metering app, held until the caller's transaction ends (STYLE §7)."""

from __future__ import annotations

import hashlib

from django.db import connection

from customers.models import Subscription


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
