"""Lago wire shapes of events and estimated fees (spec §5.1, §13).

Events are rendered by hand-written `to_representation`s: `POST /events/batch` echoes up to 100
events per request on the hottest path of the API, where a field-by-field DRF serializer would
cost more than the insert. The declared fields document the shapes (OpenAPI) and match what is
rendered. Inputs are validated by the ingestion service (plain Python, spec §5.2); the input
serializers below only describe them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from rest_framework import serializers

from billing.money import decimal_string, to_major
from metering.models import Event
from metering.store import ALL_FILTER_VALUES
from metering.usage import InAdvanceFee, InstantFee, fee_tax_figures
from plans.models import ChargeFilter


def iso_seconds(instant: datetime | None) -> str | None:
    """Lago's `iso8601`: UTC, whole seconds, `Z`."""
    if instant is None:
        return None
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_milliseconds(instant: datetime) -> str:
    """Lago's `iso8601(3)` of an event timestamp: milliseconds kept."""
    # isoformat is C code: "2022-03-20T12:00:00.123+00:00" -> "...123Z"
    if instant.tzinfo is not UTC:  # ingestion's timestamps are UTC already
        instant = instant.astimezone(UTC)
    return instant.isoformat(timespec="milliseconds")[:-6] + "Z"


def _optional_id(value: object) -> str | None:
    return None if value is None else str(value)


def filter_display_name(charge_filter: ChargeFilter | None) -> str | None:
    """Lago's `ChargeFilter#display_name`: its invoice display name, else its values joined
    (a key whose value is "all values" shows the key)."""
    if charge_filter is None:
        return None
    if charge_filter.invoice_display_name:
        return charge_filter.invoice_display_name
    parts: list[str] = []
    for key, values in (charge_filter.values or {}).items():
        parts.extend([key] if list(values) == [ALL_FILTER_VALUES] else [str(v) for v in values])
    return ", ".join(parts)


class EventInput(serializers.Serializer):
    """`EventInputObject`; validated by `metering.services.ingestion`."""

    transaction_id = serializers.CharField()
    external_subscription_id = serializers.CharField()
    code = serializers.CharField()
    timestamp = serializers.CharField(
        required=False, help_text="Unix seconds: integer, float or decimal string."
    )
    properties = serializers.DictField(required=False)
    precise_total_amount_cents = serializers.CharField(required=False)


class EventBatchInput(serializers.Serializer):
    events = EventInput(many=True)


class EventEstimateInput(serializers.Serializer):
    """`EventEstimateFeesInput.event`: no transaction id (Lago generates one)."""

    external_subscription_id = serializers.CharField()
    code = serializers.CharField()
    properties = serializers.DictField(required=False)
    precise_total_amount_cents = serializers.CharField(required=False)


class EventInstantInput(serializers.Serializer):
    """`EventEstimateInstantFeesInput.event`: no timestamp (estimated at reception time), the
    transaction id optional (generated when missing)."""

    transaction_id = serializers.CharField(required=False, allow_null=True)
    external_subscription_id = serializers.CharField()
    code = serializers.CharField()
    properties = serializers.DictField(required=False)


class EventInstantBatchInput(serializers.Serializer):
    events = EventInstantInput(many=True)


class EventSerializer(serializers.Serializer):
    """`EventObject`."""

    lago_id = serializers.CharField()
    transaction_id = serializers.CharField()
    lago_customer_id = serializers.UUIDField(allow_null=True)
    code = serializers.CharField()
    timestamp = serializers.CharField()
    precise_total_amount_cents = serializers.CharField()
    properties = serializers.DictField()
    lago_subscription_id = serializers.UUIDField(allow_null=True)
    external_subscription_id = serializers.CharField()
    created_at = serializers.CharField()

    def to_representation(self, event: Event) -> dict:
        return {
            "lago_id": str(event.id),
            "transaction_id": event.transaction_id,
            "lago_customer_id": _optional_id(event.customer_id),
            "code": event.code,
            "timestamp": iso_milliseconds(event.timestamp),
            "precise_total_amount_cents": decimal_string(Decimal(event.precise_total_amount_cents)),
            "properties": event.properties,
            "lago_subscription_id": _optional_id(event.subscription_id),
            "external_subscription_id": event.external_subscription_id,
            "created_at": iso_seconds(event.created_at),
        }


def events_payload(events: list[Event]) -> list[dict]:
    """Many events, without a serializer instance per event (the batch hot path)."""
    render = EventSerializer().to_representation
    return [render(event) for event in events]


