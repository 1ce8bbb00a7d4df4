"""Routes of the organization and its billing entities (spec §2)."""

from django.urls import path

from plans.api.tenancy_views import BillingEntityViewSet, OrganizationView

urlpatterns = [
    path("organizations", OrganizationView.as_view(), name="organization"),
    path(
        "billing_entities",
        BillingEntityViewSet.as_view({"get": "list", "post": "create"}),
        name="billing-entity-list",
    ),
    path(
        "billing_entities/<str:code>",
        BillingEntityViewSet.as_view({"get": "retrieve", "put": "update"}),
        name="billing-entity-detail",
    ),
]
