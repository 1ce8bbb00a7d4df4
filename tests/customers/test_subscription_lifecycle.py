"""Subscription life cycle through the services (spec §9.2-§9.5, §10, §11; V64, V72, V101, V108).

Instants are passed as `now`; `time_machine` only pins `created_at`.
"""

from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from billing.actors import SYSTEM
from billing.errors import Invalid, NotAllowed, NotFound
from billing.models import OutboxEvent
from billing.periods import (
    DateSpan,
    FeeRule,
    billing_period,
    first_period,
    subscription_fee_cents,
)
from customers import hooks
from customers.models import Subscription
from customers.services.subscription_reads import (
    subscription_current_period,
    subscription_cycle,
    subscription_next,
    subscription_trial_end,
)
from customers.services.subscriptions import (
    subscription_change_plan,
    subscription_create,
    subscription_terminate,
    subscription_update,
)
from plans.models import Charge, Plan
from tests.customers.factories import CustomerFactory
from tests.plans.factories import ChargeFactory, PlanFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 3, 5, 12, 12, tzinfo=UTC)
Status = Subscription.Status


@pytest.fixture
def customer(organization):
    return CustomerFactory(organization=organization, external_id="cust_1", timezone="UTC")


@pytest.fixture
def plan(organization):
    return PlanFactory(organization=organization, code="basic", amount_cents=1000)


def create(organization, plan_code, now=NOW, **kwargs):
    kwargs.setdefault("external_customer_id", "cust_1")
    with time_machine.travel(now, tick=False):
        return subscription_create(
            organization=organization, plan_code=plan_code, actor=SYSTEM, now=now, **kwargs
        )


def events(event_type=None):
    rows = OutboxEvent.objects.order_by("id")
    if event_type:
        rows = rows.filter(event_type=event_type)
    return [(e.event_type, e.payload["plan_code"], e.payload["status"]) for e in rows]


@pytest.fixture
def fired():
    """Records the customers.hooks calls of a test (the outside invoicing will plug in)."""
    calls = []
    declared = {
        "started": hooks.on_subscription_started,
        "terminated": hooks.on_subscription_terminated,
        "plan_changed": hooks.on_plan_changed,
        "trial_ended": hooks.on_trial_ended,
    }
    recorders = {}
    for name, hook in declared.items():
        recorders[name] = lambda _name=name, **kwargs: calls.append((_name, kwargs))
        hook.connect(recorders[name])
    yield calls
    for name, hook in declared.items():
        hook.disconnect(recorders[name])


# --------------------------------------------------------------------------------------------
# Creation (spec §9.2)


def test_start_in_the_past_is_active_from_subscription_at(organization, customer, plan):
    start = datetime(2024, 1, 10, 8, 0, tzinfo=UTC)
    subscription = create(organization, "basic", external_id="sub_1", subscription_at=start)
    assert subscription.status == Status.ACTIVE
    assert subscription.started_at == start


def test_start_today_is_active_at_once(organization, customer, plan):
    subscription = create(organization, "basic", external_id="sub_1")
    assert (subscription.status, subscription.started_at) == (Status.ACTIVE, NOW)
    assert subscription.subscription_at == NOW


def test_start_in_the_future_is_pending(organization, customer, plan):
    start = NOW + timedelta(days=3)
    subscription = create(organization, "basic", external_id="sub_1", subscription_at=start)
    assert (subscription.status, subscription.started_at) == (Status.PENDING, None)


def test_today_is_the_customers_local_date(organization, customer, plan):
    customer.timezone = "Pacific/Auckland"  # UTC+13 in March: already March 6 at NOW + 12 h
    customer.save()
    now = datetime(2024, 3, 5, 20, 0, tzinfo=UTC)
    start = datetime(2024, 3, 6, 10, 0, tzinfo=UTC)  # March 6, 23:00 in Auckland
    subscription = create(organization, "basic", now=now, subscription_at=start)
    assert subscription.status == Status.ACTIVE


