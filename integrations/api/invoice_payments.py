"""`POST /invoices/{lago_id}/retry_payment` and `POST /invoices/{lago_id}/payment_url`: the
invoice routes that need the payment provider (the rest of `/invoices` is invoicing's)."""

from __future__ import annotations

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.views import LagoAPIView
from integrations.services.invoice_collection import (
    invoice_payment_retry,
    invoice_payment_url_generate,
)
from integrations.tasks import invoice_payment_collect_task
from invoicing.selectors import invoice_get

INVOICE_ID = OpenApiParameter(
    "lago_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The invoice's lago_id"
)


class InvoiceRetryPaymentView(LagoAPIView):
    """Sends a finalized, unpaid invoice for collection again; answers 200 with no body."""

    permission_resource = "invoice"

    @extend_schema(parameters=[INVOICE_ID], request=None, responses={200: None})
    def post(self, request: Request, lago_id: str) -> HttpResponse:
        invoice = invoice_get(organization=self.organization, lago_id=lago_id)
        invoice_payment_retry(invoice=invoice, actor=self.actor, now=timezone.now())
        invoice_payment_collect_task.delay(str(invoice.pk))
        return HttpResponse(status=200)


class InvoicePaymentUrlView(LagoAPIView):
    """A Stripe Checkout link where the customer pays what the invoice still owes."""

    permission_resource = "invoice"

    @extend_schema(
        parameters=[INVOICE_ID],
        request=None,
        responses=inline_serializer(
            "InvoicePaymentUrlResponse",
            fields={
                "invoice_payment_details": inline_serializer(
                    "InvoicePaymentDetails",
                    fields={
                        "lago_customer_id": serializers.UUIDField(),
                        "lago_invoice_id": serializers.UUIDField(),
                        "external_customer_id": serializers.CharField(),
                        "payment_provider": serializers.CharField(),
                        "payment_url": serializers.CharField(),
                    },
                )
            },
        ),
    )
    def post(self, request: Request, lago_id: str) -> Response:
        invoice = invoice_get(organization=self.organization, lago_id=lago_id)
        url = invoice_payment_url_generate(invoice=invoice, actor=self.actor)
        customer = invoice.customer
        return Response(
            {
                "invoice_payment_details": {
                    "lago_customer_id": str(customer.pk),
                    "lago_invoice_id": str(invoice.pk),
                    "external_customer_id": customer.external_id,
                    "payment_provider": (customer.billing_configuration or {}).get(
                        "payment_provider"
                    ),
                    "payment_url": url,
                }
            }
        )
