"""`/webhook_endpoints` and `/webhooks/public_key`, `/webhooks/json_public_key` (Lago v1)."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.views import LagoAPIView, OrganizationViewSet, wrapped_schema
from billing.errors import BadRequest
from integrations.api.serializers import (
    PublicKeySerializer,
    WebhookEndpointInput,
    WebhookEndpointSerializer,
)
from integrations.models import WebhookEndpoint
from integrations.selectors import webhook_endpoint_get, webhook_endpoint_list
from integrations.services.webhook_endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_update,
)
from integrations.services.webhook_signing import public_key_base64

ENDPOINT_RESPONSE = wrapped_schema(
    "WebhookEndpointResponse", WebhookEndpointSerializer, "webhook_endpoint"
)
ENDPOINT_REQUEST = wrapped_schema("WebhookEndpointWrite", WebhookEndpointInput, "webhook_endpoint")
LAGO_ID = OpenApiParameter(
    "lago_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="Lago id of the endpoint"
)
FIELDS = ("webhook_url", "signature_algo", "name", "event_types")


def _values(data: object) -> dict:
    """The given fields of `webhook_endpoint` (a missing or non-object root is a 400)."""
    if not isinstance(data, dict) or not isinstance(data.get("webhook_endpoint"), dict):
        raise BadRequest("param is missing or the value is empty: webhook_endpoint")
    given = data["webhook_endpoint"]
    return {field: given[field] for field in FIELDS if field in given}


class WebhookEndpointViewSet(OrganizationViewSet):
    """Webhook endpoints by `lago_id`; at most 10 per organization."""

    serializer_class = WebhookEndpointSerializer
    root_key, root_key_plural = "webhook_endpoint", "webhook_endpoints"
    permission_resource = "webhook_endpoint"

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no API key
            return WebhookEndpoint.objects.none()
        return webhook_endpoint_list(organization=self.organization)

    def endpoint(self) -> WebhookEndpoint:
        return webhook_endpoint_get(organization=self.organization, lago_id=self.kwargs["lago_id"])

    @extend_schema(request=ENDPOINT_REQUEST, responses=ENDPOINT_RESPONSE)
    def create(self, request: Request) -> Response:
        endpoint = webhook_endpoint_create(
            organization=self.organization, values=_values(request.data), actor=self.actor
        )
        return self.respond(endpoint)

    @extend_schema(parameters=[LAGO_ID], responses=ENDPOINT_RESPONSE)
    def retrieve(self, request: Request, lago_id: str) -> Response:
        return self.respond(self.endpoint())

    @extend_schema(parameters=[LAGO_ID], request=ENDPOINT_REQUEST, responses=ENDPOINT_RESPONSE)
    def update(self, request: Request, lago_id: str) -> Response:
        values = _values(request.data)
        endpoint = webhook_endpoint_update(
            endpoint=self.endpoint(), values=values, actor=self.actor
        )
        return self.respond(endpoint)

    @extend_schema(parameters=[LAGO_ID], responses=ENDPOINT_RESPONSE)
    def destroy(self, request: Request, lago_id: str) -> Response:
        endpoint = webhook_endpoint_delete(endpoint=self.endpoint(), actor=self.actor)
        return self.respond(endpoint)


class WebhookPublicKeyView(LagoAPIView):
    """The base64 PEM public key verifying JWT-signed webhooks, as plain text (deprecated by
    Lago in favour of `json_public_key`)."""

    permission_resource = "webhook_jwt_public_key"

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(public_key_base64(), content_type="text/plain; charset=utf-8")


class WebhookJsonPublicKeyView(LagoAPIView):
    """`{"webhook": {"public_key": <base64 PEM>}}`."""

    permission_resource = "webhook_jwt_public_key"

    @extend_schema(responses=wrapped_schema("WebhookPublicKey", PublicKeySerializer, "webhook"))
    def get(self, request: Request) -> Response:
        return Response({"webhook": {"public_key": public_key_base64()}})
