"""Ingestion queues a refresh pass a few seconds after events, so that their effects (lifetime
usage, alerts, progressive billing, wallets) do not wait for the minute's beat: one pass per
window, none when tasks run eagerly."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
import redis
from django.core.cache import cache

from metering.tasks import REFRESH_QUEUED_KEY, queue_refresh_after_events
from tests.metering.usage.conftest import at
from tests.wallets.test_ongoing_balance import NOW, calls_billing, send
from tests.wallets.test_ongoing_refresh_triggers import QUEUE, REDIS_URL, redis_broker

pytestmark = pytest.mark.django_db
TASK = "metering.tasks.refresh_usage_task"


@pytest.fixture
def queue():
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(QUEUE)
    cache.delete(REFRESH_QUEUED_KEY)
    yield client
    client.delete(QUEUE)
    cache.delete(REFRESH_QUEUED_KEY)


def refresh_messages(client) -> list[dict]:
    messages = [json.loads(raw) for raw in client.lrange(QUEUE, 0, -1)]
    return [m for m in messages if m["headers"]["task"] == TASK]


def test_events_queue_one_refresh_pass_after_the_delay(
    api, organization, django_capture_on_commit_callbacks, queue, settings
):
    settings.USAGE_REFRESH_KICK_SECONDS = 10
    billing, _ = calls_billing(api, organization)
    with redis_broker():
        send(billing, django_capture_on_commit_callbacks, 2)

    [message] = refresh_messages(queue)
    eta = datetime.fromisoformat(message["headers"]["eta"])
    assert eta == at(NOW) + timedelta(seconds=10)


def test_events_within_the_window_queue_no_second_pass(
    api, organization, django_capture_on_commit_callbacks, queue
):
    billing, _ = calls_billing(api, organization)
    with redis_broker():
        send(billing, django_capture_on_commit_callbacks, 2)
        send(billing, django_capture_on_commit_callbacks, 3)

    assert len(refresh_messages(queue)) == 1


def test_events_after_the_window_queue_another_pass(
    api, organization, django_capture_on_commit_callbacks, queue
):
    billing, _ = calls_billing(api, organization)
    with redis_broker():
        send(billing, django_capture_on_commit_callbacks, 2)
        cache.delete(REFRESH_QUEUED_KEY)  # the window's key expired
        send(billing, django_capture_on_commit_callbacks, 1)

    assert len(refresh_messages(queue)) == 2


def test_a_zero_delay_leaves_the_refresh_to_the_beat(
    api, organization, django_capture_on_commit_callbacks, queue, settings
):
    settings.USAGE_REFRESH_KICK_SECONDS = 0
    billing, _ = calls_billing(api, organization)
    with redis_broker():
        send(billing, django_capture_on_commit_callbacks, 2)

    assert refresh_messages(queue) == []


def test_eager_tasks_queue_nothing(organization, queue):
    queued = queue_refresh_after_events(
        organization_id=organization.pk, events=[["sub_1", "tx_1"]], pay_in_advance_events=[]
    )

    assert queued is False
    assert cache.get(REFRESH_QUEUED_KEY) is None
