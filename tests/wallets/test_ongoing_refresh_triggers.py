"""What refreshes the ongoing balance, and how soon (spec §17.4, faster than Lago's 5 minutes).

An ingested event flags the customer's wallets and, on the first flag only, queues one delayed
refresh of that customer (eager in tests); the every-minute sweeper refreshes whatever is still
flagged; creating, refreshing or deleting a draft invoice refreshes the customer's wallets once
the transaction commits. Of concurrent ingestions, only the one that flips the flag queues.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import redis
import time_machine

from billing.actors import SYSTEM
from billing.celery import app
from billing.schedules import SCHEDULES
from invoicing.models import Invoice
from invoicing.services.lifecycle import invoice_delete_draft, invoice_refresh
from tests.customers.factories import SubscriptionFactory
from tests.customers.test_customers_api import run_in_threads
from tests.invoicing.billing_helpers import bill, only_invoice, set_entity
from tests.metering.usage.conftest import at
from tests.wallets.factories import RecurringTransactionRuleFactory, WalletFactory
from tests.wallets.test_ongoing_balance import NOW, calls_billing, send, wallet_of
from wallets.models import Wallet, WalletTransaction
from wallets.services.ongoing import REFRESH_DELAY_SECONDS, flag_wallets_for_events
from wallets.tasks import refresh_ongoing_balances_task

D = Decimal
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
QUEUE = "celery"  # the default queue, in the Redis database of the tests
pytestmark = pytest.mark.django_db


def flag(wallet: Wallet) -> None:
    """As if a refresh of the wallet's customer had been queued and not run yet."""
    Wallet.objects.filter(pk=wallet.pk).update(ready_to_be_refreshed=True)


@contextmanager
def redis_broker() -> Iterator[None]:
    """Tasks are sent to Redis instead of running eagerly. Celery caches its connection pools
    at the first task (eager ones too): the broker's pools for the block, the eager ones back
    after."""
    saved = (app.conf.broker_url, app.conf.task_always_eager, app._pool, app.amqp._producer_pool)
    app.conf.broker_url, app.conf.task_always_eager = REDIS_URL, False
    app._pool = app.amqp._producer_pool = None
    try:
        yield
    finally:
        # the block's pools stay open: kombu keeps one producer pool per broker URL and hands
        # the same one to the next block (a closed one would refuse it)
        app.conf.broker_url, app.conf.task_always_eager, app._pool, app.amqp._producer_pool = saved


def sweep(when: str) -> int:
    with time_machine.travel(at(when), tick=False):
        return refresh_ongoing_balances_task.delay().get()


# --------------------------------------------------------------------------------------------
# Events


def test_an_event_refreshes_the_ongoing_balance_through_the_task_it_queued(
    api, organization, django_capture_on_commit_callbacks
):
    billing, _ = calls_billing(api, organization)
    wallet = wallet_of(billing)

    send(billing, django_capture_on_commit_callbacks, 3)

    wallet.refresh_from_db()
    assert (wallet.ongoing_usage_balance_cents, wallet.ongoing_balance_cents) == (3_000, 7_000)
    assert wallet.last_balance_sync_at == at(NOW)
    assert not wallet.ready_to_be_refreshed


def test_events_while_a_refresh_is_queued_queue_no_other(
    api, organization, django_capture_on_commit_callbacks
):
    billing, _ = calls_billing(api, organization)
    wallet = wallet_of(billing)
    flag(wallet)

    send(billing, django_capture_on_commit_callbacks, 3)

    wallet.refresh_from_db()
    assert wallet.ready_to_be_refreshed  # the queued refresh will read these events
    assert (wallet.ongoing_usage_balance_cents, wallet.last_balance_sync_at) == (0, None)


def test_with_a_broker_events_queue_one_delayed_refresh_per_customer(
    api, organization, django_capture_on_commit_callbacks
):
    billing, _ = calls_billing(api, organization)
    wallet_of(billing)
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(QUEUE)
    with redis_broker():
        send(billing, django_capture_on_commit_callbacks, 2)
        send(billing, django_capture_on_commit_callbacks, 3)
    messages = [json.loads(raw) for raw in client.lrange(QUEUE, 0, -1)]
    client.delete(QUEUE)

    # the usage refresh pass the events queued too is another task
    [message] = [m for m in messages if m["headers"]["task"].startswith("wallets.")]
    headers = message["headers"]
    assert headers["task"] == "wallets.tasks.refresh_customer_wallets_task"
    assert headers["argsrepr"] == repr((str(billing.customer.pk),))
    eta = datetime.fromisoformat(headers["eta"])
    assert eta == at(NOW) + timedelta(seconds=REFRESH_DELAY_SECONDS)
    assert 0 < REFRESH_DELAY_SECONDS <= 30  # with the every-minute sweeper: well within 60 s


