"""Catalog API routes; each part of the catalog owns its URL module."""

from django.urls import include, path

urlpatterns = [
    path("", include("plans.api.catalog_urls")),
    path("", include("plans.api.plan_urls")),
]
