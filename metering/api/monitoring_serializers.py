"""Lago wire shape of lifetime usage and usage alerts (lago-python-client `LifetimeUsage*`,
`AlertResponse`).

Alert inputs pass the thresholds through as sent: `metering.services.usage_alerts` validates
them with Lago's codes (`too_many_thresholds`, `duplicate_threshold_values`, ...).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api.fields import LagoDateTimeField, TextOrNull, decimal_string
from metering.models import LifetimeUsage, UsageAlert
from plans.models import BillableMetric
from plans.selectors import billable_metric_filters


class UsageThresholdCompletionOutput(serializers.Serializer):
    amount_cents = serializers.IntegerField()
    completion_ratio = serializers.FloatField()
    reached_at = serializers.CharField(allow_null=True)


class LifetimeUsageSerializer(serializers.Serializer):
    """Lago `V1::LifetimeUsageSerializer`; `usage_thresholds` only where the plan has some."""

    lago_id = serializers.UUIDField(source="id")
    lago_subscription_id = serializers.UUIDField(source="subscription_id")
    external_subscription_id = serializers.CharField(source="subscription.external_id")
    external_historical_usage_amount_cents = serializers.IntegerField(
        source="historical_usage_amount_cents"
    )
    invoiced_usage_amount_cents = serializers.IntegerField()
    current_usage_amount_cents = serializers.IntegerField()
    from_datetime = LagoDateTimeField(source="subscription.subscription_at")
    to_datetime = serializers.SerializerMethodField()
    usage_thresholds = UsageThresholdCompletionOutput(many=True, required=False)

    def get_to_datetime(self, lifetime: LifetimeUsage) -> str:
        return LagoDateTimeField().to_representation(self.context["now"])

    def to_representation(self, lifetime: LifetimeUsage) -> dict:
        data = super().to_representation(lifetime)
        thresholds = self.context.get("thresholds")
        data.pop("usage_thresholds", None)
        if thresholds is not None:
            stamp = LagoDateTimeField()
            data["usage_thresholds"] = [
                {
                    "amount_cents": row.amount_cents,
                    "completion_ratio": float(row.completion_ratio),
                    "reached_at": stamp.to_representation(row.reached_at)
                    if row.reached_at
                    else None,
                }
                for row in thresholds
            ]
        return data


class LifetimeUsageInput(serializers.Serializer):
    """`lifetime_usage: {external_historical_usage_amount_cents}`."""

    external_historical_usage_amount_cents = serializers.JSONField(required=False, allow_null=True)


class UsageAlertInput(serializers.Serializer):
    """`alert: {alert_type, code, name, billable_metric_code, thresholds: [...]}`."""

    alert_type = serializers.JSONField(required=False, allow_null=True)
    code = serializers.JSONField(required=False, allow_null=True)
    name = serializers.JSONField(required=False, allow_null=True)
    billable_metric_code = serializers.JSONField(required=False, allow_null=True)
    billable_metric_id = serializers.JSONField(required=False, allow_null=True)
    thresholds = serializers.JSONField(required=False, allow_null=True)


class UsageAlertThresholdOutput(serializers.Serializer):
    code = serializers.CharField(allow_null=True)
    value = serializers.CharField()
    recurring = serializers.BooleanField()


class UsageAlertBillableMetricOutput(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    name = serializers.CharField()
    code = serializers.CharField()
    description = TextOrNull()
    aggregation_type = serializers.CharField()
    weighted_interval = serializers.CharField(allow_null=True)
    recurring = serializers.BooleanField()
    rounding_function = serializers.CharField(allow_null=True)
    rounding_precision = serializers.IntegerField(allow_null=True)
    created_at = LagoDateTimeField()
    field_name = serializers.CharField(allow_null=True)
    expression = TextOrNull()
    filters = serializers.SerializerMethodField()

    @extend_schema_field({"type": "array", "items": {"type": "object"}})
    def get_filters(self, metric: BillableMetric) -> list[dict]:
        return [
            {"lago_id": str(f.pk), "key": f.key, "values": list(f.values)}
            for f in billable_metric_filters(metric)
        ]


class UsageAlertSerializer(serializers.ModelSerializer):
    """Lago `V1::UsageMonitoring::UsageAlertSerializer` for a subscription alert."""

    lago_id = serializers.UUIDField(source="pk")
    lago_organization_id = serializers.UUIDField(source="organization_id")
    subscription_external_id = serializers.CharField(source="external_subscription_id")
    lago_wallet_id = serializers.SerializerMethodField()
    wallet_code = serializers.SerializerMethodField()
    name = TextOrNull()
    previous_value = serializers.SerializerMethodField()
    last_processed_at = LagoDateTimeField()
    thresholds = UsageAlertThresholdOutput(many=True)
    created_at = LagoDateTimeField()
    billable_metric = UsageAlertBillableMetricOutput(allow_null=True)

    class Meta:
        model = UsageAlert
        fields = [
            "lago_id", "lago_organization_id", "subscription_external_id",
            "external_subscription_id", "lago_wallet_id", "wallet_code", "alert_type", "code",
            "name", "direction", "previous_value", "last_processed_at", "thresholds",
            "created_at", "billable_metric",
        ]  # fmt: skip

    @extend_schema_field({"type": "string", "nullable": True})
    def get_lago_wallet_id(self, alert: UsageAlert) -> None:
        return None

    @extend_schema_field({"type": "string", "nullable": True})
    def get_wallet_code(self, alert: UsageAlert) -> None:
        return None

    def get_previous_value(self, alert: UsageAlert) -> str:
        return decimal_string(alert.previous_value)
