"""Reads of payments, payment receipts, payment requests and dunning, scoped by organization."""

from __future__ import annotations

import uuid

from django.db.models import Prefetch, Q, QuerySet

from billing.errors import NotFound
from billing.models import Organization
from customers.models import Customer
from invoicing.models import (
    Invoice,
    Payment,
    PaymentReceipt,
    PaymentRequest,
    PaymentRequestInvoice,
)
from invoicing.selectors import VISIBLE_STATUSES

_APPLIED_INVOICES = Prefetch(
    "applied_invoices",
    queryset=PaymentRequestInvoice.objects.select_related("invoice__billing_entity").order_by(
        "invoice__issuing_date", "invoice__number", "id"
    ),
)


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def payment_list(*, organization: Organization) -> QuerySet[Payment]:
    """Payments of visible invoices and of payment requests, most recent first."""
    return (
        Payment.objects.for_organization(organization)
        .filter(Q(invoice__isnull=True) | Q(invoice__status__in=VISIBLE_STATUSES))
        .select_related("customer", "invoice", "payment_request")
        .prefetch_related(
            Prefetch(
                "payment_request__applied_invoices",
                queryset=PaymentRequestInvoice.objects.select_related("invoice").order_by(
                    "invoice__issuing_date", "invoice__number", "id"
                ),
            )
        )
        .order_by("-created_at", "-id")
    )


def payment_get(*, organization: Organization, lago_id: str) -> Payment:
    payment = payment_list(organization=organization).filter(pk=_uuid(lago_id)).first()
    if payment is None:
        raise NotFound("payment")
    return payment


def payments_of_invoice(queryset: QuerySet[Payment], invoice_id: object) -> QuerySet[Payment]:
    """Payments of the invoice, directly or through a payment request listing it."""
    pk = _uuid(invoice_id)
    if pk is None:
        return queryset.none()
    return queryset.filter(
        Q(invoice_id=pk) | Q(payment_request__applied_invoices__invoice_id=pk)
    ).distinct()


def payment_receipt_list(*, organization: Organization) -> QuerySet[PaymentReceipt]:
    return (
        PaymentReceipt.objects.for_organization(organization)
        .select_related("payment__customer", "payment__invoice", "payment__payment_request")
        .prefetch_related(
            Prefetch(
                "payment__payment_request__applied_invoices",
                queryset=PaymentRequestInvoice.objects.select_related("invoice"),
            )
        )
        .order_by("-created_at", "-id")
    )


def payment_receipt_get(*, organization: Organization, lago_id: str) -> PaymentReceipt:
    receipt = payment_receipt_list(organization=organization).filter(pk=_uuid(lago_id)).first()
    if receipt is None:
        raise NotFound("payment_receipt")
    return receipt


def payment_request_list(*, organization: Organization) -> QuerySet[PaymentRequest]:
    return (
        PaymentRequest.objects.for_organization(organization)
        .select_related("customer__billing_entity", "customer__organization")
        .prefetch_related("customer__metadata", "customer__taxes", _APPLIED_INVOICES)
        .order_by("-created_at", "-id")
    )


def payment_request_get(*, organization: Organization, lago_id: str) -> PaymentRequest:
    request = payment_request_list(organization=organization).filter(pk=_uuid(lago_id)).first()
    if request is None:
        raise NotFound("payment_request")
    return request


def customer_payment_list(*, customer: Customer) -> QuerySet[Payment]:
    """The customer's payments, most recent first (customer 360 page)."""
    return (
        Payment.objects.filter(customer=customer)
        .select_related("invoice", "payment_request")
        .order_by("-created_at", "-id")
    )


def overdue_invoices_of(*, customer: Customer) -> QuerySet[Invoice]:
    """The customer's overdue invoices (finalized, unpaid, past due)."""
    return Invoice.objects.filter(
        customer=customer, status=Invoice.Status.FINALIZED, payment_overdue=True
    ).exclude(payment_status=Invoice.PaymentStatus.SUCCEEDED)


def invoice_amount_due(invoice: Invoice) -> int:
    """What the invoice still owes: total less payments and credit note offsets (Lago's
    `total_due_amount_cents`; 0 once voided)."""
    if invoice.status == Invoice.Status.VOIDED:
        return 0
    return max(
        invoice.total_amount_cents
        - invoice.total_paid_amount_cents
        - invoice.total_offsetted_credit_note_amount_cents,
        0,
    )
