"""`/plans` and their sub-resources: charges, charge filters, fixed charges, metadata (spec §6-8).

Plans are addressed by code among the live base plans: overrides (child plans, §6.3) and
deleted plans are invisible here. Writes call one service each; Lago answers 200 (not 201) to
a creation and renders the deleted object on DELETE.
"""

from __future__ import annotations

from functools import cached_property

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.views import LagoAPIView, OrganizationViewSet, parse, wrapped_schema
from billing.errors import NotFound
from plans.api.plan_serializers import (
    ChargeFilterSerializer,
    PlanChargeFilterInput,
    PlanChargeInput,
    PlanChargeSerializer,
    PlanFixedChargeInput,
    PlanFixedChargeSerializer,
    PlanInput,
    PlanMetadataInput,
    PlanSerializer,
)
from plans.models import Charge, ChargeFilter, FixedCharge, Plan, PlanEntitlement, UsageThreshold
from plans.services.charges import (
    as_uuid,
    charge_create,
    charge_delete,
    charge_filter_create,
    charge_filter_delete,
    charge_filter_update,
    charge_update,
    fixed_charge_create,
    fixed_charge_delete,
    fixed_charge_update,
)
from plans.services.plans import (
    plan_create,
    plan_delete,
    plan_metadata_clear,
    plan_metadata_key_delete,
    plan_metadata_merge,
    plan_metadata_replace,
    plan_update,
)

_ALIVE_FILTERS = Prefetch("filters", queryset=ChargeFilter.objects.alive())
_CHARGES = Charge.objects.select_related("billable_metric").prefetch_related(
    "taxes", _ALIVE_FILTERS
)
_FIXED_CHARGES = FixedCharge.objects.select_related("add_on").prefetch_related("taxes")


def plans_rendered() -> QuerySet[Plan]:
    """Plans with everything PlanSerializer reads, in a constant number of queries."""
    return Plan.objects.prefetch_related(
        "taxes",
        Prefetch("charges", queryset=_CHARGES.alive().order_by("created_at", "id")),
        Prefetch("fixed_charges", queryset=_FIXED_CHARGES.alive().order_by("created_at", "id")),
        Prefetch("usage_thresholds", queryset=UsageThreshold.objects.alive()),
        "minimum_commitment__taxes",
        Prefetch(
            "entitlements",
            queryset=PlanEntitlement.objects.filter(feature__deleted_at__isnull=True)
            .select_related("feature")
            .prefetch_related("values__privilege")
            .order_by("created_at", "id"),
            to_attr="live_entitlements",
        ),
    ).select_related("minimum_commitment")


def _cascade_param(request: Request) -> bool:
    return request.query_params.get("cascade_updates", "").lower() in ("true", "1")


_CASCADE = OpenApiParameter(
    "cascade_updates", OpenApiTypes.BOOL, OpenApiParameter.QUERY, required=False,
    description="Also remove the copies on the plan's overrides.",
)  # fmt: skip
_CODE = OpenApiParameter("code", str, OpenApiParameter.PATH, description="Plan code")


def _path(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, str, OpenApiParameter.PATH, description=description)


_PLAN = wrapped_schema("PlanResponse", PlanSerializer, "plan")
_CHARGE = wrapped_schema("PlanChargeResponse", PlanChargeSerializer, "charge")
_FILTER = wrapped_schema("PlanChargeFilterResponse", ChargeFilterSerializer, "filter")
_FIXED = wrapped_schema("PlanFixedChargeResponse", PlanFixedChargeSerializer, "fixed_charge")


class PlanViewSet(OrganizationViewSet):
    """Plans by code."""

    queryset = plans_rendered().alive().filter(parent__isnull=True).order_by("-created_at", "-id")
    serializer_class = PlanSerializer
    lookup_field = "code"
    root_key, root_key_plural = "plan", "plans"
    permission_resource = "plan"

    def _render(self, plan: Plan) -> Response:
        return self.respond(plans_rendered().get(pk=plan.pk))

    @extend_schema(responses=_PLAN)
    def retrieve(self, request: Request, code: str) -> Response:
        return super().retrieve(request, code=code)

    @extend_schema(request=wrapped_schema("PlanCreate", PlanInput, "plan"), responses=_PLAN)
    def create(self, request: Request) -> Response:
        values = parse(PlanInput, request.data, root="plan")
        plan = plan_create(
            organization=self.organization, values=values, actor=self.actor, now=timezone.now()
        )
        return self._render(plan)

    @extend_schema(request=wrapped_schema("PlanUpdate", PlanInput, "plan"), responses=_PLAN)
    def update(self, request: Request, code: str) -> Response:
        values = parse(PlanInput, request.data, root="plan")
        plan = plan_update(
            plan=self.get_object(), values=values, actor=self.actor, now=timezone.now()
        )
        return self._render(plan)

    @extend_schema(responses=_PLAN)
    def destroy(self, request: Request, code: str) -> Response:
        plan = plan_delete(plan=self.get_object(), actor=self.actor, now=timezone.now())
        return self._render(plan)


