"""Customer and subscription API routes; each part owns its URL module."""

from importlib.util import find_spec

from django.urls import include, path

urlpatterns = [
    path("", include(module))
    for module in (
        "customers.api.customer_urls",
        "customers.api.subscription_urls",
        "customers.api.event_urls",
        "customers.api.usage_urls",
    )
    if find_spec(module)
]