def test_a_restart_after_termination_never_overlaps_the_previous_life(organization, customer, plan):
    first = create(organization, "basic", external_id="sub_1")
    ended = subscription_terminate(subscription=first, actor=SYSTEM, now=NOW + timedelta(hours=2))
    again = create(
        organization, "basic", now=NOW + timedelta(hours=3), external_id="sub_1",
        subscription_at=NOW - timedelta(days=10),
    )  # fmt: skip
    assert again.started_at == ended.terminated_at


def test_billing_time_defaults_to_calendar(organization, customer, plan):
    assert create(organization, "basic").billing_time == "calendar"


def test_external_id_is_generated_when_absent(organization, customer, plan):
    first, second = create(organization, "basic"), create(organization, "basic")
    assert len(first.external_id) == 36
    assert first.external_id != second.external_id


def test_unknown_plan_is_not_found(organization, customer):
    with pytest.raises(NotFound) as raised:
        create(organization, "missing")
    assert raised.value.resource == "plan"


def test_a_plan_override_child_cannot_be_subscribed_by_code(organization, customer, plan):
    PlanFactory(organization=organization, code="hidden", parent=plan)
    with pytest.raises(NotFound):
        create(organization, "hidden")


def test_unknown_customer_is_not_found(organization, plan):
    with pytest.raises(NotFound) as raised:
        create(organization, "basic", external_customer_id="nobody")
    assert raised.value.resource == "customer"


def test_another_organizations_plan_is_not_found(organization, other_organization, customer):
    PlanFactory(organization=other_organization, code="theirs")
    with pytest.raises(NotFound):
        create(organization, "theirs")


@pytest.mark.parametrize(
    "ending_at",
    [
        pytest.param(datetime(2024, 3, 1, tzinfo=UTC), id="before-start"),
        pytest.param(datetime(2024, 3, 5, 23, 0, tzinfo=UTC), id="same-day-as-start"),
    ],
)
def test_ending_at_not_after_the_start_is_an_invalid_date(organization, customer, plan, ending_at):
    with pytest.raises(Invalid) as raised:
        create(organization, "basic", ending_at=ending_at)
    assert raised.value.details == {"ending_at": ["invalid_date"]}
    assert not Subscription.objects.exists()


def test_customer_without_currency_takes_the_plan_currency(organization, customer):
    customer.currency = ""
    customer.save()
    PlanFactory(organization=organization, code="usd", amount_currency="USD")
    create(organization, "usd")
    customer.refresh_from_db()
    assert customer.currency == "USD"


def test_plan_in_another_currency_is_refused(organization, customer):
    PlanFactory(organization=organization, code="usd", amount_currency="USD")
    with pytest.raises(Invalid) as raised:
        create(organization, "usd")
    assert raised.value.details == {"currency": ["currencies_does_not_match"]}


def test_external_id_active_for_another_customer_is_refused(organization, customer, plan):
    CustomerFactory(organization=organization, external_id="cust_2")
    create(organization, "basic", external_id="shared")
    with pytest.raises(Invalid) as raised:
        create(organization, "basic", external_customer_id="cust_2", external_id="shared")
    assert raised.value.details == {"external_id": ["value_already_exist"]}


def test_same_plan_again_only_updates_the_name(organization, customer, plan):
    first = create(organization, "basic", external_id="sub_1", name="Old")
    again = create(organization, "basic", external_id="sub_1", name="New")
    assert again.pk == first.pk
    assert Subscription.objects.get().name == "New"
    assert events("subscription.updated") == [("subscription.updated", "basic", "active")]


def test_creation_with_plan_overrides_subscribes_to_a_child_plan(organization, customer, plan):
    ChargeFactory(organization=organization, plan=plan)
    subscription = create(organization, "basic", plan_overrides={"amount_cents": 777})
    child = subscription.plan
    assert (child.parent_id, child.code, child.amount_cents) == (plan.pk, "basic", 777)
    assert Charge.objects.filter(plan=child).count() == 1
    assert Plan.objects.get(pk=plan.pk).amount_cents == 1000


# --------------------------------------------------------------------------------------------
# Upgrades and downgrades (spec §9.4)


