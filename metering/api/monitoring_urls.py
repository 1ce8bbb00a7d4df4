"""Lifetime usage and usage alert routes of a subscription, included by `metering/api/urls.py`."""

from django.urls import path

from metering.api.monitoring_views import LifetimeUsageViewSet, UsageAlertViewSet

_SUBSCRIPTION = "subscriptions/<str:external_id>"

urlpatterns = [
    path(
        f"{_SUBSCRIPTION}/lifetime_usage",
        LifetimeUsageViewSet.as_view({"get": "retrieve", "put": "update"}),
        name="subscription-lifetime-usage",
    ),
    path(
        f"{_SUBSCRIPTION}/alerts",
        UsageAlertViewSet.as_view({"get": "list", "post": "create", "delete": "destroy_all"}),
        name="subscription-alert-list",
    ),
    path(
        f"{_SUBSCRIPTION}/alerts/<str:code>",
        UsageAlertViewSet.as_view({"get": "retrieve", "put": "update", "delete": "destroy"}),
        name="subscription-alert-detail",
    ),
]
