"""Lago's wire objects by object type, rendered as the API renders them, for the apps on the
right that send them elsewhere (webhook payloads).

An app's API serializers are private to it (import-linter), so the app that owns an object
registers, in its `AppConfig.ready()`, how to load rows of that type by id and how to render them
the way its API answers (several at once: a DRF serializer with `many=True` builds its fields
once, not once per row):

    register_wire_object("invoice", load=invoices_for_wire, render=render_invoices)

Object types are Lago's names (`invoice`, `wallet_transaction`), the same as
`billing.outbox.object_type_of` gives for the model, so an outbox row names the wire object of
the object it was recorded for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from django.db.models import Model


@dataclass(frozen=True)
class WireObject:
    """How one object type is loaded (several ids at once) and rendered."""

    object_type: str
    load: Callable[[Sequence[str]], Iterable[Model]]  # rows of these primary keys, any state
    render: Callable[[Sequence[Model]], list[dict]]  # several rows at once, in their order


_OBJECTS: dict[str, WireObject] = {}


def register_wire_object(
    object_type: str,
    *,
    load: Callable[[Sequence[str]], Iterable[Model]],
    render: Callable[[Sequence[Model]], list[dict]],
) -> None:
    """Declares the wire object of `object_type` (again: the last registration wins)."""
    _OBJECTS[object_type] = WireObject(object_type=object_type, load=load, render=render)


def wire_object(object_type: str) -> WireObject | None:
    """The registered wire object of that type, or None."""
    return _OBJECTS.get(object_type)


def wire_object_types() -> frozenset[str]:
    """Every registered object type."""
    return frozenset(_OBJECTS)