@pytest.mark.parametrize(
    ("interval", "amount_cents", "expected"),
    [
        pytest.param("yearly", 12_000, "upgrade", id="yearly-12000-equal-is-upgrade"),
        pytest.param("quarterly", 2_900, "downgrade", id="quarterly-2900-is-downgrade"),
        pytest.param("weekly", 250, "upgrade", id="weekly-250-is-upgrade"),
    ],
)
def test_plan_change_is_classified_on_yearly_amounts_v101(
    organization, customer, interval, amount_cents, expected
):
    PlanFactory(organization=organization, code="monthly", interval="monthly", amount_cents=1000)
    PlanFactory(organization=organization, code="new", interval=interval, amount_cents=amount_cents)
    current = create(organization, "monthly", external_id="sub_1")
    create(organization, "new", now=NOW + timedelta(days=2), external_id="sub_1")
    current.refresh_from_db()
    successor = Subscription.objects.get(previous_subscription=current)
    if expected == "upgrade":
        assert (current.status, successor.status) == (Status.TERMINATED, Status.ACTIVE)
    else:
        assert (current.status, successor.status) == (Status.ACTIVE, Status.PENDING)


def test_upgrade_terminates_the_current_subscription_now(organization, customer, plan):
    PlanFactory(organization=organization, code="premium", amount_cents=5000)
    current = create(
        organization, "basic", external_id="sub_1", billing_time="anniversary",
        subscription_at=datetime(2024, 1, 20, tzinfo=UTC),
    )  # fmt: skip
    upgraded_at = NOW + timedelta(days=1)
    new = create(organization, "premium", now=upgraded_at, external_id="sub_1")
    current.refresh_from_db()
    assert (current.status, current.terminated_at) == (Status.TERMINATED, upgraded_at)
    assert subscription_next(current) == new
    assert (new.status, new.started_at, new.previous_subscription) == (
        Status.ACTIVE, upgraded_at, current,
    )  # fmt: skip
    assert (new.subscription_at, new.billing_time, new.external_id) == (
        current.subscription_at, "anniversary", "sub_1",
    )  # fmt: skip


def test_upgrade_writes_terminated_and_started_events(organization, customer, plan):
    PlanFactory(organization=organization, code="premium", amount_cents=5000)
    create(organization, "basic", external_id="sub_1")
    create(organization, "premium", now=NOW + timedelta(days=1), external_id="sub_1")
    assert events() == [
        ("subscription.started", "basic", "active"),
        ("subscription.terminated", "basic", "terminated"),
        ("subscription.started", "premium", "active"),
    ]


def test_upgrade_keeps_the_anniversary_and_prorates_the_new_plan_v72(organization, customer):
    PlanFactory(organization=organization, code="monthly", amount_cents=1000, pay_in_advance=True)
    PlanFactory(
        organization=organization, code="yearly", interval="yearly", amount_cents=12_000,
        pay_in_advance=True,
    )  # fmt: skip
    create(
        organization, "monthly", external_id="sub_1", billing_time="anniversary",
        now=datetime(2023, 6, 29, 12, 12, tzinfo=UTC),
    )  # fmt: skip
    upgraded_at = datetime(2023, 9, 28, 5, 0, tzinfo=UTC)
    new = create(organization, "yearly", now=upgraded_at, external_id="sub_1")

    period = first_period(subscription_cycle(new), started_at=new.started_at, pay_in_advance=True)
    assert period.full_period == DateSpan(date(2023, 6, 29), date(2024, 6, 28))  # 366 days
    assert period.days == 275
    fee = subscription_fee_cents(
        rule=FeeRule.FIRST_AFTER_UPGRADE, amount_cents=12_000, period=period
    )
    assert fee == 9016


