"""`/features[/{code}[/privileges/{privilege_code}]]` and `/plans/{code}/entitlements[/{feature}]`.

Plan entitlements: POST replaces them all, PATCH merges; both answer the plan's whole list.
Another organization's feature or plan is a 404.
"""

from __future__ import annotations

from functools import cached_property

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.views import OrganizationViewSet, parse, wrapped_schema
from billing.errors import NotFound
from plans.models import Feature, Plan
from plans.services.entitlements import (
    feature_create,
    feature_delete,
    feature_payload,
    feature_update,
    plan_entitlement_delete,
    plan_entitlement_get,
    plan_entitlement_list,
    plan_entitlement_payload,
    plan_entitlement_privilege_remove,
    plan_entitlements_update,
    privilege_delete,
)

_PATH = OpenApiParameter.PATH
CODE = OpenApiParameter("code", OpenApiTypes.STR, _PATH)
PRIVILEGE = OpenApiParameter("privilege_code", OpenApiTypes.STR, _PATH)
FEATURE_CODE = OpenApiParameter("feature_code", OpenApiTypes.STR, _PATH)


class PrivilegeOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    value_type = serializers.CharField()
    config = serializers.DictField()


class FeatureSerializer(serializers.Serializer):
    """Lago `V1::Entitlement::FeatureSerializer` (the payload the outbox records too)."""

    code = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    description = serializers.CharField(allow_null=True)
    privileges = PrivilegeOutput(many=True)
    created_at = serializers.CharField()

    def to_representation(self, feature: Feature) -> dict:
        return feature_payload(feature)


class FeatureInput(serializers.Serializer):
    code = serializers.JSONField(required=False, allow_null=True)
    name = serializers.JSONField(required=False, allow_null=True)
    description = serializers.JSONField(required=False, allow_null=True)
    privileges = serializers.JSONField(required=False, allow_null=True)


class EntitlementPrivilegeOutput(PrivilegeOutput):
    value = serializers.JSONField()


class PlanEntitlementOutput(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    description = serializers.CharField(allow_null=True)
    privileges = EntitlementPrivilegeOutput(many=True)


FEATURE_RESPONSE = wrapped_schema("FeatureResponse", FeatureSerializer, "feature")
ENTITLEMENTS_RESPONSE = inline_serializer(
    "PlanEntitlementsResponse", fields={"entitlements": PlanEntitlementOutput(many=True)}
)
ENTITLEMENT_RESPONSE = wrapped_schema(
    "PlanEntitlementResponse", PlanEntitlementOutput, "entitlement"
)
ENTITLEMENTS_INPUT = inline_serializer(
    "PlanEntitlementsInput",
    fields={"entitlements": serializers.DictField(child=serializers.DictField())},
)


class FeatureViewSet(OrganizationViewSet):
    queryset = Feature.objects.alive().prefetch_related("privileges").order_by("-created_at", "-id")
    serializer_class = FeatureSerializer
    root_key, root_key_plural = "feature", "features"
    lookup_field = "code"
    permission_resource = "feature"

    @extend_schema(
        request=wrapped_schema("FeatureCreate", FeatureInput, "feature"), responses=FEATURE_RESPONSE
    )
    def create(self, request: Request) -> Response:
        values = parse(FeatureInput, request.data, root="feature")
        feature = feature_create(
            organization=self.organization, values=values, actor=self.actor, now=timezone.now()
        )
        return self.respond(feature)

    @extend_schema(parameters=[CODE], responses=FEATURE_RESPONSE)
    def retrieve(self, request: Request, code: str) -> Response:
        return self.respond(self.get_object())

    @extend_schema(
        parameters=[CODE],
        request=wrapped_schema("FeatureUpdate", FeatureInput, "feature"),
        responses=FEATURE_RESPONSE,
    )
    def update(self, request: Request, code: str) -> Response:
        feature = self.get_object()
        values = parse(FeatureInput, request.data, root="feature", partial=True)
        return self.respond(
            feature_update(feature=feature, values=values, actor=self.actor, now=timezone.now())
        )

    @extend_schema(parameters=[CODE], responses=FEATURE_RESPONSE)
    def destroy(self, request: Request, code: str) -> Response:
        feature = self.get_object()
        data = self.get_serializer(feature).data
        feature_delete(feature=feature, actor=self.actor, now=timezone.now())
        return Response({"feature": data})

    @extend_schema(parameters=[CODE, PRIVILEGE], responses=FEATURE_RESPONSE)
    def destroy_privilege(self, request: Request, code: str, privilege_code: str) -> Response:
        feature = privilege_delete(
            feature=self.get_object(), code=privilege_code, actor=self.actor, now=timezone.now()
        )
        return self.respond(Feature.objects.get(pk=feature.pk))


class PlanEntitlementViewSet(OrganizationViewSet):
    permission_resource = "plan"
    serializer_class = PlanEntitlementOutput

    @cached_property
    def plan(self) -> Plan:
        plan = (
            Plan.objects.for_organization(self.organization)
            .alive()
            .filter(parent__isnull=True, code=self.kwargs["code"])
            .first()
        )
        if plan is None:
            raise NotFound("plan")
        return plan

    def get_queryset(self) -> QuerySet:
        return Plan.objects.none()

    def _all(self) -> Response:
        entitlements = plan_entitlement_list(plan=self.plan)
        return Response({"entitlements": [plan_entitlement_payload(e) for e in entitlements]})

    @extend_schema(parameters=[CODE], responses=ENTITLEMENTS_RESPONSE)
    def list(self, request: Request, code: str) -> Response:
        return self._all()

    def _update(self, request: Request, *, partial: bool) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        plan_entitlements_update(
            plan=self.plan,
            entitlements=data.get("entitlements"),
            partial=partial,
            actor=self.actor,
            now=timezone.now(),
        )
        return self._all()

    @extend_schema(parameters=[CODE], request=ENTITLEMENTS_INPUT, responses=ENTITLEMENTS_RESPONSE)
    def create(self, request: Request, code: str) -> Response:
        return self._update(request, partial=False)

    @extend_schema(parameters=[CODE], request=ENTITLEMENTS_INPUT, responses=ENTITLEMENTS_RESPONSE)
    def partial_update(self, request: Request, code: str) -> Response:
        return self._update(request, partial=True)

    @extend_schema(parameters=[CODE, FEATURE_CODE], responses=ENTITLEMENT_RESPONSE)
    def retrieve(self, request: Request, code: str, feature_code: str) -> Response:
        entitlement = plan_entitlement_get(plan=self.plan, feature_code=feature_code)
        return Response({"entitlement": plan_entitlement_payload(entitlement)})

    @extend_schema(parameters=[CODE, FEATURE_CODE], responses=ENTITLEMENT_RESPONSE)
    def destroy(self, request: Request, code: str, feature_code: str) -> Response:
        entitlement = plan_entitlement_delete(
            plan=self.plan, feature_code=feature_code, actor=self.actor
        )
        payload = plan_entitlement_payload(entitlement, entitlement.values_snapshot)
        return Response({"entitlement": payload})

    @extend_schema(parameters=[CODE, FEATURE_CODE, PRIVILEGE], responses=ENTITLEMENT_RESPONSE)
    def destroy_privilege(
        self, request: Request, code: str, feature_code: str, privilege_code: str
    ) -> Response:
        entitlement = plan_entitlement_privilege_remove(
            plan=self.plan,
            feature_code=feature_code,
            privilege_code=privilege_code,
            actor=self.actor,
        )
        return Response({"entitlement": plan_entitlement_payload(entitlement)})
