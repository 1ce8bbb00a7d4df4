"""`/fees` (spec §13): list and show; payment status and deletion of invoiceless fees."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.views import OrganizationViewSet, parse, wrapped_schema
from invoicing.api.fee_serializers import FeeSerializer, FeeUpdateInput
from invoicing.api.filters import FeeFilter
from invoicing.models import Fee
from invoicing.selectors import fee_get, fee_list
from invoicing.services.payments import fee_destroy, fee_update

FEE_RESPONSE = wrapped_schema("FeeResponse", FeeSerializer, "fee")
LAGO_ID = OpenApiParameter("lago_id", OpenApiTypes.UUID, OpenApiParameter.PATH)


@extend_schema_view(retrieve=extend_schema(parameters=[LAGO_ID], responses=FEE_RESPONSE))
class FeeViewSet(OrganizationViewSet):
    """Fees by `lago_id`."""

    queryset = Fee.objects.all()
    serializer_class = FeeSerializer
    filterset_class = FeeFilter
    lookup_field = "pk"
    lookup_url_kwarg = "lago_id"
    root_key, root_key_plural = "fee", "fees"
    permission_resource = "fee"

    def get_queryset(self) -> QuerySet:
        return fee_list(organization=self.organization)

    def get_object(self) -> Fee:
        return fee_get(organization=self.organization, lago_id=self.kwargs["lago_id"])

    @extend_schema(
        parameters=[LAGO_ID],
        request=wrapped_schema("FeeUpdate", FeeUpdateInput, "fee"),
        responses=FEE_RESPONSE,
    )
    def update(self, request: Request, lago_id: str) -> Response:
        fee = self.get_object()
        data = parse(FeeUpdateInput, request.data, root="fee")
        fee_update(
            fee=fee, payment_status=data["payment_status"], actor=self.actor, now=timezone.now()
        )
        return self.respond(self.get_object())

    @extend_schema(parameters=[LAGO_ID], request=None, responses=FEE_RESPONSE)
    def destroy(self, request: Request, lago_id: str) -> Response:
        fee = self.get_object()
        deleted = fee_destroy(fee=fee, actor=self.actor, now=timezone.now())
        fee.deleted_at = deleted.deleted_at
        return self.respond(fee)
