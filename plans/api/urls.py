"""Catalog API routes; each part of the catalog owns its URL module."""

from importlib.util import find_spec

from django.urls import include, path

urlpatterns = [
    path("", include(module))
    for module in ("plans.api.catalog_urls", "plans.api.plan_urls")
    if find_spec(module)
]
