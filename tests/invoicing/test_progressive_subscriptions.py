"""Progressive billing settings through the subscription endpoints: same-plan `POST`, `PUT`,
plan changes, and the `applicable_usage_thresholds` of the subscription object (DRF client and
lago-python-client)."""

from __future__ import annotations

import pytest
import time_machine
from lago_python_client.models.plan import PlanOverrides
from lago_python_client.models.subscription import Subscription as LagoSubscription
from lago_python_client.models.usage_threshold import (
    UsageThresholdOverrides,
    UsageThresholdsOverrides,
)

from customers.models import Subscription
from plans.models import UsageThreshold
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.metering.usage.conftest import at
from tests.plans.factories import PlanFactory


def _thresholds(subscription: Subscription) -> list[tuple[int, bool]]:
    return list(
        UsageThreshold.objects.alive()
        .filter(plan_id=subscription.plan_id)
        .order_by("amount_cents")
        .values_list("amount_cents", "recurring")
    )


@pytest.fixture
def subscribed(organization):
    customer = CustomerFactory(organization=organization, external_id="cust")
    plan = PlanFactory(organization=organization, code="startup", amount_cents=10_000)
    UsageThreshold.objects.create(
        organization=organization, plan=plan, amount_cents=5_000, threshold_display_name="Plan"
    )
    return SubscriptionFactory(
        organization=organization,
        customer=customer,
        plan=plan,
        external_id="sub",
        status="active",
        started_at=at("2026-01-01T00:00:00"),
        subscription_at=at("2026-01-01T00:00:00"),
    )


def _post(api, **fields):
    body = {"external_customer_id": "cust", "external_id": "sub", **fields}
    return api.post("/api/v1/subscriptions", {"subscription": body}, format="json")


@pytest.mark.django_db
def test_same_plan_post_replaces_the_subscription_thresholds(api, subscribed):
    response = _post(
        api,
        plan_code="startup",
        usage_thresholds=[{"amount_cents": 8_000}, {"amount_cents": 1_000, "recurring": True}],
    )

    assert response.status_code == 200, response.json()
    subscription = Subscription.objects.get(pk=subscribed.pk)
    assert subscription.plan.parent_id == subscribed.plan_id
    assert _thresholds(subscription) == [(1_000, True), (8_000, False)]
    assert response.json()["subscription"]["applicable_usage_thresholds"] == [
        {"threshold_display_name": None, "amount_cents": 8_000, "recurring": False},
        {"threshold_display_name": None, "amount_cents": 1_000, "recurring": True},
    ]


@pytest.mark.django_db
def test_same_plan_post_replaces_thresholds_again_on_the_same_overridden_plan(api, subscribed):
    _post(api, plan_code="startup", usage_thresholds=[{"amount_cents": 8_000}])
    overridden = Subscription.objects.get(pk=subscribed.pk).plan_id

    _post(api, plan_code="startup", usage_thresholds=[{"amount_cents": 9_000}])

    subscription = Subscription.objects.get(pk=subscribed.pk)
    assert subscription.plan_id == overridden
    assert _thresholds(subscription) == [(9_000, False)]


@pytest.mark.django_db
def test_same_plan_post_leaves_progressive_billing_disabled_to_put(api, subscribed):
    # Lago's create path returns the current subscription as is: only PUT changes the flag
    response = _post(api, plan_code="startup", progressive_billing_disabled=True)

    assert response.status_code == 200, response.json()
    assert response.json()["subscription"]["progressive_billing_disabled"] is False
    assert not Subscription.objects.get(pk=subscribed.pk).progressive_billing_disabled


@pytest.mark.django_db
@pytest.mark.parametrize("method", ["post", "put"])
def test_thresholds_and_plan_override_thresholds_together_are_refused(api, subscribed, method):
    fields = {
        "usage_thresholds": [{"amount_cents": 8_000}],
        "plan_overrides": {"usage_thresholds": [{"amount_cents": 9_000}]},
    }
    if method == "post":
        response = _post(api, plan_code="startup", **fields)
    else:
        response = api.put("/api/v1/subscriptions/sub", {"subscription": fields}, format="json")

    assert response.status_code == 422
    details = response.json()["error_details"]
    assert details["usage_thresholds"] == ["incompatible_params"]
    assert details["plan_overrides.usage_thresholds"] == ["incompatible_params"]
    assert Subscription.objects.get(pk=subscribed.pk).plan_id == subscribed.plan_id


