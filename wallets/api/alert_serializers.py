"""Lago wire shape of wallet alerts (spec §17.8; lago-python-client `AlertResponse`).

Inputs pass the thresholds through as sent: `wallets.services.alerts` validates them with
Lago's codes (`too_many_thresholds`, `duplicate_threshold_values`, ...).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api.fields import LagoDateTimeField, TextOrNull, decimal_string
from wallets.models import WalletAlert


class AlertInput(serializers.Serializer):
    """`alert: {alert_type, code, name, thresholds: [{code, value, recurring}]}`."""

    alert_type = serializers.CharField(required=False, allow_null=True)
    code = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    name = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    thresholds = serializers.JSONField(required=False, allow_null=True)


class AlertThresholdOutput(serializers.Serializer):
    code = serializers.CharField(allow_null=True)
    value = serializers.CharField()
    recurring = serializers.BooleanField()


class AlertSerializer(serializers.ModelSerializer):
    """Lago `V1::UsageMonitoring::AlertSerializer` for a wallet alert."""

    lago_id = serializers.UUIDField(source="pk")
    lago_organization_id = serializers.UUIDField(source="organization_id")
    external_subscription_id = serializers.SerializerMethodField()
    external_customer_id = serializers.CharField(source="wallet.customer.external_id")
    lago_wallet_id = serializers.UUIDField(source="wallet_id")
    wallet_code = serializers.CharField(source="wallet.code")
    name = TextOrNull()
    direction = serializers.SerializerMethodField()
    previous_value = serializers.SerializerMethodField()
    last_processed_at = LagoDateTimeField()
    thresholds = AlertThresholdOutput(many=True)
    created_at = LagoDateTimeField()
    billable_metric = serializers.SerializerMethodField()

    class Meta:
        model = WalletAlert
        fields = [
            "lago_id", "lago_organization_id", "external_subscription_id",
            "external_customer_id", "lago_wallet_id", "wallet_code", "alert_type", "code",
            "name", "direction", "previous_value", "last_processed_at", "thresholds",
            "created_at", "billable_metric",
        ]  # fmt: skip

    @extend_schema_field({"type": "string", "nullable": True})
    def get_external_subscription_id(self, alert: WalletAlert) -> None:
        return None

    def get_direction(self, alert: WalletAlert) -> str:
        return "decreasing"  # wallet alerts watch balances going down (§17.8)

    def get_previous_value(self, alert: WalletAlert) -> str | None:
        return None if alert.previous_value is None else decimal_string(alert.previous_value)

    @extend_schema_field({"type": "object", "nullable": True})
    def get_billable_metric(self, alert: WalletAlert) -> None:
        return None
