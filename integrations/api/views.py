"""`/customers/{external_id}/checkout_url` and `/customers/{external_id}/payment_methods`.

`/webhook_endpoints` and `/webhooks/public_key`, `/webhooks/json_public_key` (Lago v1).
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.parameters import EXTERNAL_CUSTOMER_ID
from billing.api.views import LagoAPIView, OrganizationViewSet, wrapped_schema
from billing.errors import BadRequest, NotFound
from customers.models import Customer, PaymentMethod
from customers.services.payment_methods import payment_method_destroy
from integrations.api.serializers import (
    CustomerCheckoutSerializer,
    PaymentMethodSerializer,
    PublicKeySerializer,
    WebhookEndpointInput,
    WebhookEndpointSerializer,
)
from integrations.models import PaymentProvider, WebhookEndpoint
from integrations.selectors import (
    payment_method_of_customer,
    webhook_endpoint_get,
    webhook_endpoint_list,
)
from integrations.services.provider_customers import (
    customer_checkout_url_generate,
    payment_method_set_as_default_everywhere,
)
from integrations.services.webhook_endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_update,
)
from integrations.services.webhook_signing import public_key_base64

PAYMENT_METHOD_ID = OpenApiParameter(
    "lago_id", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The payment method's lago_id"
)
PAYMENT_METHOD_RESPONSE = wrapped_schema(
    "PaymentMethodResponse", PaymentMethodSerializer, "payment_method"
)


class _CustomerScoped(OrganizationViewSet):
    permission_resource = "customer"

    def customer(self) -> Customer:
        customer = (
            Customer.objects.for_organization(self.organization)
            .alive()
            .filter(external_id=self.kwargs["external_customer_id"])
            .first()
        )
        if customer is None:
            raise NotFound("customer")
        return customer


class CustomerCheckoutUrlView(_CustomerScoped):
    """A link where the customer saves a payment method at its payment provider."""

    queryset = Customer.objects.all()
    serializer_class = CustomerCheckoutSerializer
    root_key = "customer"

    @extend_schema(
        parameters=[EXTERNAL_CUSTOMER_ID],
        request=None,
        responses=wrapped_schema("CustomerCheckoutUrl", CustomerCheckoutSerializer, "customer"),
    )
    def create(self, request: Request, external_customer_id: str) -> Response:
        customer = self.customer()
        url = customer_checkout_url_generate(customer=customer, actor=self.actor)
        config = customer.billing_configuration or {}
        body = {
            "lago_customer_id": customer.pk,
            "external_customer_id": customer.external_id,
            "payment_provider": config.get("payment_provider"),
            "payment_provider_code": config.get("payment_provider_code"),
            "checkout_url": url,
        }
        return Response({"customer": CustomerCheckoutSerializer(body).data})


class CustomerPaymentMethodViewSet(_CustomerScoped):
    """The customer's payment methods saved at its payment provider."""

    queryset = PaymentMethod.objects.alive().order_by("-created_at", "-id")
    serializer_class = PaymentMethodSerializer
    root_key, root_key_plural = "payment_method", "payment_methods"

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().filter(customer=self.customer())

    def get_serializer_context(self) -> dict:
        names = dict(
            PaymentProvider.objects.for_organization(self.organization)
            .alive()
            .values_list("code", "name")
        )
        return {**super().get_serializer_context(), "provider_names": names}

    @extend_schema(parameters=[EXTERNAL_CUSTOMER_ID])
    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        parameters=[EXTERNAL_CUSTOMER_ID, PAYMENT_METHOD_ID], responses=PAYMENT_METHOD_RESPONSE
    )
    def destroy(self, request: Request, external_customer_id: str, lago_id: str) -> Response:
        method = payment_method_of_customer(customer=self.customer(), lago_id=lago_id)
        method = payment_method_destroy(payment_method=method, actor=self.actor, now=timezone.now())
        return self.respond(method)

    @extend_schema(
        parameters=[EXTERNAL_CUSTOMER_ID, PAYMENT_METHOD_ID],
        request=None,
        responses=PAYMENT_METHOD_RESPONSE,
    )
    def set_as_default(self, request: Request, external_customer_id: str, lago_id: str) -> Response:
        method = payment_method_of_customer(customer=self.customer(), lago_id=lago_id)
        method = payment_method_set_as_default_everywhere(payment_method=method, actor=self.actor)
        return self.respond(method)


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
