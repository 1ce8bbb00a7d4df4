"""Staff of each role land on the overview after logging in; the sidebar's Overview item is
highlighted there; the page follows the theme's light and dark looks.

Screenshots go to $SCREENSHOT_DIR (default /tmp/billing-screenshots): home-ROLE-1280.png and
home-ROLE-1280-dark.png."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.roles import ensure_role_groups
from billing.services import membership_set
from customers import demo as customers_demo
from invoicing import demo_history
from plans import demo as plans_demo
from tests.e2e.conftest import SCREENSHOTS, admin_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH = 1280


@pytest.fixture
def staff(organization):
    ensure_role_groups()
    now = timezone.now()
    plans_demo.seed(organization=organization, now=now)
    customers_demo.seed(organization=organization, now=now)
    demo_history.seed(organization=organization, now=now)
    for role in ("admin", "finance"):
        user = get_user_model().objects.create_user(role, f"{role}@example.com", "s3cret-pass")
        membership_set(organization=organization, user=user, role=role)


def _active_sidebar_links(page) -> list[str]:
    # the theme marks the current sidebar link with the `active` class (texts include the icon)
    return [text.strip() for text in page.locator("a.active").all_inner_texts()]


@pytest.mark.parametrize("role", ["admin", "finance"])
def test_each_role_lands_on_the_overview_in_light_and_dark(live_server, browser, staff, role):
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})
    page = context.new_page()
    try:
        admin_login(page, live_server.url, role, "s3cret-pass")
        page.wait_for_selector("#overview[data-charts=drawn]")
        assert page.locator(".ov-card").count() == 8
        assert any("Overview" in text for text in _active_sidebar_links(page))
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"home-{role}-1280.png"), full_page=True)
        light_card = page.eval_on_selector(".ov-card", "e => getComputedStyle(e).backgroundColor")

        page.emulate_media(color_scheme="dark")  # the theme's "auto" follows the system
        page.goto(f"{live_server.url}/admin/overview/")
        page.wait_for_selector("#overview[data-charts=drawn]")
        assert page.evaluate("document.documentElement.classList.contains('dark')")
        assert any("Overview" in text for text in _active_sidebar_links(page))
        dark_card = page.eval_on_selector(".ov-card", "e => getComputedStyle(e).backgroundColor")
        assert dark_card != light_card
        page.screenshot(path=str(SCREENSHOTS / f"home-{role}-1280-dark.png"), full_page=True)
    finally:
        context.close()
