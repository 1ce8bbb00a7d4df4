"""Under /api/ every answer is JSON: unknown routes, any method, with or without a key or a
session cookie (CSRF), unsupported methods on known routes, and server errors."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import get_resolver
from django.urls.resolvers import URLResolver

pytestmark = pytest.mark.django_db

METHODS = ["get", "post", "put", "patch", "delete"]
UNKNOWN_PATHS = [
    "/api/v1/does_not_exist",
    "/api/v1/customers/acme/does_not_exist",
    "/api/v1/",
    "/api/nope",
    "/api/v2/customers",
    "/api/",
    "/api",
]
ROUTE_NOT_FOUND = {"status": 404, "error": "Not Found", "code": "route_not_found"}


@pytest.fixture
def keyed(api_key) -> Client:
    """A plain Django client that checks CSRF like a browser would, carrying an API key."""
    return Client(enforce_csrf_checks=True, HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")


@pytest.fixture
def anonymous() -> Client:
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def staff_session(organization) -> Client:
    """A logged-in admin's browser: session cookie, CSRF checks, no API key."""
    user = get_user_model().objects.create(username="root", is_staff=True, is_superuser=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def call(client: Client, method: str, path: str):
    if method == "get":
        return client.get(path)
    return getattr(client, method)(path, data="{}", content_type="application/json")


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
@pytest.mark.parametrize("method", METHODS)
def test_unknown_route_with_an_api_key_is_the_404_envelope(keyed, method, path):
    response = call(keyed, method, path)
    assert (response.status_code, response.json()) == (404, ROUTE_NOT_FOUND)


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
@pytest.mark.parametrize("method", METHODS)
def test_unknown_route_without_an_api_key_is_the_404_envelope(anonymous, method, path):
    response = call(anonymous, method, path)
    assert (response.status_code, response.json()) == (404, ROUTE_NOT_FOUND)


@pytest.mark.parametrize("path", UNKNOWN_PATHS)
@pytest.mark.parametrize("method", METHODS)
def test_unknown_route_with_a_session_cookie_is_the_404_envelope(staff_session, method, path):
    response = call(staff_session, method, path)
    assert (response.status_code, response.json()) == (404, ROUTE_NOT_FOUND)


def _api_routes() -> list[str]:
    """Every routed /api/ path, with its placeholders filled with an unknown value."""

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                yield prefix + str(pattern.pattern)

    routes = []
    for route in walk(get_resolver().url_patterns):
        if route.startswith("api/"):
            routes.append("/" + re.sub(r"<(?:\w+:)?\w+>", "unknown", route))
    return routes


API_ROUTES = _api_routes()


def test_the_route_list_covers_the_api():
    assert "/api/v1/customers/unknown/invoices" in API_ROUTES
    assert "/api/v1/invoices/files/unknown" in API_ROUTES
    assert len(API_ROUTES) > 50


def _assert_errors_are_json(client: Client) -> None:
    html = []
    for path in API_ROUTES:
        for method in METHODS:
            response = call(client, method, path)
            if response.status_code < 400:
                continue
            body = response.json() if response["Content-Type"] == "application/json" else None
            if body is None or body.get("status") != response.status_code:
                html.append((method.upper(), path, response.status_code, response["Content-Type"]))
    assert html == [], "\n".join(map(str, html))


def test_every_api_route_answers_errors_as_json_with_an_api_key(keyed):
    _assert_errors_are_json(keyed)


def test_every_api_route_answers_errors_as_json_to_a_session_cookie(staff_session):
    _assert_errors_are_json(staff_session)


def test_unsupported_method_on_the_invoice_file_link_is_the_405_envelope(anonymous):
    response = anonymous.post("/api/v1/invoices/files/unknown")
    assert response.status_code == 405
    assert response.json() == {
        "status": 405,
        "error": "Method Not Allowed",
        "code": "method_not_allowed",
    }


def test_unsupported_method_on_a_collection_is_the_405_envelope(keyed):
    response = keyed.patch("/api/v1/organizations")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


def test_the_docs_page_stays_html(anonymous):
    response = anonymous.get("/api/docs/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


BROKEN_URLCONF = "tests.api.broken_urls"


@pytest.fixture
def no_raise() -> Client:
    return Client(raise_request_exception=False)


@override_settings(ROOT_URLCONF=BROKEN_URLCONF)
def test_a_crash_outside_drf_is_the_500_envelope_with_the_request_id(no_raise):
    response = no_raise.get("/api/v1/crash", HTTP_X_REQUEST_ID="req-42")
    assert response.status_code == 500
    assert response.json() == {
        "status": 500,
        "error": "Internal Server Error",
        "code": "internal_error",
        "request_id": "req-42",
    }


@override_settings(ROOT_URLCONF=BROKEN_URLCONF, DEBUG=True)
def test_a_crash_outside_drf_is_json_even_in_debug(no_raise):
    response = no_raise.get("/api/v1/crash", HTTP_X_REQUEST_ID="req-43")
    assert response.status_code == 500
    assert response.json()["request_id"] == "req-43"


@override_settings(ROOT_URLCONF=BROKEN_URLCONF)
def test_a_404_raised_outside_drf_is_the_404_envelope(no_raise):
    response = no_raise.get("/api/v1/missing")
    assert response.status_code == 404
    assert response.json() == {"status": 404, "error": "Not Found", "code": "not_found"}


@override_settings(ROOT_URLCONF=BROKEN_URLCONF, DEBUG=True)
def test_a_404_raised_outside_drf_is_json_even_in_debug(no_raise):
    response = no_raise.get("/api/v1/missing")
    assert response.status_code == 404
    assert response.json() == {"status": 404, "error": "Not Found", "code": "not_found"}


@override_settings(ROOT_URLCONF=BROKEN_URLCONF)
def test_a_denied_request_outside_drf_is_the_403_envelope(no_raise):
    response = no_raise.get("/api/v1/denied")
    assert response.status_code == 403
    assert response.json() == {"status": 403, "error": "Forbidden", "code": "forbidden"}


@override_settings(ROOT_URLCONF=BROKEN_URLCONF)
def test_errors_outside_api_paths_stay_html(no_raise):
    response = no_raise.get("/crash")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