def test_downgrade_keeps_the_current_subscription_until_the_period_ends_v108(
    organization, customer
):
    PlanFactory(organization=organization, code="monthly", amount_cents=12_900, pay_in_advance=True)
    PlanFactory(
        organization=organization, code="yearly", interval="yearly", amount_cents=118_800,
        pay_in_advance=True,
    )  # fmt: skip
    start = datetime(2023, 7, 19, 12, 12, tzinfo=UTC)
    create(organization, "monthly", now=start, external_id="sub_1", billing_time="anniversary")
    answer = create(
        organization, "yearly", now=datetime(2023, 11, 9, 10, 0, tzinfo=UTC), external_id="sub_1"
    )
    current = Subscription.objects.get(status=Status.ACTIVE)
    pending = Subscription.objects.get(status=Status.PENDING)
    assert answer == current  # Lago answers the current subscription
    assert current.downgrade_plan_date == date(2023, 11, 19)
    assert (pending.plan.code, pending.previous_subscription, pending.subscription_at) == (
        "yearly", current, start,
    )  # fmt: skip
    assert subscription_next(current) == pending
    assert events("subscription.updated") == [("subscription.updated", "monthly", "active")]


def test_a_new_downgrade_cancels_the_pending_one(organization, customer):
    PlanFactory(organization=organization, code="big", amount_cents=9000)
    PlanFactory(organization=organization, code="medium", amount_cents=5000)
    PlanFactory(organization=organization, code="small", amount_cents=1000)
    current = create(organization, "big", external_id="sub_1")
    create(organization, "medium", external_id="sub_1")
    create(organization, "small", external_id="sub_1")
    rows = Subscription.objects.filter(previous_subscription=current)
    assert {(s.plan.code, s.status) for s in rows} == {
        ("medium", Status.CANCELED), ("small", Status.PENDING),
    }  # fmt: skip


def test_an_upgrade_cancels_a_pending_downgrade(organization, customer):
    PlanFactory(organization=organization, code="big", amount_cents=9000)
    PlanFactory(organization=organization, code="small", amount_cents=1000)
    PlanFactory(organization=organization, code="huge", amount_cents=20_000)
    current = create(organization, "big", external_id="sub_1")
    create(organization, "small", external_id="sub_1")
    create(organization, "huge", external_id="sub_1")
    statuses = {s.plan.code: s.status for s in Subscription.objects.all()}
    assert statuses == {
        "big": Status.TERMINATED, "small": Status.CANCELED, "huge": Status.ACTIVE,
    }  # fmt: skip
    current.refresh_from_db()
    assert current.downgrade_plan_date is None


def test_a_pending_subscription_just_swaps_its_plan(organization, customer, plan):
    PlanFactory(organization=organization, code="premium", amount_cents=5000)
    pending = create(
        organization, "basic", external_id="sub_1", subscription_at=NOW + timedelta(days=10)
    )
    swapped = create(organization, "premium", external_id="sub_1", name="Renamed")
    assert swapped.pk == pending.pk
    assert (swapped.status, swapped.plan.code, swapped.name) == (
        Status.PENDING, "premium", "Renamed",
    )  # fmt: skip
    assert Subscription.objects.count() == 1


def test_upgrade_counts_the_trial_from_the_first_start_v64(organization, customer, plan):
    PlanFactory(organization=organization, code="trial", amount_cents=5000, trial_period=13)
    create(organization, "basic", external_id="sub_1", now=datetime(2024, 3, 5, 9, tzinfo=UTC))
    new = create(
        organization, "trial", external_id="sub_1", now=datetime(2024, 3, 10, 9, tzinfo=UTC)
    )
    assert subscription_trial_end(new) == datetime(2024, 3, 18, 9, tzinfo=UTC)
    assert new.trial_ended_at is None


def test_change_plan_refuses_a_terminated_subscription(organization, customer, plan):
    PlanFactory(organization=organization, code="premium", amount_cents=5000)
    subscription = subscription_terminate(
        subscription=create(organization, "basic"), actor=SYSTEM, now=NOW
    )
    with pytest.raises(NotAllowed):
        subscription_change_plan(
            subscription=subscription, plan_code="premium", actor=SYSTEM, now=NOW
        )


# --------------------------------------------------------------------------------------------
# Termination (spec §9.5)


