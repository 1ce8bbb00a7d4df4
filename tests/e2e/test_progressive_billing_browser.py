"""A finance member opens a subscription billed progressively: its lifetime usage, a progress
bar per usage threshold (with the date it was reached) and the period's progressive billing
invoices.

Screenshots go to $SCREENSHOT_DIR (run with SCREENSHOT_DIR=/tmp for /tmp/subscription_*.png)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.actors import SYSTEM
from billing.roles import ensure_role_groups
from billing.services import membership_set
from invoicing.models import Invoice
from metering.services.refresh import refresh_usage
from plans.models import UsageThreshold
from tests.e2e.conftest import admin_login
from tests.metering.usage.conftest import make_billing

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def finance(organization):
    ensure_role_groups()
    user = get_user_model().objects.create_user("fin", "fin@example.com", "s3cret-pass")
    membership_set(organization=organization, user=user, role="finance")
    return user


def test_the_subscription_page_shows_thresholds_progress_and_progressive_invoices(
    api, live_server, page, screenshot, finance, organization
):
    month_start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    billing = make_billing(
        api,
        organization,
        started_at=month_start.isoformat(),
        external_id="sub_acme",
        plan_fields={"amount_cents": 3100},
    )
    metric = billing.metric("total", "sum_agg", field_name="total")
    billing.charge(metric, properties={"amount": "0.0002"})
    for amount, recurring in [(20_000, False), (50_000, False), (30_000, True)]:
        UsageThreshold.objects.create(
            organization=organization, plan=billing.plan, amount_cents=amount, recurring=recurring
        )
    for total in ("1000000", "1750000"):  # 200.00, then 550.00 in all
        billing.send("total", properties={"total": total})
        refresh_usage(actor=SYSTEM, now=timezone.now())  # its hooks run: autocommit
    first, second = Invoice.objects.filter(invoice_type="progressive_billing").order_by(
        "created_at"
    )

    admin_login(page, live_server.url, "fin", "s3cret-pass")
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/admin/customers/subscription/{billing.subscription.pk}/change/")

    panel = page.locator("#panel-progressive-billing")
    assert panel.is_visible()
    bars = panel.locator("[role=progressbar]")
    assert [bars.nth(i).get_attribute("aria-valuenow") for i in range(bars.count())] == [
        "100",
        "100",
        "16",
    ]
    text = panel.inner_text()
    assert first.number in text
    assert second.number in text
    assert text.count("UTC") == 2  # the two reached thresholds are dated
    screenshot("subscription_progressive_billing")
