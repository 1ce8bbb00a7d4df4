"""`/billable_metrics`, `/taxes`, `/add_ons`, `/coupons` (spec §4, §14, §15.1, §16).

Objects are addressed by `code`; another tenant's code is a 404. Creates answer 200 like
Lago's controllers (they render without a status).
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework.response import Response

from billing.api.views import LagoAPIView, OrganizationViewSet, parse, wrapped_schema
from plans.api.catalog_serializers import (
    AddOnInput,
    AddOnSerializer,
    BillableMetricInput,
    BillableMetricSerializer,
    CouponInput,
    CouponSerializer,
    EvaluateExpressionInput,
    ExpressionResultSerializer,
    TaxInput,
    TaxSerializer,
)
from plans.expressions import format_expression_value
from plans.models import AddOn, BillableMetric, Coupon, Tax
from plans.selectors import add_on_list, billable_metric_list, coupon_list, tax_list
from plans.services.add_ons import add_on_create, add_on_destroy, add_on_update
from plans.services.coupons import coupon_create, coupon_destroy, coupon_update
from plans.services.metrics import (
    billable_metric_create,
    billable_metric_destroy,
    billable_metric_evaluate_expression,
    billable_metric_update,
)
from plans.services.taxes import tax_create, tax_destroy, tax_update


def _one(name: str, serializer: type, root: str) -> dict:
    return {"responses": wrapped_schema(name, serializer, root)}


_METRIC = ("BillableMetricResponse", BillableMetricSerializer, "billable_metric")
_TAX = ("TaxResponse", TaxSerializer, "tax")
_ADD_ON = ("AddOnResponse", AddOnSerializer, "add_on")
_COUPON = ("CouponResponse", CouponSerializer, "coupon")


@extend_schema_view(retrieve=extend_schema(**_one(*_METRIC)))
class BillableMetricViewSet(OrganizationViewSet):
    """Billable metrics by code."""

    queryset = BillableMetric.objects.all()  # typing for the schema; rows come from selectors
    serializer_class = BillableMetricSerializer
    lookup_field = "code"
    root_key, root_key_plural = "billable_metric", "billable_metrics"
    permission_resource = "billable_metric"

    def get_queryset(self) -> QuerySet[BillableMetric]:
        return billable_metric_list(organization=self.organization)

    def _reloaded(self, metric: BillableMetric) -> BillableMetric:
        return self.get_queryset().get(pk=metric.pk)

    @extend_schema(
        request=wrapped_schema("BillableMetricCreate", BillableMetricInput, "billable_metric"),
        **_one(*_METRIC),
    )
    def create(self, request: Request) -> Response:
        values = parse(BillableMetricInput, request.data, root="billable_metric")
        metric = billable_metric_create(organization=self.organization, **values, actor=self.actor)
        return self.respond(self._reloaded(metric))

    @extend_schema(
        request=wrapped_schema("BillableMetricUpdate", BillableMetricInput, "billable_metric"),
        **_one(*_METRIC),
    )
    def update(self, request: Request, code: str) -> Response:
        metric = self.get_object()
        values = parse(BillableMetricInput, request.data, root="billable_metric", partial=True)
        metric = billable_metric_update(
            billable_metric=metric, values=values, actor=self.actor, now=timezone.now()
        )
        return self.respond(self._reloaded(metric))

    @extend_schema(**_one(*_METRIC))
    def destroy(self, request: Request, code: str) -> Response:
        metric = self.get_object()
        billable_metric_destroy(billable_metric=metric, actor=self.actor, now=timezone.now())
        return self.respond(metric)  # as it was: Lago drops the filters after answering


class EvaluateExpressionView(LagoAPIView):
    """Tries a metric expression on a sample event."""

    permission_resource = "billable_metric"

    @extend_schema(
        request=EvaluateExpressionInput,
        responses=wrapped_schema(
            "ExpressionResultResponse", ExpressionResultSerializer, "expression_result"
        ),
    )
    def post(self, request: Request) -> Response:
        serializer = EvaluateExpressionInput(data=request.data)
        serializer.is_valid(raise_exception=True)
        value = billable_metric_evaluate_expression(
            expression=serializer.validated_data.get("expression") or "",
            event=serializer.validated_data.get("event") or {},
            now=timezone.now(),
        )
        return Response({"expression_result": {"value": format_expression_value(value)}})


@extend_schema_view(retrieve=extend_schema(**_one(*_TAX)))
class TaxViewSet(OrganizationViewSet):
    """Taxes by code."""

    queryset = Tax.objects.all()
    serializer_class = TaxSerializer
    lookup_field = "code"
    root_key, root_key_plural = "tax", "taxes"
    permission_resource = "tax"

    def get_queryset(self) -> QuerySet[Tax]:
        return tax_list(organization=self.organization)

    @extend_schema(request=wrapped_schema("TaxCreate", TaxInput, "tax"), **_one(*_TAX))
    def create(self, request: Request) -> Response:
        values = parse(TaxInput, request.data, root="tax")
        tax = tax_create(organization=self.organization, **values, actor=self.actor)
        return self.respond(self.get_queryset().get(pk=tax.pk))

    @extend_schema(request=wrapped_schema("TaxUpdate", TaxInput, "tax"), **_one(*_TAX))
    def update(self, request: Request, code: str) -> Response:
        tax = self.get_object()
        values = parse(TaxInput, request.data, root="tax", partial=True)
        tax = tax_update(tax=tax, values=values, actor=self.actor)
        return self.respond(self.get_queryset().get(pk=tax.pk))

    @extend_schema(**_one(*_TAX))
    def destroy(self, request: Request, code: str) -> Response:
        return self.respond(tax_destroy(tax=self.get_object(), actor=self.actor))


@extend_schema_view(retrieve=extend_schema(**_one(*_ADD_ON)))
class AddOnViewSet(OrganizationViewSet):
    """Add-ons by code."""

    queryset = AddOn.objects.all()
    serializer_class = AddOnSerializer
    lookup_field = "code"
    root_key, root_key_plural = "add_on", "add_ons"
    permission_resource = "add_on"

    def get_queryset(self) -> QuerySet[AddOn]:
        return add_on_list(organization=self.organization)

    @extend_schema(request=wrapped_schema("AddOnCreate", AddOnInput, "add_on"), **_one(*_ADD_ON))
    def create(self, request: Request) -> Response:
        values = parse(AddOnInput, request.data, root="add_on")
        add_on = add_on_create(organization=self.organization, **values, actor=self.actor)
        return self.respond(self.get_queryset().get(pk=add_on.pk))

    @extend_schema(request=wrapped_schema("AddOnUpdate", AddOnInput, "add_on"), **_one(*_ADD_ON))
    def update(self, request: Request, code: str) -> Response:
        add_on = self.get_object()
        values = parse(AddOnInput, request.data, root="add_on", partial=True)
        add_on = add_on_update(add_on=add_on, values=values, actor=self.actor)
        return self.respond(self.get_queryset().get(pk=add_on.pk))

    @extend_schema(**_one(*_ADD_ON))
    def destroy(self, request: Request, code: str) -> Response:
        return self.respond(
            add_on_destroy(add_on=self.get_object(), actor=self.actor, now=timezone.now())
        )


@extend_schema_view(retrieve=extend_schema(**_one(*_COUPON)))
class CouponViewSet(OrganizationViewSet):
    """Coupons by code."""

    queryset = Coupon.objects.all()
    serializer_class = CouponSerializer
    lookup_field = "code"
    root_key, root_key_plural = "coupon", "coupons"
    permission_resource = "coupon"

    def get_queryset(self) -> QuerySet[Coupon]:
        return coupon_list(organization=self.organization)

    @extend_schema(request=wrapped_schema("CouponCreate", CouponInput, "coupon"), **_one(*_COUPON))
    def create(self, request: Request) -> Response:
        values = parse(CouponInput, request.data, root="coupon")
        coupon = coupon_create(
            organization=self.organization, actor=self.actor, now=timezone.now(), **values
        )
        return self.respond(self.get_queryset().get(pk=coupon.pk))

    @extend_schema(request=wrapped_schema("CouponUpdate", CouponInput, "coupon"), **_one(*_COUPON))
    def update(self, request: Request, code: str) -> Response:
        coupon = self.get_object()
        values = parse(CouponInput, request.data, root="coupon", partial=True)
        coupon = coupon_update(coupon=coupon, values=values, actor=self.actor, now=timezone.now())
        return self.respond(self.get_queryset().get(pk=coupon.pk))

    @extend_schema(**_one(*_COUPON))
    def destroy(self, request: Request, code: str) -> Response:
        return self.respond(
            coupon_destroy(coupon=self.get_object(), actor=self.actor, now=timezone.now())
        )
