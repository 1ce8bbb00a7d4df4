"""`/subscriptions/{external_id}/charges[/{code}[/filters[/{filter_id}]]]` and
`/subscriptions/{external_id}/fixed_charges[/{code}]`: a subscription's prices, read from its
current plan and overridden for it alone (`customers.services.subscription_charges`).

The subscription is the one with this external id in `subscription_status` (default active);
another organization's is a 404. Answers are the plan resources' objects (`charge`, `filter`,
`fixed_charge`), rendered by the catalog's wire objects (its serializers are its own); inputs
are read here with the keys a subscription may override.
"""

from __future__ import annotations

from functools import cached_property

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.views import OrganizationViewSet, parse
from billing.errors import NotFound
from billing.wire_objects import wire_object
from customers.models import Subscription
from customers.services.subscription_charges import (
    subscription_charge_filter_create,
    subscription_charge_filter_delete,
    subscription_charge_filter_update,
    subscription_charge_override,
    subscription_fixed_charge_override,
)
from plans.models import Charge, ChargeFilter, FixedCharge
from plans.services.charges import as_uuid

_CHARGE_ROWS = Charge.objects.select_related("billable_metric").prefetch_related(
    "taxes", Prefetch("filters", queryset=ChargeFilter.objects.alive())
)
_FIXED_CHARGE_ROWS = FixedCharge.objects.select_related("add_on").prefetch_related("taxes")

_PATH = OpenApiParameter.PATH
_EXTERNAL_ID = OpenApiParameter("external_id", OpenApiTypes.STR, _PATH)
_CODE = OpenApiParameter("code", OpenApiTypes.STR, _PATH, description="Charge code")
_CHARGE_CODE = OpenApiParameter("charge_code", OpenApiTypes.STR, _PATH)
_FILTER_ID = OpenApiParameter("filter_id", OpenApiTypes.STR, _PATH)
_STATUS = OpenApiParameter("subscription_status", OpenApiTypes.STR, description="default active")


class _Wire(serializers.BaseSerializer):
    """A catalog row as the plan API renders it (its registered wire object)."""

    object_type = ""

    def to_representation(self, instance: object) -> dict:
        return wire_object(self.object_type).render([instance])[0]


class ChargeOutput(_Wire):
    object_type = "charge"


class ChargeFilterOutput(_Wire):
    object_type = "charge_filter"


class FixedChargeOutput(_Wire):
    object_type = "fixed_charge"


def _answer(name: str, root: str, many: bool = False) -> serializers.Serializer:
    field = (
        serializers.ListField(child=serializers.DictField()) if many else serializers.DictField()
    )
    return inline_serializer(name, fields={root: field})


_CHARGE = _answer("SubscriptionChargeResponse", "charge")
_CHARGES = _answer("SubscriptionChargesResponse", "charges", many=True)
_FILTER = _answer("SubscriptionChargeFilterResponse", "filter")
_FILTERS = _answer("SubscriptionChargeFiltersResponse", "filters", many=True)
_FIXED = _answer("SubscriptionFixedChargeResponse", "fixed_charge")
_FIXEDS = _answer("SubscriptionFixedChargesResponse", "fixed_charges", many=True)


class ChargeOverrideInput(serializers.Serializer):
    invoice_display_name = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=255
    )
    min_amount_cents = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    properties = serializers.DictField(required=False, allow_null=True)
    filters = serializers.ListField(child=serializers.DictField(), required=False, allow_null=True)
    tax_codes = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True
    )


class ChargeFilterInput(serializers.Serializer):
    invoice_display_name = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=255
    )
    properties = serializers.DictField(required=False, allow_null=True)
    values = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False, allow_null=True
    )


class FixedChargeOverrideInput(serializers.Serializer):
    invoice_display_name = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=255
    )
    units = serializers.DecimalField(
        max_digits=30, decimal_places=10, required=False, allow_null=True
    )
    apply_units_immediately = serializers.BooleanField(required=False, allow_null=True)
    properties = serializers.DictField(required=False, allow_null=True)
    tax_codes = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True
    )


# what a subscription may override (Lago's permitted params); the rest of a charge is the plan's
_CHARGE_KEYS = ("invoice_display_name", "min_amount_cents", "properties", "filters", "tax_codes")
_FIXED_KEYS = (
    "invoice_display_name",
    "units",
    "apply_units_immediately",
    "properties",
    "tax_codes",
)
_FILTER_KEYS = ("invoice_display_name", "properties", "values")


def _only(values: dict, keys: tuple[str, ...]) -> dict:
    return {key: values[key] for key in keys if key in values}


class _SubscriptionChild(OrganizationViewSet):
    permission_resource = "subscription"

    @cached_property
    def subscription(self) -> Subscription:
        status = (
            self.request.query_params.get("subscription_status")
            or self.request.query_params.get("status")
            or Subscription.Status.ACTIVE
        )
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


@extend_schema(parameters=[_EXTERNAL_ID, _STATUS])
class SubscriptionChargeViewSet(_SubscriptionChild):
    """The charges of the subscription's current plan (its own, once overridden)."""

    queryset = _CHARGE_ROWS.alive().order_by("-created_at", "-id")
    serializer_class = ChargeOutput
    lookup_field = "code"
    root_key, root_key_plural = "charge", "charges"
    not_found_resource = "charge"

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().filter(plan=self.subscription.plan)

    @extend_schema(responses=_CHARGES)
    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(parameters=[_CODE], responses=_CHARGE)
    def retrieve(self, request: Request, external_id: str, code: str) -> Response:
        return self.respond(self.get_object())

    @extend_schema(
        parameters=[_CODE],
        request=inline_serializer("SubscriptionChargeUpdate", {"charge": ChargeOverrideInput()}),
        responses=_CHARGE,
    )
    def update(self, request: Request, external_id: str, code: str) -> Response:
        charge = self.get_object()
        values = _only(parse(ChargeOverrideInput, request.data, root="charge"), _CHARGE_KEYS)
        override = subscription_charge_override(
            subscription=self.subscription,
            charge=charge,
            values=values,
            actor=self.actor,
            now=timezone.now(),
        )
        return self.respond(_CHARGE_ROWS.get(pk=override.pk))


