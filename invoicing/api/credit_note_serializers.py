"""Lago wire shapes of credit notes: `CreditNoteObject`, the estimate, and the inputs."""

from __future__ import annotations

from django.core import signing
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api.fields import MAX_CENTS, LagoDateTimeField, RateField, TextOrNull
from billing.money import round_cents
from customers.representations import CustomerSerializer
from invoicing.api.fee_serializers import FeeSerializer
from invoicing.models import CreditNote
from invoicing.services.credit_notes import CreditNoteEstimate

FILE_SALT = "invoicing.credit-note-file"
FILE_URL_MAX_AGE = 7 * 24 * 3600  # seconds a signed `file_url` stays valid


def credit_note_file_token(credit_note: CreditNote) -> str:
    return signing.dumps(str(credit_note.pk), salt=FILE_SALT)


def credit_note_id_from_file_token(token: str) -> str | None:
    try:
        return signing.loads(token, salt=FILE_SALT, max_age=FILE_URL_MAX_AGE)
    except signing.BadSignature:
        return None


def credit_note_file_url(credit_note: CreditNote, request: object | None) -> str | None:
    """The PDF's URL (absolute when a request is known), or None before it is rendered."""
    if not credit_note.file:
        return None
    path = reverse("credit-note-file", kwargs={"token": credit_note_file_token(credit_note)})
    return request.build_absolute_uri(path) if request is not None else path


class CreditNoteItemSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    amount_cents = serializers.IntegerField()
    precise_amount_cents = serializers.SerializerMethodField()
    amount_currency = serializers.CharField()
    fee = FeeSerializer()

    def get_precise_amount_cents(self, item: object) -> str:
        return format(item.precise_amount_cents.normalize(), "f")


class CreditNoteAppliedTaxSerializer(serializers.Serializer):
    lago_id = serializers.UUIDField(source="id")
    lago_credit_note_id = serializers.UUIDField(source="credit_note_id")
    lago_tax_id = serializers.UUIDField(source="tax_id", allow_null=True)
    tax_name = serializers.CharField()
    tax_code = serializers.CharField()
    tax_rate = RateField()
    tax_description = TextOrNull()
    base_amount_cents = serializers.IntegerField()
    amount_cents = serializers.IntegerField()
    amount_currency = serializers.CharField()
    created_at = LagoDateTimeField()


def _decimal_text(value: object) -> str:
    return format(value.normalize(), "f") if value is not None else "0"


class CreditNoteSerializer(serializers.Serializer):
    """The full `CreditNoteObject`."""

    lago_id = serializers.UUIDField(source="id")
    billing_entity_code = serializers.CharField(source="invoice.billing_entity.code")
    sequential_id = serializers.IntegerField()
    number = serializers.CharField()
    lago_invoice_id = serializers.UUIDField(source="invoice_id")
    invoice_number = serializers.CharField(source="invoice.number")
    purchase_order_number = serializers.SerializerMethodField()
    issuing_date = serializers.DateField()
    credit_status = serializers.CharField(allow_null=True)
    refund_status = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    description = TextOrNull()
    currency = serializers.CharField()
    total_amount_cents = serializers.IntegerField()
    precise_total_amount_cents = serializers.SerializerMethodField()
    taxes_amount_cents = serializers.IntegerField()
    precise_taxes_amount_cents = serializers.SerializerMethodField()
    sub_total_excluding_taxes_amount_cents = serializers.IntegerField()
    balance_amount_cents = serializers.IntegerField()
    credit_amount_cents = serializers.IntegerField()
    refund_amount_cents = serializers.IntegerField()
    offset_amount_cents = serializers.IntegerField()
    coupons_adjustment_amount_cents = serializers.IntegerField()
    taxes_rate = RateField()
    created_at = LagoDateTimeField()
    updated_at = LagoDateTimeField()
    file_url = serializers.SerializerMethodField()
    xml_url = serializers.SerializerMethodField()
    self_billed = serializers.BooleanField(source="invoice.self_billed")
    customer = CustomerSerializer()
    items = CreditNoteItemSerializer(many=True)
    applied_taxes = CreditNoteAppliedTaxSerializer(many=True)
    error_details = serializers.SerializerMethodField()

    def get_purchase_order_number(self, credit_note: CreditNote) -> str | None:
        return None  # purchase orders are not modelled on invoices

    def get_precise_total_amount_cents(self, credit_note: CreditNote) -> str:
        items = sum(item.precise_amount_cents for item in credit_note.items.all())
        return _decimal_text(
            items
            - credit_note.precise_coupons_adjustment_amount_cents
            + credit_note.precise_taxes_amount_cents
        )

    def get_precise_taxes_amount_cents(self, credit_note: CreditNote) -> str:
        return _decimal_text(credit_note.precise_taxes_amount_cents)

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_file_url(self, credit_note: CreditNote) -> str | None:
        return credit_note_file_url(credit_note, self.context.get("request"))

    @extend_schema_field({"type": "string", "nullable": True})
    def get_xml_url(self, credit_note: CreditNote) -> str | None:
        return None  # e-invoicing XML is not produced

    @extend_schema_field({"type": "array", "items": {"type": "object"}})
    def get_error_details(self, credit_note: CreditNote) -> list:
        return []

    def to_representation(self, instance: CreditNote) -> dict:
        data = super().to_representation(instance)
        if instance.metadata:  # Lago: the key is present only with metadata
            data["metadata"] = instance.metadata
        return data


