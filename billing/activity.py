"""The activity log: one row per create, update or delete of a business object, with its actor.

`record_activity` is its one writer. It is reached from the two places every change already
passes through: `billing.outbox.emit` (every service records its outbox event with the actor,
so the activity log needs no call of its own there) and the admin's `log_addition` /
`log_change` / `log_deletions` (`billing.admin_base`), which catches dashboard edits that
record no outbox event. Services whose change has no webhook call it directly.

Within one request (API call or admin page), the same activity of the same object is recorded
once: a later record merges into the first (the admin logs a deletion before the service that
performs it records it too; a service may save an object twice).

The object after the change is rendered as the API renders it (Lago's activity object: its
API serializer's output), through the wire object its app registers (`billing.wire_objects`); a
type without one, or a row gone (a hard deletion), keeps its columns. Field changes are by column
and come from the values the row was loaded with (`TimeStampedModel.from_db`), so a service that
locks and re-reads the row before changing it yields the true "before".
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import FileField, Model
from django.utils import timezone
from rest_framework.utils.encoders import JSONEncoder as WireJSONEncoder

from billing.actors import Actor
from billing.logs import request_id_var
from billing.models import ActivityLog, ActivitySource, ActorType, Organization
from billing.wire_objects import WireObject, wire_object

REDACTED = "[FILTERED]"

# Keys whose values are secrets wherever they appear (API keys, passwords, provider secret
# keys, webhook secrets, tokens); matched on the key, case-insensitively.
_SECRET_KEY = re.compile(
    r"(secret|password|passwd|api_?key|token|key_hash|private_key|authorization|signature)",
    re.IGNORECASE,
)
# keys that match the pattern but only name or point to a secret
_NOT_SECRET = frozenset({"api_key_id", "prefix", "webhook_secret_set"})

# Outbox events that change no object (notifications, failures, documents rendered, alerts):
# they stay webhooks and are not activities.
_NOT_ACTIVITIES = frozenset(
    {
        "fee.created",  # recorded in bulk with its invoice, which is the logged object
        "alert.triggered",
        "events.errors",
        "customer.checkout_url_generated",
        "customer.payment_provider_error",
        "dunning_campaign.finished",
        "payment.requires_action",
        "wallet.depleted_ongoing_balance",
    }
)
_NOT_ACTIVITY_SUFFIXES = (".generated", "_failure", "_error")

_IGNORED_FIELDS = frozenset({"updated_at"})
# set on every creation and kept in the object itself: no news in the changes
_IMPLIED_ON_CREATION = frozenset({"lago_id", "id", "organization_id", "created_at"})

_SOURCES = {
    ActorType.API_KEY: ActivitySource.API,
    ActorType.USER: ActivitySource.FRONT,
    ActorType.SYSTEM: ActivitySource.SYSTEM,
}

# models whose rows are the logs themselves or plumbing, never business objects
_UNLOGGED_MODELS = frozenset(
    {
        "billing.activitylog",
        "billing.apirequestlog",
        "billing.outboxevent",
        "billing.idempotencyrecord",
    }
)


def is_activity(event_type: str) -> bool:
    """Whether an outbox event type is also an activity (a change of the object)."""
    return event_type not in _NOT_ACTIVITIES and not event_type.endswith(_NOT_ACTIVITY_SUFFIXES)


def is_logged_model(model: type[Model]) -> bool:
    """Whether changes of this model's rows belong in the activity log."""
    return model._meta.label_lower not in _UNLOGGED_MODELS