def test_terminate_ends_an_active_subscription_now(organization, customer, plan):
    subscription = create(organization, "basic")
    ended = subscription_terminate(
        subscription=subscription, actor=SYSTEM, now=NOW + timedelta(hours=1)
    )
    assert (ended.status, ended.terminated_at) == (Status.TERMINATED, NOW + timedelta(hours=1))
    assert ended.on_termination_invoice == "generate"
    assert events("subscription.terminated") == [("subscription.terminated", "basic", "terminated")]


def test_terminate_cancels_a_pending_subscription(organization, customer, plan):
    pending = create(organization, "basic", subscription_at=NOW + timedelta(days=3))
    canceled = subscription_terminate(subscription=pending, actor=SYSTEM, now=NOW)
    assert (canceled.status, canceled.canceled_at, canceled.terminated_at) == (
        Status.CANCELED, NOW, None,
    )  # fmt: skip
    assert events() == [("subscription.canceled", "basic", "canceled")]


def test_terminate_cancels_the_pending_downgrade(organization, customer):
    PlanFactory(organization=organization, code="big", amount_cents=9000)
    PlanFactory(organization=organization, code="small", amount_cents=1000)
    current = create(organization, "big", external_id="sub_1")
    create(organization, "small", external_id="sub_1")
    subscription_terminate(subscription=current, actor=SYSTEM, now=NOW)
    statuses = {s.plan.code: s.status for s in Subscription.objects.all()}
    assert statuses == {"big": Status.TERMINATED, "small": Status.CANCELED}


def test_canceling_a_pending_downgrade_withdraws_its_date(organization, customer):
    PlanFactory(organization=organization, code="big", amount_cents=9000)
    PlanFactory(organization=organization, code="small", amount_cents=1000)
    current = create(organization, "big", external_id="sub_1")
    create(organization, "small", external_id="sub_1")
    subscription_terminate(
        subscription=Subscription.objects.get(status=Status.PENDING), actor=SYSTEM, now=NOW
    )
    current.refresh_from_db()
    assert (current.status, current.downgrade_plan_date) == (Status.ACTIVE, None)
    assert subscription_next(current) is None


@pytest.mark.parametrize("choice", ["credit", "refund", "offset", "skip"])
def test_pay_in_advance_termination_keeps_the_credit_note_choice(organization, customer, choice):
    PlanFactory(organization=organization, code="advance", pay_in_advance=True)
    subscription = create(organization, "advance")
    ended = subscription_terminate(
        subscription=subscription, actor=SYSTEM, now=NOW, on_termination_credit_note=choice,
        on_termination_invoice="skip",
    )  # fmt: skip
    assert (ended.on_termination_credit_note, ended.on_termination_invoice) == (choice, "skip")


def test_pay_in_advance_termination_credits_by_default(organization, customer):
    PlanFactory(organization=organization, code="advance", pay_in_advance=True)
    ended = subscription_terminate(
        subscription=create(organization, "advance"), actor=SYSTEM, now=NOW
    )
    assert ended.on_termination_credit_note == "credit"


def test_arrears_termination_has_no_credit_note_choice(organization, customer, plan):
    ended = subscription_terminate(
        subscription=create(organization, "basic"),
        actor=SYSTEM,
        now=NOW,
        on_termination_credit_note="refund",
    )
    assert ended.on_termination_credit_note is None


def test_unknown_termination_choices_are_invalid_values(organization, customer, plan):
    subscription = create(organization, "basic")
    with pytest.raises(Invalid) as raised:
        subscription_terminate(
            subscription=subscription, actor=SYSTEM, now=NOW, on_termination_credit_note="burn",
            on_termination_invoice="never",
        )  # fmt: skip
    assert raised.value.details == {
        "on_termination_credit_note": ["invalid_value"],
        "on_termination_invoice": ["invalid_value"],
    }


def test_terminating_a_terminated_subscription_is_refused(organization, customer, plan):
    subscription = subscription_terminate(
        subscription=create(organization, "basic"), actor=SYSTEM, now=NOW
    )
    with pytest.raises(NotAllowed):
        subscription_terminate(subscription=subscription, actor=SYSTEM, now=NOW)


# --------------------------------------------------------------------------------------------
# Update (code `Subscriptions::UpdateService`)


