"""`/organizations` and `/billing_entities` (spec §2): in the catalog app because both answers
carry the billing entity's default taxes."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.views import LagoAPIView, OrganizationViewSet, parse, wrapped_schema
from billing.models import BillingEntity
from billing.services import organization_update
from plans.api.tenancy_serializers import (
    BillingEntityInput,
    BillingEntitySerializer,
    OrganizationInput,
    OrganizationSerializer,
)
from plans.services.taxes import billing_entity_create_with_taxes, billing_entity_update_with_taxes


class OrganizationView(LagoAPIView):
    """The API key's own organization."""

    permission_resource = "organization"
    root_key = "organization"

    @extend_schema(
        responses=wrapped_schema("OrganizationResponse", OrganizationSerializer, "organization")
    )
    def get(self, request: Request) -> Response:
        return Response({"organization": OrganizationSerializer(self.organization).data})

    @extend_schema(
        request=wrapped_schema("OrganizationUpdate", OrganizationInput, "organization"),
        responses=wrapped_schema("OrganizationResponse", OrganizationSerializer, "organization"),
    )
    def put(self, request: Request) -> Response:
        values = parse(OrganizationInput, request.data, root="organization")
        organization = organization_update(
            organization=self.organization, values=values, actor=self.actor
        )
        return Response({"organization": OrganizationSerializer(organization).data})


_BILLING_ENTITY_RESPONSE = ("BillingEntityResponse", BillingEntitySerializer, "billing_entity")


@extend_schema_view(retrieve=extend_schema(responses=wrapped_schema(*_BILLING_ENTITY_RESPONSE)))
class BillingEntityViewSet(OrganizationViewSet):
    """Billing entities by code; they cannot be deleted through the API."""

    queryset = BillingEntity.objects.order_by("-is_default", "created_at", "id")
    serializer_class = BillingEntitySerializer
    lookup_field = "code"
    root_key, root_key_plural = "billing_entity", "billing_entities"
    permission_resource = "billing_entity"

    @extend_schema(
        request=wrapped_schema("BillingEntityCreate", BillingEntityInput, "billing_entity"),
        responses=wrapped_schema(*_BILLING_ENTITY_RESPONSE),
    )
    def create(self, request: Request) -> Response:
        values = dict(parse(BillingEntityInput, request.data, root="billing_entity"))
        entity = billing_entity_create_with_taxes(
            organization=self.organization,
            code=values.pop("code", ""),
            tax_codes=values.pop("tax_codes", None),
            actor=self.actor,
            **values,
        )
        return self.respond(entity)  # Lago answers 200 on create

    @extend_schema(
        request=wrapped_schema("BillingEntityUpdate", BillingEntityInput, "billing_entity"),
        responses=wrapped_schema(*_BILLING_ENTITY_RESPONSE),
    )
    def update(self, request: Request, code: str) -> Response:
        entity = self.get_object()
        values = dict(parse(BillingEntityInput, request.data, root="billing_entity"))
        values.pop("code", None)  # immutable
        tax_codes = values.pop("tax_codes", None)
        entity = billing_entity_update_with_taxes(
            billing_entity=entity, values=values, tax_codes=tax_codes, actor=self.actor
        )
        return self.respond(entity)