def batch_payload(events: list[Event]) -> list[dict]:
    """The echo of a stored batch: every event shares its `created_at` (one write). Ids stay
    UUIDs: the API's renderer writes them as text (in C, where `str()` would cost a call per
    id)."""
    if not events:
        return []
    created_at = iso_seconds(events[0].created_at)
    return [
        {
            "lago_id": str(event.id),
            "transaction_id": event.transaction_id,
            "lago_customer_id": event.customer_id,
            "code": event.code,
            "timestamp": iso_milliseconds(event.timestamp),
            "precise_total_amount_cents": decimal_string(event.precise_total_amount_cents),
            "properties": event.properties,
            "lago_subscription_id": event.subscription_id,
            "external_subscription_id": event.external_subscription_id,
            "created_at": created_at,
        }
        for event in events
    ]


class EstimatedFeeSerializer(serializers.Serializer):
    """A `FeeObject` that an event would create on a pay-in-advance charge (nothing stored)."""

    lago_id = serializers.UUIDField(allow_null=True)
    lago_charge_id = serializers.UUIDField()
    lago_charge_filter_id = serializers.UUIDField(allow_null=True)
    lago_invoice_id = serializers.UUIDField(allow_null=True)
    lago_subscription_id = serializers.UUIDField()
    external_subscription_id = serializers.CharField()
    lago_customer_id = serializers.UUIDField()
    external_customer_id = serializers.CharField()
    amount_cents = serializers.IntegerField()
    precise_amount = serializers.CharField()
    amount_currency = serializers.CharField()
    taxes_amount_cents = serializers.IntegerField()
    taxes_rate = serializers.FloatField()
    total_amount_cents = serializers.IntegerField()
    units = serializers.CharField()
    precise_unit_amount = serializers.CharField()
    events_count = serializers.IntegerField()
    pay_in_advance = serializers.BooleanField()
    invoiceable = serializers.BooleanField()
    event_transaction_id = serializers.CharField()
    amount_details = serializers.DictField()
    item = serializers.DictField()

    def to_representation(self, fee: InAdvanceFee) -> dict:
        subscription = self.context["subscription"]
        taxes = fee_tax_figures(fee.amount_cents, self.context["taxes"].get(fee.charge.pk, ()))
        metric = fee.charge.billable_metric
        charge_filter = fee.charge_filter
        return {
            "lago_id": None,
            "lago_charge_id": str(fee.charge.pk),
            "lago_charge_filter_id": _optional_id(charge_filter.pk if charge_filter else None),
            "lago_invoice_id": None,
            "lago_true_up_fee_id": None,
            "lago_true_up_parent_fee_id": None,
            "lago_subscription_id": str(subscription.pk),
            "external_subscription_id": subscription.external_id,
            "lago_customer_id": str(subscription.customer_id),
            "external_customer_id": subscription.customer.external_id,
            "amount_cents": fee.amount_cents,
            "precise_amount": decimal_string(to_major(fee.precise_amount_cents, fee.currency)),
            "amount_currency": fee.currency,
            "taxes_amount_cents": taxes.amount_cents,
            "taxes_precise_amount": decimal_string(
                to_major(taxes.precise_amount_cents, fee.currency)
            ),
            "taxes_rate": float(taxes.rate),
            "total_amount_cents": fee.amount_cents + taxes.amount_cents,
            "total_amount_currency": fee.currency,
            "units": decimal_string(fee.units),
            "precise_unit_amount": decimal_string(fee.precise_unit_amount),
            "total_aggregated_units": decimal_string(fee.units),
            "events_count": fee.events_count,
            "pay_in_advance": True,
            "invoiceable": fee.charge.invoiceable,
            "from_date": iso_seconds(fee.window.charges_from_datetime),
            "to_date": iso_seconds(fee.window.charges_to_datetime),
            "payment_status": "pending",
            "created_at": None,
            "succeeded_at": None,
            "failed_at": None,
            "refunded_at": None,
            "event_transaction_id": fee.event.transaction_id,
            "amount_details": fee.amount_details,
            "self_billed": False,
            "item": {
                "type": "charge",
                "code": metric.code,
                "name": metric.name,
                "description": metric.description or None,
                "invoice_display_name": fee.invoice_display_name,
                "filter_invoice_display_name": filter_display_name(charge_filter),
                "filters": dict(charge_filter.values) if charge_filter else None,
                "lago_item_id": str(metric.pk),
                "item_type": "BillableMetric",
                "grouped_by": fee.grouped_by,
            },
            "applied_taxes": [],
        }


class InstantFeeItemSerializer(serializers.Serializer):
    type = serializers.CharField()
    code = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    invoice_display_name = serializers.CharField()
    filter_invoice_display_name = serializers.CharField(allow_null=True)
    filters = serializers.DictField(allow_null=True)
    lago_item_id = serializers.UUIDField()
    item_type = serializers.CharField()
    grouped_by = serializers.DictField()


