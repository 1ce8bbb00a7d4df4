"""Lago wire shapes of invoices (spec §12.1): `InvoiceObject` out, one-off/update/void in."""

from __future__ import annotations

from django.core import signing
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api.fields import (
    MAX_CENTS,
    DecimalInput,
    LagoDateTimeField,
    LagoDateTimeInput,
    RateField,
    TextOrNull,
    lago_datetime,
)
from customers.models import Customer, Subscription
from customers.representations import CustomerSerializer, SubscriptionSerializer
from invoicing.api.fee_serializers import FeeSerializer
from invoicing.models import AppliedUsageThreshold, Credit, Invoice, InvoiceSubscription
from plans.choices import CouponFrequency, CouponType

FILE_SALT = "invoicing.invoice-file"
FILE_URL_MAX_AGE = 7 * 24 * 3600  # seconds a signed `file_url` stays valid


def invoice_file_token(invoice: Invoice) -> str:
    """A signed, expiring token naming the invoice whose PDF the file view streams."""
    return signing.dumps(str(invoice.pk), salt=FILE_SALT)


def invoice_id_from_file_token(token: str) -> str | None:
    try:
        return signing.loads(token, salt=FILE_SALT, max_age=FILE_URL_MAX_AGE)
    except signing.BadSignature:
        return None


def invoice_file_url(invoice: Invoice, request: object | None) -> str | None:
    """The PDF's URL (absolute when a request is known), or None before it is rendered."""
    if not invoice.file:
        return None
    path = reverse("invoice-file", kwargs={"token": invoice_file_token(invoice)})
    return request.build_absolute_uri(path) if request is not None else path


class InvoiceMetadataSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    key = serializers.CharField()
    value = serializers.CharField()
    created_at = LagoDateTimeField()


class InvoiceAppliedTaxSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    lago_invoice_id = serializers.UUIDField(source="invoice_id")
    lago_tax_id = serializers.UUIDField(source="tax_id", allow_null=True)
    tax_name = serializers.CharField()
    tax_code = serializers.CharField()
    tax_rate = RateField()
    tax_description = TextOrNull()
    amount_cents = serializers.IntegerField()
    amount_currency = serializers.CharField(source="invoice.currency")
    fees_amount_cents = serializers.IntegerField()
    created_at = LagoDateTimeField()


class CreditItemSerializer(serializers.Serializer):
    lago_item_id = serializers.UUIDField(allow_null=True)
    type = serializers.CharField()
    code = serializers.CharField(allow_null=True)
    name = serializers.CharField(allow_null=True)


class CreditInvoiceSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField()
    payment_status = serializers.CharField()


class CreditSerializer(serializers.Serializer):
    """A deduction on the invoice: coupon, progressive billing credit or credit note."""

    lago_id = serializers.UUIDField(source="id")
    amount_cents = serializers.IntegerField()
    amount_currency = serializers.CharField()
    before_taxes = serializers.BooleanField()
    item = serializers.SerializerMethodField()
    invoice = serializers.SerializerMethodField()

    @extend_schema_field(CreditItemSerializer)
    def get_item(self, credit: Credit) -> dict:
        if credit.applied_coupon_id:
            coupon = credit.applied_coupon.coupon
            return {
                "lago_item_id": str(coupon.pk),
                "type": "coupon",
                "code": coupon.code,
                "name": coupon.name,
            }
        if credit.progressive_billing_invoice_id:
            billed = credit.progressive_billing_invoice
            return {
                "lago_item_id": str(billed.pk),
                "type": "invoice",
                "code": billed.number,
                "name": billed.number,
            }
        credit_note = getattr(credit, "credit_note", None)
        return {
            "lago_item_id": str(credit_note.pk) if credit_note is not None else None,
            "type": "credit_note",
            "code": getattr(credit_note, "number", None),
            "name": getattr(credit_note, "number", None),
        }

    @extend_schema_field(CreditInvoiceSerializer)
    def get_invoice(self, credit: Credit) -> dict:
        return {"lago_id": str(credit.invoice_id), "payment_status": credit.invoice.payment_status}


