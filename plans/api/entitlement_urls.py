"""Feature and plan entitlement routes, included by `plans/api/urls.py`."""

from django.urls import path

from plans.api.entitlement_views import FeatureViewSet, PlanEntitlementViewSet

urlpatterns = [
    path(
        "features", FeatureViewSet.as_view({"get": "list", "post": "create"}), name="feature-list"
    ),
    path(
        "features/<str:code>",
        FeatureViewSet.as_view({"get": "retrieve", "put": "update", "delete": "destroy"}),
        name="feature-detail",
    ),
    path(
        "features/<str:code>/privileges/<str:privilege_code>",
        FeatureViewSet.as_view({"delete": "destroy_privilege"}),
        name="feature-privilege-detail",
    ),
    path(
        "plans/<str:code>/entitlements",
        PlanEntitlementViewSet.as_view(
            {"get": "list", "post": "create", "patch": "partial_update"}
        ),
        name="plan-entitlement-list",
    ),
    path(
        "plans/<str:code>/entitlements/<str:feature_code>",
        PlanEntitlementViewSet.as_view({"get": "retrieve", "delete": "destroy"}),
        name="plan-entitlement-detail",
    ),
    path(
        "plans/<str:code>/entitlements/<str:feature_code>/privileges/<str:privilege_code>",
        PlanEntitlementViewSet.as_view({"delete": "destroy_privilege"}),
        name="plan-entitlement-privilege-detail",
    ),
]
