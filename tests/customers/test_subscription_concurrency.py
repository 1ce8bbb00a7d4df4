"""Subscription state under real concurrent writers on PostgreSQL (STYLE §7, §13).

Each worker is a thread with its own database connection; a barrier releases them together.
"""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import close_old_connections, connection

from billing.actors import SYSTEM
from billing.errors import DomainError, Invalid
from billing.models import OutboxEvent
from customers.models import Subscription
from customers.services.subscription_clock import subscription_activate_pending
from customers.services.subscriptions import subscription_create, subscription_terminate
from tests.customers.factories import CustomerFactory
from tests.plans.factories import PlanFactory

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2024, 3, 5, 12, 0, tzinfo=UTC)
Status = Subscription.Status


def concurrently(*calls):
    """Runs the calls at the same time; returns each one's result or raised exception."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # reported to the test, which asserts on it
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    close_old_connections()
    return results


@pytest.fixture
def current(organization):
    CustomerFactory(organization=organization, external_id="cust_1", timezone="UTC")
    PlanFactory(organization=organization, code="basic", amount_cents=1000)
    PlanFactory(organization=organization, code="premium", amount_cents=5000)
    PlanFactory(organization=organization, code="gold", amount_cents=9000)
    return subscription_create(
        organization=organization, external_customer_id="cust_1", plan_code="basic",
        external_id="sub_1", actor=SYSTEM, now=NOW,
    )  # fmt: skip


def upgrade(organization, plan_code="premium"):
    return lambda: subscription_create(
        organization=organization, external_customer_id="cust_1", plan_code=plan_code,
        external_id="sub_1", actor=SYSTEM, now=NOW + timedelta(days=1),
    )  # fmt: skip


def test_two_simultaneous_upgrades_leave_one_active_successor(organization, current):
    results = concurrently(upgrade(organization), upgrade(organization))
    assert not [r for r in results if isinstance(r, Exception)]
    active = Subscription.objects.filter(external_id="sub_1", status=Status.ACTIVE)
    assert [s.plan.code for s in active] == ["premium"]
    assert {r.pk for r in results} == {active.get().pk}
    assert Subscription.objects.filter(previous_subscription=current).count() == 1


def test_two_simultaneous_upgrades_to_different_plans_chain_them(organization, current):
    results = concurrently(upgrade(organization, "premium"), upgrade(organization, "gold"))
    assert not [r for r in results if isinstance(r, Exception)]
    assert Subscription.objects.filter(external_id="sub_1", status=Status.ACTIVE).count() == 1
    assert Subscription.objects.filter(external_id="sub_1").count() in (2, 3)


def test_upgrade_and_termination_at_once_leave_a_consistent_state(organization, current):
    terminate = lambda: subscription_terminate(subscription=current, actor=SYSTEM, now=NOW)  # noqa: E731
    results = concurrently(upgrade(organization), terminate)
    failures = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(f, DomainError) for f in failures)
    assert Subscription.objects.filter(external_id="sub_1", status=Status.ACTIVE).count() <= 1
    current.refresh_from_db()
    assert current.status == Status.TERMINATED


def test_the_same_new_external_id_for_two_customers_at_once_is_created_once(organization):
    CustomerFactory(organization=organization, external_id="cust_1", timezone="UTC")
    CustomerFactory(organization=organization, external_id="cust_2", timezone="UTC")
    PlanFactory(organization=organization, code="basic")

    def create(customer):
        return lambda: subscription_create(
            organization=organization, external_customer_id=customer, plan_code="basic",
            external_id="shared", actor=SYSTEM, now=NOW,
        )  # fmt: skip

    results = concurrently(create("cust_1"), create("cust_2"))
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(failures) == 1
    assert isinstance(failures[0], Invalid)
    assert failures[0].details == {"external_id": ["value_already_exist"]}
    assert Subscription.objects.filter(external_id="shared", status=Status.ACTIVE).count() == 1


def test_activation_run_twice_at_once_starts_each_subscription_once(organization):
    CustomerFactory(organization=organization, external_id="cust_1", timezone="UTC")
    PlanFactory(organization=organization, code="basic")
    for index in range(5):
        subscription_create(
            organization=organization, external_customer_id="cust_1", plan_code="basic",
            external_id=f"sub_{index}", subscription_at=NOW + timedelta(days=2), actor=SYSTEM,
            now=NOW,
        )  # fmt: skip
    run = lambda: subscription_activate_pending(actor=SYSTEM, now=NOW + timedelta(days=2))  # noqa: E731
    results = concurrently(run, run)
    assert sum(len(r) for r in results) == 5
    assert Subscription.objects.filter(status=Status.ACTIVE).count() == 5
    assert OutboxEvent.objects.filter(event_type="subscription.started").count() == 5
