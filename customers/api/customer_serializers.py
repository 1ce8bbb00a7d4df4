"""Lago wire shapes of customer inputs and applied coupons (spec §3.1, §15.2); the
`CustomerObject` out is `customers.representations.CustomerSerializer`."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api.fields import (
    MAX_CENTS,
    MAX_DAYS,
    DecimalInput,
    LagoDateTimeField,
    TextOrNull,
    decimal_string,
)
from customers import ports
from customers.models import AppliedCoupon
from plans.models import CouponFrequency, CouponType

# --- customers: input -----------------------------------------------------------------------


def _text(**kwargs: object) -> serializers.CharField:
    return serializers.CharField(required=False, allow_null=True, allow_blank=True, **kwargs)


class AddressInput(serializers.Serializer):
    address_line1 = _text()
    address_line2 = _text()
    city = _text()
    zipcode = _text()
    state = _text()
    country = _text()


class CustomerBillingConfigurationInput(serializers.Serializer):
    invoice_grace_period = serializers.IntegerField(
        required=False, allow_null=True, max_value=MAX_DAYS
    )
    subscription_invoice_issuing_date_anchor = _text()
    subscription_invoice_issuing_date_adjustment = _text()
    payment_provider = _text()
    payment_provider_code = _text()
    provider_customer_id = _text()
    sync = serializers.BooleanField(required=False, allow_null=True)
    sync_with_provider = serializers.BooleanField(required=False, allow_null=True)
    document_locale = _text()
    provider_payment_methods = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True
    )


class MetadataInput(serializers.Serializer):
    id = _text()
    key = _text(trim_whitespace=False)
    value = _text(trim_whitespace=False)
    display_in_invoice = serializers.BooleanField(required=False, allow_null=True)


class CustomerInput(serializers.Serializer):
    """`{"customer": {...}}` of POST /customers; lengths and values are checked by the service."""

    external_id = serializers.CharField()
    billing_entity_code = _text()
    account_type = _text()
    customer_type = _text()
    name = _text()
    firstname = _text()
    lastname = _text()
    legal_name = _text()
    legal_number = _text()
    email = _text()
    phone = _text()
    url = _text()
    logo_url = _text()
    address_line1 = _text()
    address_line2 = _text()
    city = _text()
    state = _text()
    zipcode = _text()
    country = _text()
    shipping_address = AddressInput(required=False, allow_null=True)
    currency = _text()
    timezone = _text()
    tax_identification_number = _text()
    net_payment_term = serializers.IntegerField(required=False, allow_null=True, max_value=MAX_DAYS)
    finalize_zero_amount_invoice = _text()
    skip_invoice_custom_sections = serializers.BooleanField(required=False, allow_null=True)
    billing_configuration = CustomerBillingConfigurationInput(required=False, allow_null=True)
    metadata = serializers.ListField(child=MetadataInput(), required=False, allow_null=True)
    tax_codes = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True
    )
    # Accepted for wire compatibility; invoice custom sections and accounting/CRM integration
    # customers are not modelled yet, so the values are not kept.
    invoice_custom_section_codes = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True
    )
    integration_customers = serializers.ListField(
        child=serializers.DictField(), required=False, allow_null=True
    )

    def validate(self, attrs: dict) -> dict:
        # Empty strings mean "unset" for these choices, as Lago's enums do with "".
        for field in ("account_type", "customer_type", "finalize_zero_amount_invoice"):
            if attrs.get(field) == "":
                attrs[field] = None
        attrs.pop("invoice_custom_section_codes", None)
        attrs.pop("integration_customers", None)
        return _plain(attrs)


def _plain(value: object) -> object:
    """OrderedDicts and ReturnLists -> dicts and lists (services get plain values)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


# --- applied coupons ------------------------------------------------------------------------


class AppliedCouponInput(serializers.Serializer):
    """`{"applied_coupon": {...}}`: the customer, the coupon and per-customer terms."""

    # Lago looks both up as given: a blank one is a 404; an absent one is a 422.
    external_customer_id = serializers.CharField(allow_null=True, allow_blank=True)
    coupon_code = serializers.CharField(allow_null=True, allow_blank=True)
    amount_cents = serializers.IntegerField(required=False, allow_null=True, max_value=MAX_CENTS)
    amount_currency = _text()
    percentage_rate = DecimalInput(required=False, allow_null=True)
    frequency = _text()
    frequency_duration = serializers.IntegerField(
        required=False, allow_null=True, max_value=MAX_DAYS
    )

    def validate(self, attrs: dict) -> dict:
        return {key: (None if value == "" else value) for key, value in attrs.items()}