class EstimatedItemSerializer(serializers.Serializer):
    lago_fee_id = serializers.UUIDField()
    amount_cents = serializers.IntegerField()


class EstimatedAppliedTaxSerializer(serializers.Serializer):
    lago_tax_id = serializers.UUIDField(allow_null=True)
    tax_name = serializers.CharField()
    tax_code = serializers.CharField()
    tax_rate = RateField()
    tax_description = TextOrNull()
    base_amount_cents = serializers.IntegerField()
    amount_cents = serializers.IntegerField()
    amount_currency = serializers.CharField()


class CreditNoteEstimateSerializer(serializers.Serializer):
    """The `estimated_credit_note` answer."""

    lago_invoice_id = serializers.UUIDField(source="invoice.id")
    invoice_number = serializers.CharField(source="invoice.number")
    currency = serializers.CharField(source="invoice.currency")
    taxes_amount_cents = serializers.IntegerField(source="amounts.taxes_amount_cents")
    precise_taxes_amount_cents = serializers.SerializerMethodField()
    sub_total_excluding_taxes_amount_cents = serializers.IntegerField(
        source="amounts.sub_total_excluding_taxes_amount_cents"
    )
    max_creditable_amount_cents = serializers.IntegerField()
    max_refundable_amount_cents = serializers.IntegerField()
    max_offsettable_amount_cents = serializers.IntegerField()
    coupons_adjustment_amount_cents = serializers.IntegerField(
        source="amounts.coupons_adjustment_amount_cents"
    )
    precise_coupons_adjustment_amount_cents = serializers.SerializerMethodField()
    taxes_rate = RateField(source="amounts.taxes_rate")
    items = serializers.SerializerMethodField()
    applied_taxes = EstimatedAppliedTaxSerializer(many=True)

    def get_precise_taxes_amount_cents(self, estimate: CreditNoteEstimate) -> str:
        return _decimal_text(estimate.amounts.precise_taxes_amount_cents)

    def get_precise_coupons_adjustment_amount_cents(self, estimate: CreditNoteEstimate) -> str:
        return _decimal_text(estimate.amounts.precise_coupons_adjustment_amount_cents)

    @extend_schema_field(EstimatedItemSerializer(many=True))
    def get_items(self, estimate: CreditNoteEstimate) -> list[dict]:
        return [
            {"lago_fee_id": str(fee.pk), "amount_cents": round_cents(amount)}
            for fee, amount in estimate.items
        ]


# --- input ------------------------------------------------------------------------------------


class CreditNoteItemInput(serializers.Serializer):
    fee_id = serializers.CharField()
    amount_cents = serializers.JSONField()


class CreditNoteCreateInput(serializers.Serializer):
    """`{"credit_note": {...}}` of POST /credit_notes (items are checked by the service)."""

    invoice_id = serializers.CharField()
    reason = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    description = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    credit_amount_cents = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_CENTS
    )
    refund_amount_cents = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_CENTS
    )
    offset_amount_cents = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_CENTS
    )
    items = serializers.JSONField(required=False)
    metadata = serializers.JSONField(required=False, allow_null=True)


class CreditNoteEstimateInput(serializers.Serializer):
    """`{"credit_note": {invoice_id, items}}` of POST /credit_notes/estimate."""

    invoice_id = serializers.CharField()
    items = serializers.JSONField(required=False)


class CreditNoteUpdateInput(serializers.Serializer):
    """`{"credit_note": {refund_status, metadata}}` of PUT /credit_notes/{id}."""

    refund_status = serializers.CharField(required=False, allow_null=True)
    metadata = serializers.JSONField(required=False, allow_null=True)