@extend_schema(parameters=[_EXTERNAL_ID, _CHARGE_CODE, _STATUS])
class SubscriptionChargeFilterViewSet(_SubscriptionChild):
    """The filters of one charge of the subscription's current plan."""

    queryset = ChargeFilter.objects.alive().select_related("charge").order_by("created_at", "id")
    serializer_class = ChargeFilterOutput
    root_key, root_key_plural = "filter", "filters"

    @cached_property
    def charge(self) -> Charge:
        charge = (
            Charge.objects.alive()
            .filter(plan=self.subscription.plan, code=self.kwargs["charge_code"])
            .select_related("billable_metric", "plan")
            .first()
        )
        if charge is None:
            raise NotFound("charge")
        return charge

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().filter(charge=self.charge)

    @extend_schema(responses=_FILTERS)
    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().list(request, *args, **kwargs)

    def get_object(self) -> ChargeFilter:
        filter_id = as_uuid(self.kwargs["filter_id"])
        charge_filter = self.get_queryset().filter(id=filter_id).first() if filter_id else None
        if charge_filter is None:
            raise NotFound("charge_filter")
        return charge_filter

    def _values(self, request: Request) -> dict:
        return _only(parse(ChargeFilterInput, request.data, root="filter"), _FILTER_KEYS)

    @extend_schema(parameters=[_FILTER_ID], responses=_FILTER)
    def retrieve(
        self, request: Request, external_id: str, charge_code: str, filter_id: str
    ) -> Response:
        return self.respond(self.get_object())

    @extend_schema(
        request=inline_serializer(
            "SubscriptionChargeFilterCreate", {"filter": ChargeFilterInput()}
        ),
        responses=_FILTER,
    )
    def create(self, request: Request, external_id: str, charge_code: str) -> Response:
        values = self._values(request)
        charge = self.charge
        created = subscription_charge_filter_create(
            subscription=self.subscription,
            charge=charge,
            values=values,
            actor=self.actor,
            now=timezone.now(),
        )
        return self.respond(created)

    @extend_schema(
        parameters=[_FILTER_ID],
        request=inline_serializer(
            "SubscriptionChargeFilterUpdate", {"filter": ChargeFilterInput()}
        ),
        responses=_FILTER,
    )
    def update(
        self, request: Request, external_id: str, charge_code: str, filter_id: str
    ) -> Response:
        charge_filter = self.get_object()
        values = self._values(request)
        values.pop("values", None)  # a filter's values identify it: they never change
        updated = subscription_charge_filter_update(
            subscription=self.subscription,
            charge=self.charge,
            charge_filter=charge_filter,
            values=values,
            actor=self.actor,
            now=timezone.now(),
        )
        return self.respond(updated)

    @extend_schema(parameters=[_FILTER_ID], responses=_FILTER)
    def destroy(
        self, request: Request, external_id: str, charge_code: str, filter_id: str
    ) -> Response:
        deleted = subscription_charge_filter_delete(
            subscription=self.subscription,
            charge=self.charge,
            charge_filter=self.get_object(),
            actor=self.actor,
            now=timezone.now(),
        )
        return self.respond(deleted)


@extend_schema(parameters=[_EXTERNAL_ID, _STATUS])
class SubscriptionFixedChargeViewSet(_SubscriptionChild):
    """The fixed charges of the subscription's current plan; found by code, else by the code
    of their add-on when only one of them uses it (Lago)."""

    queryset = _FIXED_CHARGE_ROWS.alive().order_by("-created_at", "-id")
    serializer_class = FixedChargeOutput
    root_key, root_key_plural = "fixed_charge", "fixed_charges"

    def get_queryset(self) -> QuerySet:
        return super().get_queryset().filter(plan=self.subscription.plan)

    @extend_schema(responses=_FIXEDS)
    def list(self, request: Request, *args: object, **kwargs: object) -> Response:
        return super().list(request, *args, **kwargs)

    def get_object(self) -> FixedCharge:
        code = self.kwargs["code"]
        queryset = self.get_queryset()
        found = queryset.filter(code=code).first()
        if found is None:
            by_add_on = list(queryset.filter(Q(add_on__code=code))[:2])
            found = by_add_on[0] if len(by_add_on) == 1 else None
        if found is None:
            raise NotFound("fixed_charge")
        return found

    @extend_schema(parameters=[_CODE], responses=_FIXED)
    def retrieve(self, request: Request, external_id: str, code: str) -> Response:
        return self.respond(self.get_object())

    @extend_schema(
        parameters=[_CODE],
        request=inline_serializer(
            "SubscriptionFixedChargeUpdate", {"fixed_charge": FixedChargeOverrideInput()}
        ),
        responses=_FIXED,
    )
    def update(self, request: Request, external_id: str, code: str) -> Response:
        fixed_charge = self.get_object()
        values = _only(
            parse(FixedChargeOverrideInput, request.data, root="fixed_charge"), _FIXED_KEYS
        )
        override = subscription_fixed_charge_override(
            subscription=self.subscription,
            fixed_charge=fixed_charge,
            values=values,
            actor=self.actor,
            now=timezone.now(),
        )
        return self.respond(_FIXED_CHARGE_ROWS.get(pk=override.pk))