class BillingPeriodSerializer(serializers.Serializer):
    """`billing_periods[]`: what each subscription of the invoice is billed for."""

    lago_subscription_id = serializers.UUIDField(source="subscription_id")
    external_subscription_id = serializers.CharField(source="subscription.external_id")
    lago_plan_id = serializers.UUIDField(source="subscription.plan_id")
    subscription_from_datetime = serializers.SerializerMethodField()
    subscription_to_datetime = serializers.SerializerMethodField()
    charges_from_datetime = serializers.SerializerMethodField()
    charges_to_datetime = serializers.SerializerMethodField()
    invoicing_reason = serializers.CharField()

    @extend_schema_field({"type": "string", "format": "date-time"})
    def get_subscription_from_datetime(self, period: InvoiceSubscription) -> str | None:
        return lago_datetime(period.from_datetime)

    @extend_schema_field({"type": "string", "format": "date-time"})
    def get_subscription_to_datetime(self, period: InvoiceSubscription) -> str | None:
        return lago_datetime(period.to_datetime)

    @extend_schema_field({"type": "string", "format": "date-time"})
    def get_charges_from_datetime(self, period: InvoiceSubscription) -> str | None:
        return lago_datetime(period.charges_from_datetime or period.from_datetime)

    @extend_schema_field({"type": "string", "format": "date-time"})
    def get_charges_to_datetime(self, period: InvoiceSubscription) -> str | None:
        return lago_datetime(period.charges_to_datetime or period.to_datetime)


class ErrorDetailSerializer(serializers.Serializer):
    lago_id = serializers.CharField(allow_null=True)
    error_code = serializers.CharField()
    details = serializers.DictField(allow_null=True)


def applied_usage_threshold_payload(applied: AppliedUsageThreshold) -> dict:
    """Lago's `AppliedUsageThresholdSerializer`: a threshold a progressive billing invoice was
    issued for, with the lifetime usage then."""
    threshold = applied.usage_threshold
    return {
        "lifetime_usage_amount_cents": applied.lifetime_usage_amount_cents,
        "created_at": LagoDateTimeField().to_representation(applied.created_at),
        "usage_threshold": {
            "lago_id": str(threshold.pk),
            "threshold_display_name": threshold.threshold_display_name or None,
            "amount_cents": threshold.amount_cents,
            "recurring": threshold.recurring,
            "created_at": LagoDateTimeField().to_representation(threshold.created_at),
            "updated_at": LagoDateTimeField().to_representation(threshold.updated_at),
        },
    }


class InvoiceScalarSerializer(serializers.Serializer):
    """The amounts, dates and statuses of an `InvoiceObject` (spec §12.1), no relations."""

    lago_id = serializers.UUIDField(source="id")
    billing_entity_code = serializers.CharField(source="billing_entity.code")
    sequential_id = serializers.IntegerField(allow_null=True)
    number = serializers.CharField()
    issuing_date = serializers.DateField()
    payment_due_date = serializers.DateField()
    net_payment_term = serializers.IntegerField()
    invoice_type = serializers.CharField()
    status = serializers.CharField()
    payment_status = serializers.CharField()
    payment_dispute_lost_at = LagoDateTimeField(allow_null=True)
    payment_overdue = serializers.BooleanField()
    currency = serializers.CharField()
    fees_amount_cents = serializers.IntegerField()
    taxes_amount_cents = serializers.IntegerField()
    progressive_billing_credit_amount_cents = serializers.IntegerField()
    coupons_amount_cents = serializers.IntegerField()
    credit_notes_amount_cents = serializers.IntegerField()
    sub_total_excluding_taxes_amount_cents = serializers.IntegerField()
    sub_total_including_taxes_amount_cents = serializers.IntegerField()
    total_amount_cents = serializers.IntegerField()
    total_due_amount_cents = serializers.SerializerMethodField()
    total_paid_amount_cents = serializers.IntegerField()
    total_offsetted_credit_note_amount_cents = serializers.IntegerField()
    prepaid_credit_amount_cents = serializers.IntegerField()
    prepaid_granted_credit_amount_cents = serializers.IntegerField()
    prepaid_purchased_credit_amount_cents = serializers.IntegerField()
    file_url = serializers.SerializerMethodField()
    xml_url = serializers.SerializerMethodField()
    version_number = serializers.IntegerField()
    self_billed = serializers.BooleanField()
    created_at = LagoDateTimeField()
    updated_at = LagoDateTimeField()
    voided_at = LagoDateTimeField(allow_null=True)

    def get_total_due_amount_cents(self, invoice: Invoice) -> int:
        if invoice.status == Invoice.Status.VOIDED:
            return 0
        return max(
            invoice.total_amount_cents
            - invoice.total_paid_amount_cents
            - invoice.total_offsetted_credit_note_amount_cents,
            0,
        )

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_file_url(self, invoice: Invoice) -> str | None:
        return invoice_file_url(invoice, self.context.get("request"))

    @extend_schema_field({"type": "string", "nullable": True})
    def get_xml_url(self, invoice: Invoice) -> str | None:
        return None  # e-invoicing XML is not produced

    def to_representation(self, instance: Invoice) -> dict:
        data = super().to_representation(instance)
        if instance.invoice_type == Invoice.InvoiceType.PROGRESSIVE_BILLING:
            data["applied_usage_thresholds"] = [
                applied_usage_threshold_payload(applied)
                for applied in instance.applied_usage_thresholds.all()
            ]
        return data


