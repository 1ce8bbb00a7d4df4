"""Lago wire shapes of subscriptions (spec §9.1): `SubscriptionObject` out, create/update in."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from django.utils import timezone
from django.utils.dateparse import parse_date
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.models import Subscription
from customers.services.subscriptions import subscription_current_period, subscription_next

LAGO_DATETIME = "%Y-%m-%dT%H:%M:%SZ"  # Lago renders `iso8601`: UTC, whole seconds
NULLABLE_DATETIME = {"type": "string", "format": "date-time", "nullable": True}


class LagoDateTimeField(serializers.DateTimeField):
    """ISO 8601 in (a bare date is its UTC midnight), UTC `...Z` out; bad input `invalid_date`."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("format", LAGO_DATETIME)
        super().__init__(**kwargs)

    def to_internal_value(self, value: object) -> datetime:
        if isinstance(value, str) and (day := _parse_date(value)) is not None:
            return datetime.combine(day, time.min, tzinfo=UTC)
        try:
            return super().to_internal_value(value)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError("invalid_date", code="invalid_date") from exc


def _parse_date(value: str) -> date | None:
    try:
        return parse_date(value)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Input


class SubscriptionCreateInput(serializers.Serializer):
    """`POST /subscriptions` body under `subscription`."""

    external_customer_id = serializers.CharField(max_length=255)
    plan_code = serializers.CharField(required=False, allow_blank=True)
    external_id = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=255
    )
    name = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=255)
    billing_time = serializers.ChoiceField(
        choices=Subscription.BillingTime.choices, required=False, allow_null=True
    )
    subscription_at = LagoDateTimeField(required=False, allow_null=True)
    ending_at = LagoDateTimeField(required=False, allow_null=True)
    plan_overrides = serializers.DictField(required=False, allow_null=True)
    consolidate_invoice = serializers.BooleanField(required=False, allow_null=True)
    purchase_order_number = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=255
    )


class SubscriptionUpdateInput(serializers.Serializer):
    """`PUT /subscriptions/{external_id}` body under `subscription`."""

    name = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=255)
    ending_at = LagoDateTimeField(required=False, allow_null=True)
    subscription_at = LagoDateTimeField(required=False)
    plan_overrides = serializers.DictField(required=False)
    on_termination_credit_note = serializers.CharField(required=False, allow_null=True)
    on_termination_invoice = serializers.CharField(required=False)
    consolidate_invoice = serializers.BooleanField(required=False)
    purchase_order_number = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=255
    )


# --------------------------------------------------------------------------------------------
# Output


class PaymentMethodOutput(serializers.Serializer):
    """Lago's `payment_method`: the customer's default provider method until methods exist."""

    payment_method_type = serializers.CharField()
    payment_method_id = serializers.CharField(allow_null=True)

    def to_representation(self, instance: object) -> dict:
        return {"payment_method_type": "provider", "payment_method_id": None}


class SubscriptionSerializer(serializers.Serializer):
    """`SubscriptionObject`; pass `now` in the context for the current period."""

    lago_id = serializers.UUIDField(source="id")
    external_id = serializers.CharField()
    lago_customer_id = serializers.UUIDField(source="customer_id")
    external_customer_id = serializers.CharField(source="customer.external_id")
    billing_entity_code = serializers.CharField(source="customer.billing_entity.code")
    name = serializers.CharField()
    plan_code = serializers.CharField(source="plan.code")
    plan_amount_cents = serializers.IntegerField(source="plan.amount_cents")
    plan_amount_currency = serializers.CharField(source="plan.amount_currency")
    status = serializers.CharField()
    billing_time = serializers.CharField()
    subscription_at = LagoDateTimeField()
    started_at = LagoDateTimeField(allow_null=True)
    trial_ended_at = LagoDateTimeField(allow_null=True)
    ending_at = LagoDateTimeField(allow_null=True)
    terminated_at = LagoDateTimeField(allow_null=True)
    canceled_at = LagoDateTimeField(allow_null=True)
    created_at = LagoDateTimeField()
    previous_plan_code = serializers.SerializerMethodField()
    next_plan_code = serializers.SerializerMethodField()
    downgrade_plan_date = serializers.DateField(allow_null=True)
    current_billing_period_started_at = serializers.SerializerMethodField()
    current_billing_period_ending_at = serializers.SerializerMethodField()
    on_termination_credit_note = serializers.CharField(allow_null=True)
    on_termination_invoice = serializers.CharField()
    consolidate_invoice = serializers.BooleanField()
    purchase_order_number = serializers.SerializerMethodField()
    payment_method = PaymentMethodOutput(source="*", read_only=True)

    def _period_bounds(self, subscription: Subscription) -> tuple[str | None, str | None]:
        cache = self.context.setdefault("_periods", {})
        if subscription.pk not in cache:
            now = self.context.get("now") or timezone.now()
            period = subscription_current_period(subscription, now=now)
            cache[subscription.pk] = (
                (_utc(period.charges_from_datetime), _utc(period.charges_to_datetime))
                if period is not None
                else (None, None)
            )
        return cache[subscription.pk]

    def get_previous_plan_code(self, subscription: Subscription) -> str | None:
        previous = subscription.previous_subscription
        return previous.plan.code if previous is not None else None

    def get_next_plan_code(self, subscription: Subscription) -> str | None:
        successor = subscription_next(subscription)
        return successor.plan.code if successor is not None else None

    @extend_schema_field(NULLABLE_DATETIME)
    def get_current_billing_period_started_at(self, subscription: Subscription) -> str | None:
        return self._period_bounds(subscription)[0]

    @extend_schema_field(NULLABLE_DATETIME)
    def get_current_billing_period_ending_at(self, subscription: Subscription) -> str | None:
        return self._period_bounds(subscription)[1]

    def get_purchase_order_number(self, subscription: Subscription) -> str | None:
        return subscription.purchase_order_number or None


def _utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime(LAGO_DATETIME)
