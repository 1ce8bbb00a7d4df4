"""Invoicing API routes; each part owns its URL module."""

from django.urls import include, path

urlpatterns = [
    path("", include("invoicing.api.credit_note_urls")),
    path("", include("invoicing.api.fee_urls")),
    path("", include("invoicing.api.invoice_urls")),
    path("", include("invoicing.api.usage_urls")),
    path("", include("invoicing.api.payment_urls")),
    path("", include("invoicing.api.analytics_urls")),
]
