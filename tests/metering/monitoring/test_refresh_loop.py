"""The usage refresh loop: ingestion flags subscriptions, the every-minute pass refreshes their
lifetime usage, evaluates their usage alerts and refreshes their customers' flagged wallets."""

from __future__ import annotations

import pytest
import time_machine

from billing.schedules import SCHEDULES
from customers.models import Subscription
from metering.models import LifetimeUsage, SubscriptionActivity
from tests.metering.monitoring.helpers import (
    NOW,
    another_subscription,
    calls_billing,
    jobs,
    refresh,
    send,
)
from tests.metering.usage.conftest import at
from tests.wallets.factories import WalletFactory, fund_wallet
from wallets.models import Wallet

pytestmark = pytest.mark.django_db


def test_events_flag_their_subscription_once(api, organization):
    billing = calls_billing(api, organization)

    send(billing, 3)

    [activity] = SubscriptionActivity.objects.all()
    assert activity.subscription_id == billing.subscription.pk
    assert activity.flagged_at == at(NOW)


def test_a_batch_flags_each_of_its_subscriptions(api, organization):
    billing = calls_billing(api, organization)
    other = another_subscription(billing, 2)
    events = [
        {"transaction_id": f"b{i}", "external_subscription_id": sub, "code": "calls"}
        for i, sub in enumerate(["sub_1", "sub_2", "sub_1", "unknown"])
    ]
    with time_machine.travel(at(NOW), tick=False):
        response = api.post("/api/v1/events/batch", {"events": events}, format="json")

    assert response.status_code == 200, response.json()
    assert set(SubscriptionActivity.objects.values_list("subscription_id", flat=True)) == {
        billing.subscription.pk,
        other.pk,
    }


def test_a_pass_stores_the_current_usage_as_lifetime_usage_and_clears_the_flags(api, organization):
    billing = calls_billing(api, organization)
    send(billing, 3)

    report = refresh("2026-03-10T12:00:30")

    assert report.subscriptions == 1
    lifetime = LifetimeUsage.objects.get(subscription=billing.subscription)
    assert lifetime.current_usage_amount_cents == 3_000
    assert lifetime.current_usage_amount_refreshed_at == at("2026-03-10T12:00:30")
    assert not SubscriptionActivity.objects.exists()


def test_a_pass_leaves_subscriptions_flagged_after_its_instant(api, organization):
    billing = calls_billing(api, organization)
    send(billing, 1, when="2026-03-10T12:01:00")

    report = refresh("2026-03-10T12:00:59")

    assert report.subscriptions == 0
    assert SubscriptionActivity.objects.filter(subscription=billing.subscription).exists()


def test_events_after_a_pass_flag_the_subscription_for_the_next(api, organization):
    billing = calls_billing(api, organization)
    send(billing, 1)
    refresh("2026-03-10T12:00:30")

    send(billing, 2, when="2026-03-10T12:00:40")
    refresh("2026-03-10T12:01:00")

    lifetime = LifetimeUsage.objects.get(subscription=billing.subscription)
    assert lifetime.current_usage_amount_cents == 3_000


def test_pay_in_advance_charges_stay_out_of_the_lifetime_usage(api, organization):
    billing = calls_billing(api, organization)
    seats = billing.metric("seats", "sum_agg", field_name="n")
    billing.charge(seats, pay_in_advance=True, invoiceable=False, properties={"amount": "1"})
    send(billing, 1)
    send(billing, 1, code="seats", properties={"n": 5})

    refresh("2026-03-10T12:00:30")

    lifetime = LifetimeUsage.objects.get(subscription=billing.subscription)
    assert lifetime.current_usage_amount_cents == 1_000


def test_a_subscription_terminated_since_its_events_is_dropped(api, organization):
    billing = calls_billing(api, organization)
    send(billing, 1)
    Subscription.objects.filter(pk=billing.subscription.pk).update(
        status=Subscription.Status.TERMINATED
    )

    report = refresh("2026-03-10T12:00:30")

    assert (report.subscriptions, report.skipped) == (0, 1)
    assert not SubscriptionActivity.objects.exists()
    assert not LifetimeUsage.objects.exists()


def test_the_pass_refreshes_the_flagged_wallets_of_the_customers_it_refreshed(
    api, organization, django_capture_on_commit_callbacks
):
    billing = calls_billing(api, organization)
    wallet = WalletFactory(organization=organization, customer=billing.customer)
    fund_wallet(wallet, "100")
    send(billing, 2)
    # as if the refresh queued by the events had been lost
    Wallet.objects.filter(pk=wallet.pk).update(
        ready_to_be_refreshed=True, ongoing_balance_cents=10_000
    )

    with django_capture_on_commit_callbacks(execute=True):
        refresh("2026-03-10T12:00:30")

    wallet.refresh_from_db()
    assert not wallet.ready_to_be_refreshed
    assert wallet.ongoing_balance_cents == 10_000 - 2_000
    assert wallet.last_balance_sync_at == at("2026-03-10T12:00:30")


def test_the_pass_leaves_wallets_of_other_customers_to_their_sweeper(
    api, organization, django_capture_on_commit_callbacks
):
    billing = calls_billing(api, organization)
    elsewhere = WalletFactory(organization=organization)
    Wallet.objects.filter(pk=elsewhere.pk).update(ready_to_be_refreshed=True)
    send(billing, 1)

    with django_capture_on_commit_callbacks(execute=True):
        refresh("2026-03-10T12:00:30")

    elsewhere.refresh_from_db()
    assert elsewhere.ready_to_be_refreshed


def test_the_loop_is_a_job_run_every_minute():
    [schedule] = [s for s in SCHEDULES if s.slug == "refresh_usage"]

    assert (schedule.minute, schedule.hour) == ("*", "*")
    assert schedule.task == "metering.tasks.refresh_usage_task"


def test_jobs_run_refresh_usage_refreshes_the_flagged_subscriptions(api, organization):
    billing = calls_billing(api, organization)
    send(billing, 2)

    out = jobs("run", "refresh_usage", when="2026-03-10T12:00:30")

    assert out.endswith(": 1 subscription(s) refreshed\n")
    assert LifetimeUsage.objects.get(subscription=billing.subscription).current_usage_amount_cents
    assert not SubscriptionActivity.objects.exists()


def test_jobs_run_refresh_usage_dry_run_changes_nothing(api, organization):
    billing = calls_billing(api, organization)
    send(billing, 2)

    out = jobs("run", "refresh_usage", "--dry-run", when="2026-03-10T12:00:30")

    assert "1 subscription(s) refreshed" in out
    assert SubscriptionActivity.objects.filter(subscription=billing.subscription).exists()
    assert not LifetimeUsage.objects.exists()
