"""Query filters of GET /payments, /payment_receipts and /payment_requests (Lago's queries)."""

from __future__ import annotations

import django_filters as filters
from django.db.models import QuerySet

from billing.api.filters import LagoFilterSet
from billing.money import CURRENCIES
from invoicing.models import Payment, PaymentReceipt, PaymentRequest
from invoicing.payment_selectors import payments_of_invoice

_CURRENCY_CHOICES = [(code, code) for code in sorted(CURRENCIES)]


class PaymentFilter(LagoFilterSet):
    """`GET /payments` (Lago's `PaymentsQuery`)."""

    invoice_id = filters.CharFilter(method="filter_invoice_id")
    external_customer_id = filters.CharFilter(field_name="customer__external_id")
    currency = filters.ChoiceFilter(field_name="amount_currency", choices=_CURRENCY_CHOICES)

    class Meta:
        model = Payment
        fields: tuple[str, ...] = ()

    def filter_invoice_id(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        return payments_of_invoice(qs, value) if value else qs


class PaymentReceiptFilter(LagoFilterSet):
    """`GET /payment_receipts` (Lago's `PaymentReceiptsQuery`)."""

    invoice_id = filters.CharFilter(method="filter_invoice_id")

    class Meta:
        model = PaymentReceipt
        fields: tuple[str, ...] = ()

    def filter_invoice_id(self, qs: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return qs
        payments = payments_of_invoice(Payment.objects.all(), value)
        return qs.filter(payment__in=payments.values("pk"))


class PaymentRequestFilter(LagoFilterSet):
    """`GET /payment_requests` (Lago's `PaymentRequestsQuery`)."""

    external_customer_id = filters.CharFilter(field_name="customer__external_id")
    payment_status = filters.ChoiceFilter(choices=PaymentRequest.PaymentStatus.choices)
    currency = filters.ChoiceFilter(field_name="amount_currency", choices=_CURRENCY_CHOICES)

    class Meta:
        model = PaymentRequest
        fields: tuple[str, ...] = ()
