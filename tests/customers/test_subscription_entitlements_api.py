"""`/api/v1/subscriptions/{external_id}/entitlements`: the plan's entitlements merged with the
subscription's overrides, features taken away for one subscription, deletions read as gone."""

from __future__ import annotations

import pytest

from tests.customers.factories import SubscriptionFactory
from tests.plans.factories import PlanFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/subscriptions/sub_1/entitlements"


@pytest.fixture
def entitled(api, organization):
    """Plan `pro` grants `seats` (max_seats 10, sso true); feature `storage` (gb) exists apart."""
    plan = PlanFactory(organization=organization, code="pro")
    for code, privileges in (
        ("seats", [{"code": "max_seats", "value_type": "integer"},
                   {"code": "sso", "value_type": "boolean"}]),
        ("storage", [{"code": "gb", "value_type": "integer"}]),
    ):  # fmt: skip
        response = api.post(
            "/api/v1/features",
            {"feature": {"code": code, "privileges": privileges}},
            format="json",
        )
        assert response.status_code == 200, response.json()
    api.post(
        "/api/v1/plans/pro/entitlements",
        {"entitlements": {"seats": {"max_seats": 10, "sso": True}}},
        format="json",
    )
    return SubscriptionFactory(organization=organization, plan=plan, external_id="sub_1")


def patch(api, body):
    return api.patch(URL, {"entitlements": body}, format="json")


def test_without_overrides_the_plans_entitlements_are_the_subscriptions(api, entitled):
    response = api.get(URL)

    assert response.status_code == 200, response.json()
    assert response.json() == {
        "entitlements": [
            {
                "code": "seats",
                "name": None,
                "description": None,
                "privileges": [
                    {"code": "max_seats", "name": None, "value_type": "integer", "value": 10,
                     "plan_value": 10, "override_value": None, "config": {}},
                    {"code": "sso", "name": None, "value_type": "boolean", "value": True,
                     "plan_value": True, "override_value": None, "config": {}},
                ],
                "overrides": {},
            }
        ]
    }  # fmt: skip


def test_an_override_wins_over_the_plan_for_this_subscription_only(api, organization, entitled):
    SubscriptionFactory(organization=organization, plan=entitled.plan, external_id="sub_2")

    response = patch(api, {"seats": {"max_seats": 25}, "storage": {"gb": 100}})

    assert response.status_code == 200, response.json()
    seats, storage = response.json()["entitlements"]
    assert seats["privileges"][0] == {
        "code": "max_seats", "name": None, "value_type": "integer", "value": 25,
        "plan_value": 10, "override_value": 25, "config": {},
    }  # fmt: skip
    assert seats["overrides"] == {"max_seats": 25}
    assert (storage["code"], storage["privileges"][0]["plan_value"]) == ("storage", None)
    other = api.get("/api/v1/subscriptions/sub_2/entitlements").json()["entitlements"]
    assert [(e["code"], e["privileges"][0]["value"]) for e in other] == [("seats", 10)]


def test_override_values_are_checked_against_their_type(api, entitled):
    response = patch(api, {"seats": {"max_seats": "many"}})

    assert response.status_code == 422
    assert response.json()["error_details"] == {"max_seats_privilege_value": ["value_is_invalid"]}


def test_removing_a_plan_feature_hides_it_for_this_subscription_until_patched_back(api, entitled):
    removed = api.delete(f"{URL}/seats")

    assert removed.status_code == 200, removed.json()
    assert removed.json() == {"entitlements": []}
    back = patch(api, {"seats": {}}).json()["entitlements"]
    assert [(e["code"], e["privileges"][0]["value"]) for e in back] == [("seats", 10)]


def test_removing_an_added_feature_drops_its_overrides(api, entitled):
    patch(api, {"storage": {"gb": 100}})

    response = api.delete(f"{URL}/storage")

    assert [e["code"] for e in response.json()["entitlements"]] == ["seats"]
    assert api.delete(f"{URL}/storage").json()["code"] == "feature_not_found"


def test_a_deleted_feature_or_privilege_leaves_every_subscription(api, entitled):
    patch(api, {"storage": {"gb": 100}})

    api.delete("/api/v1/features/seats/privileges/sso")
    api.delete("/api/v1/features/storage")

    [seats] = api.get(URL).json()["entitlements"]
    assert [p["code"] for p in seats["privileges"]] == ["max_seats"]


def test_unknown_subscription_and_other_organizations_are_404(api, other_api, entitled):
    assert api.get("/api/v1/subscriptions/nope/entitlements").json()["code"] == (
        "subscription_not_found"
    )
    assert other_api.get(URL).status_code == 404
    assert other_api.patch(URL, {"entitlements": {}}, format="json").status_code == 404
    assert other_api.delete(f"{URL}/seats").status_code == 404
