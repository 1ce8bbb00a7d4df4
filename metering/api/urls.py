"""Usage routes (spec §25, Appendix A: customers/{id}/*_usage, lifetime usage, alerts); the
event routes are in `event_urls`."""

from django.urls import include, path

urlpatterns = [
    path("", include("metering.api.usage_urls")),
    path("", include("metering.api.monitoring_urls")),
]
