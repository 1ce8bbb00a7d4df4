"""The subscription clock (spec §9.2, §27): activation, downgrade at period end, `ending_at`,
termination alerts and trial ends, run by Celery tasks with the clock moved by time-machine.
"""

from datetime import UTC, date, datetime

import pytest
import time_machine

from billing.actors import SYSTEM
from billing.celery import app
from billing.models import OutboxEvent
from billing.periods import FeeRule, first_period, subscription_fee_cents
from billing.schedules import SCHEDULES
from customers import hooks
from customers.models import Subscription
from customers.services.subscription_reads import subscription_cycle
from customers.services.subscriptions import subscription_create, subscription_update
from customers.tasks import (
    subscription_activate_pending_task,
    subscription_end_trials_task,
    subscription_terminate_ended_task,
    subscription_termination_alerts_task,
)
from tests.customers.factories import CustomerFactory
from tests.plans.factories import PlanFactory

pytestmark = pytest.mark.django_db
Status = Subscription.Status


@pytest.fixture
def customer(organization):
    return CustomerFactory(organization=organization, external_id="cust_1", timezone="UTC")


@pytest.fixture
def plan(organization):
    return PlanFactory(organization=organization, code="basic", amount_cents=1000)


def create(organization, plan_code, now, **kwargs):
    with time_machine.travel(now, tick=False):
        return subscription_create(
            organization=organization, external_customer_id="cust_1", plan_code=plan_code,
            actor=SYSTEM, now=now, **kwargs,
        )  # fmt: skip


def run(task, at):
    with time_machine.travel(at, tick=False):
        return task.delay().get()


def event_types(subscription=None):
    rows = OutboxEvent.objects.order_by("id")
    if subscription is not None:
        rows = rows.filter(object_id=str(subscription.pk))
    return list(rows.values_list("event_type", flat=True))


# --------------------------------------------------------------------------------------------
# Schedule (spec §27)


@pytest.mark.parametrize(
    ("task", "minute"),
    [
        pytest.param("customers.tasks.subscription_activate_pending_task", "*/5", id="activate"),
        pytest.param("customers.tasks.subscription_terminate_ended_task", "5", id="terminate"),
        pytest.param("customers.tasks.subscription_end_trials_task", "35", id="trials"),
        pytest.param("customers.tasks.subscription_termination_alerts_task", "50", id="alerts"),
    ],
)
def test_the_beat_schedule_runs_each_subscription_task(task, minute):
    schedule = next(s for s in SCHEDULES if s.task == task)
    assert (schedule.minute, schedule.hour) == (minute, "*")
    assert task in app.tasks


# --------------------------------------------------------------------------------------------
# Pending -> active


def test_pending_subscription_starts_when_its_day_arrives(organization, customer, plan):
    start = datetime(2024, 3, 10, 15, 0, tzinfo=UTC)
    pending = create(organization, "basic", datetime(2024, 3, 5, tzinfo=UTC), subscription_at=start)
    assert run(subscription_activate_pending_task, datetime(2024, 3, 9, 23, 55, tzinfo=UTC)) == 0
    assert run(subscription_activate_pending_task, datetime(2024, 3, 10, 0, 5, tzinfo=UTC)) == 1
    pending.refresh_from_db()
    assert (pending.status, pending.started_at) == (Status.ACTIVE, start)
    assert event_types(pending) == ["subscription.started"]


def test_pending_subscription_starts_on_the_customers_local_day(organization, customer, plan):
    customer.timezone = "America/New_York"
    customer.save()
    start = datetime(2024, 3, 11, 2, 0, tzinfo=UTC)  # March 10, 22:00 in New York
    pending = create(organization, "basic", datetime(2024, 3, 5, tzinfo=UTC), subscription_at=start)
    run(subscription_activate_pending_task, datetime(2024, 3, 10, 5, 5, tzinfo=UTC))  # 00:05 EST
    pending.refresh_from_db()
    assert pending.status == Status.ACTIVE


def test_activation_run_twice_changes_nothing_more(organization, customer, plan):
    start = datetime(2024, 3, 10, tzinfo=UTC)
    pending = create(organization, "basic", datetime(2024, 3, 5, tzinfo=UTC), subscription_at=start)
    at = datetime(2024, 3, 10, 0, 5, tzinfo=UTC)
    assert [run(subscription_activate_pending_task, at) for _ in range(2)] == [1, 0]
    assert event_types(pending) == ["subscription.started"]


