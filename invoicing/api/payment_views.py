"""`/payments`, `/payment_receipts`, `/payment_requests` and their customer-scoped lists."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.db.models import Model, QuerySet
from django.http import FileResponse, Http404, HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.errors import envelope
from billing.api.parameters import EXTERNAL_CUSTOMER_ID
from billing.api.views import OrganizationViewSet, parse, wrapped_schema
from billing.errors import Invalid, NotFound
from customers.models import Customer
from customers.selectors import customer_get
from invoicing.api.payment_filters import (
    PaymentFilter,
    PaymentReceiptFilter,
    PaymentRequestFilter,
)
from invoicing.api.payment_serializers import (
    PaymentCreateInput,
    PaymentReceiptSerializer,
    PaymentRequestCreateInput,
    PaymentRequestSerializer,
    PaymentSerializer,
    receipt_id_from_file_token,
)
from invoicing.models import Invoice, Payment, PaymentReceipt, PaymentRequest
from invoicing.payment_selectors import (
    payment_get,
    payment_list,
    payment_receipt_get,
    payment_receipt_list,
    payment_request_get,
    payment_request_list,
)
from invoicing.selectors import VISIBLE_STATUSES
from invoicing.services.payment_requests import payment_request_create
from invoicing.services.payment_settlement import payment_create_manual

LAGO_ID = OpenApiParameter("lago_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
PAYMENT_RESPONSE = wrapped_schema("PaymentResponse", PaymentSerializer, "payment")
RECEIPT_RESPONSE = wrapped_schema(
    "PaymentReceiptResponse", PaymentReceiptSerializer, "payment_receipt"
)
REQUEST_RESPONSE = wrapped_schema(
    "PaymentRequestResponse", PaymentRequestSerializer, "payment_request"
)


class _SelectedViewSet(OrganizationViewSet):
    """A list and its objects by `lago_id`, both read through the app's selectors: the list
    selector scopes and orders the rows, the get selector answers the 404."""

    list_selector: Callable[..., QuerySet]
    get_selector: Callable[..., Model]

    def get_queryset(self) -> QuerySet:
        return self.list_selector(organization=self.organization)

    def get_object(self) -> Model:
        return self.get_selector(organization=self.organization, lago_id=self.kwargs["lago_id"])


class _CustomerScoped:
    """`/customers/{external_customer_id}/...`: the list narrowed to one customer."""

    def customer(self) -> Customer:
        return customer_get(
            organization=self.organization, external_id=self.kwargs["external_customer_id"]
        )

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().filter(customer=self.customer())


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("invoice_id", OpenApiTypes.UUID),
            OpenApiParameter("external_customer_id", OpenApiTypes.STR),
            OpenApiParameter("currency", OpenApiTypes.STR),
        ]
    ),
    retrieve=extend_schema(parameters=[LAGO_ID], responses=PAYMENT_RESPONSE),
)
class PaymentViewSet(_SelectedViewSet):
    """Payments by `lago_id`; `POST` records a manual payment of an invoice."""

    queryset = Payment.objects.all()
    serializer_class = PaymentSerializer
    filterset_class = PaymentFilter
    root_key, root_key_plural = "payment", "payments"
    permission_resource = "payment"

    list_selector, get_selector = staticmethod(payment_list), staticmethod(payment_get)

    @extend_schema(
        request=wrapped_schema("PaymentCreate", PaymentCreateInput, "payment"),
        responses=PAYMENT_RESPONSE,
        description="Records a payment received outside a payment provider; partial payments "
        "are allowed, over-payments refused.",
    )
    def create(self, request: Request) -> Response:
        data = parse(PaymentCreateInput, request.data, root="payment")
        invoice_id = data.get("invoice_id")
        if not invoice_id:
            raise Invalid({"invoice_id": ["value_is_mandatory"]})
        invoice = (
            Invoice.objects.for_organization(self.organization)
            .filter(pk=_uuid_or_none(invoice_id), status__in=(*VISIBLE_STATUSES, "open"))
            .first()
        )
        if invoice is None:
            raise NotFound("invoice")
        payment = payment_create_manual(
            payable=invoice,
            amount_cents=data.get("amount_cents"),
            reference=data.get("reference") or "",
            paid_at=data.get("paid_at"),
            actor=self.actor,
            now=timezone.now(),
        )
        return self.respond(payment_get(organization=self.organization, lago_id=str(payment.pk)))


def _uuid_or_none(value: str) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


@extend_schema_view(list=extend_schema(parameters=[EXTERNAL_CUSTOMER_ID]))
class CustomerPaymentViewSet(_CustomerScoped, PaymentViewSet):
    """`GET /customers/{external_customer_id}/payments`."""


@extend_schema_view(
    list=extend_schema(parameters=[OpenApiParameter("invoice_id", OpenApiTypes.UUID)]),
    retrieve=extend_schema(parameters=[LAGO_ID], responses=RECEIPT_RESPONSE),
)
class PaymentReceiptViewSet(_SelectedViewSet):
    """Receipts of succeeded payments."""

    queryset = PaymentReceipt.objects.all()
    serializer_class = PaymentReceiptSerializer
    filterset_class = PaymentReceiptFilter
    root_key, root_key_plural = "payment_receipt", "payment_receipts"
    permission_resource = "payment_receipt"

    list_selector, get_selector = (
        staticmethod(payment_receipt_list),
        staticmethod(payment_receipt_get),
    )


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("external_customer_id", OpenApiTypes.STR),
            OpenApiParameter("payment_status", OpenApiTypes.STR),
            OpenApiParameter("currency", OpenApiTypes.STR),
        ]
    ),
    retrieve=extend_schema(parameters=[LAGO_ID], responses=REQUEST_RESPONSE),
)
class PaymentRequestViewSet(_SelectedViewSet):
    """Payment requests by `lago_id`; `POST` requests the payment of overdue invoices."""

    queryset = PaymentRequest.objects.all()
    serializer_class = PaymentRequestSerializer
    filterset_class = PaymentRequestFilter
    root_key, root_key_plural = "payment_request", "payment_requests"
    permission_resource = "payment_request"

    list_selector, get_selector = (
        staticmethod(payment_request_list),
        staticmethod(payment_request_get),
    )

    @extend_schema(
        request=wrapped_schema(
            "PaymentRequestCreate", PaymentRequestCreateInput, "payment_request"
        ),
        responses=REQUEST_RESPONSE,
    )
    def create(self, request: Request) -> Response:
        data = parse(PaymentRequestCreateInput, request.data, root="payment_request")
        created = payment_request_create(
            organization=self.organization,
            external_customer_id=data.get("external_customer_id"),
            lago_invoice_ids=data.get("lago_invoice_ids"),
            email=data.get("email"),
            actor=self.actor,
            now=timezone.now(),
        )
        return self.respond(
            payment_request_get(organization=self.organization, lago_id=str(created.pk))
        )


@extend_schema_view(list=extend_schema(parameters=[EXTERNAL_CUSTOMER_ID]))
class CustomerPaymentRequestViewSet(_CustomerScoped, PaymentRequestViewSet):
    """`GET /customers/{external_customer_id}/payment_requests`."""


@csrf_exempt  # a signed link, no session
@require_safe
def payment_receipt_file_view(request: HttpRequest, token: str) -> FileResponse | JsonResponse:
    """Streams a stored receipt PDF to whoever holds the signed, expiring link (`file_url`)."""
    receipt_id = receipt_id_from_file_token(token)
    receipt = PaymentReceipt.objects.filter(pk=receipt_id).first() if receipt_id else None
    if receipt is None or not receipt.file:
        return JsonResponse(envelope(404, "Not Found", "file_not_found"), status=404)
    try:
        handle = receipt.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    return FileResponse(handle, content_type="application/pdf", filename=f"{receipt.number}.pdf")
