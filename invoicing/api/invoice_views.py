"""`/invoices`, `/customers/{id}/invoices` and the signed PDF download (spec §12)."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.errors import envelope
from billing.api.parameters import EXTERNAL_CUSTOMER_ID
from billing.api.views import OrganizationViewSet, parse, wrapped_schema
from billing.errors import BadRequest, Invalid, NotAllowed, NotFound
from billing.models import BillingEntity, Organization
from customers.models import Customer, Subscription
from customers.selectors import customer_get
from invoicing import calculation
from invoicing.api.filters import InvoiceFilter
from invoicing.api.invoice_serializers import (
    InvoiceListSerializer,
    InvoiceOneOffInput,
    InvoicePreviewInput,
    InvoiceSerializer,
    InvoiceUpdateInput,
    InvoiceVoidInput,
    invoice_id_from_file_token,
    preview_representation,
)
from invoicing.models import Invoice
from invoicing.pdf import invoice_pdf_ensure
from invoicing.selectors import (
    invoice_any_status,
    invoice_detail_queryset,
    invoice_get,
    invoice_list,
)
from invoicing.services.generation import invoice_preview
from invoicing.services.lifecycle import (
    invoice_delete_draft,
    invoice_finalize,
    invoice_refresh,
    invoice_retry,
)
from invoicing.services.one_off import OneOffFee, invoice_create_one_off
from invoicing.services.payments import invoice_lose_dispute, invoice_update
from invoicing.services.void import invoice_void
from plans.models import Coupon, Plan

INVOICE_RESPONSE = wrapped_schema("InvoiceResponse", InvoiceSerializer, "invoice")
LAGO_ID = OpenApiParameter("lago_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
PREVIEW_CUSTOMER_FIELDS = (
    "name", "tax_identification_number", "currency", "timezone", "address_line1",
    "address_line2", "city", "zipcode", "state", "country",
)  # fmt: skip
ARRAY_FILTERS = [
    OpenApiParameter(f"{name}[]", OpenApiTypes.STR, many=True, description=description)
    for name, description in (
        ("statuses", "draft, finalized, voided, failed, pending"),
        ("payment_statuses", "pending, succeeded, failed"),
        ("billing_entity_codes", "codes of billing entities"),
    )
]


class _InvoiceViews(OrganizationViewSet):
    queryset = Invoice.objects.all()
    serializer_class = InvoiceSerializer
    filterset_class = InvoiceFilter
    root_key, root_key_plural = "invoice", "invoices"
    permission_resource = "invoice"

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return InvoiceListSerializer if self.action == "list" else InvoiceSerializer

    def get_queryset(self) -> QuerySet:
        if self.action == "list":
            return invoice_list(organization=self.organization)
        return invoice_detail_queryset(organization=self.organization)


@extend_schema_view(
    list=extend_schema(parameters=ARRAY_FILTERS),
    retrieve=extend_schema(parameters=[LAGO_ID], responses=INVOICE_RESPONSE),
)
class InvoiceViewSet(_InvoiceViews):
    """Invoices by `lago_id`; every write is one invoicing service."""

    lookup_field = "pk"
    lookup_url_kwarg = "lago_id"

    def get_object(self) -> Invoice:
        return invoice_get(organization=self.organization, lago_id=self.kwargs["lago_id"])

    def _fresh(self, invoice: Invoice) -> Response:
        return self.respond(self.get_object() if invoice.pk else invoice)

    def _now(self) -> datetime:
        return timezone.now()

    @extend_schema(
        request=wrapped_schema("InvoiceOneOffCreate", InvoiceOneOffInput, "invoice"),
        responses=INVOICE_RESPONSE,
    )
    def create(self, request: Request) -> Response:
        data = parse(InvoiceOneOffInput, request.data, root="invoice")
        fees = [
            OneOffFee(
                add_on_code=fee["add_on_code"],
                units=fee.get("units"),
                unit_amount_cents=fee.get("unit_amount_cents"),
                invoice_display_name=fee.get("invoice_display_name"),
                description=fee.get("description"),
                from_datetime=fee.get("from_datetime"),
                to_datetime=fee.get("to_datetime"),
                tax_codes=tuple(fee["tax_codes"]) if fee.get("tax_codes") is not None else None,
            )
            for fee in data.get("fees") or []
        ]
        invoice = invoice_create_one_off(
            organization=self.organization,
            external_customer_id=data.get("external_customer_id"),
            currency=data.get("currency"),
            billing_entity_code=data.get("billing_entity_code"),
            fees=fees,
            actor=self.actor,
            now=self._now(),
        )
        self.kwargs["lago_id"] = str(invoice.pk)
        if invoice.status == Invoice.Status.CLOSED:
            return self.respond(invoice)  # skipped as zero-amount: not listed afterwards
        return self._fresh(invoice)

    @extend_schema(
        parameters=[LAGO_ID],
        request=wrapped_schema("InvoiceUpdate", InvoiceUpdateInput, "invoice"),
        responses=INVOICE_RESPONSE,
    )
    def update(self, request: Request, lago_id: str) -> Response:
        invoice = self.get_object()
        data = parse(InvoiceUpdateInput, request.data, root="invoice")
        invoice_update(
            invoice=invoice,
            actor=self.actor,
            now=self._now(),
            payment_status=data.get("payment_status"),
            metadata=data.get("metadata"),
        )
        return self._fresh(invoice)

    @extend_schema(parameters=[LAGO_ID], request=None, responses=INVOICE_RESPONSE)
    def destroy(self, request: Request, lago_id: str) -> Response:
        invoice = self.get_object()
        if invoice.status != Invoice.Status.DRAFT:
            raise NotAllowed("not_deletable")  # spec §12.5: drafts only
        invoice_delete_draft(invoice=invoice, actor=self.actor, now=self._now())
        deleted = invoice_any_status(organization=self.organization, invoice_id=invoice.pk)
        data = InvoiceSerializer(deleted, context=self.get_serializer_context()).data
        data["status"] = "deleted"  # spec §12.5: the answer shows the draft as deleted
        return Response({"invoice": data})

    @extend_schema(parameters=[LAGO_ID], request=None, responses=INVOICE_RESPONSE)
    def refresh(self, request: Request, lago_id: str) -> Response:
        invoice = self.get_object()
        if invoice.status != Invoice.Status.DRAFT:
            return self.respond(invoice)  # Lago: refreshing a finalized invoice changes nothing
        invoice_refresh(invoice=invoice, actor=self.actor, now=self._now())
        return self._fresh(invoice)

    @extend_schema(parameters=[LAGO_ID], request=None, responses=INVOICE_RESPONSE)
    def finalize(self, request: Request, lago_id: str) -> Response:
        invoice = self.get_object()
        if invoice.status != Invoice.Status.DRAFT:
            raise NotFound("invoice")  # Lago looks the invoice up among drafts
        invoice_finalize(invoice=invoice, actor=self.actor, now=self._now())
        return self._fresh(invoice)

    @extend_schema(parameters=[LAGO_ID], request=InvoiceVoidInput, responses=INVOICE_RESPONSE)
    def void(self, request: Request, lago_id: str) -> Response:
        invoice = self.get_object()
        body = request.data if isinstance(request.data, dict) else {}
        if isinstance(body.get("invoice"), dict):  # tolerate a wrapped body
            body = body["invoice"]
        serializer = InvoiceVoidInput(data=body)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        invoice_void(
            invoice=invoice,
            actor=self.actor,
            now=self._now(),
            generate_credit_note=(
                data.get("generate_credit_note") if "generate_credit_note" in body else None
            ),
            credit_amount_cents=data.get("credit_amount") or 0,
            refund_amount_cents=data.get("refund_amount") or 0,
        )
        return self._fresh(invoice)

    @extend_schema(parameters=[LAGO_ID], request=None, responses=INVOICE_RESPONSE)
    def lose_dispute(self, request: Request, lago_id: str) -> Response:
        invoice = invoice_lose_dispute(invoice=self.get_object(), actor=self.actor, now=self._now())
        return self._fresh(invoice)

    @extend_schema(parameters=[LAGO_ID], request=None, responses=INVOICE_RESPONSE)
    def download(self, request: Request, lago_id: str) -> Response:
        invoice = self.get_object()
        if invoice.status not in (Invoice.Status.FINALIZED, Invoice.Status.VOIDED):
            raise NotFound("invoice")  # Lago: only issued invoices have a document
        invoice_pdf_ensure(invoice=invoice)
        return self._fresh(invoice)

    @extend_schema(parameters=[LAGO_ID], request=None, responses=INVOICE_RESPONSE)
    def retry(self, request: Request, lago_id: str) -> Response:
        invoice = self.get_object()
        if invoice.status != Invoice.Status.FAILED:
            raise NotAllowed("invalid_status")  # spec §12.9: failed invoices only
        invoice_retry(invoice=invoice, actor=self.actor, now=self._now())
        return self._fresh(invoice)

    @extend_schema(
        request=InvoicePreviewInput,
        responses=INVOICE_RESPONSE,
        description="Computes an invoice without saving anything.",
    )
    def preview(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise BadRequest("invalid body")
        # Lago checks `preview_params[:coupons] && ...`: a null list is no list (the official
        # client sends every absent key as null).
        coupons = request.data.get("coupons")
        if coupons is not None and not isinstance(coupons, list):
            raise BadRequest("coupons_must_be_an_array")
        subscriptions = request.data.get("subscriptions")
        if subscriptions is not None and not isinstance(subscriptions, dict):
            raise BadRequest("subscriptions_must_be_an_object")
        serializer = InvoicePreviewInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        now = self._now()
        preview = _run_preview(self.organization, serializer.validated_data, now=now)
        context = {
            **self.get_serializer_context(),
            "now": now,
            "coupon_items": _preview_coupon_items(
                self.organization, serializer.validated_data.get("coupons") or []
            ),
        }
        return Response({"invoice": preview_representation(preview, context)})


def _run_preview(organization: Organization, data: dict, *, now: datetime) -> object:
    """Maps Lago's preview request onto the engine's `invoice_preview` (spec §12.11)."""
    code = data.get("billing_entity_code")
    entity = (
        BillingEntity.objects.for_organization(organization).filter(code=code).first()
        if code
        else organization.default_billing_entity()
    )
    if entity is None:
        raise NotFound("billing_entity")
    given = data.get("customer") or {}
    if given.get("external_id"):
        customer = customer_get(organization=organization, external_id=given["external_id"])
    else:  # an inline customer, never saved
        customer = Customer(
            organization=organization,
            billing_entity=entity,
            external_id="",
            sequential_id=0,
            **{key: given.get(key) or "" for key in PREVIEW_CUSTOMER_FIELDS},
        )
    subscriptions_input = data.get("subscriptions") or {}
    subscriptions = []
    if subscriptions_input.get("external_ids"):
        subscriptions = list(
            Subscription.objects.for_organization(organization).filter(
                customer=customer,
                external_id__in=subscriptions_input["external_ids"],
                status=Subscription.Status.ACTIVE,
            )
        )
        if not subscriptions:
            raise NotFound("subscription")
    plan = target_plan = None
    if not subscriptions:
        plan = _preview_plan(organization, data.get("plan_code"))
    elif subscriptions_input.get("plan_code"):  # an upgrade or downgrade (spec §12.11)
        target_plan = _preview_plan(organization, subscriptions_input["plan_code"])
    coupons = [
        calculation.CouponToApply(
            key=_preview_coupon_key(coupon, index),
            coupon_type=coupon["coupon_type"],
            frequency=coupon.get("frequency") or "once",
            applied_at=now,
            amount_cents=coupon.get("amount_cents"),
            currency=coupon.get("amount_currency") or customer.currency or None,
            percentage_rate=coupon.get("percentage_rate"),
            frequency_duration_remaining=(
                coupon.get("frequency_duration_remaining") or coupon.get("frequency_duration")
            ),
        )
        for index, coupon in enumerate(data.get("coupons") or [])
    ]
    try:
        return invoice_preview(
            customer=customer,
            now=now,
            subscriptions=subscriptions,
            plan=plan,
            subscription_at=data.get("subscription_at"),
            billing_time=data.get("billing_time") or "calendar",
            terminated_at=subscriptions_input.get("terminated_at"),
            target_plan=target_plan,
            coupons=coupons,
        )
    except ValueError as exc:  # an ad-hoc coupon without its amount or rate
        raise Invalid({"coupons": ["value_is_invalid"]}) from exc


def _preview_coupon_key(coupon: dict, index: int) -> str:
    return coupon.get("code") or f"preview-{index}"


def _preview_coupon_items(organization: Organization, coupons: list[dict]) -> dict[str, dict]:
    """The credit `item` of each ad-hoc coupon, by its key: as Lago's PreviewContextService, the
    organization's coupon of that code, else an unsaved coupon of the request's attributes."""
    codes = [coupon["code"] for coupon in coupons if coupon.get("code")]
    known = {
        coupon.code: coupon
        for coupon in Coupon.objects.for_organization(organization).alive().filter(code__in=codes)
    }
    items = {}
    for index, given in enumerate(coupons):
        coupon = known.get(given.get("code") or "")
        items[_preview_coupon_key(given, index)] = {
            "lago_item_id": str(coupon.pk) if coupon else None,
            "type": "coupon",
            "code": coupon.code if coupon else given.get("code") or None,
            "name": coupon.name if coupon else given.get("name") or None,
        }
    return items


def _preview_plan(organization: Organization, code: str | None) -> Plan:
    plan = (
        Plan.objects.for_organization(organization)
        .alive()
        .filter(code=code or "", parent__isnull=True)
        .first()
    )
    if plan is None:
        raise NotFound("plan")
    return plan


@extend_schema_view(list=extend_schema(parameters=[EXTERNAL_CUSTOMER_ID, *ARRAY_FILTERS]))
class CustomerInvoiceViewSet(_InvoiceViews):
    """`GET /customers/{external_customer_id}/invoices`."""

    def customer(self) -> Customer:
        return customer_get(
            organization=self.organization, external_id=self.kwargs["external_customer_id"]
        )

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().filter(customer=self.customer())


@csrf_exempt  # a signed link, no session: other methods get the 405 envelope, not a CSRF page
@require_safe
def invoice_file_view(request: HttpRequest, token: str) -> FileResponse | JsonResponse:
    """Streams a stored invoice PDF to whoever holds the signed, expiring link (`file_url`)."""
    invoice_id = invoice_id_from_file_token(token)
    invoice = Invoice.objects.filter(pk=invoice_id).first() if invoice_id else None
    if invoice is None or not invoice.file:
        return JsonResponse(envelope(404, "Not Found", "file_not_found"), status=404)
    try:
        handle = invoice.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    name = f"{invoice.number or invoice.lago_id}.pdf"
    return FileResponse(handle, content_type="application/pdf", filename=name)
