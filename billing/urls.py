"""Root URLs: every app's API routes, included by name (a renamed module fails at start-up)."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.defaults import page_not_found, server_error
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from billing.admin_search import global_search_view
from billing.api.errors import api_not_found, json_error_for_status, json_server_error
from billing.api.health import health
from billing.api.middleware import is_api_path

API_URLCONFS = (
    "metering.api.event_urls",  # first: the ingestion routes resolve without trying the rest
    "billing.api.urls",
    "plans.api.urls",
    "customers.api.urls",
    "metering.api.urls",
    "wallets.api.urls",
    "invoicing.api.urls",
    "integrations.api.urls",
)

_PUBLIC = {"authentication_classes": [], "permission_classes": [AllowAny], "throttle_classes": []}

urlpatterns = [
    # nothing lives at the root: people opening the site land on the finance dashboard
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("health", health, name="health"),
    path("api/v1/openapi.json", SpectacularJSONAPIView.as_view(**_PUBLIC), name="openapi-schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="openapi-schema", **_PUBLIC),
        name="api-docs",
    ),
    *[path("api/v1/", include(urlconf)) for urlconf in API_URLCONFS],
    re_path(r"^api(?:/|$)", api_not_found),
    # the header's search results (the theme's own admin/search/ answers its command palette)
    path(
        "admin/find/",
        admin.site.admin_view(global_search_view),
        name="admin_global_search",
    ),
    path("admin/", admin.site.urls),
    path("", include("integrations.urls")),
]


def handler404(request, exception=None):
    if is_api_path(request.path):  # a view's Http404: unknown routes never get here (catch-all)
        return json_error_for_status(request, 404)
    return page_not_found(request, exception)


def handler500(request):
    if is_api_path(request.path):
        return json_server_error(request)
    return server_error(request)
