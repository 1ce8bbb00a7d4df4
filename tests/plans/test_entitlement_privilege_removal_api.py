"""`DELETE /plans/{code}/entitlements/{feature_code}/privileges/{privilege_code}` and
`DELETE /subscriptions/{external_id}/entitlements/{feature_code}/privileges/{privilege_code}`:
one privilege's value taken out of a plan's entitlement, or a subscription's override of it
dropped (the plan's value applies again)."""

from __future__ import annotations

import pytest

from plans.models import Privilege
from tests.customers.factories import SubscriptionFactory
from tests.plans.test_entitlements_api import create_feature, entitle

pytestmark = pytest.mark.django_db

PLAN_URL = "/api/v1/plans/pro/entitlements/seats/privileges"
SUB_URL = "/api/v1/subscriptions/sub_1/entitlements/seats/privileges"


@pytest.fixture
def entitled(api, organization):
    from tests.plans.factories import PlanFactory

    plan = PlanFactory(organization=organization, code="pro")
    create_feature(api)
    entitle(api, {"seats": {"max_seats": 10, "sso": True}})
    return SubscriptionFactory(organization=organization, plan=plan, external_id="sub_1")


def test_a_privilege_is_taken_out_of_the_plans_entitlement(api, entitled):
    response = api.delete(f"{PLAN_URL}/sso")

    assert response.status_code == 200, response.json()
    entitlement = response.json()["entitlement"]
    assert entitlement["code"] == "seats"
    assert [p["code"] for p in entitlement["privileges"]] == ["max_seats"]
    assert Privilege.objects.filter(code="sso").exists()  # the feature keeps its privilege
    listed = api.get("/api/v1/plans/pro/entitlements").json()["entitlements"]
    assert [p["code"] for p in listed[0]["privileges"]] == ["max_seats"]


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/api/v1/plans/nope/entitlements/seats/privileges/sso", "plan_not_found"),
        ("/api/v1/plans/pro/entitlements/storage/privileges/sso", "entitlement_not_found"),
        (f"{PLAN_URL}/tier", "privilege_not_found"),
        (f"{PLAN_URL}/unknown", "privilege_not_found"),
    ],
)
def test_missing_plan_entitlement_or_value_is_404(api, entitled, url, code):
    response = api.delete(url)

    assert response.status_code == 404
    assert response.json()["code"] == code


def test_another_organization_cannot_remove_our_plans_privileges(other_api, api, entitled):
    response = other_api.delete(f"{PLAN_URL}/sso")

    assert response.status_code == 404
    assert response.json()["code"] == "plan_not_found"
    assert (
        len(api.get("/api/v1/plans/pro/entitlements/seats").json()["entitlement"]["privileges"])
        == 2
    )


def test_a_subscriptions_override_is_dropped_and_the_plans_value_applies(api, entitled):
    api.patch(
        "/api/v1/subscriptions/sub_1/entitlements",
        {"entitlements": {"seats": {"max_seats": 25, "sso": False}}},
        format="json",
    )

    response = api.delete(f"{SUB_URL}/max_seats")

    assert response.status_code == 200, response.json()
    [seats] = response.json()["entitlements"]
    values = {p["code"]: (p["value"], p["override_value"]) for p in seats["privileges"]}
    assert values == {"max_seats": (10, None), "sso": (False, False)}
    assert seats["overrides"] == {"sso": False}


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("/api/v1/subscriptions/nope/entitlements/seats/privileges/sso", "subscription_not_found"),
        (f"{SUB_URL}/sso", "entitlement_not_found"),  # no override of the feature at all
    ],
)
def test_a_subscription_without_that_override_is_404(api, entitled, url, code):
    response = api.delete(url)

    assert response.status_code == 404
    assert response.json()["code"] == code


def test_a_privilege_the_subscription_does_not_override_is_404(api, entitled):
    api.patch(
        "/api/v1/subscriptions/sub_1/entitlements",
        {"entitlements": {"seats": {"max_seats": 25}}},
        format="json",
    )

    response = api.delete(f"{SUB_URL}/sso")

    assert response.status_code == 404
    assert response.json()["code"] == "privilege_not_found"


def test_another_organization_cannot_drop_our_subscriptions_overrides(other_api, api, entitled):
    api.patch(
        "/api/v1/subscriptions/sub_1/entitlements",
        {"entitlements": {"seats": {"max_seats": 25}}},
        format="json",
    )

    response = other_api.delete(f"{SUB_URL}/max_seats")

    assert response.status_code == 404
    listed = api.get("/api/v1/subscriptions/sub_1/entitlements").json()["entitlements"]
    assert listed[0]["overrides"] == {"max_seats": 25}
