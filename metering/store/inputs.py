"""What the stores share: the event to store, the write result, and the checks and
conversions every store applies before writing (no store class here, so that each store module
can import this one without importing the others)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal, localcontext
from uuid import UUID

from django.core.serializers.json import DjangoJSONEncoder

from metering.models import IDENTIFIER_MAX_LENGTH, Event

# numeric(40, 15): 25 integer digits (models.NUMERIC)
_NUMERIC_LIMIT = Decimal(10) ** 25
_NUMERIC_QUANTUM = Decimal("1e-15")


@dataclass(slots=True)
class EventInput:
    """One event to store, already validated by ingestion (spec §5.1, §5.2). Not frozen: a
    frozen dataclass sets each field through `object.__setattr__`, which made building the
    100 inputs of a batch cost 2.5 times as much; nothing changes an input once built.

    `value`: the metric field's value after the expression, when ingestion knows the metric
    (also stored in `properties[field_name]` per spec §4.1); None lets aggregation read the
    property. `field_name`: the metric's field, when ingestion knows the metric: the PostgreSQL
    store pre-aggregates the field's values with it (without it, only counts are).
    `aggregation_type`: the metric's, when ingestion knows the metric: the PostgreSQL store keeps
    the property state of unique-count events only (without it, of every event with a field).
    """

    transaction_id: str
    external_subscription_id: str
    code: str
    timestamp: datetime
    properties: dict = field(default_factory=dict)
    precise_total_amount_cents: Decimal = Decimal(0)
    value: Decimal | None = None
    subscription_id: UUID | None = None
    customer_id: UUID | None = None
    field_name: str | None = None
    aggregation_type: str | None = None


@dataclass(frozen=True)
class WriteResult:
    """Outcome of `write_batch`: every event written, or none and the duplicates' indexes."""

    events: list[Event]  # in input order; empty when the batch was refused
    duplicate_indexes: tuple[int, ...] = ()  # batch positions whose transaction_id already exists

    @property
    def written(self) -> bool:
        return not self.duplicate_indexes


_IDENTIFIERS = ("transaction_id", "external_subscription_id", "code")


def _check(event: EventInput) -> None:
    """Programming errors only: ingestion validates the payload before (spec §5.2)."""
    for name in _IDENTIFIERS:
        value = getattr(event, name)
        if not isinstance(value, str) or not 0 < len(value) <= IDENTIFIER_MAX_LENGTH:
            raise ValueError(f"{name} must be a string of 1 to {IDENTIFIER_MAX_LENGTH} characters")
    timestamp = event.timestamp
    if timestamp.tzinfo is not UTC and (timestamp.tzinfo is None or timestamp.utcoffset() is None):
        raise ValueError("timestamp must be an aware datetime")
    if not isinstance(event.properties, dict):
        raise ValueError("properties must be a dict")
    amount = event.precise_total_amount_cents
    # zero (the usual amount) is falsy; NaN and infinities are not
    if amount and (not amount.is_finite() or abs(amount) >= _NUMERIC_LIMIT):
        raise ValueError("precise_total_amount_cents does not fit numeric(40, 15)")


def _json(properties: dict) -> str:
    """jsonb text; what PostgreSQL would refuse (NaN, NUL characters) is a ValueError here."""
    if (reason := unstorable(properties)) is not None:
        raise ValueError(f"properties must not contain {reason}")
    return json.dumps(properties, cls=DjangoJSONEncoder, allow_nan=False)


_NUL = "NUL characters"
_OUT_OF_RANGE = "out of range floats (not JSON compliant)"


def unstorable(value: object) -> str | None:
    """What in a JSON value PostgreSQL's jsonb refuses (NUL characters, in keys or strings) or
    JSON cannot write (floats out of range: NaN, infinity), or None. The one check of event
    properties: ingestion answers an event holding one with an error, every store refuses it."""
    if isinstance(value, str):
        return _NUL if "\x00" in value else None
    if value is None or isinstance(value, int):  # bool included
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else _OUT_OF_RANGE
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) is str:
                if "\x00" in key:
                    return _NUL
            elif (reason := unstorable(key)) is not None:
                return reason
            kind = type(item)
            if kind is int or (kind is str and "\x00" not in item):
                continue  # the usual values, decided without a call
            if (reason := unstorable(item)) is not None:
                return reason
        return None
    if isinstance(value, list | tuple):
        for item in value:
            if (reason := unstorable(item)) is not None:
                return reason
    return None


def _stored_value(value: Decimal | None) -> Decimal | None:
    """The value column keeps only what numeric(40, 15) holds exactly; anything else is left
    null so that aggregation reads the exact property instead of a rounded copy."""
    if value is None or not value.is_finite() or abs(value) >= _NUMERIC_LIMIT:
        return None
    if value == value.to_integral_value():
        return value  # an integer within the limit: exact (the usual value, decided at once)
    with localcontext() as context:
        context.prec = 60
        if value != value.quantize(_NUMERIC_QUANTUM, rounding=ROUND_DOWN):
            return None
    return value


def _duplicate_indexes(
    events: Sequence[EventInput], inserted: dict[tuple[str, str], int]
) -> tuple[int, ...]:
    seen: set[tuple[str, str]] = set()
    duplicates = []
    for index, event in enumerate(events):
        key = (event.external_subscription_id, event.transaction_id)
        if key in seen or key not in inserted:
            duplicates.append(index)
        seen.add(key)
    return tuple(duplicates)