def test_activation_fires_the_started_hook(
    organization, customer, plan, django_capture_on_commit_callbacks
):
    calls = []

    def record(**kwargs):
        calls.append(kwargs)

    start = datetime(2024, 3, 10, 9, tzinfo=UTC)
    pending = create(organization, "basic", datetime(2024, 3, 5, tzinfo=UTC), subscription_at=start)
    hooks.on_subscription_started.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run(subscription_activate_pending_task, datetime(2024, 3, 10, 0, 5, tzinfo=UTC))
    finally:
        hooks.on_subscription_started.disconnect(record)
    assert calls == [{"subscription_id": pending.pk, "started_at": start}]


# --------------------------------------------------------------------------------------------
# Downgrade at the end of the period (V108)


@pytest.fixture
def downgraded(organization, customer):
    """V108: monthly 12,900 in advance, anniversary 2023-07-19 12:12, downgraded 2023-11-09."""
    PlanFactory(organization=organization, code="monthly", amount_cents=12_900, pay_in_advance=True)
    PlanFactory(
        organization=organization, code="yearly", interval="yearly", amount_cents=118_800,
        pay_in_advance=True,
    )  # fmt: skip
    create(
        organization, "monthly", datetime(2023, 7, 19, 12, 12, tzinfo=UTC), external_id="sub_1",
        billing_time="anniversary",
    )  # fmt: skip
    return create(
        organization, "yearly", datetime(2023, 11, 9, 10, tzinfo=UTC), external_id="sub_1"
    )


def test_downgrade_waits_for_the_end_of_the_period(downgraded):
    assert run(subscription_activate_pending_task, datetime(2023, 11, 18, 23, 55, tzinfo=UTC)) == 0
    downgraded.refresh_from_db()
    assert downgraded.status == Status.ACTIVE


def test_downgrade_replaces_the_current_subscription_on_the_billing_day_v108(downgraded):
    run(subscription_activate_pending_task, datetime(2023, 11, 19, 0, 5, tzinfo=UTC))
    old = Subscription.objects.get(pk=downgraded.pk)
    new = Subscription.objects.get(previous_subscription=old)
    assert (old.status, old.terminated_at, old.downgrade_plan_date) == (
        Status.TERMINATED, datetime(2023, 11, 18, 23, 59, 59, tzinfo=UTC), None,
    )  # fmt: skip
    assert (new.status, new.started_at) == (
        Status.ACTIVE, datetime(2023, 11, 19, tzinfo=UTC),
    )  # fmt: skip
    # Its first period runs to the original anniversary: 243 days of a 366-day year.
    period = first_period(subscription_cycle(new), started_at=new.started_at, pay_in_advance=True)
    assert (period.from_date, period.to_date, period.duration_days) == (
        date(2023, 11, 19), date(2024, 7, 18), 366,
    )  # fmt: skip
    fee = subscription_fee_cents(rule=FeeRule.FIRST_PERIOD, amount_cents=118_800, period=period)
    assert fee == 78_875


def test_downgrade_rotation_writes_terminated_and_started(downgraded):
    run(subscription_activate_pending_task, datetime(2023, 11, 19, 0, 5, tzinfo=UTC))
    new = Subscription.objects.get(previous_subscription=downgraded)
    assert event_types(downgraded)[-1] == "subscription.terminated"
    assert event_types(new) == ["subscription.started"]


def test_downgrade_rotation_fires_the_plan_changed_hook(
    downgraded, django_capture_on_commit_callbacks
):
    calls = []

    def record(**kwargs):
        calls.append(kwargs)

    hooks.on_plan_changed.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run(subscription_activate_pending_task, datetime(2023, 11, 19, 0, 5, tzinfo=UTC))
    finally:
        hooks.on_plan_changed.disconnect(record)
    new = Subscription.objects.get(previous_subscription=downgraded)
    assert calls == [
        {
            "previous_subscription_id": downgraded.pk,
            "subscription_id": new.pk,
            "change": "downgrade",
            "timestamp": datetime(2023, 11, 19, tzinfo=UTC),
        }
    ]


def test_a_late_downgrade_run_still_rotates_on_the_boundary(downgraded):
    run(subscription_activate_pending_task, datetime(2023, 11, 21, 9, 30, tzinfo=UTC))
    new = Subscription.objects.get(previous_subscription=downgraded)
    assert new.started_at == datetime(2023, 11, 19, tzinfo=UTC)


def test_downgrade_rotation_run_twice_changes_nothing_more(downgraded):
    at = datetime(2023, 11, 19, 0, 5, tzinfo=UTC)
    assert [run(subscription_activate_pending_task, at) for _ in range(2)] == [1, 0]
    assert Subscription.objects.filter(status=Status.ACTIVE).count() == 1


# --------------------------------------------------------------------------------------------
# ending_at reached


