"""Lago wire inputs of subscriptions (spec §9.1): create and update; the `SubscriptionObject`
out is `customers.representations.SubscriptionSerializer`."""

from __future__ import annotations

from rest_framework import serializers

from billing.api.fields import LagoDateTimeInput
from customers.models import Subscription

# --------------------------------------------------------------------------------------------
# Input


MAX_CENTS = 2**63 - 1


class SubscriptionUsageThresholdInput(serializers.Serializer):
    """One of `usage_thresholds[]`: a progressive billing threshold of the subscription."""

    threshold_display_name = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=255
    )
    amount_cents = serializers.IntegerField(required=False, allow_null=True, max_value=MAX_CENTS)
    recurring = serializers.BooleanField(required=False, allow_null=True)


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
    subscription_at = LagoDateTimeInput(required=False, allow_null=True)
    ending_at = LagoDateTimeInput(required=False, allow_null=True)
    plan_overrides = serializers.DictField(required=False, allow_null=True)
    consolidate_invoice = serializers.BooleanField(required=False, allow_null=True)
    purchase_order_number = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=255
    )
    usage_thresholds = SubscriptionUsageThresholdInput(many=True, required=False, allow_null=True)
    progressive_billing_disabled = serializers.BooleanField(required=False, allow_null=True)


class SubscriptionUpdateInput(serializers.Serializer):
    """`PUT /subscriptions/{external_id}` body under `subscription`."""

    name = serializers.CharField(required=False, allow_null=True, allow_blank=True, max_length=255)
    ending_at = LagoDateTimeInput(required=False, allow_null=True)
    subscription_at = LagoDateTimeInput(required=False)
    plan_overrides = serializers.DictField(required=False)
    on_termination_credit_note = serializers.CharField(required=False, allow_null=True)
    on_termination_invoice = serializers.CharField(required=False)
    consolidate_invoice = serializers.BooleanField(required=False)
    purchase_order_number = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=255
    )
    usage_thresholds = SubscriptionUsageThresholdInput(many=True, required=False)
    progressive_billing_disabled = serializers.BooleanField(required=False)
