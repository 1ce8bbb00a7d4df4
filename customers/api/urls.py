"""Customer and subscription API routes; each part owns its URL module."""

from django.urls import include, path

urlpatterns = [
    path("", include("customers.api.customer_urls")),
    path("", include("customers.api.subscription_urls")),
    path("", include("customers.api.entitlement_urls")),
    path("", include("customers.api.subscription_charge_urls")),
]
