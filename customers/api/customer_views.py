"""`/customers` and `/applied_coupons` (spec §3, §15.2)."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.parameters import EXTERNAL_CUSTOMER_ID
from billing.api.views import OrganizationViewSet, parse, wrapped_schema
from billing.errors import NotFound
from customers.api.customer_filters import (
    AppliedCouponFilter,
    CustomerAppliedCouponFilter,
    CustomerFilter,
)
from customers.api.customer_serializers import (
    AppliedCouponInput,
    AppliedCouponSerializer,
    CustomerInput,
)
from customers.models import AppliedCoupon, Customer
from customers.representations import CustomerSerializer
from customers.selectors import coupon_applicable_list, customer_get
from customers.services.applied_coupons import applied_coupon_create, applied_coupon_terminate
from customers.services.customers import customer_destroy, customer_upsert

CUSTOMER_RESPONSE = wrapped_schema("CustomerResponse", CustomerSerializer, "customer")
APPLIED_COUPON_RESPONSE = wrapped_schema(
    "AppliedCouponResponse", AppliedCouponSerializer, "applied_coupon"
)


@extend_schema_view(
    retrieve=extend_schema(parameters=[EXTERNAL_CUSTOMER_ID], responses=CUSTOMER_RESPONSE)
)
class CustomerViewSet(OrganizationViewSet):
    """Customers by `external_id`; POST is an upsert, DELETE a soft delete."""

    queryset = (
        Customer.objects.alive()
        .select_related("billing_entity", "organization")
        .prefetch_related("metadata", "taxes")
        .order_by("-created_at", "-id")
    )
    serializer_class = CustomerSerializer
    filterset_class = CustomerFilter
    lookup_field = "external_id"
    lookup_url_kwarg = "external_customer_id"
    root_key, root_key_plural = "customer", "customers"
    permission_resource = "customer"

    @extend_schema(
        request=wrapped_schema("CustomerUpsert", CustomerInput, "customer"),
        responses=CUSTOMER_RESPONSE,
    )
    def create(self, request: Request) -> Response:
        values = parse(CustomerInput, request.data, root="customer")
        customer = customer_upsert(organization=self.organization, values=values, actor=self.actor)
        if (values.get("billing_configuration") or {}).get("sync"):
            # `sync: true`: the provider customer was created when the upsert committed
            customer.refresh_from_db(fields=["billing_configuration"])
        return self.respond(customer)  # 200 as Lago: the same call creates or updates

    @extend_schema(parameters=[EXTERNAL_CUSTOMER_ID], responses=CUSTOMER_RESPONSE)
    def destroy(self, request: Request, external_customer_id: str) -> Response:
        customer = customer_destroy(
            customer=self.get_object(), actor=self.actor, now=timezone.now()
        )
        return self.respond(customer)


class AppliedCouponViewSet(OrganizationViewSet):
    """Coupons applied to the organization's customers."""

    queryset = AppliedCoupon.objects.select_related("coupon", "customer").order_by(
        "-created_at", "-id"
    )
    serializer_class = AppliedCouponSerializer
    filterset_class = AppliedCouponFilter
    root_key, root_key_plural = "applied_coupon", "applied_coupons"
    permission_resource = "applied_coupon"

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        context["include_credits"] = self.action == "list"
        return context

    @extend_schema(
        request=wrapped_schema("AppliedCouponCreate", AppliedCouponInput, "applied_coupon"),
        responses=APPLIED_COUPON_RESPONSE,
    )
    def create(self, request: Request) -> Response:
        terms = dict(parse(AppliedCouponInput, request.data, root="applied_coupon"))
        customer = customer_get(
            organization=self.organization, external_id=terms.pop("external_customer_id") or ""
        )
        coupon = (
            coupon_applicable_list(organization=self.organization, now=timezone.now())
            .filter(code=terms.pop("coupon_code") or "")
            .first()
        )
        if coupon is None:
            raise NotFound("coupon")
        applied_coupon = applied_coupon_create(
            customer=customer, coupon=coupon, actor=self.actor, now=timezone.now(), **terms
        )
        return self.respond(applied_coupon)  # 200 as Lago


@extend_schema_view(list=extend_schema(parameters=[EXTERNAL_CUSTOMER_ID]))
class CustomerAppliedCouponViewSet(AppliedCouponViewSet):
    """One customer's applied coupons; DELETE terminates one of them."""

    filterset_class = CustomerAppliedCouponFilter

    def get_queryset(self) -> QuerySet:
        customer = customer_get(
            organization=self.organization, external_id=self.kwargs["external_customer_id"]
        )
        return super().get_queryset().filter(customer=customer)

    @extend_schema(
        parameters=[
            EXTERNAL_CUSTOMER_ID,
            OpenApiParameter("applied_coupon_id", OpenApiTypes.UUID, OpenApiParameter.PATH),
        ],
        responses=APPLIED_COUPON_RESPONSE,
    )
    def destroy(
        self, request: Request, external_customer_id: str, applied_coupon_id: str
    ) -> Response:
        try:
            pk = uuid.UUID(applied_coupon_id)
        except ValueError as exc:
            raise NotFound("applied_coupon") from exc
        applied_coupon = self.get_queryset().filter(pk=pk).first()
        if applied_coupon is None:
            raise NotFound("applied_coupon")
        applied_coupon = applied_coupon_terminate(
            applied_coupon=applied_coupon, actor=self.actor, now=timezone.now()
        )
        return self.respond(applied_coupon)
