"""The invoice and fee wire objects other apps send (webhooks), rendered as the API answers
them (`billing.wire_objects`)."""

from __future__ import annotations

from collections.abc import Sequence

from billing.activity import register_activity_object
from billing.wire_objects import register_wire_object
from invoicing.api.credit_note_serializers import CreditNoteSerializer
from invoicing.api.fee_serializers import FeeSerializer
from invoicing.api.invoice_serializers import InvoiceScalarSerializer, InvoiceSerializer
from invoicing.api.payment_serializers import (
    PaymentReceiptSerializer,
    PaymentRequestSerializer,
    PaymentSerializer,
)
from invoicing.models import CreditNote, Fee, Invoice, Payment, PaymentReceipt, PaymentRequest
from invoicing.selectors import fees_for_rendering, with_invoice_relations


def invoices_for_wire(ids: Sequence[str]) -> list[Invoice]:
    """Invoices of these ids, any status, with what the full InvoiceObject renders."""
    return list(
        with_invoice_relations(
            Invoice.objects.filter(pk__in=ids).select_related(
                "customer__billing_entity", "customer__organization", "billing_entity"
            )
        )
    )


def fees_for_wire(ids: Sequence[str]) -> list[Fee]:
    """Fees of these ids, with what FeeSerializer reads."""
    return list(fees_for_rendering(Fee.objects.filter(pk__in=ids)))


def register() -> None:
    """Declares the invoice and fee wire objects (called at start-up)."""
    register_wire_object(
        "invoice",
        load=invoices_for_wire,
        render=lambda rows: InvoiceSerializer(rows, many=True).data,
    )
    register_wire_object(
        "fee", load=fees_for_wire, render=lambda rows: FeeSerializer(rows, many=True).data
    )


def register_activity() -> None:
    """Declares how the activity log renders invoices, credit notes, payments, payment requests
    and receipts: as their API answers them."""
    # An invoice's amounts, dates and statuses, without its fees, customer and subscriptions:
    # the full object costs about ten queries more per logged invoice change, which the billing
    # run would pay for every invoice it creates and finalizes.
    register_activity_object(
        "invoice",
        load=lambda ids: Invoice.objects.filter(pk__in=ids).select_related("billing_entity"),
        render=lambda rows: InvoiceScalarSerializer(rows, many=True).data,
    )
    register_activity_object(
        "credit_note",
        load=lambda ids: CreditNote.objects.filter(pk__in=ids).select_related(
            "invoice__billing_entity", "customer__billing_entity", "customer__organization"
        ),
        render=lambda rows: CreditNoteSerializer(rows, many=True).data,
    )
    register_activity_object(
        "payment",
        load=lambda ids: Payment.objects.filter(pk__in=ids).select_related("customer"),
        render=lambda rows: PaymentSerializer(rows, many=True).data,
    )
    register_activity_object(
        "payment_request",
        load=lambda ids: PaymentRequest.objects.filter(pk__in=ids).select_related("customer"),
        render=lambda rows: PaymentRequestSerializer(rows, many=True).data,
    )
    register_activity_object(
        "payment_receipt",
        load=lambda ids: PaymentReceipt.objects.filter(pk__in=ids).select_related("payment"),
        render=lambda rows: PaymentReceiptSerializer(rows, many=True).data,
    )
