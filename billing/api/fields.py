"""Serializer fields and renderers every app's API shares: Lago's instants, texts, decimals.

Lago renders instants as `iso8601` (UTC, whole seconds, `Z`), unset texts as `null` and
decimals as strings with at least one decimal ("10.0"); every app's serializers use these
rather than borrowing another app's.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing import money
from billing.money import parse_decimal

LAGO_DATETIME = "%Y-%m-%dT%H:%M:%SZ"  # spec §1.1: ISO 8601 in UTC, to the second
MAX_DAYS = 2**31 - 1  # positive integer columns (days, periods)
MAX_CENTS = 2**63 - 1  # bigint amount columns

# OpenAPI shapes of values rendered by hand (SerializerMethodFields)
DECIMAL_STRING = {"type": "string", "example": "10.5"}
NULLABLE_DECIMAL_STRING = {"type": "string", "example": "10.5", "nullable": True}
NULLABLE_DATETIME = {"type": "string", "format": "date-time", "nullable": True}
NULLABLE_UUID = {"type": "string", "format": "uuid", "nullable": True}


# PostgreSQL keeps offsets up to ±15:59; instants within a day of Python's limits overflow
# when a service converts them to a customer's time zone (9999-12-31T23:59:59Z in Paris)
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)
EARLIEST_INSTANT = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
LATEST_INSTANT = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


def storable_instant(value: datetime) -> bool:
    """Whether an instant can be stored and converted to any time zone without overflowing."""
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        return False
    try:
        instant = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except OverflowError:
        return False
    return EARLIEST_INSTANT <= instant <= LATEST_INSTANT


def lago_datetime(value: datetime | str | None) -> str | None:
    """A datetime (or an ISO string kept in JSON properties) as Lago renders it: UTC, `Z`."""
    if value in (None, ""):
        return None
    if isinstance(value, str):
        parsed = parse_datetime(value)
        if parsed is None:
            return None
        value = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(LAGO_DATETIME)


def decimal_string(value: Decimal | None) -> str | None:
    """Lago renders decimals as strings with at least one decimal: 10 -> "10.0"; None: null."""
    return None if value is None else money.decimal_string(value)


class LagoDateTimeField(serializers.DateTimeField):
    """An instant out as Lago renders it (UTC, `...Z`); in, DRF's ISO 8601 parsing."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(format=LAGO_DATETIME, **kwargs)


class LagoDateTimeInput(serializers.DateTimeField):
    """ISO 8601 in (a bare date is its UTC midnight), UTC `...Z` out; bad input `invalid_date`."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("format", LAGO_DATETIME)
        super().__init__(**kwargs)

    def to_internal_value(self, value: object) -> datetime:
        if isinstance(value, str) and (day := _parse_date(value)) is not None:
            return datetime.combine(day, time.min, tzinfo=UTC)
        if isinstance(value, str) and not _storable_offset(value):
            # DRF converts the instant to UTC: the offset PostgreSQL would refuse is judged first
            raise serializers.ValidationError("invalid_date", code="invalid_date")
        try:
            instant = super().to_internal_value(value)
        except (serializers.ValidationError, OverflowError) as exc:
            raise serializers.ValidationError("invalid_date", code="invalid_date") from exc
        if not storable_instant(instant):
            raise serializers.ValidationError("invalid_date", code="invalid_date")
        return instant


def _storable_offset(value: str) -> bool:
    """Whether an ISO 8601 text's own UTC offset is within ±15:59 (True when it is no valid
    instant: DRF's parsing says so next)."""
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return True
    offset = parsed.utcoffset() if parsed is not None else None
    return offset is None or abs(offset) <= MAX_UTC_OFFSET


def _parse_date(value: str) -> date | None:
    try:
        return parse_date(value)
    except ValueError:
        return None


def nullable_list(child: serializers.Serializer, **kwargs: object) -> serializers.ListSerializer:
    """A list the payload may give as `null`, but whose items may not be `null`: `many=True`
    hands `allow_null` to the child too, so `[null]` would reach the services."""
    kwargs.setdefault("required", False)
    return serializers.ListSerializer(child=child, allow_null=True, **kwargs)


class TextOrNull(serializers.CharField):
    """A text column stored blank and rendered `null`, as Lago renders unset strings."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(allow_null=True, **kwargs)

    def to_representation(self, value: object) -> str | None:
        return str(value) if value not in (None, "") else None


@extend_schema_field({"type": "string", "example": "12.5", "nullable": True})
class DecimalInput(serializers.Field):
    """A decimal given as a JSON number or string; never goes through a float."""

    default_error_messages = {"invalid": "A decimal number is required."}

    def to_internal_value(self, data: object) -> Decimal:
        try:
            return parse_decimal(data)
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value: Decimal) -> str:
        return decimal_string(value)


@extend_schema_field(DECIMAL_STRING)
class DecimalString(serializers.Field):
    """A decimal out as Lago's string ("10.0")."""

    def to_representation(self, value: Decimal) -> str | None:
        return decimal_string(value)


@extend_schema_field({"type": "number", "format": "double", "example": 20.0})
class RateField(serializers.Field):
    """A tax rate: a percentage, rendered as a JSON number as Lago does (not an amount)."""

    def to_representation(self, value: Decimal) -> float:
        return float(value)


class PaymentMethodOutput(serializers.Serializer):
    """Lago's `payment_method`: the customer's default provider method until methods exist."""

    payment_method_type = serializers.CharField()
    payment_method_id = serializers.CharField(allow_null=True)

    def to_representation(self, instance: object) -> dict:
        return {"payment_method_type": "provider", "payment_method_id": None}