@pytest.fixture
def ending(organization, customer, plan):
    return create(
        organization, "basic", datetime(2024, 3, 1, tzinfo=UTC), external_id="sub_1",
        ending_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )  # fmt: skip


def test_ended_subscription_is_terminated_at_its_ending_at(ending):
    assert run(subscription_terminate_ended_task, datetime(2024, 5, 1, 11, 5, tzinfo=UTC)) == 0
    assert run(subscription_terminate_ended_task, datetime(2024, 5, 1, 12, 5, tzinfo=UTC)) == 1
    ending.refresh_from_db()
    assert (ending.status, ending.terminated_at) == (
        Status.TERMINATED, datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )  # fmt: skip
    assert event_types(ending) == ["subscription.started", "subscription.terminated"]


def test_the_termination_by_the_beat_task_is_recorded_as_done_by_the_system(ending):
    run(subscription_terminate_ended_task, datetime(2024, 5, 1, 12, 5, tzinfo=UTC))
    event = OutboxEvent.objects.get(event_type="subscription.terminated")
    assert (event.actor_type, event.actor_id) == ("system", "system")


def test_ending_run_twice_changes_nothing_more(ending):
    at = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)
    assert [run(subscription_terminate_ended_task, at) for _ in range(2)] == [1, 0]
    assert event_types(ending).count("subscription.terminated") == 1


def test_ending_cancels_a_pending_downgrade(organization, ending):
    PlanFactory(organization=organization, code="cheap", amount_cents=100)
    create(organization, "cheap", datetime(2024, 4, 29, tzinfo=UTC), external_id="sub_1")
    run(subscription_terminate_ended_task, datetime(2024, 5, 1, 12, 5, tzinfo=UTC))
    statuses = {s.plan.code: s.status for s in Subscription.objects.all()}
    assert statuses == {"basic": Status.TERMINATED, "cheap": Status.CANCELED}


# --------------------------------------------------------------------------------------------
# Termination alerts (45 and 15 days before ending_at)


def alerts(subscription):
    return list(
        OutboxEvent.objects.filter(
            object_id=str(subscription.pk), event_type="subscription.termination_alert"
        )
        .order_by("id")
        .values_list("payload__days_before_ending", flat=True)
    )


def test_termination_alert_is_recorded_45_days_before(ending):
    assert run(subscription_termination_alerts_task, datetime(2024, 3, 16, 23, 50, tzinfo=UTC)) == 0
    assert run(subscription_termination_alerts_task, datetime(2024, 3, 17, 0, 50, tzinfo=UTC)) == 1
    ending.refresh_from_db()
    assert ending.termination_alerts_sent == [45]
    assert alerts(ending) == [45]


def test_termination_alerts_are_never_recorded_twice(ending):
    for hour in range(5):
        run(subscription_termination_alerts_task, datetime(2024, 3, 17, hour, 50, tzinfo=UTC))
    run(subscription_termination_alerts_task, datetime(2024, 4, 16, 0, 50, tzinfo=UTC))
    run(subscription_termination_alerts_task, datetime(2024, 4, 16, 1, 50, tzinfo=UTC))
    ending.refresh_from_db()
    assert ending.termination_alerts_sent == [45, 15]
    assert alerts(ending) == [45, 15]


def test_a_near_ending_gets_only_the_15_day_alert(organization, customer, plan):
    near = create(
        organization, "basic", datetime(2024, 3, 1, tzinfo=UTC),
        ending_at=datetime(2024, 3, 11, tzinfo=UTC),
    )  # fmt: skip
    run(subscription_termination_alerts_task, datetime(2024, 3, 1, 0, 50, tzinfo=UTC))
    assert alerts(near) == [15]


def test_a_moved_ending_at_records_its_alerts_again(ending):
    run(subscription_termination_alerts_task, datetime(2024, 3, 17, 0, 50, tzinfo=UTC))
    with time_machine.travel(datetime(2024, 3, 18, tzinfo=UTC), tick=False):
        subscription_update(
            subscription=ending, actor=SYSTEM, now=datetime(2024, 3, 18, tzinfo=UTC),
            ending_at=datetime(2024, 5, 10, tzinfo=UTC),
        )  # fmt: skip
    run(subscription_termination_alerts_task, datetime(2024, 3, 26, 0, 50, tzinfo=UTC))
    assert alerts(ending) == [45, 45]


# --------------------------------------------------------------------------------------------
# Trial ends (V63)


@pytest.fixture
def trial_plan(organization):
    return PlanFactory(
        organization=organization, code="trial", amount_cents=5_000_000, pay_in_advance=True,
        trial_period=10,
    )  # fmt: skip