def test_a_threshold_rule_fires_from_the_refresh_an_event_queued(
    api, organization, django_capture_on_commit_callbacks
):
    billing, _ = calls_billing(api, organization)
    wallet = wallet_of(billing, credits="40")
    RecurringTransactionRuleFactory(
        organization=organization,
        wallet=wallet,
        trigger="threshold",
        interval="",
        threshold_credits=D("20"),
        granted_credits=D("50"),
    )

    send(billing, django_capture_on_commit_callbacks, 3)  # ongoing 40 - 30 = 10 <= 20

    [top_up] = WalletTransaction.objects.filter(wallet=wallet, source="threshold")
    assert top_up.credit_amount == D("50")
    wallet.refresh_from_db()
    assert (wallet.balance_cents, wallet.ongoing_balance_cents) == (9_000, 6_000)


# --------------------------------------------------------------------------------------------
# The sweeper


def test_the_sweeper_runs_every_minute():
    [schedule] = [s for s in SCHEDULES if s.task == "wallets.tasks.refresh_ongoing_balances_task"]
    assert (schedule.name, schedule.minute, schedule.hour) == (
        "Refresh wallets ongoing balance",
        "*",
        "*",
    )


def test_the_sweeper_refreshes_a_wallet_whose_queued_refresh_was_lost(
    api, organization, django_capture_on_commit_callbacks
):
    billing, _ = calls_billing(api, organization)
    wallet = wallet_of(billing)
    flag(wallet)  # its refresh task was lost (worker died, broker down)
    send(billing, django_capture_on_commit_callbacks, 3)

    assert sweep("2026-03-10T12:01:00") == 1

    wallet.refresh_from_db()
    assert (wallet.ongoing_balance_cents, wallet.ready_to_be_refreshed) == (7_000, False)
    assert wallet.last_balance_sync_at == at("2026-03-10T12:01:00")


# --------------------------------------------------------------------------------------------
# Draft invoices


@pytest.fixture
def drafted(api, organization, django_capture_on_commit_callbacks):
    """A customer with a funded wallet whose March invoice was just drafted (3-day grace)."""
    set_entity(organization, invoice_grace_period=3)
    billing, _ = calls_billing(api, organization)
    wallet = wallet_of(billing, credits="1000")
    send(billing, django_capture_on_commit_callbacks, 3)
    with (
        time_machine.travel(at("2026-04-01T00:10:00"), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        draft = only_invoice(bill(billing.customer, date(2026, 4, 1), now=at("2026-04-01T00:10")))
    wallet.refresh_from_db()
    return billing, wallet, draft


def test_a_draft_invoice_refreshes_the_ongoing_balance_once_created(drafted):
    _, wallet, draft = drafted

    assert draft.status == Invoice.Status.DRAFT
    assert draft.total_amount_cents >= 3_000  # the March usage, moved from usage to the draft
    assert wallet.last_balance_sync_at == at("2026-04-01T00:10:00")
    assert wallet.ongoing_usage_balance_cents == draft.total_amount_cents
    assert wallet.ongoing_balance_cents == 100_000 - draft.total_amount_cents


def test_refreshing_a_draft_refreshes_the_ongoing_balance(
    drafted, django_capture_on_commit_callbacks
):
    _, wallet, draft = drafted
    with (
        time_machine.travel(at("2026-04-01T06:00:00"), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        invoice_refresh(invoice=draft, actor=SYSTEM, now=at("2026-04-01T06:00:00"))

    wallet.refresh_from_db()
    assert wallet.last_balance_sync_at == at("2026-04-01T06:00:00")


def test_deleting_a_draft_takes_it_out_of_the_ongoing_balance(
    drafted, django_capture_on_commit_callbacks
):
    _, wallet, draft = drafted
    with (
        time_machine.travel(at("2026-04-01T06:00:00"), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        invoice_delete_draft(invoice=draft, actor=SYSTEM, now=at("2026-04-01T06:00:00"))

    wallet.refresh_from_db()
    assert (wallet.ongoing_usage_balance_cents, wallet.ongoing_balance_cents) == (0, 100_000)


# --------------------------------------------------------------------------------------------
# Concurrent ingestions


@pytest.mark.django_db(transaction=True)
def test_of_concurrent_ingestions_only_one_flags_the_wallets_and_queues_the_refresh(organization):
    subscription = SubscriptionFactory(organization=organization)
    WalletFactory(organization=organization, customer=subscription.customer)
    WalletFactory(organization=organization, customer=subscription.customer)
    events = [[subscription.external_id, "tr_1"]]

    flagged = run_in_threads(
        8, lambda i: flag_wallets_for_events(organization_id=organization.pk, events=events)
    )

    assert sorted(flagged, key=len) == [[]] * 7 + [[subscription.customer_id]]
    assert Wallet.objects.filter(ready_to_be_refreshed=True).count() == 2
