"""`/subscriptions/{external_id}/entitlements[/{feature_code}]`: the effective entitlements of
a subscription (GET), its overrides (PATCH, merge), a feature taken away (DELETE) and one
privilege's override dropped (DELETE `.../{feature_code}/privileges/{privilege_code}`). Each
answers the whole effective list. Another organization's subscription is a 404."""

from __future__ import annotations

from functools import cached_property

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.views import OrganizationViewSet
from billing.errors import NotFound
from customers.models import Subscription
from customers.services.entitlements import (
    EffectiveEntitlement,
    subscription_entitlement_list,
    subscription_entitlement_privilege_remove,
    subscription_entitlement_remove,
    subscription_entitlements_update,
)

_PATH = OpenApiParameter.PATH
EXTERNAL_ID = OpenApiParameter("external_id", OpenApiTypes.STR, _PATH)
FEATURE_CODE = OpenApiParameter("feature_code", OpenApiTypes.STR, _PATH)
PRIVILEGE_CODE = OpenApiParameter("privilege_code", OpenApiTypes.STR, _PATH)
STATUS = OpenApiParameter("subscription_status", OpenApiTypes.STR, description="default active")


class EffectivePrivilegeOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    value_type = serializers.CharField()
    value = serializers.JSONField()
    plan_value = serializers.JSONField()
    override_value = serializers.JSONField(allow_null=True)  # null: no override
    config = serializers.DictField()


class SubscriptionEntitlementOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    description = serializers.CharField(allow_null=True)
    privileges = EffectivePrivilegeOutput(many=True)
    overrides = serializers.DictField()


ENTITLEMENTS_RESPONSE = inline_serializer(
    "SubscriptionEntitlementsResponse",
    fields={"entitlements": SubscriptionEntitlementOutput(many=True)},
)
ENTITLEMENTS_INPUT = inline_serializer(
    "SubscriptionEntitlementsInput",
    fields={"entitlements": serializers.DictField(child=serializers.DictField())},
)


def _answer(entitlements: list[EffectiveEntitlement]) -> Response:
    return Response({"entitlements": [e.payload() for e in entitlements]})


class SubscriptionEntitlementViewSet(OrganizationViewSet):
    permission_resource = "subscription"
    serializer_class = SubscriptionEntitlementOutput

    @cached_property
    def subscription(self) -> Subscription:
        status = self.request.query_params.get("subscription_status") or Subscription.Status.ACTIVE
        subscription = (
            Subscription.objects.for_organization(self.organization)
            .filter(external_id=self.kwargs["external_id"], status=status)
            .select_related("plan")
            .order_by("-created_at", "-id")
            .first()
        )
        if subscription is None:
            raise NotFound("subscription")
        return subscription

    def get_queryset(self) -> QuerySet:
        return Subscription.objects.none()

    @extend_schema(parameters=[EXTERNAL_ID, STATUS], responses=ENTITLEMENTS_RESPONSE)
    def list(self, request: Request, external_id: str) -> Response:
        return _answer(subscription_entitlement_list(subscription=self.subscription))

    @extend_schema(
        parameters=[EXTERNAL_ID, STATUS],
        request=ENTITLEMENTS_INPUT,
        responses=ENTITLEMENTS_RESPONSE,
    )
    def partial_update(self, request: Request, external_id: str) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        return _answer(
            subscription_entitlements_update(
                subscription=self.subscription,
                entitlements=data.get("entitlements"),
                actor=self.actor,
                now=timezone.now(),
            )
        )

    @extend_schema(parameters=[EXTERNAL_ID, FEATURE_CODE, STATUS], responses=ENTITLEMENTS_RESPONSE)
    def destroy(self, request: Request, external_id: str, feature_code: str) -> Response:
        return _answer(
            subscription_entitlement_remove(
                subscription=self.subscription,
                feature_code=feature_code,
                actor=self.actor,
                now=timezone.now(),
            )
        )

    @extend_schema(
        parameters=[EXTERNAL_ID, FEATURE_CODE, PRIVILEGE_CODE, STATUS],
        responses=ENTITLEMENTS_RESPONSE,
    )
    def destroy_privilege(
        self, request: Request, external_id: str, feature_code: str, privilege_code: str
    ) -> Response:
        return _answer(
            subscription_entitlement_privilege_remove(
                subscription=self.subscription,
                feature_code=feature_code,
                privilege_code=privilege_code,
                actor=self.actor,
            )
        )
