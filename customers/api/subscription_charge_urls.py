"""Routes of a subscription's charges, charge filters and fixed charges (overrides)."""

from django.urls import path

from customers.api.subscription_charge_views import (
    SubscriptionChargeFilterViewSet,
    SubscriptionChargeViewSet,
    SubscriptionFixedChargeViewSet,
)

_PREFIX = "subscriptions/<str:external_id>"

urlpatterns = [
    path(
        f"{_PREFIX}/charges",
        SubscriptionChargeViewSet.as_view({"get": "list"}),
        name="subscription-charge-list",
    ),
    path(
        f"{_PREFIX}/charges/<str:code>",
        SubscriptionChargeViewSet.as_view({"get": "retrieve", "put": "update"}),
        name="subscription-charge-detail",
    ),
    path(
        f"{_PREFIX}/charges/<str:charge_code>/filters",
        SubscriptionChargeFilterViewSet.as_view({"get": "list", "post": "create"}),
        name="subscription-charge-filter-list",
    ),
    path(
        f"{_PREFIX}/charges/<str:charge_code>/filters/<str:filter_id>",
        SubscriptionChargeFilterViewSet.as_view(
            {"get": "retrieve", "put": "update", "delete": "destroy"}
        ),
        name="subscription-charge-filter-detail",
    ),
    path(
        f"{_PREFIX}/fixed_charges",
        SubscriptionFixedChargeViewSet.as_view({"get": "list"}),
        name="subscription-fixed-charge-list",
    ),
    path(
        f"{_PREFIX}/fixed_charges/<str:code>",
        SubscriptionFixedChargeViewSet.as_view({"get": "retrieve", "put": "update"}),
        name="subscription-fixed-charge-detail",
    ),
]
