"""`/credit_notes`, `/customers/{id}/credit_notes` and the signed PDF download."""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db.models import Prefetch, QuerySet
from django.http import FileResponse, Http404, HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.errors import envelope
from billing.api.parameters import EXTERNAL_CUSTOMER_ID
from billing.api.views import LagoAPIView, OrganizationViewSet, parse, wrapped_schema
from billing.errors import BadRequest, NotFound
from customers.models import Customer
from customers.selectors import customer_get
from invoicing.api.credit_note_filters import CreditNoteFilter
from invoicing.api.credit_note_serializers import (
    CreditNoteCreateInput,
    CreditNoteEstimateInput,
    CreditNoteEstimateSerializer,
    CreditNoteSerializer,
    CreditNoteUpdateInput,
    credit_note_id_from_file_token,
)
from invoicing.models import CreditNote, CreditNoteItem, Fee, Invoice
from invoicing.pdf_credit_notes import credit_note_pdf_ensure
from invoicing.selectors import fees_for_rendering
from invoicing.services.credit_notes import (
    credit_note_create,
    credit_note_estimate,
    credit_note_metadata_delete,
    credit_note_metadata_merge,
    credit_note_metadata_replace,
    credit_note_update,
    credit_note_void,
    parse_items,
)

CREDIT_NOTE_RESPONSE = wrapped_schema("CreditNoteResponse", CreditNoteSerializer, "credit_note")
ESTIMATE_RESPONSE = wrapped_schema(
    "CreditNoteEstimateResponse", CreditNoteEstimateSerializer, "estimated_credit_note"
)
METADATA_RESPONSE = inline_serializer(
    name="CreditNoteMetadataResponse",
    fields={"metadata": serializers.DictField(child=serializers.CharField(), allow_null=True)},
)
LAGO_ID = OpenApiParameter("lago_id", OpenApiTypes.UUID, OpenApiParameter.PATH)
ARRAY_FILTERS = [
    OpenApiParameter(f"{name}[]", OpenApiTypes.STR, many=True, description=description)
    for name, description in (
        ("reason", "duplicated_charge, product_unsatisfactory, order_change, ..."),
        ("credit_status", "available, consumed, voided"),
        ("refund_status", "pending, succeeded, failed"),
        ("billing_entity_codes", "codes of billing entities"),
    )
]


def credit_note_queryset(organization: object) -> QuerySet[CreditNote]:
    """Finalized credit notes (Lago's API never shows a draft one) with what their rendering
    reads (customer, items with fees, taxes)."""
    items = CreditNoteItem.objects.order_by("created_at", "id").prefetch_related(
        Prefetch("fee", queryset=fees_for_rendering(Fee.objects.all()))
    )
    return (
        CreditNote.objects.for_organization(organization)
        .filter(status=CreditNote.Status.FINALIZED)
        .select_related(
            "invoice__billing_entity", "customer__billing_entity", "customer__organization"
        )
        .prefetch_related(
            "customer__metadata",
            "customer__taxes",
            Prefetch("items", queryset=items),
            "applied_taxes",
        )
        .order_by("-created_at", "-id")
    )


class _CreditNoteViews(OrganizationViewSet):
    queryset = CreditNote.objects.all()
    serializer_class = CreditNoteSerializer
    filterset_class = CreditNoteFilter
    root_key, root_key_plural = "credit_note", "credit_notes"
    permission_resource = "credit_note"

    def get_queryset(self) -> QuerySet:
        return credit_note_queryset(self.organization)


@extend_schema_view(
    list=extend_schema(parameters=ARRAY_FILTERS),
    retrieve=extend_schema(parameters=[LAGO_ID], responses=CREDIT_NOTE_RESPONSE),
)
class CreditNoteViewSet(_CreditNoteViews):
    """Credit notes by `lago_id`; every write is one invoicing service."""

    lookup_field = "pk"
    lookup_url_kwarg = "lago_id"

    def _now(self) -> datetime:
        return timezone.now()

    def get_object(self) -> CreditNote:
        note = (
            credit_note_queryset(self.organization).filter(pk=_uuid(self.kwargs["lago_id"])).first()
            if _uuid(self.kwargs["lago_id"])
            else None
        )
        if note is None:
            raise NotFound("credit_note")
        return note

    def _invoice(self, invoice_id: object) -> Invoice:
        invoice = (
            Invoice.objects.for_organization(self.organization)
            .select_related("customer", "billing_entity")
            .filter(pk=_uuid(str(invoice_id)))
            .first()
            if _uuid(str(invoice_id))
            else None
        )
        if invoice is None:
            raise NotFound("invoice")
        return invoice

    def _fresh(self, credit_note: CreditNote, status: int = 200) -> Response:
        self.kwargs["lago_id"] = str(credit_note.pk)
        return self.respond(self.get_object(), status=status)

    @extend_schema(
        request=wrapped_schema("CreditNoteCreate", CreditNoteCreateInput, "credit_note"),
        responses=CREDIT_NOTE_RESPONSE,
    )
    def create(self, request: Request) -> Response:
        data = parse(CreditNoteCreateInput, request.data, root="credit_note")
        invoice = self._invoice(data["invoice_id"])
        credit_note = credit_note_create(
            invoice=invoice,
            actor=self.actor,
            now=self._now(),
            items=parse_items(data.get("items")),
            reason=data.get("reason"),
            description=data.get("description"),
            credit_amount_cents=data.get("credit_amount_cents"),
            refund_amount_cents=data.get("refund_amount_cents"),
            offset_amount_cents=data.get("offset_amount_cents"),
            metadata=data.get("metadata"),
        )
        return self._fresh(credit_note)

    @extend_schema(
        request=wrapped_schema("CreditNoteEstimateRequest", CreditNoteEstimateInput, "credit_note"),
        responses=ESTIMATE_RESPONSE,
    )
    def estimate(self, request: Request) -> Response:
        data = parse(CreditNoteEstimateInput, request.data, root="credit_note")
        estimate = credit_note_estimate(
            invoice=self._invoice(data["invoice_id"]), items=parse_items(data.get("items"))
        )
        return Response({"estimated_credit_note": CreditNoteEstimateSerializer(estimate).data})

    @extend_schema(
        parameters=[LAGO_ID],
        request=wrapped_schema("CreditNoteUpdate", CreditNoteUpdateInput, "credit_note"),
        responses=CREDIT_NOTE_RESPONSE,
    )
    def update(self, request: Request, lago_id: str) -> Response:
        credit_note = self.get_object()
        data = parse(CreditNoteUpdateInput, request.data, root="credit_note")
        credit_note_update(
            credit_note=credit_note,
            actor=self.actor,
            now=self._now(),
            refund_status=data.get("refund_status"),
            metadata=data.get("metadata"),
            set_metadata="metadata" in data,
        )
        return self._fresh(credit_note)

    @extend_schema(parameters=[LAGO_ID], request=None, responses=CREDIT_NOTE_RESPONSE)
    def void(self, request: Request, lago_id: str) -> Response:
        credit_note = credit_note_void(
            credit_note=self.get_object(), actor=self.actor, now=self._now()
        )
        return self._fresh(credit_note)

    @extend_schema(parameters=[LAGO_ID], request=None, responses=CREDIT_NOTE_RESPONSE)
    def download(self, request: Request, lago_id: str) -> Response:
        credit_note = self.get_object()
        credit_note_pdf_ensure(credit_note=credit_note)
        return self._fresh(credit_note)


