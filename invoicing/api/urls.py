"""Invoicing API routes; each part owns its URL module."""

from importlib.util import find_spec

from django.urls import include, path

urlpatterns = [
    path("", include(module))
    for module in ("invoicing.api.fee_urls", "invoicing.api.invoice_urls")
    if find_spec(module)
]
