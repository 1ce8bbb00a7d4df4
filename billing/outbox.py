"""The one writer of outbox rows (DESIGN: outbox).

A service records a side effect for the apps to its right by calling `emit` (or `emit_many`)
inside its own transaction: a rollback records nothing, a crash loses nothing. No other code
creates `OutboxEvent` rows (`tests/billing/test_architecture.py` checks it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TypeVar
from uuid import UUID

from django.db import transaction
from django.db.models import Model

from billing.activity import (
    is_activity,
    record_activities,
    record_activity,
    rendered,
    wire_texts,
)
from billing.actors import Actor
from billing.models import OutboxEvent
from billing.signals import hook

M = TypeVar("M", bound=Model)

ACTOR_NAME_MAX = OutboxEvent._meta.get_field("actor_name").max_length


@hook
def on_events_recorded() -> None:
    """Outbox rows were committed. Receivers start their consumer (the webhook drain) soon;
    it reads the rows themselves, so a lost notification delays them, never loses them. Fired
    once per transaction, however many rows it recorded."""


def _fire_recorded() -> None:
    on_events_recorded.fire_after_commit()  # runs once committed: no transaction open any more


def _announce() -> None:
    """Schedules `on_events_recorded` for the commit of the current transaction, unless it is
    already scheduled. A scheduled call survives only if no savepoint active at its scheduling
    was rolled back; those still active enclose this row too, so its rollback would undo both."""
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(
        callback is _fire_recorded for _savepoints, callback, _robust in connection.run_on_commit
    ):
        return
    transaction.on_commit(_fire_recorded)


def object_type_of(obj: Model) -> str:
    """Lago's object name of a model: `WalletTransaction` -> `wallet_transaction`."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(obj).__name__).lower()


def _row(
    *,
    event_type: str,
    actor: Actor,
    payload: dict,
    obj: Model | None,
    organization_id: UUID | None,
    object_type: str | None,
    object_id: str | None,
) -> OutboxEvent:
    if obj is not None:
        organization_id = organization_id or obj.organization_id  # type: ignore[attr-defined]
        object_type = object_type or object_type_of(obj)
        object_id = object_id or str(obj.pk)
    if organization_id is None or object_type is None or object_id is None:
        raise TypeError("emit needs obj, or organization_id, object_type and object_id")
    return OutboxEvent(
        organization_id=organization_id,
        event_type=event_type,
        object_type=object_type,
        object_id=object_id,
        payload=payload,
        actor_type=actor.kind,
        actor_id=actor.id,
        actor_name=actor.display[:ACTOR_NAME_MAX],
    )


def emit(
    *,
    event_type: str,
    actor: Actor,
    payload: dict,
    obj: Model | None = None,
    organization_id: UUID | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
    changes: dict[str, list] | None = None,
) -> OutboxEvent:
    """Records one event for the apps to the right, in the caller's transaction. The
    organization, object type and id come from `obj` unless given; `changes` adds to the
    activity's changed fields what the row's columns do not show (`billing.activity`)."""
    row = _row(
        event_type=event_type,
        actor=actor,
        payload=payload,
        obj=obj,
        organization_id=organization_id,
        object_type=object_type,
        object_id=object_id,
    )
    activity = is_activity(event_type)
    if activity and obj is not None:
        # rendered once: for the activity log now, and kept for the webhook's body
        row.rendered = wire_texts([obj], row.object_type)[0]
    row.save(force_insert=True)
    if activity:
        _log_activity(row, obj, actor, changes)
    _announce()
    return row


def _log_activity(
    row: OutboxEvent, obj: Model | None, actor: Actor, changes: dict[str, list] | None
) -> None:
    # Every service records its change here with its actor: the activity log follows from it.
    if obj is not None:
        record_activity(
            activity_type=row.event_type,
            actor=actor,
            obj=obj,
            resource_type=row.object_type,
            resource_id=row.object_id,
            activity_object=rendered([obj], row.object_type, texts=[row.rendered])[0],
            extra_changes=changes,
        )
    else:
        record_activity(
            activity_type=row.event_type,
            actor=actor,
            organization_id=row.organization_id,
            resource_type=row.object_type,
            resource_id=row.object_id,
            activity_object=row.payload,
        )


def emit_many(
    *,
    event_type: str,
    actor: Actor,
    objs: Iterable[M],
    payload: Callable[[M], dict],
    object_type: str | None = None,
) -> list[OutboxEvent]:
    """Records the same event for many objects in one insert; `payload(obj)` builds each.
    `object_type`: Lago's object name when it is not the model's (as `emit`)."""
    objs_list = list(objs)
    rows = [
        _row(
            event_type=event_type,
            actor=actor,
            payload=payload(obj),
            obj=obj,
            organization_id=None,
            object_type=object_type,
            object_id=None,
        )
        for obj in objs_list
    ]
    activity = bool(rows) and is_activity(event_type)
    if activity:
        texts = wire_texts(objs_list, rows[0].object_type)
        for row, text in zip(rows, texts, strict=True):
            row.rendered = text
    created = OutboxEvent.objects.bulk_create(rows)
    if activity:
        record_activities(
            activity_type=event_type,
            actor=actor,
            objs=objs_list,
            resource_type=created[0].object_type,
            texts=texts,
        )
    if created:
        _announce()
    return created