@extend_schema_view(list=extend_schema(parameters=[EXTERNAL_CUSTOMER_ID, *ARRAY_FILTERS]))
class CustomerCreditNoteViewSet(_CreditNoteViews):
    """`GET /customers/{external_customer_id}/credit_notes`."""

    def customer(self) -> Customer:
        return customer_get(
            organization=self.organization, external_id=self.kwargs["external_customer_id"]
        )

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().filter(customer=self.customer())


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


class _MetadataBase(LagoAPIView):
    permission_resource = "credit_note"

    def credit_note(self, lago_id: str) -> CreditNote:
        key = _uuid(lago_id)
        note = (
            CreditNote.objects.for_organization(self.organization).filter(pk=key).first()
            if key
            else None
        )
        if note is None:
            raise NotFound("credit_note")
        return note

    @staticmethod
    def answer(credit_note: CreditNote) -> Response:
        return Response({"metadata": credit_note.metadata or None})

    @staticmethod
    def metadata(request: Request) -> object:
        if not isinstance(request.data, dict) or "metadata" not in request.data:
            raise BadRequest("param is missing or the value is empty: metadata")
        return request.data["metadata"]


class CreditNoteMetadataView(_MetadataBase):
    """`/credit_notes/{lago_id}/metadata`: POST replaces, PATCH merges, DELETE clears."""

    @extend_schema(request=METADATA_RESPONSE, responses=METADATA_RESPONSE)
    def post(self, request: Request, lago_id: str) -> Response:
        note = credit_note_metadata_replace(
            credit_note=self.credit_note(lago_id), metadata=self.metadata(request), actor=self.actor
        )
        return self.answer(note)

    @extend_schema(request=METADATA_RESPONSE, responses=METADATA_RESPONSE)
    def patch(self, request: Request, lago_id: str) -> Response:
        note = credit_note_metadata_merge(
            credit_note=self.credit_note(lago_id), metadata=self.metadata(request), actor=self.actor
        )
        return self.answer(note)

    @extend_schema(request=None, responses=METADATA_RESPONSE)
    def delete(self, request: Request, lago_id: str) -> Response:
        note = credit_note_metadata_delete(credit_note=self.credit_note(lago_id), actor=self.actor)
        return self.answer(note)


class CreditNoteMetadataKeyView(_MetadataBase):
    """`DELETE /credit_notes/{lago_id}/metadata/{key}`."""

    @extend_schema(
        request=None, responses=METADATA_RESPONSE, operation_id="credit_notes_metadata_key_destroy"
    )
    def delete(self, request: Request, lago_id: str, key: str) -> Response:
        note = credit_note_metadata_delete(
            credit_note=self.credit_note(lago_id), actor=self.actor, key=key
        )
        return self.answer(note)


@csrf_exempt  # a signed link, no session: other methods get the 405 envelope, not a CSRF page
@require_safe
def credit_note_file_view(request: HttpRequest, token: str) -> FileResponse | JsonResponse:
    """Streams a stored credit note PDF to whoever holds the signed, expiring link."""
    credit_note_id = credit_note_id_from_file_token(token)
    note = CreditNote.objects.filter(pk=credit_note_id).first() if credit_note_id else None
    if note is None or not note.file:
        return JsonResponse(envelope(404, "Not Found", "file_not_found"), status=404)
    try:
        handle = note.file.open("rb")
    except FileNotFoundError as exc:
        raise Http404 from exc
    return FileResponse(handle, content_type="application/pdf", filename=f"{note.number}.pdf")