def test_update_changes_name_and_ending_at(organization, customer, plan):
    subscription = create(organization, "basic")
    ending = datetime(2024, 6, 1, tzinfo=UTC)
    updated = subscription_update(
        subscription=subscription, actor=SYSTEM, now=NOW, name="Gold", ending_at=ending
    )
    assert (updated.name, updated.ending_at) == ("Gold", ending)
    assert events("subscription.updated") == [("subscription.updated", "basic", "active")]


def test_update_with_an_ending_at_in_the_past_is_an_invalid_date(organization, customer, plan):
    subscription = create(organization, "basic")
    with pytest.raises(Invalid) as raised:
        subscription_update(
            subscription=subscription, actor=SYSTEM, now=NOW, ending_at=NOW - timedelta(days=1)
        )
    assert raised.value.details == {"ending_at": ["invalid_date"]}


def test_a_new_ending_at_rearms_the_termination_alerts(organization, customer, plan):
    subscription = create(organization, "basic", ending_at=datetime(2024, 4, 1, tzinfo=UTC))
    Subscription.objects.filter(pk=subscription.pk).update(termination_alerts_sent=[45, 15])
    updated = subscription_update(
        subscription=subscription, actor=SYSTEM, now=NOW, ending_at=datetime(2024, 9, 1, tzinfo=UTC)
    )
    assert updated.termination_alerts_sent == []


def test_update_moves_the_start_of_a_pending_subscription(organization, customer, plan):
    pending = create(organization, "basic", subscription_at=NOW + timedelta(days=3))
    later = NOW + timedelta(days=20)
    updated = subscription_update(
        subscription=pending, actor=SYSTEM, now=NOW, subscription_at=later
    )
    assert (updated.status, updated.subscription_at) == (Status.PENDING, later)


def test_update_moving_the_start_to_today_activates_at_once(organization, customer, plan):
    pending = create(organization, "basic", subscription_at=NOW + timedelta(days=3))
    start = NOW - timedelta(hours=2)
    updated = subscription_update(
        subscription=pending, actor=SYSTEM, now=NOW, subscription_at=start
    )
    assert (updated.status, updated.started_at) == (Status.ACTIVE, start)
    assert events("subscription.started") == [("subscription.started", "basic", "active")]


def test_update_ignores_the_start_of_an_active_subscription(organization, customer, plan):
    subscription = create(organization, "basic")
    updated = subscription_update(
        subscription=subscription, actor=SYSTEM, now=NOW, subscription_at=NOW + timedelta(days=5)
    )
    assert updated.subscription_at == NOW


def test_update_stores_termination_choices(organization, customer):
    PlanFactory(organization=organization, code="advance", pay_in_advance=True)
    subscription = create(organization, "advance")
    updated = subscription_update(
        subscription=subscription, actor=SYSTEM, now=NOW, on_termination_credit_note="refund",
        on_termination_invoice="skip",
    )  # fmt: skip
    assert (updated.on_termination_credit_note, updated.on_termination_invoice) == (
        "refund", "skip",
    )  # fmt: skip


def test_update_with_plan_overrides_moves_to_a_child_plan_once(organization, customer, plan):
    subscription = create(organization, "basic")
    first = subscription_update(
        subscription=subscription, actor=SYSTEM, now=NOW, plan_overrides={"amount_cents": 900}
    )
    second = subscription_update(
        subscription=first, actor=SYSTEM, now=NOW, plan_overrides={"amount_cents": 800}
    )
    assert first.plan.parent_id == plan.pk
    assert second.plan_id == first.plan_id
    assert Plan.objects.get(pk=second.plan_id).amount_cents == 800


def test_a_terminated_subscription_is_not_editable(organization, customer, plan):
    subscription = subscription_terminate(
        subscription=create(organization, "basic"), actor=SYSTEM, now=NOW
    )
    with pytest.raises(NotAllowed):
        subscription_update(subscription=subscription, actor=SYSTEM, now=NOW, name="Late")


# --------------------------------------------------------------------------------------------
# Hooks for invoicing (after commit only)