@pytest.mark.django_db
def test_put_renders_the_applicable_thresholds_it_set(api, subscribed):
    response = api.put(
        "/api/v1/subscriptions/sub",
        {"subscription": {"usage_thresholds": [{"amount_cents": 7_000}]}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["subscription"]["applicable_usage_thresholds"] == [
        {"threshold_display_name": None, "amount_cents": 7_000, "recurring": False}
    ]


@pytest.mark.django_db
def test_show_renders_the_plans_thresholds_when_the_subscription_has_none(api, subscribed):
    body = api.get("/api/v1/subscriptions/sub").json()["subscription"]

    assert body["applicable_usage_thresholds"] == [
        {"threshold_display_name": "Plan", "amount_cents": 5_000, "recurring": False}
    ]


@pytest.mark.django_db
def test_show_renders_no_applicable_thresholds_when_disabled(api, subscribed):
    Subscription.objects.filter(pk=subscribed.pk).update(progressive_billing_disabled=True)

    body = api.get("/api/v1/subscriptions/sub").json()["subscription"]

    assert body["applicable_usage_thresholds"] == []


@pytest.mark.django_db
def test_list_does_not_render_applicable_thresholds(api, subscribed):
    [row] = api.get("/api/v1/subscriptions").json()["subscriptions"]

    assert row["external_id"] == "sub"
    assert "applicable_usage_thresholds" not in row


@pytest.fixture
def other_plans(organization):
    return {
        "pro": PlanFactory(organization=organization, code="pro", amount_cents=50_000),
        "basic": PlanFactory(organization=organization, code="basic", amount_cents=1_000),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["pro", "basic"], ids=["upgrade", "downgrade"])
def test_plan_change_does_not_carry_disabled_progressive_billing_or_own_thresholds(
    api, subscribed, other_plans, code
):
    api.put(
        "/api/v1/subscriptions/sub",
        {
            "subscription": {
                "progressive_billing_disabled": True,
                "usage_thresholds": [{"amount_cents": 7_000}],
            }
        },
        format="json",
    )

    with time_machine.travel(at("2026-01-10T00:00:00"), tick=False):
        response = _post(api, plan_code=code)

    assert response.status_code == 200, response.json()
    new = Subscription.objects.exclude(pk=subscribed.pk).get(external_id="sub")
    assert new.plan_id == other_plans[code].pk
    assert new.progressive_billing_disabled is False
    assert _thresholds(new) == []


@pytest.mark.django_db
@pytest.mark.parametrize("code", ["pro", "basic"], ids=["upgrade", "downgrade"])
def test_plan_change_takes_the_requests_progressive_billing_settings(
    api, subscribed, other_plans, code
):
    with time_machine.travel(at("2026-01-10T00:00:00"), tick=False):
        response = _post(
            api,
            plan_code=code,
            progressive_billing_disabled=True,
            usage_thresholds=[{"amount_cents": 4_000}],
        )

    assert response.status_code == 200, response.json()
    new = Subscription.objects.exclude(pk=subscribed.pk).get(external_id="sub")
    assert new.progressive_billing_disabled is True
    assert new.plan.parent_id == other_plans[code].pk
    assert _thresholds(new) == [(4_000, False)]
    assert _thresholds(Subscription.objects.get(pk=subscribed.pk)) == [(5_000, False)]


@pytest.mark.django_db(transaction=True)
def test_client_reads_a_subscription_with_applicable_thresholds(lago, api, subscribed):
    updated = lago.subscriptions.update(
        LagoSubscription(
            plan_overrides=PlanOverrides(
                usage_thresholds=UsageThresholdsOverrides(
                    __root__=[UsageThresholdOverrides(amount_cents=6_000, recurring=False)]
                )
            )
        ),
        "sub",
    )
    found = lago.subscriptions.find("sub")

    assert (updated.external_id, found.external_id) == ("sub", "sub")
    raw = api.get("/api/v1/subscriptions/sub").json()["subscription"]
    assert [t["amount_cents"] for t in raw["applicable_usage_thresholds"]] == [6_000]