class AppliedCouponListSerializer(serializers.ListSerializer):
    """Reads the credits of the whole page at once (one query, not one per applied coupon)."""

    def to_representation(self, data: object) -> list:
        applied_coupons = list(data.all() if hasattr(data, "all") else data)
        self.context["coupon_credits"] = ports.coupon_credits(
            applied_coupon_ids=[applied.pk for applied in applied_coupons]
        )
        return super().to_representation(applied_coupons)


class AppliedCouponSerializer(serializers.Serializer):
    """`AppliedCouponObject`; `credits` only in lists, as Lago."""

    lago_id = serializers.UUIDField(source="id")
    lago_coupon_id = serializers.UUIDField(source="coupon_id")
    coupon_code = serializers.CharField(source="coupon.code")
    coupon_name = serializers.CharField(source="coupon.name")
    lago_customer_id = serializers.UUIDField(source="customer_id")
    external_customer_id = serializers.CharField(source="customer.external_id")
    status = serializers.CharField()
    amount_cents = serializers.IntegerField(allow_null=True)
    amount_cents_remaining = serializers.SerializerMethodField()
    amount_currency = TextOrNull()
    percentage_rate = serializers.SerializerMethodField()
    frequency = serializers.CharField()
    frequency_duration = serializers.IntegerField(allow_null=True)
    frequency_duration_remaining = serializers.IntegerField(allow_null=True)
    expiration_at = LagoDateTimeField(source="coupon.expiration_at", allow_null=True)
    created_at = LagoDateTimeField()
    terminated_at = LagoDateTimeField(allow_null=True)

    class Meta:
        list_serializer_class = AppliedCouponListSerializer

    def _credits(self, applied_coupon: AppliedCoupon) -> list[ports.CouponCredit]:
        page = self.context.get("coupon_credits")
        if page is None:  # a single object (apply, terminate)
            page = ports.coupon_credits(applied_coupon_ids=[applied_coupon.pk])
        return page.get(applied_coupon.pk, [])

    @extend_schema_field({"type": "integer", "nullable": True})
    def get_amount_cents_remaining(self, applied_coupon: AppliedCoupon) -> int | None:
        if (
            applied_coupon.frequency != CouponFrequency.ONCE
            or applied_coupon.coupon.coupon_type != CouponType.FIXED_AMOUNT
            or applied_coupon.amount_cents is None
        ):
            return None
        # spec §15.3 step 4: the amount minus the credits that still consume the coupon
        used = sum(c.amount_cents for c in self._credits(applied_coupon) if c.consumes)
        return max(applied_coupon.amount_cents - used, 0)

    @extend_schema_field({"type": "string", "example": "12.5", "nullable": True})
    def get_percentage_rate(self, applied_coupon: AppliedCoupon) -> str | None:
        return decimal_string(applied_coupon.percentage_rate)

    def to_representation(self, instance: AppliedCoupon) -> dict:
        data = super().to_representation(instance)
        if self.context.get("include_credits"):
            data["credits"] = [
                coupon_credit_object(instance, credit) for credit in self._credits(instance)
            ]
        return data


def coupon_credit_object(applied_coupon: AppliedCoupon, credit: ports.CouponCredit) -> dict:
    """Lago's `CreditObject` of a credit drawn from the applied coupon."""
    coupon = applied_coupon.coupon
    return {
        "lago_id": str(credit.lago_id),
        "amount_cents": credit.amount_cents,
        "amount_currency": credit.amount_currency,
        "before_taxes": credit.before_taxes,
        "item": {
            "lago_item_id": str(coupon.pk),
            "type": "coupon",
            "code": coupon.code,
            "name": coupon.name,
            "description": coupon.description or None,
        },
        "invoice": {
            "lago_id": str(credit.invoice_id),
            "payment_status": credit.invoice_payment_status,
        },
    }
