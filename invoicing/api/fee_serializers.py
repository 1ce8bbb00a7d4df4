"""Lago wire shapes of fees (spec §13): `FeeObject` out, `{fee: {payment_status}}` in."""

from __future__ import annotations

from decimal import Decimal

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api.fields import (
    DECIMAL_STRING,
    NULLABLE_DATETIME,
    NULLABLE_DECIMAL_STRING,
    NULLABLE_UUID,
    DecimalString,
    LagoDateTimeField,
    RateField,
    TextOrNull,
    decimal_string,
    lago_datetime,
)
from billing.money import round_cents, to_major
from invoicing.models import Fee
from invoicing.presenters import fee_item, fee_window


class FeeAppliedTaxSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    lago_fee_id = serializers.UUIDField(source="fee_id")
    lago_tax_id = serializers.UUIDField(source="tax_id", allow_null=True)
    tax_name = serializers.CharField()
    tax_code = serializers.CharField()
    tax_rate = RateField()
    tax_description = TextOrNull()
    amount_cents = serializers.IntegerField()
    amount_currency = serializers.CharField(source="fee.amount_currency")
    created_at = LagoDateTimeField()


class FeeItemSerializer(serializers.Serializer):
    """`item` of a fee: what it bills (a metric, an add-on, a plan, credits, a commitment)."""

    type = serializers.CharField()
    code = serializers.CharField(allow_null=True)
    name = serializers.CharField(allow_null=True)
    description = serializers.CharField(allow_null=True)
    invoice_display_name = serializers.CharField(allow_null=True)
    filters = serializers.DictField(child=serializers.ListField(), allow_null=True)
    filter_invoice_display_name = serializers.CharField(allow_null=True)
    lago_item_id = serializers.UUIDField(allow_null=True)
    item_type = serializers.CharField()
    grouped_by = serializers.DictField()


def fee_boundaries(fee: Fee) -> tuple[str | None, str | None]:
    """(from_date, to_date) as Lago renders them: the fee's window (`presenters.fee_window`)."""
    start, end = fee_window(fee)
    return lago_datetime(start), lago_datetime(end)


