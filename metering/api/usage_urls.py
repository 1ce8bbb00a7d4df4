"""Customer usage routes (spec §25): current_usage and projected_usage."""

from django.urls import path

from metering.api.usage_views import CurrentUsageView, ProjectedUsageView

urlpatterns = [
    path(
        "customers/<str:external_customer_id>/current_usage",
        CurrentUsageView.as_view(),
        name="customer-current-usage",
    ),
    path(
        "customers/<str:external_customer_id>/projected_usage",
        ProjectedUsageView.as_view(),
        name="customer-projected-usage",
    ),
]
