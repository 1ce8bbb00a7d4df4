"""A real Celery worker on a Redis broker delivers what commits record, loses nothing when it is
killed mid-delivery, and a slow receiver does not hold back the others."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.db import connection, transaction
from kombu import pools

from billing.actors import SYSTEM
from billing.celery import app
from customers.services.customers import customer_create
from integrations.models import WebhookDelivery
from integrations.tasks import deliver_webhooks_task
from tests.integrations.helpers import endpoint_for
from tests.integrations.receiver import running_receiver

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ROOT = Path(__file__).resolve().parents[2]
QUEUE = "celery"  # the default queue of this Redis database (TEST_REDIS_URL is ours)

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def redis_broker() -> Iterator[None]:
    """Tasks go to Redis instead of running eagerly, with fresh pools."""
    saved = (app.conf.broker_url, app.conf.task_always_eager)
    redis.Redis.from_url(REDIS_URL).delete(QUEUE)
    app.conf.broker_url, app.conf.task_always_eager = REDIS_URL, False
    pools.reset()  # a pool another test closed may still be registered for this broker URL
    app._pool = app.amqp._producer_pool = None
    try:
        yield
    finally:
        if app._pool is not None:
            app._pool.force_close_all()
        pools.reset()  # closes kombu's pools and forgets them (one per connection URL)
        app.conf.broker_url, app.conf.task_always_eager = saved[0], saved[1]
        app._pool = app.amqp._producer_pool = None  # built afresh by whoever needs one next


@contextmanager
def celery_worker(tmp_path: Path, name: str, **env: str) -> Iterator[subprocess.Popen]:
    """`celery worker` in its own process group, on the test database and queue."""
    log = tmp_path / f"{name}.log"
    environment = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": REDIS_URL,
        "WEBHOOKS_ALLOW_PRIVATE_URLS": "1",
        "LOG_LEVEL": "INFO",
        "DB_CONN_MAX_AGE": "0",
        **env,
    }
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "billing", "worker", "-Q", QUEUE,
             "--concurrency", "4", "--without-gossip", "--without-mingle", "-n", f"{name}@%h"],
            cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "ready" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # warm shutdown: running tasks finish
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _database_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def _customers(organization, count: int, prefix: str = "cus") -> None:
    with transaction.atomic():
        for n in range(count):
            customer_create(
                organization=organization, values={"external_id": f"{prefix}_{n}"}, actor=SYSTEM
            )


def _wait(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_a_worker_delivers_the_events_of_a_commit(organization, tmp_path):
    with running_receiver() as receiver, redis_broker():
        endpoint_for(organization, receiver.url, signature_algo="hmac")
        with celery_worker(tmp_path, "deliver"):
            _customers(organization, 3)

            received = receiver.wait_for(3, timeout=30)
            assert _wait(lambda: not WebhookDelivery.objects.exclude(status="succeeded").exists())

    assert sorted(r.headers["X-Lago-Unique-Key"] for r in received) == sorted(
        str(pk) for pk in WebhookDelivery.objects.values_list("pk", flat=True)
    )
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_nothing_is_lost_when_the_worker_is_killed_mid_delivery(organization, tmp_path):
    with running_receiver(delay=0.25) as receiver, redis_broker():
        endpoint_for(organization, receiver.url)
        with celery_worker(tmp_path, "doomed") as doomed:
            _customers(organization, 12)
            assert _wait(lambda: len(receiver.requests) >= 2, timeout=30)
            os.killpg(doomed.pid, signal.SIGKILL)  # the whole worker, mid-batch
            doomed.wait()
        got_before_kill = len(receiver.requests)
        receiver.delay = 0.0
        with celery_worker(tmp_path, "survivor"):
            deliver_webhooks_task.delay()  # the periodic sweep, sent by beat every minute
            done = _wait(
                lambda: WebhookDelivery.objects.exclude(status="succeeded").count() == 0,
                timeout=60,
            )

    ids = {str(pk) for pk in WebhookDelivery.objects.values_list("pk", flat=True)}
    assert got_before_kill < 12
    assert done
    assert len(ids) == 12
    assert {r.headers["X-Lago-Unique-Key"] for r in receiver.requests} == ids


def test_a_slow_receiver_does_not_hold_back_the_others(organization, tmp_path):
    with (
        running_receiver(delay=2.0) as slow,
        running_receiver() as fast,
        redis_broker(),
    ):
        endpoint_for(organization, slow.url)
        endpoint_for(organization, fast.url)
        with celery_worker(
            tmp_path, "mixed", WEBHOOK_ENDPOINT_CONCURRENCY="1", WEBHOOK_REQUESTS_PER_SLOT="1"
        ):
            _customers(organization, 5)
            fast.wait_for(5, timeout=30)
            slow_count_then = len(slow.requests)  # one at a time, 2 s each: 10 s for all
            slow.wait_for(5, timeout=60)

    assert len(fast.requests) == 5
    assert slow_count_then < 5
    assert len(slow.requests) == 5
