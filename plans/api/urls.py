"""Catalog API routes (and the organization's, whose answers carry catalog taxes); each part
owns its URL module."""

from django.urls import include, path

urlpatterns = [
    path("", include("plans.api.tenancy_urls")),
    path("", include("plans.api.catalog_urls")),
    path("", include("plans.api.plan_urls")),
    path("", include("plans.api.entitlement_urls")),
]
