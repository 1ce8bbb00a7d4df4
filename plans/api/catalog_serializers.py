"""Lago wire shapes of billable metrics, taxes, add-ons and coupons (spec §4, §14, §15, §16).

Input serializers check shapes only; the services hold the rules. Output serializers render
Lago's objects field for field (blank texts as null, instants as `2022-04-29T08:59:51Z`).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api.fields import LagoDateTimeField, LagoDateTimeInput, TextOrNull, decimal_string
from plans.models import AddOn, BillableMetric, Coupon, Tax
from plans.selectors import (
    billable_metric_filters,
    billable_metric_plans_count,
    tax_counters,
)


def _text(**kwargs: object) -> serializers.CharField:
    """An optional text input; null is accepted and means blank."""
    return serializers.CharField(required=False, allow_blank=True, allow_null=True, **kwargs)


# --- billable metrics --------------------------------------------------------------------------


class BillableMetricFilterInput(serializers.Serializer):
    key = serializers.CharField(max_length=255)
    values = serializers.ListField(child=serializers.CharField(), allow_empty=False)


class BillableMetricInput(serializers.Serializer):
    name = _text(max_length=255)
    code = _text(max_length=255)
    description = _text()
    aggregation_type = _text()
    field_name = _text(max_length=255)
    expression = _text()
    recurring = serializers.BooleanField(required=False, allow_null=True)
    rounding_function = _text()
    rounding_precision = serializers.IntegerField(required=False, allow_null=True)
    weighted_interval = _text()
    filters = serializers.ListField(
        child=BillableMetricFilterInput(), required=False, allow_null=True
    )

    def validate(self, attrs: dict) -> dict:
        for field in ("rounding_function", "weighted_interval"):
            if attrs.get(field) == "":
                attrs[field] = None
        return attrs


class BillableMetricFilterSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    key = serializers.CharField()
    values = serializers.ListField(child=serializers.CharField())


class BillableMetricSerializer(serializers.Serializer):
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
    active_subscriptions_count = serializers.SerializerMethodField()
    draft_invoices_count = serializers.SerializerMethodField()
    plans_count = serializers.SerializerMethodField()
    filters = serializers.SerializerMethodField()

    def get_active_subscriptions_count(self, metric: BillableMetric) -> int:
        return 0  # needs the customers app's subscriptions: not counted yet

    def get_draft_invoices_count(self, metric: BillableMetric) -> int:
        return 0  # needs the invoicing app: not counted yet

    def get_plans_count(self, metric: BillableMetric) -> int:
        return billable_metric_plans_count(metric)

    @extend_schema_field(BillableMetricFilterSerializer(many=True))
    def get_filters(self, metric: BillableMetric) -> list[dict]:
        return BillableMetricFilterSerializer(billable_metric_filters(metric), many=True).data


class EvaluationEventInput(serializers.Serializer):
    code = _text()
    timestamp = serializers.JSONField(required=False, allow_null=True)  # unix seconds or text
    properties = serializers.DictField(required=False, allow_null=True)


class EvaluateExpressionInput(serializers.Serializer):
    """Body of POST /billable_metrics/evaluate_expression (not wrapped in a root key)."""

    expression = _text()
    event = EvaluationEventInput(required=False, allow_null=True)


class ExpressionResultSerializer(serializers.Serializer):
    value = serializers.CharField()


# --- taxes -------------------------------------------------------------------------------------


class TaxInput(serializers.Serializer):
    name = _text(max_length=255)
    code = _text(max_length=255)
    rate = serializers.DecimalField(
        max_digits=12, decimal_places=5, required=False, allow_null=True
    )
    description = _text()
    applied_to_organization = serializers.BooleanField(required=False, allow_null=True)


class TaxSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    name = serializers.CharField()
    code = serializers.CharField()
    rate = serializers.DecimalField(max_digits=12, decimal_places=5, coerce_to_string=False)
    description = TextOrNull()
    applied_to_organization = serializers.BooleanField()
    add_ons_count = serializers.SerializerMethodField()
    customers_count = serializers.SerializerMethodField()
    plans_count = serializers.SerializerMethodField()
    charges_count = serializers.SerializerMethodField()
    commitments_count = serializers.SerializerMethodField()
    created_at = LagoDateTimeField()

    def get_add_ons_count(self, tax: Tax) -> int:
        return tax_counters(tax)["add_ons_count"]

    def get_customers_count(self, tax: Tax) -> int:
        return 0  # customers attach taxes in the customers app, which the catalog cannot read

    def get_plans_count(self, tax: Tax) -> int:
        return tax_counters(tax)["plans_count"]

    def get_charges_count(self, tax: Tax) -> int:
        return tax_counters(tax)["charges_count"]

    def get_commitments_count(self, tax: Tax) -> int:
        return tax_counters(tax)["commitments_count"]


# --- add-ons -----------------------------------------------------------------------------------


class AddOnInput(serializers.Serializer):
    name = _text(max_length=255)
    invoice_display_name = _text(max_length=255)
    code = _text(max_length=255)
    amount_cents = serializers.IntegerField(required=False, allow_null=True)
    amount_currency = _text(max_length=3)
    description = _text()
    tax_codes = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True
    )


class AddOnSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    name = serializers.CharField()
    invoice_display_name = TextOrNull()
    code = serializers.CharField()
    amount_cents = serializers.IntegerField()
    amount_currency = serializers.CharField()
    created_at = LagoDateTimeField()
    description = TextOrNull()
    taxes = TaxSerializer(many=True)

    def to_representation(self, add_on: AddOn) -> dict:
        data = super().to_representation(add_on)
        data["taxes"] = sorted(data["taxes"], key=lambda tax: tax["code"])
        return data


# --- coupons -----------------------------------------------------------------------------------


class CouponLimitationInput(serializers.Serializer):
    plan_codes = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True
    )
    billable_metric_codes = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True
    )


class CouponInput(serializers.Serializer):
    name = _text(max_length=255)
    code = _text(max_length=255)
    description = _text()
    coupon_type = _text()
    amount_cents = serializers.IntegerField(required=False, allow_null=True)
    amount_currency = _text(max_length=3)
    percentage_rate = serializers.DecimalField(
        max_digits=12, decimal_places=5, required=False, allow_null=True
    )
    frequency = _text()
    frequency_duration = serializers.IntegerField(required=False, allow_null=True)
    reusable = serializers.BooleanField(required=False, allow_null=True)
    expiration = _text()
    expiration_at = LagoDateTimeInput(required=False, allow_null=True)
    applies_to = CouponLimitationInput(required=False, allow_null=True)

    def validate(self, attrs: dict) -> dict:
        for field in ("coupon_type", "frequency", "expiration", "amount_currency"):
            if attrs.get(field) == "":
                attrs[field] = None
        return attrs


class CouponSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    name = serializers.CharField()
    code = serializers.CharField()
    description = TextOrNull()
    coupon_type = serializers.CharField()
    amount_cents = serializers.IntegerField(allow_null=True)
    amount_currency = TextOrNull()
    percentage_rate = serializers.SerializerMethodField()
    frequency = serializers.CharField()
    frequency_duration = serializers.IntegerField(allow_null=True)
    reusable = serializers.BooleanField()
    limited_plans = serializers.BooleanField()
    limited_billable_metrics = serializers.BooleanField()
    plan_codes = serializers.SerializerMethodField()
    billable_metric_codes = serializers.SerializerMethodField()
    created_at = LagoDateTimeField()
    expiration = serializers.CharField()
    expiration_at = LagoDateTimeField(allow_null=True)
    terminated_at = LagoDateTimeField(allow_null=True)

    def get_percentage_rate(self, coupon: Coupon) -> str | None:
        return decimal_string(coupon.percentage_rate)

    def get_plan_codes(self, coupon: Coupon) -> list[str]:
        return sorted(plan.code for plan in coupon.plans.all() if plan.deleted_at is None)

    def get_billable_metric_codes(self, coupon: Coupon) -> list[str]:
        return sorted(m.code for m in coupon.billable_metrics.all() if m.deleted_at is None)
