"""A finance member opens a subscription and reads its usage monitoring: lifetime usage and
each usage alert with its thresholds, last value and last crossing.

Screenshots go to $SCREENSHOT_DIR (run with SCREENSHOT_DIR=/tmp for /tmp/subscription_*.png)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from billing.roles import ensure_role_groups
from billing.services import membership_set
from metering.models import LifetimeUsage, TriggeredUsageAlert, UsageAlert
from tests.customers.factories import SubscriptionFactory
from tests.e2e.conftest import admin_login
from tests.plans.factories import BillableMetricFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NOW = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def finance(organization):
    ensure_role_groups()
    user = get_user_model().objects.create_user("fin", "fin@example.com", "s3cret-pass")
    membership_set(organization=organization, user=user, role="finance")
    return user


def test_the_subscription_page_shows_lifetime_usage_and_alerts(
    live_server, page, screenshot, finance, organization
):
    subscription = SubscriptionFactory(organization=organization, external_id="sub_acme")
    LifetimeUsage.objects.create(
        organization=organization, subscription=subscription,
        historical_usage_amount_cents=50_000, invoiced_usage_amount_cents=120_000,
        current_usage_amount_cents=8_250, current_usage_amount_refreshed_at=NOW,
    )  # fmt: skip
    spend = UsageAlert.objects.create(
        organization=organization, external_subscription_id="sub_acme", code="spend",
        name="Monthly spend", alert_type="current_usage_amount",
        thresholds=[{"code": "warn", "value": "5000.0", "recurring": False},
                    {"code": "every", "value": "2500.0", "recurring": True}],
        previous_value=Decimal(8250), last_processed_at=NOW,
    )  # fmt: skip
    metric = BillableMetricFactory(organization=organization, code="api_calls")
    UsageAlert.objects.create(
        organization=organization, external_subscription_id="sub_acme", code="calls",
        alert_type="billable_metric_current_usage_units", billable_metric=metric,
        thresholds=[{"code": None, "value": "100000.0", "recurring": False}],
        previous_value=Decimal(41_200), last_processed_at=NOW,
    )  # fmt: skip
    TriggeredUsageAlert.objects.create(
        organization=organization, alert=spend, subscription=subscription,
        current_value=Decimal(8250), previous_value=Decimal(4000), triggered_at=NOW,
        crossed_thresholds=[{"code": "warn", "value": "5000.0", "recurring": False},
                            {"code": "every", "value": "7500.0", "recurring": True}],
    )  # fmt: skip

    admin_login(page, live_server.url, "fin", "s3cret-pass")
    page.goto(f"{live_server.url}/admin/customers/subscription/{subscription.pk}/change/")

    panel = page.locator("#panel-usage-monitoring")
    assert panel.is_visible()
    text = panel.inner_text()
    assert "Monthly spend" in text
    assert "41,200 units" in text or "41200.0 units" in text
    screenshot("subscription_usage_monitoring")