def redact(value: Any) -> Any:
    """A JSON value with every secret-named key's value replaced by `[FILTERED]`."""
    if isinstance(value, dict):
        return {
            key: (
                REDACTED
                if isinstance(key, str)
                and key.lower() not in _NOT_SECRET
                and _SECRET_KEY.search(key)
                and value[key] not in (None, "")
                else redact(item)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _field_value(obj: Model, field: Any, value: Any) -> Any:
    if isinstance(field, FileField):
        return str(value or "")
    return _json(value)


def snapshot(obj: Model) -> dict:
    """The row's fields (by column name) as JSON, secrets redacted: the object after a change."""
    deferred = obj.get_deferred_fields()
    data: dict[str, Any] = {"lago_id": str(obj.pk)}
    for field in obj._meta.concrete_fields:
        if field.attname in deferred or field.attname in _IGNORED_FIELDS:
            continue
        data[field.attname] = _field_value(obj, field, getattr(obj, field.attname))
    return redact(data)


# objects the API renders that no webhook sends (coupons, alerts, payment methods): registered by
# their app for the activity log only, so webhook payloads stay as they are
_ACTIVITY_OBJECTS: dict[str, WireObject] = {}


def register_activity_object(
    object_type: str,
    *,
    load: Callable[[Sequence[str]], Iterable[Model]],
    render: Callable[[Sequence[Model]], list[dict]],
) -> None:
    """Declares how the activity log renders objects of `object_type` that have no wire object
    (called from the owning app's `ready()`, like `register_wire_object`)."""
    _ACTIVITY_OBJECTS[object_type] = WireObject(object_type=object_type, load=load, render=render)


def wire_texts(objs: list[Model], resource_type: str) -> list[str | None]:
    """Each object as its wire object renders it (what a webhook of it carries), as compact JSON
    text with the serializer's key order, in one batch; None where the type has no wire object,
    renders for the activity log only (`register_activity_object`), or the row is gone."""
    if resource_type in _ACTIVITY_OBJECTS or not objs:
        return [None] * len(objs)
    wire = wire_object(resource_type)
    if wire is None:
        return [None] * len(objs)
    return _texts(wire, objs)


def _texts(wire: WireObject, objs: list[Model]) -> list[str | None]:
    rows = list(wire.load([str(obj.pk) for obj in objs]))
    by_pk = {
        str(row.pk): json.dumps(
            item, cls=WireJSONEncoder, separators=(",", ":"), ensure_ascii=False
        )
        for row, item in zip(rows, wire.render(rows), strict=True)
    }
    return [by_pk.get(str(obj.pk)) for obj in objs]


def rendered(
    objs: list[Model], resource_type: str, *, texts: list[str | None] | None = None
) -> list[dict]:
    """Each object as the API renders it (secrets redacted), in one batch; its columns where its
    type has no registered rendering or the row is gone. `texts`: the wire renderings already
    made (`wire_texts`), reused rather than rendered again."""
    if texts is None or resource_type in _ACTIVITY_OBJECTS:
        wire = _ACTIVITY_OBJECTS.get(resource_type) or wire_object(resource_type)
        texts = _texts(wire, objs) if wire is not None and objs else [None] * len(objs)
    return [
        redact(json.loads(text)) if text is not None else snapshot(obj)
        for obj, text in zip(objs, texts, strict=True)
    ]


def changes_of(obj: Model, activity_type: str, after: dict) -> dict[str, list]:
    """`{field: [before, after]}`: every set field on a creation; on an update, the fields that
    differ from the values the row was loaded with (none known when it was not loaded)."""
    if activity_type.endswith(".created"):
        return {
            key: [None, value]
            for key, value in after.items()
            if value not in (None, "", [], {}) and key not in _IMPLIED_ON_CREATION
        }
    loaded = getattr(obj, "_loaded_values", None)
    if not loaded:
        return {}
    fields = {field.attname: field for field in obj._meta.concrete_fields}
    # compared as Python values: Decimal("10.00") == Decimal("10") is no change
    changed = [
        name
        for name, value in loaded.items()
        if name in fields
        and name not in _IGNORED_FIELDS
        and name in after
        and value != getattr(obj, name)
    ]
    before = redact({name: _field_value(obj, fields[name], loaded[name]) for name in changed})
    return {name: [before[name], after[name]] for name in changed}


def _related(obj: Model, relation: str) -> Model | None:
    if not any(f.name == relation for f in obj._meta.concrete_fields):
        return None
    return getattr(obj, relation, None)


def external_ids(obj: Model, resource_type: str) -> tuple[str | None, str | None]:
    """The customer's and the subscription's external ids of an object, where it has them
    (directly, or through its subscription, wallet or invoice)."""
    if resource_type == "customer":
        return getattr(obj, "external_id", None), None
    subscription = obj if resource_type == "subscription" else _related(obj, "subscription")
    customer = _related(obj, "customer")
    for parent in ("subscription", "wallet", "invoice"):
        if customer is not None:
            break
        related = _related(obj, parent)
        customer = _related(related, "customer") if related is not None else None
    subscription_id = getattr(subscription, "external_id", None)
    if subscription_id is None:  # a usage alert names its subscription by external id only
        subscription_id = getattr(obj, "external_subscription_id", None)
    return getattr(customer, "external_id", None), subscription_id


def _actor_fields(actor: Actor) -> dict:
    fields: dict[str, Any] = {
        "activity_source": _SOURCES[actor.kind],
        "actor_name": actor.display[:255],
    }
    if actor.kind == ActorType.API_KEY:
        fields["api_key_id"] = actor.id
    elif actor.kind == ActorType.USER:
        user = get_user_model().objects.filter(pk=actor.id).first()
        fields["user"] = user
        fields["user_email"] = (user.email or user.get_username()) if user else actor.display
    return fields


def _merge(entry: ActivityLog, activity_object: dict, changes: dict) -> ActivityLog:
    merged = dict(entry.activity_object_changes)
    for name, (before, after) in changes.items():
        first = merged[name][0] if name in merged else before
        merged[name] = [first, after]
    entry.activity_object = activity_object
    entry.activity_object_changes = {k: v for k, v in merged.items() if v[0] != v[1]}
    entry.save(update_fields=["activity_object", "activity_object_changes"])
    return entry


def record_activity(
    *,
    activity_type: str,
    actor: Actor,
    obj: Model | None = None,
    organization_id: Any = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    activity_object: dict | None = None,
    extra_changes: dict[str, list] | None = None,
) -> ActivityLog:
    """Writes one activity of `obj` (or of the named resource) by `actor`, in the caller's
    transaction; merged into the same activity of the same object already written by this
    request. `extra_changes` adds `{name: [before, after]}` the row's columns do not show (its
    metadata rows, its thresholds)."""
    changes: dict = {}
    customer_id = subscription_id = None
    if obj is not None:
        resource_type = resource_type or activity_type.split(".", 1)[0]
        resource_id = resource_id or str(obj.pk)
        if isinstance(obj, Organization):
            organization_id = obj.pk
        organization_id = organization_id or obj.organization_id  # type: ignore[attr-defined]
        changes = changes_of(obj, activity_type, snapshot(obj))
        if activity_object is None:
            activity_object = rendered([obj], resource_type)[0]
        customer_id, subscription_id = external_ids(obj, resource_type)
    for name, (before, after) in redact(_json(extra_changes or {})).items():
        if before != after:
            changes[name] = [before, after]
    if organization_id is None or resource_type is None or resource_id is None:
        raise TypeError("record_activity needs obj, or organization_id and the resource")
    request_id = request_id_var.get()
    if request_id:
        earlier = (
            ActivityLog.objects.filter(
                request_id=request_id,
                resource_type=resource_type,
                resource_id=resource_id,
                activity_type=activity_type,
            )
            .order_by("id")
            .first()
        )
        if earlier is not None:
            return _merge(earlier, redact(activity_object or {}), changes)
    now = timezone.now()
    return ActivityLog.objects.create(
        organization_id=organization_id,
        activity_type=activity_type,
        activity_object=redact(activity_object or {}),
        activity_object_changes=changes,
        resource_type=resource_type,
        resource_id=resource_id,
        external_customer_id=customer_id,
        external_subscription_id=subscription_id,
        request_id=request_id,
        logged_at=now,
        **_actor_fields(actor),
    )


def record_activities(
    *,
    activity_type: str,
    actor: Actor,
    objs: list[Model],
    resource_type: str,
    texts: list[str | None] | None = None,
) -> list[ActivityLog]:
    """The same activity of many objects in one insert (no merging: each object once). `texts`:
    their wire renderings already made (`wire_texts`)."""
    now, request_id, actor_fields = timezone.now(), request_id_var.get(), _actor_fields(actor)
    rows = []
    activity_objects = rendered(objs, resource_type, texts=texts)
    for obj, activity_object in zip(objs, activity_objects, strict=True):
        customer_id, subscription_id = external_ids(obj, resource_type)
        rows.append(
            ActivityLog(
                organization_id=obj.organization_id,  # type: ignore[attr-defined]
                activity_type=activity_type,
                activity_object=activity_object,
                activity_object_changes=changes_of(obj, activity_type, snapshot(obj)),
                resource_type=resource_type,
                resource_id=str(obj.pk),
                external_customer_id=customer_id,
                external_subscription_id=subscription_id,
                request_id=request_id,
                logged_at=now,
                **actor_fields,
            )
        )
    return ActivityLog.objects.bulk_create(rows)


def recorded_in_this_request(*, resource_type: str, resource_id: str) -> bool:
    """Whether the current request already logged an activity of this object."""
    request_id = request_id_var.get()
    return bool(request_id) and (
        ActivityLog.objects.filter(
            request_id=request_id, resource_type=resource_type, resource_id=resource_id
        ).exists()
    )


TIMELINE_LIMIT = 50


def activity_timeline(obj: Model, *, limit: int = TIMELINE_LIMIT) -> list[ActivityLog]:
    """The latest activity entries of one object, newest first."""
    organization_id = obj.pk if isinstance(obj, Organization) else obj.organization_id  # type: ignore[attr-defined]
    return list(
        ActivityLog.objects.filter(
            organization_id=organization_id, resource_id=str(obj.pk)
        ).order_by("-logged_at", "-id")[:limit]
    )
