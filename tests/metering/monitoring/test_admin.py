"""The subscription admin page shows its usage monitoring: lifetime usage and every usage alert
with its thresholds, last value and last crossing."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from billing.roles import ensure_role_groups
from billing.services import membership_set
from metering.models import UsageAlert
from tests.metering.monitoring.helpers import calls_billing, refresh, send

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client, organization):
    ensure_role_groups()
    user = get_user_model().objects.create_user("manager", "m@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role="manager")
    client.force_login(user)
    return client


def page(staff, subscription) -> str:
    response = staff.get(f"/admin/customers/subscription/{subscription.pk}/change/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_subscription_page_lists_alerts_with_their_last_values(staff, api, organization):
    billing = calls_billing(api, organization)
    UsageAlert.objects.create(
        organization=organization, external_subscription_id="sub_1", code="spend",
        name="Monthly spend", alert_type="current_usage_amount",
        thresholds=[{"code": None, "value": "2500.0", "recurring": False}],
    )  # fmt: skip
    send(billing, 3)
    refresh("2026-03-10T12:00:30")

    html = page(staff, billing.subscription)

    assert "Usage monitoring" in html
    assert "Monthly spend" in html
    assert "€25.00" in html  # the threshold
    assert "€30.00" in html  # the last value, and the lifetime usage
    assert "2026-03-10 12:00" in html  # evaluated and triggered


def test_without_alerts_the_panel_says_so(staff, api, organization):
    billing = calls_billing(api, organization)

    html = page(staff, billing.subscription)

    assert "No usage alerts." in html
    assert "never" in html
