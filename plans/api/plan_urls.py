"""Routes of `/plans` and its sub-resources (spec Appendix A)."""

from django.urls import path

from plans.api.plan_views import (
    ChargeFilterViewSet,
    ChargeViewSet,
    FixedChargeViewSet,
    PlanMetadataKeyView,
    PlanMetadataView,
    PlanViewSet,
)

_LIST = {"get": "list", "post": "create"}
_DETAIL = {"get": "retrieve", "put": "update", "delete": "destroy"}

urlpatterns = [
    path("plans", PlanViewSet.as_view(_LIST), name="plan-list"),
    path("plans/<str:code>", PlanViewSet.as_view(_DETAIL), name="plan-detail"),
    path("plans/<str:code>/charges", ChargeViewSet.as_view(_LIST), name="plan-charge-list"),
    path(
        "plans/<str:code>/charges/<str:charge_code>",
        ChargeViewSet.as_view(_DETAIL),
        name="plan-charge-detail",
    ),
    path(
        "plans/<str:code>/charges/<str:charge_code>/filters",
        ChargeFilterViewSet.as_view(_LIST),
        name="plan-charge-filter-list",
    ),
    path(
        "plans/<str:code>/charges/<str:charge_code>/filters/<str:filter_id>",
        ChargeFilterViewSet.as_view(_DETAIL),
        name="plan-charge-filter-detail",
    ),
    path(
        "plans/<str:code>/fixed_charges",
        FixedChargeViewSet.as_view(_LIST),
        name="plan-fixed-charge-list",
    ),
    path(
        "plans/<str:code>/fixed_charges/<str:fixed_charge_code>",
        FixedChargeViewSet.as_view(_DETAIL),
        name="plan-fixed-charge-detail",
    ),
    path("plans/<str:code>/metadata", PlanMetadataView.as_view(), name="plan-metadata"),
    path(
        "plans/<str:code>/metadata/<str:key>",
        PlanMetadataKeyView.as_view(),
        name="plan-metadata-key",
    ),
]
