"""At 1280 px: a finance user sees the role under the organization's name and picks the
customer first on the new wallet page; an admin reads an activity entry whose object is the
API's rendering. Screenshots go to $SCREENSHOT_DIR (audit_*.png)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from billing.actors import SYSTEM, Actor
from billing.models import ActivityLog
from billing.services import membership_set
from customers.services.customers import customer_create, customer_update
from tests.e2e.conftest import admin_login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_finance_sees_its_role_and_picks_the_customer_first(
    live_server, page, screenshot, organization
):
    page.set_viewport_size({"width": 1280, "height": 900})
    user = get_user_model().objects.create_user("finance", "finance@example.com", "finance-pw")
    membership_set(organization=organization, user=user, role="finance")
    customer_create(
        organization=organization, values={"external_id": "acme", "name": "Acme"}, actor=SYSTEM
    )

    admin_login(page, live_server.url, "finance", "finance-pw")
    header = page.locator("#nav-sidebar-inner, nav").first.inner_text()
    assert "Finance" in header
    assert "Activity log" not in page.content()
    screenshot("audit_finance_home")

    page.goto(f"{live_server.url}/admin/wallets/wallet/add/")
    page.wait_for_selector("text=Whose wallet is it?")
    screenshot("audit_wallet_pick_customer")


def test_admin_reads_an_activity_entry_rendered_as_the_api(
    live_server, page, screenshot, organization
):
    page.set_viewport_size({"width": 1280, "height": 900})
    boss = get_user_model().objects.create_user("boss", "boss@example.com", "s3cret-pass")
    membership_set(organization=organization, user=boss, role="admin")
    customer = customer_create(
        organization=organization, values={"external_id": "acme", "name": "Acme"}, actor=SYSTEM
    )
    customer_update(
        customer=customer,
        values={"name": "Acme Corp", "metadata": [{"key": "crm", "value": "42"}]},
        actor=Actor.for_user(boss),
    )
    entry = ActivityLog.objects.get(activity_type="customer.updated")

    admin_login(page, live_server.url, "boss", "s3cret-pass")
    assert "Admin" in page.locator("#nav-sidebar-inner, nav").first.inner_text()
    page.goto(f"{live_server.url}/admin/billing/activitylog/{entry.pk}/change/")
    body = page.locator("pre.activity-object").inner_text()
    assert '"lago_id"' in body
    assert '"billing_configuration"' in body  # the customer object as the API answers it
    screenshot("audit_activity_entry")

    page.goto(f"{live_server.url}/admin/customers/customer/{customer.pk}/change/")
    timeline = page.locator("#activity-timeline")
    timeline.scroll_into_view_if_needed()
    assert "metadata" in timeline.inner_text()
    timeline.screenshot(path=str(screenshot("audit_timeline").with_name("audit_timeline.png")))
