"""Past usage route (spec §25, Appendix A: customers/{external_customer_id}/past_usage)."""

from django.urls import path

from invoicing.api.usage_views import PastUsageView

urlpatterns = [
    path(
        "customers/<str:external_customer_id>/past_usage",
        PastUsageView.as_view(),
        name="customer-past-usage",
    ),
]
