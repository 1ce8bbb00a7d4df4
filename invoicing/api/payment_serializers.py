"""Lago wire shapes of payments, payment receipts and payment requests."""

from __future__ import annotations

from django.core import signing
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing.api.fields import MAX_CENTS, LagoDateTimeField, LagoDateTimeInput
from customers.representations import CustomerSerializer
from invoicing.api.invoice_serializers import InvoiceScalarSerializer
from invoicing.models import Payment, PaymentReceipt, PaymentRequest

RECEIPT_FILE_SALT = "invoicing.payment-receipt-file"
RECEIPT_FILE_MAX_AGE = 7 * 24 * 3600  # seconds a signed `file_url` stays valid
_UUID_LIST = {"type": "array", "items": {"type": "string", "format": "uuid"}}
_STRING_LIST = {"type": "array", "items": {"type": "string"}}


def _paid_invoices(payment: Payment) -> list:
    """The invoices a payment pays (prefetched by `payment_list`)."""
    if payment.invoice_id:
        return [payment.invoice]
    return [applied.invoice for applied in payment.payment_request.applied_invoices.all()]


class PaymentSerializer(serializers.Serializer):
    """Lago's `PaymentObject`."""

    lago_id = serializers.UUIDField(source="id")
    lago_customer_id = serializers.UUIDField(source="customer_id")
    external_customer_id = serializers.CharField(source="customer.external_id")
    invoice_ids = serializers.SerializerMethodField()
    invoice_numbers = serializers.SerializerMethodField()
    lago_payable_id = serializers.UUIDField(source="payable_id")
    payable_type = serializers.CharField()
    amount_cents = serializers.IntegerField()
    amount_currency = serializers.CharField()
    status = serializers.CharField()
    payment_status = serializers.CharField(source="payable_payment_status")
    type = serializers.CharField(source="payment_type")
    reference = serializers.SerializerMethodField()
    payment_provider_code = serializers.SerializerMethodField()
    payment_provider_type = serializers.SerializerMethodField()
    external_payment_id = serializers.CharField(source="provider_payment_id", allow_null=True)
    provider_payment_id = serializers.CharField(allow_null=True)
    provider_customer_id = serializers.SerializerMethodField()
    next_action = serializers.SerializerMethodField()
    created_at = LagoDateTimeField()

    @extend_schema_field(_UUID_LIST)
    def get_invoice_ids(self, payment: Payment) -> list[str]:
        return [str(invoice.pk) for invoice in _paid_invoices(payment)]

    @extend_schema_field(_STRING_LIST)
    def get_invoice_numbers(self, payment: Payment) -> list[str]:
        return [invoice.number for invoice in _paid_invoices(payment)]

    def get_reference(self, payment: Payment) -> str | None:
        return payment.reference or None

    def get_payment_provider_code(self, payment: Payment) -> str | None:
        return payment.payment_provider_code or None

    def get_payment_provider_type(self, payment: Payment) -> str | None:
        return payment.payment_provider_type or None

    def get_provider_customer_id(self, payment: Payment) -> str | None:
        return payment.provider_customer_id or None

    @extend_schema_field({"type": "object", "additionalProperties": True})
    def get_next_action(self, payment: Payment) -> dict:
        """The provider's payment data; `{}` without any (Lago's column default), never null."""
        return payment.provider_payment_data or {}


class PaymentCreateInput(serializers.Serializer):
    """`POST /payments`: a manual payment of an invoice."""

    invoice_id = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    amount_cents = serializers.JSONField(required=False)  # checked by the service (integer > 0)
    reference = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, trim_whitespace=False
    )
    paid_at = LagoDateTimeInput(required=False, allow_null=True)

    def validate_amount_cents(self, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool) and value > MAX_CENTS:
            raise serializers.ValidationError("value_is_out_of_range")
        return value


def receipt_file_token(receipt: PaymentReceipt) -> str:
    return signing.dumps(str(receipt.pk), salt=RECEIPT_FILE_SALT)


def receipt_id_from_file_token(token: str) -> str | None:
    try:
        return signing.loads(token, salt=RECEIPT_FILE_SALT, max_age=RECEIPT_FILE_MAX_AGE)
    except signing.BadSignature:
        return None


class PaymentReceiptSerializer(serializers.Serializer):
    """Lago's `PaymentReceiptObject`."""

    lago_id = serializers.UUIDField(source="id")
    number = serializers.CharField()
    file_url = serializers.SerializerMethodField()
    xml_url = serializers.SerializerMethodField()
    payment = PaymentSerializer()
    created_at = LagoDateTimeField()

    @extend_schema_field({"type": "string", "format": "uri", "nullable": True})
    def get_file_url(self, receipt: PaymentReceipt) -> str | None:
        if not receipt.file:
            return None
        path = reverse("payment-receipt-file", kwargs={"token": receipt_file_token(receipt)})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    @extend_schema_field({"type": "string", "nullable": True})
    def get_xml_url(self, receipt: PaymentReceipt) -> str | None:
        return None  # e-invoicing XML is not produced


class PaymentRequestInvoiceSerializer(InvoiceScalarSerializer):
    """An invoice of a payment request, without its relations (as Lago lists it)."""


class PaymentRequestSerializer(serializers.Serializer):
    """Lago's `PaymentRequestObject`, with its customer and invoices."""

    lago_id = serializers.UUIDField(source="id")
    email = serializers.SerializerMethodField()
    amount_cents = serializers.IntegerField()
    amount_currency = serializers.CharField()
    payment_status = serializers.CharField()
    created_at = LagoDateTimeField()
    customer = CustomerSerializer()
    invoices = serializers.SerializerMethodField()

    def get_email(self, request: PaymentRequest) -> str | None:
        return request.email or None

    @extend_schema_field(PaymentRequestInvoiceSerializer(many=True))
    def get_invoices(self, request: PaymentRequest) -> list[dict]:
        invoices = [applied.invoice for applied in request.applied_invoices.all()]
        return PaymentRequestInvoiceSerializer(invoices, many=True, context=self.context).data


class PaymentRequestCreateInput(serializers.Serializer):
    """`POST /payment_requests`."""

    external_customer_id = serializers.CharField(required=False, allow_null=True)
    email = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    lago_invoice_ids = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True
    )
    payment_method = serializers.DictField(required=False, allow_null=True)
