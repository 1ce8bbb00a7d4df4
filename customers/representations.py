"""Lago's wire objects of customers and subscriptions (spec §3.1, §9.1), rendered by this app's
API and embedded in other apps' objects (an invoice carries its customer and subscriptions).

These output shapes are the app's public rendering; request inputs, filters and views stay in
`customers.api`, which no other app imports.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api.fields import (
    NULLABLE_DATETIME,
    LagoDateTimeField,
    PaymentMethodOutput,
    TextOrNull,
    lago_datetime,
)
from customers.models import Customer, CustomerMetadata, Subscription
from customers.services.customers import SHIPPING_ADDRESS_KEYS
from customers.services.subscription_reads import subscription_current_period, subscription_next
from plans.models import Tax


class TaxOutput(serializers.ModelSerializer):
    lago_id = serializers.UUIDField(source="id")
    rate = serializers.SerializerMethodField()
    description = TextOrNull()
    created_at = LagoDateTimeField()

    class Meta:
        model = Tax
        fields = ("lago_id", "name", "code", "rate", "description", "applied_to_organization",
                  "created_at")  # fmt: skip

    def get_rate(self, tax: Tax) -> float:
        # Lago renders tax rates as JSON numbers (a percentage, not an amount of money).
        return float(tax.rate)


class CustomerMetadataOutput(serializers.ModelSerializer):
    lago_id = serializers.UUIDField(source="id")
    created_at = LagoDateTimeField()

    class Meta:
        model = CustomerMetadata
        fields = ("lago_id", "key", "value", "display_in_invoice", "created_at")


class CustomerSerializer(serializers.Serializer):
    """`CustomerObject`."""

    lago_id = serializers.UUIDField(source="id")
    billing_entity_code = serializers.CharField(source="billing_entity.code")
    external_id = serializers.CharField()
    account_type = serializers.CharField()
    name = TextOrNull()
    firstname = TextOrNull()
    lastname = TextOrNull()
    customer_type = serializers.CharField(allow_null=True)
    sequential_id = serializers.IntegerField()
    slug = serializers.CharField()
    created_at = LagoDateTimeField()
    updated_at = LagoDateTimeField()
    country = TextOrNull()
    address_line1 = TextOrNull()
    address_line2 = TextOrNull()
    state = TextOrNull()
    zipcode = TextOrNull()
    email = TextOrNull()
    city = TextOrNull()
    url = TextOrNull()
    phone = TextOrNull()
    logo_url = TextOrNull()
    legal_name = TextOrNull()
    legal_number = TextOrNull()
    currency = TextOrNull()
    tax_identification_number = TextOrNull()
    timezone = TextOrNull()
    applicable_timezone = serializers.CharField()
    net_payment_term = serializers.IntegerField(allow_null=True)
    finalize_zero_amount_invoice = serializers.CharField()
    billing_configuration = serializers.SerializerMethodField()
    shipping_address = serializers.SerializerMethodField()
    skip_invoice_custom_sections = serializers.BooleanField()
    metadata = CustomerMetadataOutput(many=True)
    taxes = TaxOutput(many=True)
    integration_customers = serializers.SerializerMethodField()
    applicable_invoice_custom_sections = serializers.SerializerMethodField()

    def get_billing_configuration(self, customer: Customer) -> dict:
        # As Lago's V1::CustomerSerializer#billing_configuration: the provider keys appear only
        # with a payment provider (`provider_payment_methods` only with Stripe), and `sync` is
        # an input that is never answered (it is not among the provider customer's settings).
        config = customer.billing_configuration or {}
        provider = config.get("payment_provider")
        answer = {
            "invoice_grace_period": customer.invoice_grace_period,
            "payment_provider": provider,
            "payment_provider_code": config.get("payment_provider_code"),
            "document_locale": customer.document_locale or None,
            "subscription_invoice_issuing_date_anchor": config.get(
                "subscription_invoice_issuing_date_anchor"
            ),
            "subscription_invoice_issuing_date_adjustment": config.get(
                "subscription_invoice_issuing_date_adjustment"
            ),
        }
        if provider:
            answer["provider_customer_id"] = config.get("provider_customer_id")
            if provider == "stripe":
                answer["provider_payment_methods"] = config.get("provider_payment_methods")
            if config.get("sync_with_provider") is not None:
                answer["sync_with_provider"] = config["sync_with_provider"]
        return answer

    def get_shipping_address(self, customer: Customer) -> dict:
        stored = customer.shipping_address or {}
        return {key: stored.get(key) or None for key in SHIPPING_ADDRESS_KEYS}

    def get_integration_customers(self, customer: Customer) -> list[dict]:
        return []  # accounting/CRM integrations are not modelled yet

    def get_applicable_invoice_custom_sections(self, customer: Customer) -> list[dict]:
        return []  # invoice custom sections are not modelled yet


# --- subscriptions ---------------------------------------------------------------------------


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
    progressive_billing_disabled = serializers.BooleanField()
    payment_method = PaymentMethodOutput(source="*", read_only=True)

    def _period_bounds(self, subscription: Subscription) -> tuple[str | None, str | None]:
        cache = self.context.setdefault("_periods", {})
        if subscription.pk not in cache:
            now = self.context.get("now") or timezone.now()
            period = subscription_current_period(subscription, now=now)
            cache[subscription.pk] = (
                (
                    lago_datetime(period.charges_from_datetime),
                    lago_datetime(period.charges_to_datetime),
                )
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
