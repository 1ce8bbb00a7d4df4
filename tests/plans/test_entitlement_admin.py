"""Entitlements in the admin: features with typed privileges, a plan's entitlements page and a
subscription's (plan values greyed, overrides for that subscription only); managers edit,
finance reads, another organization's staff sees nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from billing.actors import SYSTEM
from billing.roles import ensure_role_groups
from billing.services import membership_set
from customers.services.entitlements import subscription_entitlement_list
from plans.models import Feature, PlanEntitlementValue, Privilege
from plans.services.entitlements import feature_create, plan_entitlements_update
from tests.customers.factories import SubscriptionFactory
from tests.plans.factories import PlanFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def role_groups(db):
    ensure_role_groups()


def member(organization, role: str, name: str | None = None):
    user = get_user_model().objects.create_user(name or role, f"{name or role}@x.test", "pw-12345")
    membership_set(organization=organization, user=user, role=role)
    return user


@pytest.fixture
def manager(client, organization):
    client.force_login(member(organization, "manager"))
    return client


@pytest.fixture
def seats(organization):
    from django.utils import timezone

    return feature_create(
        organization=organization,
        values={
            "code": "seats",
            "name": "Seats",
            "privileges": [
                {"code": "max", "name": "Max seats", "value_type": "integer"},
                {"code": "sso", "value_type": "boolean"},
                {"code": "tier", "value_type": "select",
                 "config": {"select_options": ["basic", "pro"]}},
            ],
        },
        actor=SYSTEM,
        now=timezone.now(),
    )  # fmt: skip


@pytest.fixture
def plan(organization, seats):
    from django.utils import timezone

    plan = PlanFactory(organization=organization, code="pro", name="Pro")
    plan_entitlements_update(
        plan=plan,
        entitlements={"seats": {"max": 10, "sso": True}},
        partial=False,
        actor=SYSTEM,
        now=timezone.now(),
    )
    return plan


def field_name(code: str) -> str:
    return f"privilege_{Privilege.objects.get(code=code).pk}"


# --------------------------------------------------------------------------------------------
# Features


def test_a_manager_creates_a_feature_with_typed_privileges(manager, organization):
    response = manager.post(
        "/admin/plans/feature/add/",
        {
            "organization": organization.pk,
            "code": "storage",
            "name": "Storage",
            "description": "",
            "privileges_text": "gb | Gigabytes | integer\nregion | Region | select | eu, us\nnote",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    feature = Feature.objects.get(code="storage")
    assert [
        (p.code, p.value_type, p.config) for p in feature.privileges.order_by("created_at")
    ] == [
        ("gb", "integer", {}),
        ("region", "select", {"select_options": ["eu", "us"]}),
        ("note", "string", {}),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gb | Gigabytes | float", "type must be one of"),
        ("region | Region | select", "a select privilege lists its options"),
        ("gb | | integer | 1, 2", "only a select privilege has options"),
    ],
)
def test_badly_typed_privileges_are_shown_next_to_the_field(manager, organization, text, message):
    response = manager.post(
        "/admin/plans/feature/add/",
        {"organization": organization.pk, "code": "storage", "privileges_text": text},
    )

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Feature.objects.filter(code="storage").exists()


def test_editing_a_feature_removes_the_privileges_left_out(manager, seats, plan):
    response = manager.post(
        f"/admin/plans/feature/{seats.pk}/change/",
        {"name": "Seats", "description": "", "privileges_text": "max | Max seats | integer"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    assert list(seats.privileges.alive().values_list("code", flat=True)) == ["max"]
    assert list(PlanEntitlementValue.objects.values_list("privilege__code", flat=True)) == ["max"]


# --------------------------------------------------------------------------------------------
# A plan's entitlements


def test_the_plan_page_links_its_entitlements(manager, plan):
    page = manager.get(f"/admin/plans/plan/{plan.pk}/change/").content.decode()

    assert "seats (max 10, sso Yes)" in page
    assert f"/admin/plans/plan/{plan.pk}/entitlements/" in page


def test_the_entitlements_page_shows_each_privilege_in_a_field_of_its_type(manager, plan):
    page = manager.get(f"/admin/plans/plan/{plan.pk}/entitlements/").content.decode()

    assert f'type="number" name="{field_name("max")}" value="10"' in page
    assert '<option value="true" selected>Yes</option>' in page
    assert '<option value="pro">pro</option>' in page


def test_a_manager_saves_the_plans_entitlements(manager, plan, seats):
    response = manager.post(
        f"/admin/plans/plan/{plan.pk}/entitlements/",
        {
            f"feature_{seats.pk}": "on",
            field_name("max"): "25",
            field_name("sso"): "",
            field_name("tier"): "pro",
        },
    )

    assert response.status_code == 302
    values = dict(PlanEntitlementValue.objects.values_list("privilege__code", "value"))
    assert values == {"max": "25", "tier": "pro"}


def test_unchecking_a_feature_takes_it_out_of_the_plan(manager, plan, seats):
    response = manager.post(f"/admin/plans/plan/{plan.pk}/entitlements/", {})

    assert response.status_code == 302
    assert not plan.entitlements.exists()


def test_a_wrong_value_is_refused_next_to_its_field(manager, plan, seats):
    response = manager.post(
        f"/admin/plans/plan/{plan.pk}/entitlements/",
        {f"feature_{seats.pk}": "on", field_name("max"): "many"},
    )

    assert response.status_code == 200
    assert "Enter a whole number." in response.content.decode()
    assert PlanEntitlementValue.objects.get(privilege__code="max").value == "10"


def test_finance_reads_the_entitlements_but_cannot_save_them(client, organization, plan, seats):
    client.force_login(member(organization, "finance"))
    url = f"/admin/plans/plan/{plan.pk}/entitlements/"

    page = client.get(url)
    refused = client.post(url, {f"feature_{seats.pk}": "on", field_name("max"): "99"})

    assert page.status_code == 200
    assert "Save entitlements" not in page.content.decode()
    assert refused.status_code == 403
    assert PlanEntitlementValue.objects.get(privilege__code="max").value == "10"


def test_another_organizations_staff_cannot_open_the_page(client, other_organization, plan):
    client.force_login(member(other_organization, "admin", "other"))

    response = client.get(f"/admin/plans/plan/{plan.pk}/entitlements/")

    assert response.status_code == 404


# --------------------------------------------------------------------------------------------
# A subscription's entitlements


@pytest.fixture
def subscription(organization, plan):
    return SubscriptionFactory(organization=organization, plan=plan, external_id="sub_1")


def effective(subscription) -> dict:
    return {
        e.feature.code: {p["code"]: p["value"] for p in e.payload()["privileges"]}
        for e in subscription_entitlement_list(subscription=subscription)
    }


def test_the_subscription_page_shows_the_plan_values_greyed(manager, subscription):
    url = f"/admin/customers/subscription/{subscription.pk}/entitlements/"
    page = manager.get(url).content.decode()

    assert f'name="{field_name("max")}" placeholder="10"' in page
    assert (
        "seats (max 10, sso True)"
        in manager.get(f"/admin/customers/subscription/{subscription.pk}/change/").content.decode()
    )


def test_an_override_applies_to_this_subscription_only(manager, organization, subscription, seats):
    other = SubscriptionFactory(organization=organization, plan=subscription.plan)

    response = manager.post(
        f"/admin/customers/subscription/{subscription.pk}/entitlements/",
        {f"feature_{seats.pk}": "on", field_name("max"): "50"},
    )

    assert response.status_code == 302
    assert effective(subscription) == {"seats": {"max": 50, "sso": True}}
    assert effective(other) == {"seats": {"max": 10, "sso": True}}
    assert PlanEntitlementValue.objects.get(privilege__code="max").value == "10"


def test_unchecking_takes_the_feature_away_from_this_subscription(manager, subscription):
    response = manager.post(f"/admin/customers/subscription/{subscription.pk}/entitlements/", {})

    assert response.status_code == 302
    assert effective(subscription) == {}
    assert subscription.plan.entitlements.count() == 1


def test_finance_cannot_change_a_subscriptions_entitlements(
    client, organization, subscription, seats
):
    client.force_login(member(organization, "finance"))

    response = client.post(
        f"/admin/customers/subscription/{subscription.pk}/entitlements/",
        {f"feature_{seats.pk}": "on", field_name("max"): "50"},
    )

    assert response.status_code == 403
    assert effective(subscription) == {"seats": {"max": 10, "sso": True}}
