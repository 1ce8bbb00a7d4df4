"""Lago wire shapes of customers and applied coupons (spec §3.1, §15.2)."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing import money
from billing.money import parse_decimal
from customers import hooks
from customers.models import AppliedCoupon, Customer, CustomerMetadata
from customers.services.customers import SHIPPING_ADDRESS_KEYS
from plans.models import CouponFrequency, CouponType, Tax

LAGO_DATETIME = "%Y-%m-%dT%H:%M:%SZ"  # spec §1.1: ISO 8601 in UTC, to the second
MAX_DAYS = 2**31 - 1  # positive integer columns (days, periods)
MAX_CENTS = 2**63 - 1  # bigint amount columns


class LagoDateTimeField(serializers.DateTimeField):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(format=LAGO_DATETIME, **kwargs)


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


def decimal_string(value: Decimal | None) -> str | None:
    """Lago renders decimals as strings with at least one decimal: 10 -> "10.0"; None: null."""
    return None if value is None else money.decimal_string(value)


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


# --- customers: output ----------------------------------------------------------------------


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
    """`CustomerObject` (spec §3.1)."""

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
        config = customer.billing_configuration or {}
        return {
            "invoice_grace_period": customer.invoice_grace_period,
            "payment_provider": config.get("payment_provider"),
            "payment_provider_code": config.get("payment_provider_code"),
            "provider_customer_id": config.get("provider_customer_id"),
            "sync": config.get("sync"),
            "sync_with_provider": config.get("sync_with_provider"),
            "document_locale": customer.document_locale or None,
            "provider_payment_methods": config.get("provider_payment_methods"),
            "subscription_invoice_issuing_date_anchor": config.get(
                "subscription_invoice_issuing_date_anchor"
            ),
            "subscription_invoice_issuing_date_adjustment": config.get(
                "subscription_invoice_issuing_date_adjustment"
            ),
        }

    def get_shipping_address(self, customer: Customer) -> dict:
        stored = customer.shipping_address or {}
        return {key: stored.get(key) or None for key in SHIPPING_ADDRESS_KEYS}

    def get_integration_customers(self, customer: Customer) -> list[dict]:
        return []  # accounting/CRM integrations are not modelled yet

    def get_applicable_invoice_custom_sections(self, customer: Customer) -> list[dict]:
        return []  # invoice custom sections are not modelled yet


# --- applied coupons ------------------------------------------------------------------------


class AppliedCouponInput(serializers.Serializer):
    """`{"applied_coupon": {...}}`: the customer, the coupon and per-customer terms."""

    # Lago looks both up as given: a missing one is a 404, not a 422.
    external_customer_id = _text()
    coupon_code = _text()
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
        self.context["coupon_credits"] = hooks.coupon_credits(
            applied_coupon_ids=[applied.pk for applied in applied_coupons]
        )
        return super().to_representation(applied_coupons)


class AppliedCouponSerializer(serializers.Serializer):
    """`AppliedCouponObject` (spec §15.2); `credits` only in lists, as Lago."""

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

    def _credits(self, applied_coupon: AppliedCoupon) -> list[hooks.CouponCredit]:
        page = self.context.get("coupon_credits")
        if page is None:  # a single object (apply, terminate)
            page = hooks.coupon_credits(applied_coupon_ids=[applied_coupon.pk])
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


def coupon_credit_object(applied_coupon: AppliedCoupon, credit: hooks.CouponCredit) -> dict:
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
