"""Subscription routes (spec Appendix A: subscriptions, customers/{id}/subscriptions)."""

from django.urls import path

from customers.api.subscription_views import CustomerSubscriptionViewSet, SubscriptionViewSet

urlpatterns = [
    path(
        "subscriptions",
        SubscriptionViewSet.as_view({"get": "list", "post": "create"}),
        name="subscription-list",
    ),
    path(
        "subscriptions/<str:external_id>",
        SubscriptionViewSet.as_view({"get": "retrieve", "put": "update", "delete": "destroy"}),
        name="subscription-detail",
    ),
    path(
        "customers/<str:external_customer_id>/subscriptions",
        CustomerSubscriptionViewSet.as_view({"get": "list"}),
        name="customer-subscription-list",
    ),
]
