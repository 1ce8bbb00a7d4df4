"""The official lago-python-client drives subscriptions against a live server (wire compat)."""

from datetime import UTC, datetime, timedelta

import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models.subscription import Subscription as LagoSubscription

from customers.models import Subscription
from tests.customers.factories import CustomerFactory
from tests.plans.factories import PlanFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def catalog(organization):
    CustomerFactory(organization=organization, external_id="cust_1", timezone="UTC")
    PlanFactory(organization=organization, code="basic", amount_cents=1000)
    PlanFactory(organization=organization, code="premium", amount_cents=5000)


def future(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_client_creates_and_finds_a_subscription(lago, catalog):
    created = lago.subscriptions.create(
        LagoSubscription(
            external_customer_id="cust_1", plan_code="basic", external_id="sub_1", name="Main"
        )
    )
    assert (created.external_id, created.status, created.plan_code) == ("sub_1", "active", "basic")
    found = lago.subscriptions.find("sub_1")
    assert (found.lago_id, found.name, found.external_customer_id) == (
        created.lago_id, "Main", "cust_1",
    )  # fmt: skip
    assert found.current_billing_period_started_at is not None


def test_client_lists_subscriptions_with_status_filters(lago, catalog):
    lago.subscriptions.create(
        LagoSubscription(external_customer_id="cust_1", plan_code="basic", external_id="now")
    )
    lago.subscriptions.create(
        LagoSubscription(
            external_customer_id="cust_1",
            plan_code="basic",
            external_id="later",
            subscription_at=future(10),
        )
    )
    default = lago.subscriptions.find_all()
    assert [s.external_id for s in default["subscriptions"]] == ["now"]
    both = lago.subscriptions.find_all({"status[]": ["active", "pending"], "per_page": 1})
    assert both["meta"]["total_count"] == 2
    assert len(both["subscriptions"]) == 1


def test_client_upgrades_through_create(lago, catalog):
    lago.subscriptions.create(
        LagoSubscription(external_customer_id="cust_1", plan_code="basic", external_id="sub_1")
    )
    upgraded = lago.subscriptions.create(
        LagoSubscription(external_customer_id="cust_1", plan_code="premium", external_id="sub_1")
    )
    assert (upgraded.plan_code, upgraded.previous_plan_code) == ("premium", "basic")


def test_client_updates_a_subscription(lago, catalog):
    lago.subscriptions.create(
        LagoSubscription(external_customer_id="cust_1", plan_code="basic", external_id="sub_1")
    )
    ending = future(60)
    updated = lago.subscriptions.update(LagoSubscription(name="Renamed", ending_at=ending), "sub_1")
    assert (updated.name, updated.ending_at) == ("Renamed", ending)


def test_client_destroys_a_subscription(lago, catalog):
    lago.subscriptions.create(
        LagoSubscription(external_customer_id="cust_1", plan_code="basic", external_id="sub_1")
    )
    terminated = lago.subscriptions.destroy("sub_1", {"on_termination_invoice": "skip"})
    assert (terminated.status, terminated.on_termination_invoice) == ("terminated", "skip")
    assert Subscription.objects.get().status == Subscription.Status.TERMINATED


def test_client_cancels_a_pending_subscription(lago, catalog):
    lago.subscriptions.create(
        LagoSubscription(
            external_customer_id="cust_1",
            plan_code="basic",
            external_id="sub_1",
            subscription_at=future(10),
        )
    )
    canceled = lago.subscriptions.destroy("sub_1", {"status": "pending"})
    assert canceled.status == "canceled"


def test_client_sees_an_unknown_plan_as_a_404(lago, catalog):
    with pytest.raises(LagoApiError) as raised:
        lago.subscriptions.create(LagoSubscription(external_customer_id="cust_1", plan_code="nope"))
    assert raised.value.status_code == 404
