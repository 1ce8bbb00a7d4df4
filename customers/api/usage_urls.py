"""Customer usage routes (spec §25, Appendix A: customers/{external_customer_id}/*_usage)."""

from django.urls import path

from customers.api.usage_views import CurrentUsageView, PastUsageView, ProjectedUsageView

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
    path(
        "customers/<str:external_customer_id>/past_usage",
        PastUsageView.as_view(),
        name="customer-past-usage",
    ),
]