def test_start_fires_the_started_hook_after_commit(
    organization, customer, plan, fired, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        subscription = create(organization, "basic")
    assert fired == [("started", {"subscription_id": subscription.pk, "started_at": NOW})]


def test_upgrade_fires_only_the_plan_changed_hook(
    organization, customer, plan, fired, django_capture_on_commit_callbacks
):
    PlanFactory(organization=organization, code="premium", amount_cents=5000)
    current = create(organization, "basic", external_id="sub_1")
    later = NOW + timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=True):
        new = create(organization, "premium", now=later, external_id="sub_1")
    assert fired == [
        (
            "plan_changed",
            {
                "previous_subscription_id": current.pk,
                "subscription_id": new.pk,
                "change": "upgrade",
                "timestamp": later,
            },
        )
    ]


def test_termination_fires_the_terminated_hook(
    organization, customer, plan, fired, django_capture_on_commit_callbacks
):
    subscription = create(organization, "basic")
    with django_capture_on_commit_callbacks(execute=True):
        subscription_terminate(subscription=subscription, actor=SYSTEM, now=NOW)
    assert fired == [("terminated", {"subscription_id": subscription.pk, "terminated_at": NOW})]


def test_a_refused_change_fires_no_hook(
    organization, customer, plan, fired, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(Invalid):
        create(organization, "basic", ending_at=NOW - timedelta(days=1))
    assert fired == []


def test_a_failing_hook_does_not_undo_the_change(
    organization, customer, plan, django_capture_on_commit_callbacks
):
    def broken(**kwargs):
        raise RuntimeError("invoicing is down")

    hooks.on_subscription_started.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            create(organization, "basic")
    finally:
        hooks.on_subscription_started.disconnect(broken)
    assert Subscription.objects.get().status == Status.ACTIVE


# --------------------------------------------------------------------------------------------
# Current billing period (spec §10)


def test_current_period_of_a_terminated_subscription_ends_at_termination(
    organization, customer, plan
):
    subscription = create(organization, "basic", subscription_at=datetime(2024, 2, 10, tzinfo=UTC))
    ended = subscription_terminate(subscription=subscription, actor=SYSTEM, now=NOW)
    period = subscription_current_period(ended, now=NOW + timedelta(days=40))
    assert (period.charges_from_datetime, period.charges_to_datetime) == (
        datetime(2024, 3, 1, tzinfo=UTC), NOW,
    )  # fmt: skip


def test_a_canceled_subscription_has_no_current_period(organization, customer, plan):
    pending = create(organization, "basic", subscription_at=NOW + timedelta(days=3))
    canceled = subscription_terminate(subscription=pending, actor=SYSTEM, now=NOW)
    assert subscription_current_period(canceled, now=NOW) is None


@pytest.mark.parametrize(
    ("billing_time", "subscription_at", "billing_day", "fee_first", "charges_first"),
    [
        pytest.param("calendar", date(2022, 1, 1), date(2023, 1, 1), date(2023, 1, 1),
                     date(2022, 1, 1), id="calendar"),
        pytest.param("anniversary", date(2020, 2, 2), date(2022, 2, 2), date(2022, 2, 2),
                     date(2021, 2, 2), id="anniversary"),
    ],
)  # fmt: skip
def test_yearly_in_advance_bills_the_coming_year_and_the_past_usage_v104(
    organization, customer, billing_time, subscription_at, billing_day, fee_first, charges_first
):
    PlanFactory(
        organization=organization, code="yearly", interval="yearly", amount_cents=12_000,
        pay_in_advance=True,
    )  # fmt: skip
    start = datetime.combine(subscription_at, datetime.min.time(), tzinfo=UTC)
    subscription = create(organization, "yearly", now=start, billing_time=billing_time)
    period = billing_period(
        subscription_cycle(subscription),
        billing_at=datetime.combine(billing_day, datetime.min.time(), tzinfo=UTC),
        started_at=subscription.started_at,
        pay_in_advance=True,
    )
    assert (period.from_date, period.charges_from_date) == (fee_first, charges_first)
