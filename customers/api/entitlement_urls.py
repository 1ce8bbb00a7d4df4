"""Subscription entitlement routes, included by `customers/api/urls.py`."""

from django.urls import path

from customers.api.entitlement_views import SubscriptionEntitlementViewSet

urlpatterns = [
    path(
        "subscriptions/<str:external_id>/entitlements",
        SubscriptionEntitlementViewSet.as_view({"get": "list", "patch": "partial_update"}),
        name="subscription-entitlement-list",
    ),
    path(
        "subscriptions/<str:external_id>/entitlements/<str:feature_code>",
        SubscriptionEntitlementViewSet.as_view({"delete": "destroy"}),
        name="subscription-entitlement-detail",
    ),
    path(
        "subscriptions/<str:external_id>/entitlements/<str:feature_code>"
        "/privileges/<str:privilege_code>",
        SubscriptionEntitlementViewSet.as_view({"delete": "destroy_privilege"}),
        name="subscription-entitlement-privilege-detail",
    ),
]
