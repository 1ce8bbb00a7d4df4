"""Routes of the catalog's simple resources: billable metrics, taxes, add-ons, coupons."""

from django.urls import path

from plans.api.catalog_views import (
    AddOnViewSet,
    BillableMetricViewSet,
    CouponViewSet,
    EvaluateExpressionView,
    TaxViewSet,
)

_COLLECTION = {"get": "list", "post": "create"}
_MEMBER = {"get": "retrieve", "put": "update", "delete": "destroy"}

urlpatterns = [
    # before `billable_metrics/<code>`: a fixed segment wins over a code
    path(
        "billable_metrics/evaluate_expression",
        EvaluateExpressionView.as_view(),
        name="billable-metric-evaluate-expression",
    ),
    path(
        "billable_metrics",
        BillableMetricViewSet.as_view(_COLLECTION),
        name="billable-metric-list",
    ),
    path(
        "billable_metrics/<str:code>",
        BillableMetricViewSet.as_view(_MEMBER),
        name="billable-metric-detail",
    ),
    path("taxes", TaxViewSet.as_view(_COLLECTION), name="tax-list"),
    path("taxes/<str:code>", TaxViewSet.as_view(_MEMBER), name="tax-detail"),
    path("add_ons", AddOnViewSet.as_view(_COLLECTION), name="add-on-list"),
    path("add_ons/<str:code>", AddOnViewSet.as_view(_MEMBER), name="add-on-detail"),
    path("coupons", CouponViewSet.as_view(_COLLECTION), name="coupon-list"),
    path("coupons/<str:code>", CouponViewSet.as_view(_MEMBER), name="coupon-detail"),
]