class InvoiceListSerializer(InvoiceScalarSerializer):
    """`InvoiceObject` as listed: with customer, metadata and applied taxes."""

    customer = CustomerSerializer()
    metadata = InvoiceMetadataSerializer(many=True)
    applied_taxes = InvoiceAppliedTaxSerializer(many=True)


class InvoiceSerializer(InvoiceListSerializer):
    """The full `InvoiceObject`: subscriptions, billing periods, fees, credits."""

    subscriptions = serializers.SerializerMethodField()
    billing_periods = BillingPeriodSerializer(source="invoice_subscriptions", many=True)
    fees = serializers.SerializerMethodField()
    credits = CreditSerializer(many=True)
    error_details = ErrorDetailSerializer(many=True)
    applied_invoice_custom_sections = serializers.SerializerMethodField()

    @extend_schema_field(SubscriptionSerializer(many=True))
    def get_subscriptions(self, invoice: Invoice) -> list[dict]:
        seen, subscriptions = set(), []
        for period in invoice.invoice_subscriptions.all():
            if period.subscription_id not in seen:
                seen.add(period.subscription_id)
                subscriptions.append(period.subscription)
        return SubscriptionSerializer(subscriptions, many=True, context=self.context).data

    @extend_schema_field(FeeSerializer(many=True))
    def get_fees(self, invoice: Invoice) -> list[dict]:
        fees = [fee for fee in invoice.fees.all() if fee.deleted_at is None]
        return FeeSerializer(fees, many=True, context=self.context).data

    @extend_schema_field({"type": "array", "items": {"type": "object"}})
    def get_applied_invoice_custom_sections(self, invoice: Invoice) -> list[dict]:
        return []  # invoice custom sections are not modelled


# --- input ------------------------------------------------------------------------------------


def _text(**kwargs: object) -> serializers.CharField:
    return serializers.CharField(required=False, allow_null=True, allow_blank=True, **kwargs)


class OneOffFeeInput(serializers.Serializer):
    add_on_code = serializers.CharField()
    unit_amount_cents = serializers.IntegerField(
        required=False, allow_null=True, max_value=MAX_CENTS
    )
    units = DecimalInput(required=False, allow_null=True)
    invoice_display_name = _text(max_length=255)
    description = _text()
    from_datetime = LagoDateTimeInput(required=False, allow_null=True)
    to_datetime = LagoDateTimeInput(required=False, allow_null=True)
    tax_codes = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True
    )


class InvoiceOneOffInput(serializers.Serializer):
    """`{"invoice": {...}}` of POST /invoices."""

    external_customer_id = _text()
    currency = _text()
    billing_entity_code = _text()
    fees = OneOffFeeInput(many=True, required=False)
    skip_psp = serializers.BooleanField(required=False, default=False)
    purchase_order_number = _text()
    invoice_custom_section = serializers.DictField(required=False, allow_null=True)
    payment_method = serializers.DictField(required=False, allow_null=True)


class InvoiceMetadataInput(serializers.Serializer):
    id = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    key = serializers.CharField(max_length=255)
    value = serializers.CharField(required=False, allow_null=True, allow_blank=True)


class InvoiceUpdateInput(serializers.Serializer):
    """`{"invoice": {payment_status, metadata}}` of PUT /invoices/{id}."""

    payment_status = serializers.CharField(required=False)
    metadata = InvoiceMetadataInput(many=True, required=False)


class InvoiceVoidInput(serializers.Serializer):
    """Top-level body of POST /invoices/{id}/void (Lago does not wrap it)."""

    generate_credit_note = serializers.BooleanField(required=False, allow_null=True)
    credit_amount = serializers.IntegerField(required=False, min_value=0, max_value=MAX_CENTS)
    refund_amount = serializers.IntegerField(required=False, min_value=0, max_value=MAX_CENTS)


# --- preview (spec §12.11) --------------------------------------------------------------------


