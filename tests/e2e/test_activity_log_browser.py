"""An admin opens the activity log, narrows it to dashboard changes, and reads a customer's
timeline on the customer's page. Screenshots go to $SCREENSHOT_DIR (activity_*.png)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from billing.actors import SYSTEM, Actor
from customers.services.customers import customer_create, customer_update
from tests.e2e.conftest import admin_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_reads_the_activity_log_and_a_customer_timeline(
    live_server, page, screenshot, organization
):
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "s3cret-pass")
    customer = customer_create(
        organization=organization, values={"external_id": "acme_corp", "name": "Acme"}, actor=SYSTEM
    )
    customer_update(
        customer=customer, values={"name": "Acme Corporation"}, actor=Actor.for_user(boss)
    )

    admin_login(page, live_server.url, "boss", "s3cret-pass")
    page.click("text=Activity log")
    page.wait_for_selector("text=customer.updated")
    assert page.locator("text=boss@example.com").count() >= 1
    screenshot("activity_log")

    page.goto(f"{live_server.url}/admin/billing/activitylog/?activity_source__exact=front")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 1
    assert "Acme Corporation" in rows.first.inner_text()
    screenshot("activity_log_dashboard_changes")
    page.click("text=Filters")
    page.wait_for_selector("text=By activity type")
    screenshot("activity_log_filters")

    page.goto(f"{live_server.url}/admin/customers/customer/{customer.pk}/change/")
    timeline = page.locator("#activity-timeline")
    timeline.scroll_into_view_if_needed()
    assert "customer.created" in timeline.inner_text()
    assert "customer.updated" in timeline.inner_text()
    timeline.screenshot(
        path=str(screenshot("activity_customer_page").with_name("activity_customer_timeline.png"))
    )
