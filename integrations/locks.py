"""Row locks of the integrations app (STYLE §7): own table only.

Locks of webhook delivery (STYLE §7): delivery rows being attempted, and the per-endpoint
sending slots.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from uuid import UUID

from django.db import connection, transaction

from integrations.models import PaymentProvider, WebhookDelivery


def lock_payment_provider(pk: uuid.UUID) -> PaymentProvider:
    """The connection row: its removal and its secrets change under it."""
    return PaymentProvider.objects.select_for_update(of=("self",)).get(pk=pk)


_SLOT_NAMESPACE = 0x5748  # first key of the two-key advisory locks of sending slots


def lock_due_deliveries(*, endpoint_id: UUID, now: datetime, limit: int) -> list[WebhookDelivery]:
    """Up to `limit` due deliveries of the endpoint, oldest due first (then in the order their
    events were recorded), skipping rows another sender holds. They stay locked until the
    caller's transaction ends: a sender killed mid-batch rolls back, and the rows are due
    again for the next one."""
    return list(
        WebhookDelivery.objects.due(now)
        .filter(endpoint_id=endpoint_id)
        .select_related("body")
        .order_by("next_attempt_at", "outbox_event_id", "id")
        .select_for_update(skip_locked=True, of=("self",))[:limit]
    )


def free_due_delivery_exists(*, endpoint_id: UUID, now: datetime) -> bool:
    """Whether a due delivery of the endpoint is held by no sender (looked at under a lock
    skipping held rows, released at once): rows another sender holds are its own to attempt,
    and a sender looking for more work must not spin on them."""
    with transaction.atomic():
        return bool(
            WebhookDelivery.objects.due(now)
            .filter(endpoint_id=endpoint_id)
            .select_for_update(skip_locked=True, of=("self",))
            .values_list("pk", flat=True)[:1]
        )


def _slot_key(endpoint_id: UUID, slot: int) -> int:
    return zlib.crc32(f"{endpoint_id}:{slot}".encode()) - 2**31  # a signed int4


@contextmanager
def endpoint_send_slot(endpoint_id: UUID, *, slots: int) -> Iterator[int | None]:
    """One of the endpoint's `slots` sending slots, held by this database session until the
    block ends (or the process dies); yields its number (0 first), None when all are taken.
    Without advisory locks (SQLite, the one-process trial) every caller gets slot 0."""
    if connection.vendor != "postgresql":
        yield 0
        return
    held = None
    with connection.cursor() as cursor:
        for slot in range(max(slots, 1)):
            cursor.execute(
                "SELECT pg_try_advisory_lock(%s, %s)",
                [_SLOT_NAMESPACE, _slot_key(endpoint_id, slot)],
            )
            if cursor.fetchone()[0]:
                held = slot
                break
    try:
        yield held
    finally:
        if held is not None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_unlock(%s, %s)",
                    [_SLOT_NAMESPACE, _slot_key(endpoint_id, held)],
                )
