"""A finance member logs in, opens the overview with the demo history and reads its figures;
the charts are drawn by Chart.js from our own static files.

Screenshots go to $SCREENSHOT_DIR (default /tmp/billing-screenshots): overview_1280.png."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.roles import ensure_role_groups
from billing.services import membership_set
from customers import demo as customers_demo
from invoicing import demo_history
from plans import demo as plans_demo
from tests.e2e.conftest import admin_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def finance(organization):
    ensure_role_groups()
    now = timezone.now()
    plans_demo.seed(organization=organization, now=now)
    customers_demo.seed(organization=organization, now=now)
    demo_history.seed(organization=organization, now=now)
    user = get_user_model().objects.create_user("fin", "fin@example.com", "s3cret-pass")
    membership_set(organization=organization, user=user, role="finance")
    return user


def test_finance_member_reads_the_overview(live_server, browser, finance):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    try:
        admin_login(page, live_server.url, "fin", "s3cret-pass")
        page.goto(f"{live_server.url}/admin/overview/")
        page.wait_for_selector("#overview[data-charts=drawn]")

        mrr = page.locator("[data-kpi=mrr] .ov-card-value").inner_text()
        assert mrr.startswith("€")
        assert mrr != "€0.00"
        assert page.locator(".ov-card").count() == 8
        for chart in ("mrr", "streams", "collection", "usage", "top"):
            width = page.evaluate(f"Chart.getChart('chart-{chart}').width")
            assert width > 100, chart
        assert page.evaluate("Chart.getChart('chart-mrr').data.datasets[0].data.length") == 12
        assert page.locator("#ov-top tbody tr").count() == 10
        assert all(url.startswith(live_server.url) for url in requests), "nothing from a CDN"
        path = _shot(page, "overview_1280")
        assert path.stat().st_size > 50_000

        page.click("[data-kpi=overdue]")
        page.wait_for_selector("#result_list")
        assert "overdue=yes" in page.url
        assert page.locator("#result_list tbody tr").count() >= 1
    finally:
        context.close()


def _shot(page, name: str):
    from tests.e2e.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
