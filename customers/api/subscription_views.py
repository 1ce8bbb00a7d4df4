"""`/subscriptions` and `/customers/{external_customer_id}/subscriptions` (spec §9, Appendix A)."""

from __future__ import annotations

import django_filters
from django.db.models import F, Prefetch, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.views import OrganizationViewSet, parse, wrapped_schema
from billing.errors import NotFound
from customers.api.subscription_serializers import SubscriptionCreateInput, SubscriptionUpdateInput
from customers.models import Customer, Subscription
from customers.representations import SubscriptionSerializer
from customers.services.subscriptions import (
    subscription_create,
    subscription_terminate,
    subscription_update,
)

Status = Subscription.Status


class SubscriptionFilter(django_filters.FilterSet):
    """Lago's list filters; without `status[]` only active subscriptions are listed (§9)."""

    external_customer_id = django_filters.CharFilter(field_name="customer__external_id")
    plan_code = django_filters.CharFilter(field_name="plan__code")
    status = django_filters.MultipleChoiceFilter(field_name="status", choices=Status.choices)
    currency = django_filters.CharFilter(field_name="plan__amount_currency", lookup_expr="iexact")
    billing_entity_codes = django_filters.BaseInFilter(field_name="customer__billing_entity__code")

    class Meta:
        model = Subscription
        fields: list[str] = []

    @classmethod
    def get_filters(cls) -> dict:
        # Lago (Rails) sends array params with brackets: `status[]=active&status[]=pending`.
        filters = super().get_filters()
        filters["status[]"] = filters.pop("status")
        return filters

    def __init__(self, data=None, *args: object, **kwargs: object) -> None:
        if data is not None and "billing_entity_codes[]" in data:
            data = data.copy()
            data["billing_entity_codes"] = ",".join(data.getlist("billing_entity_codes[]"))
        super().__init__(data, *args, **kwargs)

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        if not self.form.cleaned_data.get("status[]"):
            queryset = queryset.filter(status=Status.ACTIVE)
        return super().filter_queryset(queryset)


def _subscriptions() -> QuerySet:
    """Everything the wire object needs, in a fixed number of queries for any page size."""
    return Subscription.objects.select_related(
        "customer__billing_entity",
        "customer__organization",
        "plan",
        "previous_subscription__plan",
    ).prefetch_related(
        Prefetch(
            "next_subscriptions",
            queryset=Subscription.objects.exclude(status=Status.CANCELED)
            .select_related("plan")
            .order_by("-created_at", "-pk"),
            to_attr="live_successors",
        )
    )


STATUS_PARAMETER = OpenApiParameter(
    "status",
    OpenApiTypes.STR,
    enum=Status.values,
    description="Which subscription of the external id: `active` by default.",
)
SUBSCRIPTION_RESPONSE = wrapped_schema(
    "SubscriptionResponse", SubscriptionSerializer, "subscription"
)
LIST_PARAMETERS = [
    OpenApiParameter("page", OpenApiTypes.INT),
    OpenApiParameter("per_page", OpenApiTypes.INT),
]