class FeeSerializer(serializers.Serializer):
    """`FeeObject`."""

    lago_id = serializers.UUIDField(source="id")
    lago_charge_id = serializers.UUIDField(source="charge_id", allow_null=True)
    lago_charge_filter_id = serializers.UUIDField(source="charge_filter_id", allow_null=True)
    lago_fixed_charge_id = serializers.UUIDField(source="fixed_charge_id", allow_null=True)
    lago_invoice_id = serializers.UUIDField(source="invoice_id", allow_null=True)
    lago_true_up_fee_id = serializers.SerializerMethodField()
    lago_true_up_parent_fee_id = serializers.UUIDField(
        source="true_up_parent_fee_id", allow_null=True
    )
    lago_subscription_id = serializers.UUIDField(source="subscription_id", allow_null=True)
    external_subscription_id = serializers.SerializerMethodField()
    lago_customer_id = serializers.UUIDField(source="customer_id")
    external_customer_id = serializers.CharField(source="customer.external_id")
    item = serializers.SerializerMethodField()
    pay_in_advance = serializers.SerializerMethodField()
    invoiceable = serializers.SerializerMethodField()
    amount_cents = serializers.IntegerField()
    amount_currency = serializers.CharField()
    precise_amount = serializers.SerializerMethodField()
    precise_total_amount = serializers.SerializerMethodField()
    taxes_amount_cents = serializers.IntegerField()
    taxes_precise_amount = serializers.SerializerMethodField()
    taxes_rate = RateField()
    total_aggregated_units = serializers.SerializerMethodField()
    total_amount_cents = serializers.SerializerMethodField()
    total_amount_currency = serializers.CharField(source="amount_currency")
    units = DecimalString()
    description = TextOrNull()
    precise_unit_amount = DecimalString()
    precise_coupons_amount_cents = DecimalString()
    sub_total_excluding_taxes_amount_cents = serializers.SerializerMethodField()
    sub_total_excluding_taxes_precise_amount_cents = serializers.SerializerMethodField()
    events_count = serializers.IntegerField()
    payment_status = serializers.CharField()
    created_at = LagoDateTimeField(allow_null=True)  # unsaved (preview) fees have none
    succeeded_at = LagoDateTimeField(allow_null=True)
    failed_at = LagoDateTimeField(allow_null=True)
    refunded_at = LagoDateTimeField(allow_null=True)
    amount_details = serializers.JSONField()
    self_billed = serializers.SerializerMethodField()
    pricing_unit_details = serializers.SerializerMethodField()
    from_date = serializers.SerializerMethodField()
    to_date = serializers.SerializerMethodField()
    event_transaction_id = serializers.SerializerMethodField()
    applied_taxes = serializers.SerializerMethodField()
    presentation_breakdowns = serializers.JSONField()

    @extend_schema_field(NULLABLE_UUID)
    def get_lago_true_up_fee_id(self, fee: Fee) -> str | None:
        true_up = getattr(fee, "true_up_fee", None)  # reverse one-to-one: None when absent
        return str(true_up.pk) if true_up is not None else None

    def get_external_subscription_id(self, fee: Fee) -> str | None:
        return fee.subscription.external_id if fee.subscription_id else None

    @extend_schema_field(FeeItemSerializer)
    def get_item(self, fee: Fee) -> dict:
        return fee_item(fee)

    def get_pay_in_advance(self, fee: Fee) -> bool:
        if fee.fee_type == Fee.FeeType.SUBSCRIPTION and fee.subscription_id:
            return fee.subscription.plan.pay_in_advance
        if fee.fee_type == Fee.FeeType.FIXED_CHARGE and fee.fixed_charge_id:
            return fee.fixed_charge.pay_in_advance
        return fee.pay_in_advance if fee.fee_type == Fee.FeeType.CHARGE else False

    def get_invoiceable(self, fee: Fee) -> bool:
        if fee.fee_type == Fee.FeeType.CHARGE and fee.charge_id:
            return fee.charge.invoiceable
        return True

    def _major(self, fee: Fee, cents: Decimal) -> str | None:
        return decimal_string(to_major(cents, fee.amount_currency))

    @extend_schema_field(DECIMAL_STRING)
    def get_precise_amount(self, fee: Fee) -> str | None:
        return self._major(fee, fee.precise_amount_cents)

    @extend_schema_field(DECIMAL_STRING)
    def get_precise_total_amount(self, fee: Fee) -> str | None:
        return self._major(fee, fee.precise_amount_cents + fee.taxes_precise_amount_cents)

    @extend_schema_field(DECIMAL_STRING)
    def get_taxes_precise_amount(self, fee: Fee) -> str | None:
        return self._major(fee, fee.taxes_precise_amount_cents)

    @extend_schema_field(NULLABLE_DECIMAL_STRING)
    def get_total_aggregated_units(self, fee: Fee) -> str | None:
        return decimal_string(fee.total_aggregated_units)

    def get_total_amount_cents(self, fee: Fee) -> int:
        return fee.amount_cents + fee.taxes_amount_cents

    def get_sub_total_excluding_taxes_amount_cents(self, fee: Fee) -> int:
        return round_cents(fee.amount_cents - fee.precise_coupons_amount_cents)

    @extend_schema_field(DECIMAL_STRING)
    def get_sub_total_excluding_taxes_precise_amount_cents(self, fee: Fee) -> str | None:
        return decimal_string(fee.precise_amount_cents - fee.precise_coupons_amount_cents)

    def get_self_billed(self, fee: Fee) -> bool:
        return bool(fee.invoice_id and fee.invoice.self_billed)

    @extend_schema_field({"type": "object", "nullable": True})
    def get_pricing_unit_details(self, fee: Fee) -> dict | None:
        return None  # pricing units are not modelled

    @extend_schema_field(NULLABLE_DATETIME)
    def get_from_date(self, fee: Fee) -> str | None:
        return fee_boundaries(fee)[0]

    @extend_schema_field(NULLABLE_DATETIME)
    def get_to_date(self, fee: Fee) -> str | None:
        return fee_boundaries(fee)[1]

    def get_event_transaction_id(self, fee: Fee) -> str | None:
        return fee.pay_in_advance_event_transaction_id or None

    @extend_schema_field(FeeAppliedTaxSerializer(many=True))
    def get_applied_taxes(self, fee: Fee) -> list[dict]:
        preview = getattr(fee, "preview_applied_taxes", None)  # an unsaved preview fee
        rows = preview if preview is not None else fee.applied_taxes.all()
        return FeeAppliedTaxSerializer(rows, many=True).data


class FeeUpdateInput(serializers.Serializer):
    """`{"fee": {"payment_status": ...}}`."""

    payment_status = serializers.CharField()
