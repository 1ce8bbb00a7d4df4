"""Swagger UI at /api/docs/ renders the API in a browser that can reach no other host."""

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.xfail(
    reason="known defect: Swagger UI stops rendering after the third tag of the merged API "
    "document (no console error); the JSON document itself is complete",
    strict=False,
)
def test_swagger_ui_renders_offline(live_server, page, screenshot):
    own_host = urlsplit(live_server.url).netloc
    foreign = []

    def only_this_server(route):
        if urlsplit(route.request.url).netloc == own_host:
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title", timeout=15_000)
    page.wait_for_selector(".opblock-summary-path", timeout=15_000)
    screenshot("api-docs")
    assert "Billing back office API" in page.inner_text(".swagger-ui .info .title")
    # Swagger UI renders the operations tag by tag: wait for the customers one
    customers = page.locator(".opblock-summary-path", has_text="/api/v1/customers").first
    customers.wait_for(timeout=20_000)
    assert "/api/v1/customers" in customers.inner_text()
    assert foreign == []
    assert errors == []