def test_trial_end_is_marked_when_the_trial_is_over_v63(organization, customer, trial_plan):
    subscription = create(organization, "trial", datetime(2024, 3, 5, 12, 12, tzinfo=UTC))
    assert run(subscription_end_trials_task, datetime(2024, 3, 15, 11, 35, tzinfo=UTC)) == 0
    assert run(subscription_end_trials_task, datetime(2024, 3, 15, 12, 35, tzinfo=UTC)) == 1
    subscription.refresh_from_db()
    assert subscription.trial_ended_at == datetime(2024, 3, 15, 12, 12, tzinfo=UTC)
    assert event_types(subscription) == ["subscription.started", "subscription.trial_ended"]


def test_trial_end_run_twice_changes_nothing_more(organization, customer, trial_plan):
    subscription = create(organization, "trial", datetime(2024, 3, 5, 12, 12, tzinfo=UTC))
    at = datetime(2024, 3, 15, 13, 2, tzinfo=UTC)
    assert [run(subscription_end_trials_task, at) for _ in range(2)] == [1, 0]
    assert event_types(subscription).count("subscription.trial_ended") == 1


def test_trial_end_fires_the_trial_ended_hook(
    organization, customer, trial_plan, django_capture_on_commit_callbacks
):
    calls = []

    def record(**kwargs):
        calls.append(kwargs)

    subscription = create(organization, "trial", datetime(2024, 3, 5, 12, 12, tzinfo=UTC))
    hooks.on_trial_ended.connect(record)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run(subscription_end_trials_task, datetime(2024, 3, 15, 13, 2, tzinfo=UTC))
    finally:
        hooks.on_trial_ended.disconnect(record)
    assert calls == [
        {
            "subscription_id": subscription.pk,
            "trial_ended_at": datetime(2024, 3, 15, 12, 12, tzinfo=UTC),
        }
    ]


def test_upgraded_trial_ends_counted_from_the_first_start_v64(organization, customer, plan):
    PlanFactory(organization=organization, code="trial13", amount_cents=5000, trial_period=13)
    create(organization, "basic", datetime(2024, 3, 5, 9, tzinfo=UTC), external_id="sub_1")
    new = create(organization, "trial13", datetime(2024, 3, 10, 9, tzinfo=UTC), external_id="sub_1")
    run(subscription_end_trials_task, datetime(2024, 3, 18, 9, 35, tzinfo=UTC))
    new.refresh_from_db()
    assert new.trial_ended_at == datetime(2024, 3, 18, 9, tzinfo=UTC)


def test_a_trial_over_before_an_upgrade_is_not_announced_again(organization, customer, plan):
    PlanFactory(organization=organization, code="trial2", amount_cents=5000, trial_period=2)
    create(organization, "basic", datetime(2024, 3, 5, 9, tzinfo=UTC), external_id="sub_1")
    new = create(organization, "trial2", datetime(2024, 3, 10, 9, tzinfo=UTC), external_id="sub_1")
    assert new.trial_ended_at == datetime(2024, 3, 7, 9, tzinfo=UTC)
    assert run(subscription_end_trials_task, datetime(2024, 3, 10, 9, 35, tzinfo=UTC)) == 0


# --------------------------------------------------------------------------------------------
# The whole life, driven by the clock


def test_a_life_from_pending_to_downgraded_to_ended(organization, customer):
    PlanFactory(organization=organization, code="pro", amount_cents=5000)
    PlanFactory(organization=organization, code="lite", amount_cents=2000)
    first = create(
        organization, "pro", datetime(2024, 1, 20, tzinfo=UTC), external_id="life",
        subscription_at=datetime(2024, 2, 1, 8, tzinfo=UTC),
        ending_at=datetime(2024, 6, 15, tzinfo=UTC),
    )  # fmt: skip
    run(subscription_activate_pending_task, datetime(2024, 2, 1, 0, 5, tzinfo=UTC))
    create(organization, "lite", datetime(2024, 3, 12, tzinfo=UTC), external_id="life")
    run(subscription_activate_pending_task, datetime(2024, 4, 1, 0, 5, tzinfo=UTC))
    run(subscription_terminate_ended_task, datetime(2024, 6, 15, 0, 5, tzinfo=UTC))
    second = Subscription.objects.get(previous_subscription=first)
    first.refresh_from_db()
    assert (first.status, first.started_at, first.terminated_at) == (
        Status.TERMINATED,
        datetime(2024, 2, 1, 8, tzinfo=UTC),
        datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC),
    )
    assert (second.status, second.started_at, second.terminated_at, second.ending_at) == (
        Status.TERMINATED,
        datetime(2024, 4, 1, tzinfo=UTC),
        datetime(2024, 6, 15, tzinfo=UTC),
        datetime(2024, 6, 15, tzinfo=UTC),
    )
