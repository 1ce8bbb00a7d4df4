"""Swagger UI at /api/docs/ renders the API in a browser that can reach no other host."""

from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _scroll_until_visible(page, locator, steps: int = 60) -> None:
    """This Swagger UI renders the tags in a virtual list: only those near the viewport exist
    in the page, so the page is scrolled until the wanted one is rendered."""
    for _ in range(steps):
        if locator.count():
            locator.first.scroll_into_view_if_needed()
            return
        page.mouse.wheel(0, 1200)
        page.wait_for_timeout(150)
    raise AssertionError("never rendered while scrolling the whole page")


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
    customers_tag = page.locator("h3.opblock-tag[data-tag='customers']")
    _scroll_until_visible(page, customers_tag)
    customers = page.locator(".opblock-summary-path", has_text="/api/v1/customers").first
    customers.wait_for(timeout=20_000)
    assert "/api/v1/customers" in customers.inner_text()
    screenshot("api-docs-customers")
    assert foreign == []
    assert errors == []
