"""A URLconf for tests: the project's routes plus plain Django views under /api/ that fail, so
that errors raised outside DRF can be checked."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import path

from billing import urls as project_urls


def crash(request):
    raise RuntimeError("boom")


def missing(request):
    raise Http404("no such thing")


def denied(request):
    raise PermissionDenied


urlpatterns = [
    path("api/v1/crash", crash),
    path("api/v1/missing", missing),
    path("api/v1/denied", denied),
    path("crash", crash),
    *project_urls.urlpatterns,
]
handler404 = project_urls.handler404
handler500 = project_urls.handler500
