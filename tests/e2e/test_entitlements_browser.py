"""A manager opens a plan's entitlements: each feature with its privileges in fields of their
type, changes a value and saves; the plan page then shows the new value.

Screenshots go to $SCREENSHOT_DIR (run with SCREENSHOT_DIR=/tmp for /tmp/plan_entitlements*.png)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.actors import SYSTEM
from billing.roles import ensure_role_groups
from billing.services import membership_set
from plans.models import PlanEntitlementValue, Privilege
from plans.services.entitlements import feature_create, plan_entitlements_update
from tests.e2e.conftest import admin_login
from tests.plans.factories import PlanFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def manager(organization):
    ensure_role_groups()
    user = get_user_model().objects.create_user("mgr", "mgr@example.com", "s3cret-pass")
    membership_set(organization=organization, user=user, role="manager")
    return user


@pytest.fixture
def plan(organization):
    now = timezone.now()
    for code, name, privileges in (
        ("seats", "Team seats", [
            {"code": "max", "name": "Maximum seats", "value_type": "integer"},
            {"code": "sso", "name": "Single sign-on", "value_type": "boolean"},
            {"code": "tier", "name": "Support tier", "value_type": "select",
             "config": {"select_options": ["basic", "priority", "dedicated"]}},
        ]),
        ("storage", "Storage", [{"code": "gb", "name": "Gigabytes", "value_type": "integer"}]),
        ("audit_log", "Audit log", []),
    ):  # fmt: skip
        feature_create(
            organization=organization,
            values={"code": code, "name": name, "privileges": privileges},
            actor=SYSTEM,
            now=now,
        )
    plan = PlanFactory(organization=organization, code="pro", name="Pro")
    plan_entitlements_update(
        plan=plan,
        entitlements={"seats": {"max": 10, "sso": True, "tier": "priority"}, "audit_log": {}},
        partial=False,
        actor=SYSTEM,
        now=now,
    )
    return plan


def test_a_manager_edits_a_plans_entitlements(live_server, page, screenshot, manager, plan):
    admin_login(page, live_server.url, "mgr", "s3cret-pass")
    page.goto(f"{live_server.url}/admin/plans/plan/{plan.pk}/entitlements/")

    assert page.locator("#feature-seats").is_visible()
    max_field = page.locator(f"[name=privilege_{Privilege.objects.get(code='max').pk}]")
    assert max_field.input_value() == "10"
    assert page.locator("#feature-storage input[type=checkbox]").is_checked() is False
    screenshot("plan_entitlements")

    max_field.fill("25")
    page.locator("#feature-storage input[type=checkbox]").check()
    page.locator(f"[name=privilege_{Privilege.objects.get(code='gb').pk}]").fill("100")
    page.click("input[type=submit][value='Save entitlements']")
    page.wait_for_load_state()

    values = dict(PlanEntitlementValue.objects.values_list("privilege__code", "value"))
    assert values == {"max": "25", "sso": "true", "tier": "priority", "gb": "100"}
    page.goto(f"{live_server.url}/admin/plans/plan/{plan.pk}/change/")
    assert "seats (max 25, sso Yes, tier priority)" in page.content()
    screenshot("plan_entitlements_on_plan_page")