class PreviewCustomerInput(serializers.Serializer):
    external_id = _text()
    name = _text()
    tax_identification_number = _text()
    currency = _text()
    timezone = _text()
    address_line1 = _text()
    address_line2 = _text()
    city = _text()
    zipcode = _text()
    state = _text()
    country = _text()
    shipping_address = serializers.DictField(required=False, allow_null=True)
    integration_customers = serializers.ListField(required=False, allow_null=True)


class PreviewCouponInput(serializers.Serializer):
    code = _text()
    name = _text()
    coupon_type = serializers.ChoiceField(choices=CouponType.values)
    amount_cents = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    amount_currency = _text()
    percentage_rate = DecimalInput(required=False, allow_null=True)
    frequency = serializers.ChoiceField(
        choices=CouponFrequency.values, required=False, default=CouponFrequency.ONCE.value
    )
    frequency_duration = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    frequency_duration_remaining = serializers.IntegerField(
        required=False, allow_null=True, min_value=0
    )


class PreviewSubscriptionsInput(serializers.Serializer):
    external_ids = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True
    )
    plan_code = _text()
    terminated_at = LagoDateTimeInput(required=False, allow_null=True)


class InvoicePreviewInput(serializers.Serializer):
    """Top-level body of POST /invoices/preview (Lago does not wrap it)."""

    customer = PreviewCustomerInput(required=False)
    plan_code = _text()
    billing_time = serializers.ChoiceField(  # null: calendar, as Lago's BuildSubscriptionService
        choices=["calendar", "anniversary"], required=False, default="calendar", allow_null=True
    )
    subscription_at = LagoDateTimeInput(required=False, allow_null=True)
    coupons = PreviewCouponInput(many=True, required=False, allow_null=True)
    subscriptions = PreviewSubscriptionsInput(required=False, allow_null=True)
    billing_entity_code = _text()


def _preview_customer(customer: Customer, context: dict) -> dict:
    if not customer._state.adding:
        return CustomerSerializer(customer, context=context).data
    return {  # an inline customer: only what the request gave
        "lago_id": None,
        "external_id": customer.external_id or None,
        "name": customer.name or None,
        "currency": customer.currency or None,
        "timezone": customer.timezone or None,
        "applicable_timezone": customer.applicable_timezone,
        "billing_entity_code": customer.billing_entity.code,
        "country": customer.country or None,
        "address_line1": customer.address_line1 or None,
        "address_line2": customer.address_line2 or None,
        "city": customer.city or None,
        "zipcode": customer.zipcode or None,
        "state": customer.state or None,
        "tax_identification_number": customer.tax_identification_number or None,
    }


def _preview_subscription(subscription: Subscription, context: dict) -> dict:
    """Lago's V1::SubscriptionSerializer of a previewed subscription; unsaved rows (a new
    subscription, an inline customer) have no id yet."""
    data = SubscriptionSerializer(subscription, context=context).data
    if subscription._state.adding:
        data["lago_id"] = None
    if subscription.customer._state.adding:
        data["lago_customer_id"] = None
    return data


def _preview_credit_item(credit: Credit, context: dict) -> dict:
    """V1::CreditSerializer's `item` of a previewed coupon credit."""
    if credit.applied_coupon is not None:
        coupon = credit.applied_coupon.coupon
        return {"lago_item_id": str(coupon.pk), "type": "coupon", "code": coupon.code,
                "name": coupon.name}  # fmt: skip
    key = getattr(credit, "preview_coupon_key", None)
    unnamed = {"lago_item_id": None, "type": "coupon", "code": None, "name": None}
    return context.get("coupon_items", {}).get(key, unnamed)


def preview_representation(preview: object, context: dict) -> dict:
    """An `invoice_preview` result (unsaved rows) as Lago's preview InvoiceObject."""
    invoice = preview.invoice
    data = InvoiceScalarSerializer(invoice, context=context).data
    data["customer"] = _preview_customer(invoice.customer, context)
    data["subscriptions"] = [_preview_subscription(s, context) for s in preview.subscriptions]
    data["fees"] = FeeSerializer(preview.fees, many=True, context=context).data
    data["credits"] = [
        {
            "lago_id": None,
            "amount_cents": credit.amount_cents,
            "amount_currency": credit.amount_currency,
            "before_taxes": credit.before_taxes,
            "item": _preview_credit_item(credit, context),
            "invoice": {"lago_id": None, "payment_status": invoice.payment_status},
        }
        for credit in preview.credits
    ]
    data["applied_taxes"] = [
        {**row, "lago_id": None, "lago_invoice_id": None}
        for row in InvoiceAppliedTaxSerializer(preview.applied_taxes, many=True).data
    ]
    data["lago_id"] = None
    return data