class InstantFeeSerializer(serializers.Serializer):
    """Lago's `FeeEstimateObject`: the fee one event alone would cost on a pay-in-advance
    standard or percentage charge. As Lago's code renders it (its request specs pin it):
    `amount_cents`, `total_amount_cents` and `precise_unit_amount` (per unit, in cents) are
    decimal strings ("40.0"), taxes are 0, nothing has an id but the catalog's."""

    lago_id = serializers.UUIDField(allow_null=True)
    lago_charge_id = serializers.UUIDField()
    lago_charge_filter_id = serializers.UUIDField(allow_null=True)
    lago_invoice_id = serializers.UUIDField(allow_null=True)
    lago_true_up_fee_id = serializers.UUIDField(allow_null=True)
    lago_true_up_parent_fee_id = serializers.UUIDField(allow_null=True)
    lago_subscription_id = serializers.UUIDField()
    external_subscription_id = serializers.CharField()
    lago_customer_id = serializers.UUIDField()
    external_customer_id = serializers.CharField()
    item = InstantFeeItemSerializer()
    pay_in_advance = serializers.BooleanField()
    invoiceable = serializers.BooleanField()
    amount_cents = serializers.CharField()
    amount_currency = serializers.CharField()
    precise_amount = serializers.CharField()
    precise_total_amount = serializers.CharField()
    taxes_amount_cents = serializers.IntegerField()
    taxes_precise_amount = serializers.IntegerField()
    taxes_rate = serializers.IntegerField()
    total_amount_cents = serializers.CharField()
    total_amount_currency = serializers.CharField()
    units = serializers.CharField()
    description = serializers.CharField(allow_null=True)
    precise_unit_amount = serializers.CharField()
    precise_coupons_amount_cents = serializers.CharField()
    events_count = serializers.IntegerField()
    payment_status = serializers.CharField()
    created_at = serializers.CharField(allow_null=True)
    succeeded_at = serializers.CharField(allow_null=True)
    failed_at = serializers.CharField(allow_null=True)
    refunded_at = serializers.CharField(allow_null=True)
    amount_details = serializers.DictField(allow_null=True)
    event_transaction_id = serializers.CharField()

    def to_representation(self, fee: InstantFee) -> dict:
        subscription, charge, charge_filter = fee.subscription, fee.charge, fee.charge_filter
        metric = charge.billable_metric
        amount_cents = decimal_string(Decimal(fee.amount_cents))
        precise_amount = decimal_string(fee.precise_amount)
        return {
            "lago_id": None,
            "lago_charge_id": str(charge.pk),
            "lago_charge_filter_id": _optional_id(charge_filter.pk if charge_filter else None),
            "lago_invoice_id": None,
            "lago_true_up_fee_id": None,
            "lago_true_up_parent_fee_id": None,
            "lago_subscription_id": str(subscription.pk),
            "external_subscription_id": subscription.external_id,
            "lago_customer_id": str(subscription.customer_id),
            "external_customer_id": subscription.customer.external_id,
            "item": {
                "type": "charge",
                "code": metric.code,
                "name": metric.name,
                "description": metric.description or None,
                "invoice_display_name": charge.invoice_display_name or metric.name,
                "filters": dict(charge_filter.values) if charge_filter else None,
                "filter_invoice_display_name": filter_display_name(charge_filter),
                "lago_item_id": str(metric.pk),
                "item_type": "BillableMetric",
                "grouped_by": {},
            },
            "pay_in_advance": True,
            "invoiceable": charge.invoiceable,
            "amount_cents": amount_cents,
            "amount_currency": fee.currency,
            "precise_amount": precise_amount,
            "precise_total_amount": precise_amount,
            "taxes_amount_cents": 0,
            "taxes_precise_amount": 0,
            "taxes_rate": 0,
            "total_amount_cents": amount_cents,
            "total_amount_currency": fee.currency,
            "units": decimal_string(fee.units),
            "description": None,
            "precise_unit_amount": decimal_string(fee.precise_unit_amount_cents),
            "precise_coupons_amount_cents": "0.0",
            "events_count": 1,
            "payment_status": "pending",
            "created_at": None,
            "succeeded_at": None,
            "failed_at": None,
            "refunded_at": None,
            "amount_details": None,
            "event_transaction_id": fee.transaction_id,
        }


def instant_fees_payload(fees: list[InstantFee]) -> list[dict]:
    render = InstantFeeSerializer().to_representation
    return [render(fee) for fee in fees]
