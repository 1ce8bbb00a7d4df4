"""`/customers/{external_id}/checkout_url` and `/customers/{external_id}/payment_methods`."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.parameters import EXTERNAL_CUSTOMER_ID
from billing.api.views import OrganizationViewSet, wrapped_schema
from billing.errors import NotFound
from customers.models import Customer, PaymentMethod
from customers.services.payment_methods import payment_method_destroy
from integrations.api.serializers import CustomerCheckoutSerializer, PaymentMethodSerializer
from integrations.models import PaymentProvider
from integrations.selectors import payment_method_of_customer
from integrations.services.provider_customers import (
    customer_checkout_url_generate,
    payment_method_set_as_default_everywhere,
)

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
