"""Subscription admin: scoped list, read-only detail, and the "Change plan…" / "Terminate…"
actions, each an intermediate form that calls the services (STYLE §10)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from billing.roles import ensure_role_groups
from billing.services import membership_set
from customers.models import Subscription
from customers.services.subscriptions import subscription_create, subscription_terminate
from tests.customers.factories import CustomerFactory
from tests.plans.factories import PlanFactory

pytestmark = pytest.mark.django_db

URL = "/admin/customers/subscription/"
Status = Subscription.Status


@pytest.fixture(autouse=True)
def role_groups(db):
    # The role groups are seeded after billing's migrations, before the customers app's own
    # permissions exist on a fresh test database: refresh them as a later migrate would.
    ensure_role_groups()


@pytest.fixture
def manager(organization):
    user = get_user_model().objects.create_user("manager", "m@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role="manager")
    return user


@pytest.fixture
def staff(client, manager):
    client.force_login(manager)
    return client


@pytest.fixture
def catalog(organization):
    CustomerFactory(organization=organization, external_id="cust_1", name="Wayne", timezone="UTC")
    return {
        code: PlanFactory(organization=organization, code=code, name=code.title(), amount_cents=a)
        for code, a in (("basic", 1000), ("premium", 5000), ("starter", 100))
    }


def make(organization, plan_code="basic", **kwargs):
    return subscription_create(
        organization=organization, external_customer_id="cust_1", plan_code=plan_code,
        actor=SYSTEM, now=timezone.now(), **kwargs,
    )  # fmt: skip


def test_list_shows_the_organizations_subscriptions_only(
    staff, organization, other_organization, catalog
):
    make(organization, external_id="ours")
    CustomerFactory(organization=other_organization, external_id="cust_x", currency="USD")
    PlanFactory(organization=other_organization, code="x", amount_currency="USD")
    subscription_create(
        organization=other_organization, external_customer_id="cust_x", plan_code="x",
        external_id="theirs", actor=SYSTEM, now=timezone.now(),
    )  # fmt: skip
    page = staff.get(URL).content.decode()
    assert "ours" in page
    assert "theirs" not in page


def test_list_shows_start_and_end_as_dates(staff, organization, catalog):
    subscription = make(organization, external_id="ours")
    subscription_terminate(subscription=subscription, actor=SYSTEM, now=timezone.now())

    response = staff.get(URL)

    [row] = response.context["cl"].result_list
    admin = response.context["cl"].model_admin
    assert admin.started(row) == row.started_at.date().isoformat()
    assert admin.ends(row) == f"ended {row.terminated_at.date().isoformat()}"


def test_list_filters_by_status(staff, organization, catalog):
    make(organization, external_id="running")
    make(organization, external_id="later", subscription_at=timezone.now() + timedelta(days=9))
    page = staff.get(URL, {"status__exact": "pending"}).content.decode()
    assert "later" in page
    assert "running" not in page


def test_list_filters_by_plan_and_billing_time(staff, organization, catalog):
    make(organization, external_id="on_basic")
    make(organization, "premium", external_id="on_premium", billing_time="anniversary")
    page = staff.get(URL, {"plan__id__exact": catalog["premium"].pk}).content.decode()
    assert "on_premium" in page
    assert "on_basic" not in page
    page = staff.get(URL, {"billing_time__exact": "calendar"}).content.decode()
    assert "on_basic" in page
    assert "on_premium" not in page


def test_list_searches_by_customer(staff, organization, catalog):
    make(organization, external_id="found")
    page = staff.get(URL, {"q": "Wayne"}).content.decode()
    assert "found" in page


def test_detail_shows_the_current_billing_period(staff, organization, catalog):
    subscription = make(
        organization, external_id="sub_1", subscription_at=datetime(2024, 1, 10, tzinfo=UTC)
    )
    page = staff.get(f"{URL}{subscription.pk}/change/").content.decode()
    assert "Current billing period" in page
    assert "(UTC)" in page
    assert 'name="_save"' not in page


def test_subscriptions_are_never_deleted_here(staff, organization, catalog):
    subscription = make(organization)
    assert staff.get(f"{URL}{subscription.pk}/delete/").status_code == 403


def test_adding_a_subscription_opens_the_subscribe_form_not_a_raw_row(staff, catalog):
    page = staff.get(f"{URL}add/").content.decode()
    assert "Which customer subscribes?" in page
    assert 'name="status"' not in page


def test_change_plan_asks_for_the_new_plan(staff, organization, catalog):
    subscription = make(organization, external_id="sub_1")
    response = staff.post(URL, {"action": "change_plan", "_selected_action": [subscription.pk]})
    page = response.content.decode()
    assert response.status_code == 200
    assert "Premium (premium)" in page
    assert 'name="_selected_action"' in page


def test_change_plan_upgrades_through_the_service(staff, organization, catalog):
    subscription = make(organization, external_id="sub_1")
    response = staff.post(
        URL,
        {"action": "change_plan", "_selected_action": [subscription.pk],
         "plan": catalog["premium"].pk, "apply": "Change plan"},
        follow=True,
    )  # fmt: skip
    assert [str(m) for m in response.context["messages"]] == ["1 moved to another plan."]
    subscription.refresh_from_db()
    assert subscription.status == Status.TERMINATED
    successor = Subscription.objects.get(previous_subscription=subscription)
    assert (successor.status, successor.plan.code) == (Status.ACTIVE, "premium")


def test_change_plan_to_a_cheaper_plan_waits_for_the_period_end(staff, organization, catalog):
    subscription = make(organization, external_id="sub_1")
    staff.post(
        URL,
        {"action": "change_plan", "_selected_action": [subscription.pk],
         "plan": catalog["starter"].pk, "apply": "Change plan"},
    )  # fmt: skip
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE
    assert subscription.downgrade_plan_date is not None
    assert Subscription.objects.get(previous_subscription=subscription).status == Status.PENDING


def test_terminate_asks_for_the_termination_choices(staff, organization, catalog):
    subscription = make(organization)
    page = staff.post(URL, {"action": "terminate", "_selected_action": [subscription.pk]})
    assert "on_termination_credit_note" in page.content.decode()


def test_terminate_ends_active_and_cancels_pending(staff, organization, catalog):
    active = make(organization, external_id="active")
    later = timezone.now() + timedelta(days=9)
    pending = make(organization, external_id="pending", subscription_at=later)
    staff.post(
        URL,
        {"action": "terminate", "_selected_action": [active.pk, pending.pk],
         "on_termination_credit_note": "", "on_termination_invoice": "skip", "apply": "Terminate"},
    )  # fmt: skip
    active.refresh_from_db()
    pending.refresh_from_db()
    assert (active.status, active.on_termination_invoice) == (Status.TERMINATED, "skip")
    assert pending.status == Status.CANCELED
    assert OutboxEvent.objects.filter(event_type="subscription.terminated").count() == 1


def test_terminate_reports_what_it_refused(staff, organization, catalog):
    ended = subscription_terminate(
        subscription=make(organization), actor=SYSTEM, now=timezone.now()
    )
    response = staff.post(
        URL,
        {"action": "terminate", "_selected_action": [ended.pk],
         "on_termination_invoice": "generate", "apply": "Terminate"},
        follow=True,
    )  # fmt: skip
    messages = [str(m) for m in response.context["messages"]]
    assert any("1 refused" in m for m in messages)


def test_finance_staff_cannot_run_the_actions(client, organization, catalog):
    user = get_user_model().objects.create_user("fin", "f@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role="finance")
    client.force_login(user)
    subscription = make(organization)
    page = client.get(URL).content.decode()
    assert "change_plan" not in page
    client.post(
        URL,
        {"action": "terminate", "_selected_action": [subscription.pk],
         "on_termination_invoice": "generate", "apply": "Terminate"},
    )  # fmt: skip
    subscription.refresh_from_db()
    assert subscription.status == Status.ACTIVE


def test_an_admin_termination_records_the_staff_user_as_actor(
    staff, manager, organization, catalog
):
    subscription = make(organization)
    staff.post(
        URL,
        {"action": "terminate", "_selected_action": [subscription.pk],
         "on_termination_invoice": "skip", "apply": "Terminate"},
    )  # fmt: skip
    event = OutboxEvent.objects.get(event_type="subscription.terminated")
    assert (event.actor_type, event.actor_id, event.actor_name) == (
        "user",
        str(manager.pk),
        "manager",
    )


def test_change_plan_shows_upgrade_now_and_downgrade_later(staff, organization, catalog):
    subscription = make(organization, external_id="sub_1")  # basic: 10.00 a month
    response = staff.post(URL, {"action": "change_plan", "_selected_action": [subscription.pk]})
    page = response.content.decode()
    assert "€50.00 / monthly" in page  # the plan choices show their price
    premium, starter = str(catalog["premium"].pk), str(catalog["starter"].pk)
    assert f'"{premium}": {{"{subscription.pk}": "upgrade: the new plan applies now"}}' in page
    assert f'"{starter}": {{"{subscription.pk}": "downgrade: the new plan applies on ' in page