class PlanChildViewSet(OrganizationViewSet):
    """Resources under `/plans/{code}`: the plan is found first (404 `plan_not_found`)."""

    permission_resource = "plan"

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
        return super().get_queryset().filter(plan=self.plan)


@extend_schema(parameters=[_CODE, _path("charge_code", "Charge code")])
class ChargeViewSet(PlanChildViewSet):
    """`/plans/{code}/charges[/{charge_code}]`."""

    queryset = _CHARGES.alive().order_by("-created_at", "-id")
    serializer_class = PlanChargeSerializer
    lookup_field, lookup_url_kwarg = "code", "charge_code"
    root_key, root_key_plural = "charge", "charges"
    not_found_resource = "charge"

    def _render(self, charge: Charge) -> Response:
        return self.respond(_CHARGES.get(pk=charge.pk))

    @extend_schema(responses=_CHARGE)
    def retrieve(self, request: Request, code: str, charge_code: str) -> Response:
        return self.respond(self.get_object())

    @extend_schema(
        request=wrapped_schema("PlanChargeCreate", PlanChargeInput, "charge"), responses=_CHARGE
    )
    def create(self, request: Request, code: str) -> Response:
        values = parse(PlanChargeInput, request.data, root="charge")
        return self._render(
            charge_create(plan=self.plan, values=values, actor=self.actor, now=timezone.now())
        )

    @extend_schema(
        request=wrapped_schema("PlanChargeUpdate", PlanChargeInput, "charge"), responses=_CHARGE
    )
    def update(self, request: Request, code: str, charge_code: str) -> Response:
        values = parse(PlanChargeInput, request.data, root="charge")
        charge = charge_update(
            charge=self.get_object(), values=values, actor=self.actor, now=timezone.now()
        )
        return self._render(charge)

    @extend_schema(parameters=[_CASCADE], responses=_CHARGE)
    def destroy(self, request: Request, code: str, charge_code: str) -> Response:
        charge = charge_delete(
            charge=self.get_object(),
            actor=self.actor,
            now=timezone.now(),
            cascade=_cascade_param(request),
        )
        return self._render(charge)


@extend_schema(
    parameters=[
        _CODE, _path("charge_code", "Charge code"), _path("filter_id", "Filter lago_id")
    ]
)  # fmt: skip
class ChargeFilterViewSet(PlanChildViewSet):
    """`/plans/{code}/charges/{charge_code}/filters[/{filter_id}]`."""

    queryset = ChargeFilter.objects.alive().select_related("charge").order_by("created_at", "id")
    serializer_class = ChargeFilterSerializer
    root_key, root_key_plural = "filter", "filters"

    @cached_property
    def charge(self) -> Charge:
        charge = (
            Charge.objects.alive().filter(plan=self.plan, code=self.kwargs["charge_code"]).first()
        )
        if charge is None:
            raise NotFound("charge")
        return charge

    def get_queryset(self) -> QuerySet:
        return OrganizationViewSet.get_queryset(self).filter(charge=self.charge)

    def get_object(self) -> ChargeFilter:
        filter_id = as_uuid(self.kwargs["filter_id"])
        charge_filter = self.get_queryset().filter(id=filter_id).first() if filter_id else None
        if charge_filter is None:
            raise NotFound("charge_filter")
        return charge_filter

    @extend_schema(responses=_FILTER)
    def retrieve(self, request: Request, code: str, charge_code: str, filter_id: str) -> Response:
        return self.respond(self.get_object())

    @extend_schema(
        request=wrapped_schema("PlanChargeFilterCreate", PlanChargeFilterInput, "filter"),
        responses=_FILTER,
    )
    def create(self, request: Request, code: str, charge_code: str) -> Response:
        values = parse(PlanChargeFilterInput, request.data, root="filter")
        if _cascade_param(request):
            values["cascade_updates"] = True
        return self.respond(
            charge_filter_create(
                charge=self.charge, values=values, actor=self.actor, now=timezone.now()
            )
        )

    @extend_schema(
        request=wrapped_schema("PlanChargeFilterUpdate", PlanChargeFilterInput, "filter"),
        responses=_FILTER,
    )
    def update(self, request: Request, code: str, charge_code: str, filter_id: str) -> Response:
        values = parse(PlanChargeFilterInput, request.data, root="filter")
        if _cascade_param(request):
            values["cascade_updates"] = True
        charge_filter = charge_filter_update(
            charge_filter=self.get_object(), values=values, actor=self.actor, now=timezone.now()
        )
        return self.respond(charge_filter)

    @extend_schema(parameters=[_CASCADE], responses=_FILTER)
    def destroy(self, request: Request, code: str, charge_code: str, filter_id: str) -> Response:
        charge_filter = charge_filter_delete(
            charge_filter=self.get_object(),
            actor=self.actor,
            now=timezone.now(),
            cascade=_cascade_param(request),
        )
        return self.respond(charge_filter)