class SubscriptionViewSet(OrganizationViewSet):
    """Subscriptions by `external_id`: assign a plan, change it, edit, terminate."""

    queryset = Subscription.objects.all()
    serializer_class = SubscriptionSerializer
    filterset_class = SubscriptionFilter
    lookup_field = "external_id"
    root_key, root_key_plural = "subscription", "subscriptions"
    permission_resource = "subscription"

    def get_queryset(self) -> QuerySet:
        if getattr(self, "swagger_fake_view", False):  # schema generation: no API key
            return Subscription.objects.none()
        return _subscriptions().for_organization(self.organization).order_by("-created_at", "-id")

    def get_serializer_context(self) -> dict:
        return {
            **super().get_serializer_context(),
            "now": timezone.now(),
            # Lago renders them on show, create and update, not in lists nor on termination
            "include_applicable_usage_thresholds": self.action
            in ("retrieve", "create", "update", "partial_update"),
        }

    def _find(self, external_id: str, status: str | None) -> Subscription:
        """The subscription of an external id in a status (active unless asked otherwise)."""
        subscription = (
            self.get_queryset()
            .filter(external_id=external_id, status=status or Status.ACTIVE)
            .order_by(
                F("terminated_at").desc(nulls_first=True),
                F("started_at").desc(nulls_first=True),
                "-created_at",
            )
            .first()
        )
        if subscription is None:
            raise NotFound("subscription")
        return subscription

    @extend_schema(
        parameters=[
            OpenApiParameter("external_customer_id", OpenApiTypes.STR),
            OpenApiParameter("plan_code", OpenApiTypes.STR),
            OpenApiParameter(
                "status[]",
                OpenApiTypes.STR,
                many=True,
                enum=Status.values,
                description="Statuses to list; only `active` when absent.",
            ),
            OpenApiParameter("currency", OpenApiTypes.STR),
            OpenApiParameter("billing_entity_codes[]", OpenApiTypes.STR, many=True),
            *LIST_PARAMETERS,
        ],
    )
    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(parameters=[STATUS_PARAMETER], responses=SUBSCRIPTION_RESPONSE)
    def retrieve(self, request: Request, external_id: str) -> Response:
        return self.respond(self._find(external_id, request.query_params.get("status")))

    @extend_schema(
        request=wrapped_schema("SubscriptionCreate", SubscriptionCreateInput, "subscription"),
        responses=SUBSCRIPTION_RESPONSE,
    )
    def create(self, request: Request) -> Response:
        values = dict(parse(SubscriptionCreateInput, request.data, root="subscription"))
        subscription = subscription_create(
            organization=self.organization,
            external_customer_id=values.pop("external_customer_id"),
            plan_code=values.pop("plan_code", ""),
            actor=self.actor,
            now=timezone.now(),
            **values,
        )
        return self.respond(subscription)  # Lago answers 200, not 201

    @extend_schema(
        parameters=[STATUS_PARAMETER],
        request=wrapped_schema("SubscriptionUpdate", SubscriptionUpdateInput, "subscription"),
        responses=SUBSCRIPTION_RESPONSE,
    )
    def update(self, request: Request, external_id: str) -> Response:
        status = Status.PENDING if request.query_params.get("status") == "pending" else None
        subscription = self._find(external_id, status)
        values = parse(SubscriptionUpdateInput, request.data, root="subscription")
        subscription = subscription_update(
            subscription=subscription, actor=self.actor, now=timezone.now(), **values
        )
        return self.respond(subscription)

    @extend_schema(
        parameters=[
            STATUS_PARAMETER,
            OpenApiParameter(
                "on_termination_credit_note",
                OpenApiTypes.STR,
                enum=Subscription.OnTerminationCreditNote.values,
                description="Pay-in-advance plans: what to do with the unused days.",
            ),
            OpenApiParameter(
                "on_termination_invoice",
                OpenApiTypes.STR,
                enum=Subscription.OnTerminationInvoice.values,
            ),
        ],
        responses=SUBSCRIPTION_RESPONSE,
    )
    def destroy(self, request: Request, external_id: str) -> Response:
        params = request.query_params
        status = Status.PENDING if params.get("status") == "pending" else None
        subscription = subscription_terminate(
            subscription=self._find(external_id, status),
            actor=self.actor,
            now=timezone.now(),
            on_termination_credit_note=params.get("on_termination_credit_note") or None,
            on_termination_invoice=params.get("on_termination_invoice") or None,
        )
        return self.respond(subscription)


class CustomerSubscriptionViewSet(SubscriptionViewSet):
    """The subscriptions of one customer; an unknown customer is a 404."""

    @extend_schema(
        parameters=[
            OpenApiParameter("plan_code", OpenApiTypes.STR),
            OpenApiParameter(
                "status[]",
                OpenApiTypes.STR,
                many=True,
                enum=Status.values,
                description="Statuses to list; only `active` when absent.",
            ),
            *LIST_PARAMETERS,
        ],
    )
    def list(self, request: Request, external_customer_id: str) -> Response:
        customer = (
            Customer.objects.for_organization(self.organization)
            .alive()
            .filter(external_id=external_customer_id)
            .first()
        )
        if customer is None:
            raise NotFound("customer")
        queryset = self.filter_queryset(self.get_queryset().filter(customer=customer))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