@extend_schema(parameters=[_CODE, _path("fixed_charge_code", "Fixed charge code")])
class FixedChargeViewSet(PlanChildViewSet):
    """`/plans/{code}/fixed_charges[/{fixed_charge_code}]`."""

    queryset = _FIXED_CHARGES.alive().order_by("-created_at", "-id")
    serializer_class = PlanFixedChargeSerializer
    lookup_field, lookup_url_kwarg = "code", "fixed_charge_code"
    root_key, root_key_plural = "fixed_charge", "fixed_charges"
    not_found_resource = "fixed_charge"

    def _render(self, fixed_charge: FixedCharge) -> Response:
        return self.respond(_FIXED_CHARGES.get(pk=fixed_charge.pk))

    @extend_schema(responses=_FIXED)
    def retrieve(self, request: Request, code: str, fixed_charge_code: str) -> Response:
        return self.respond(self.get_object())

    @extend_schema(
        request=wrapped_schema("PlanFixedChargeCreate", PlanFixedChargeInput, "fixed_charge"),
        responses=_FIXED,
    )
    def create(self, request: Request, code: str) -> Response:
        values = parse(PlanFixedChargeInput, request.data, root="fixed_charge")
        return self._render(fixed_charge_create(plan=self.plan, values=values, actor=self.actor))

    @extend_schema(
        request=wrapped_schema("PlanFixedChargeUpdate", PlanFixedChargeInput, "fixed_charge"),
        responses=_FIXED,
    )
    def update(self, request: Request, code: str, fixed_charge_code: str) -> Response:
        values = parse(PlanFixedChargeInput, request.data, root="fixed_charge")
        return self._render(
            fixed_charge_update(fixed_charge=self.get_object(), values=values, actor=self.actor)
        )

    @extend_schema(parameters=[_CASCADE], responses=_FIXED)
    def destroy(self, request: Request, code: str, fixed_charge_code: str) -> Response:
        fixed_charge = fixed_charge_delete(
            fixed_charge=self.get_object(),
            actor=self.actor,
            now=timezone.now(),
            cascade=_cascade_param(request),
        )
        return self._render(fixed_charge)


_METADATA = inline_serializer(
    name="PlanMetadataResponse",
    fields={
        "metadata": serializers.DictField(
            child=serializers.CharField(allow_null=True), allow_null=True
        )
    },
)


class _PlanMetadataBase(LagoAPIView):
    permission_resource = "plan"

    def plan(self, code: str) -> Plan:
        plan = (
            Plan.objects.for_organization(self.organization)
            .alive()
            .filter(parent__isnull=True, code=code)
            .first()
        )
        if plan is None:
            raise NotFound("plan")
        return plan

    @staticmethod
    def answer(plan: Plan) -> Response:
        return Response({"metadata": plan.metadata or None})


@extend_schema(parameters=[_CODE])
class PlanMetadataView(_PlanMetadataBase):
    """`/plans/{code}/metadata`: POST replaces, PATCH merges, DELETE clears."""

    @extend_schema(request=PlanMetadataInput, responses=_METADATA)
    def post(self, request: Request, code: str) -> Response:
        metadata = parse(PlanMetadataInput, {"body": request.data}, root="body").get("metadata")
        return self.answer(
            plan_metadata_replace(plan=self.plan(code), metadata=metadata or {}, actor=self.actor)
        )

    @extend_schema(request=PlanMetadataInput, responses=_METADATA)
    def patch(self, request: Request, code: str) -> Response:
        metadata = parse(PlanMetadataInput, {"body": request.data}, root="body").get("metadata")
        return self.answer(
            plan_metadata_merge(plan=self.plan(code), metadata=metadata or {}, actor=self.actor)
        )

    @extend_schema(request=None, responses=_METADATA)
    def delete(self, request: Request, code: str) -> Response:
        return self.answer(plan_metadata_clear(plan=self.plan(code), actor=self.actor))


@extend_schema(parameters=[_CODE, _path("key", "Metadata key")])
class PlanMetadataKeyView(_PlanMetadataBase):
    """`DELETE /plans/{code}/metadata/{key}`."""

    @extend_schema(request=None, responses=_METADATA, operation_id="plans_metadata_key_destroy")
    def delete(self, request: Request, code: str, key: str) -> Response:
        return self.answer(
            plan_metadata_key_delete(plan=self.plan(code), key=key, actor=self.actor)
        )
