"""Thin Celery wrappers around the integrations services.

Webhook delivery tasks: thin wrappers around `integrations.services.webhook_delivery`.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from uuid import UUID

import redis
from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from billing.actors import SYSTEM
from integrations.payment_providers.base import GatewayConnectionError
from integrations.services.credit_note_refunds import credit_note_refund_send
from integrations.services.invoice_collection import invoice_payment_collect
from integrations.services.payment_request_emails import payment_request_process
from integrations.services.provider_customers import provider_customer_sync
from integrations.services.webhook_delivery import (
    deliveries_purge,
    endpoint_deliveries_send,
    endpoints_with_due_deliveries,
    outbox_drain,
    outbox_pending,
)


@shared_task(
    acks_late=True, autoretry_for=(GatewayConnectionError,), retry_backoff=True, max_retries=5
)
def provider_customer_sync_task(customer_id: str, provider_customer_id_changed: bool) -> None:
    provider_customer_sync(
        customer_id=UUID(customer_id),
        provider_customer_id_changed=provider_customer_id_changed,
        actor=SYSTEM,
    )


def on_customer_payment_provider_set(
    *, customer_id: UUID, provider_customer_id_changed: bool, sync: bool
) -> None:
    """Receiver of `customers.hooks.on_customer_payment_provider_set`: at once when the caller
    asked for `sync`, else in a task."""
    if sync:
        provider_customer_sync(
            customer_id=customer_id,
            provider_customer_id_changed=provider_customer_id_changed,
            actor=SYSTEM,
        )
    else:
        provider_customer_sync_task.delay(str(customer_id), provider_customer_id_changed)


@shared_task(
    acks_late=True, autoretry_for=(GatewayConnectionError,), retry_backoff=True, max_retries=5
)
def invoice_payment_collect_task(invoice_id: str) -> None:
    invoice_payment_collect(invoice_id=UUID(invoice_id), actor=SYSTEM, now=timezone.now())


def on_invoice_finalized(*, invoice_id: UUID) -> None:
    """Receiver of `invoicing.hooks.on_invoice_finalized` and `on_credit_invoice_created`: the
    invoice is collected in a task."""
    invoice_payment_collect_task.delay(str(invoice_id))


@shared_task(
    acks_late=True, autoretry_for=(GatewayConnectionError,), retry_backoff=True, max_retries=5
)
def payment_request_collect_task(payment_request_id: str) -> None:
    payment_request_process(
        payment_request_id=UUID(payment_request_id), actor=SYSTEM, now=timezone.now()
    )


def on_payment_request_created(*, payment_request_id: UUID) -> None:
    """Receiver of `invoicing.hooks.on_payment_request_created`: collected (or e-mailed) in a
    task."""
    payment_request_collect_task.delay(str(payment_request_id))


@shared_task(
    acks_late=True, autoretry_for=(GatewayConnectionError,), retry_backoff=True, max_retries=5
)
def credit_note_refund_send_task(credit_note_id: str) -> None:
    credit_note_refund_send(credit_note_id=UUID(credit_note_id), actor=SYSTEM, now=timezone.now())


def on_credit_note_refund_requested(*, credit_note_id: UUID) -> None:
    """Receiver of `invoicing.hooks.on_credit_note_refund_requested`: refunded in a task."""
    credit_note_refund_send_task.delay(str(credit_note_id))


QUEUED_FLAG_SECONDS = 10  # a queued task lost with its worker stops coalescing after this


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def _queued_flags() -> redis.Redis | None:
    """The broker's Redis, where "a drain (a sender) is queued and has not started" is noted so
    that a burst of commits queues one task, not one each; None when tasks run eagerly or the
    broker is not Redis (then every notification queues its task)."""
    conf = drain_outbox_task.app.conf
    url = conf.broker_url or ""
    if conf.task_always_eager or not url.startswith(("redis://", "rediss://")):
        return None
    return _redis(url)


# KEYS: a waiting consumer's flag, its wake-up list, the "queued and not started" flag.
# 1: the consumer waiting for this work was woken (its flag consumed: one wake-up each); 2: none
# waits and none is queued, so the caller queues a task; 0: one is queued and has not started.
_NOTIFY_SCRIPT = """
if redis.call('del', KEYS[1]) == 1 then
  redis.call('rpush', KEYS[2], '1')
  redis.call('expire', KEYS[2], ARGV[1])
  return 1
end
if redis.call('set', KEYS[3], '1', 'NX', 'EX', ARGV[2]) then
  return 2
end
return 0
"""


@functools.cache
def _notify_script(flags: redis.Redis):
    return flags.register_script(_NOTIFY_SCRIPT)


def _notify(keys: tuple[str, str, str], task, *args: str) -> None:
    """Work for `task` was committed: wakes the task waiting for it, else queues one unless one
    is queued already (a burst of commits queues one task, not one each)."""
    flags = _queued_flags()
    if flags is not None:
        try:
            if _notify_script(flags)(keys=list(keys), args=[30, QUEUED_FLAG_SECONDS]) != 2:
                return
        except redis.RedisError:
            pass  # no coalescing without the flag store: queue anyway
    task.delay(*args)


def _started(flag: str) -> None:
    """Clears the flag before the work is read: what is recorded from now on queues again."""
    flags = _queued_flags()
    if flags is not None:
        with contextlib.suppress(redis.RedisError):
            flags.delete(flag)


def _waiter(listen: str, wake: str) -> Callable[[Callable[[], bool], float], bool] | None:
    """How a task waits for more work instead of ending: it raises its flag, then looks at the
    database once more (work committed before the flag was seen), then blocks on a Redis list
    that `_notify` pushes to when it finds the flag (queueing no task then). The flag is
    consumed by the wake-up, or dropped at the timeout before a last look: a commit either
    wakes the task or queues another, and its rows are seen either way. None without a Redis
    broker (tasks eager): tasks then end when their work is done."""
    flags = _queued_flags()
    if flags is None:
        return None

    def wait(has_work: Callable[[], bool], timeout: float) -> bool:
        try:
            with flags.pipeline() as pipe:  # a wake-up left by an earlier wait goes
                pipe.set(listen, 1, ex=int(timeout) + 2).delete(wake).execute()
        except redis.RedisError:
            return False
        if has_work():
            _drop(flags, listen)
            return True
        try:
            if flags.blpop([wake], timeout=timeout):
                return True
        except redis.RedisError:
            pass
        _drop(flags, listen)
        return has_work()

    return wait


def _drop(flags: redis.Redis, key: str) -> None:
    with contextlib.suppress(redis.RedisError):
        flags.delete(key)


DRAIN_FLAG = "webhooks:drain-queued"
DRAIN_KEYS = ("webhooks:drain-listening", "webhooks:drain-wake", DRAIN_FLAG)


def _send_flag(endpoint_id: str) -> str:
    return f"webhooks:send-queued:{endpoint_id}"


def _send_keys(endpoint_id: str) -> tuple[str, str, str]:
    return (
        f"webhooks:send-listening:{endpoint_id}",
        f"webhooks:send-wake:{endpoint_id}",
        _send_flag(endpoint_id),
    )


def _dispatch(endpoint_ids: object, *, coalesce: bool = True) -> None:
    for endpoint_id in sorted(map(str, endpoint_ids)):  # type: ignore[call-overload]
        if coalesce:
            _notify(_send_keys(endpoint_id), send_webhook_deliveries_task, endpoint_id)
        else:
            send_webhook_deliveries_task.delay(endpoint_id)


# a drain or a sender gives its worker process back after this long (queued tasks run
# meanwhile), a sender queueing itself for the rest; within it, the drain and the sender of an
# endpoint's first slot wait up to WEBHOOK_SENDER_IDLE_SECONDS at a time for more work (a task
# less for each commit and each drained batch while events keep coming)
SLICE_SECONDS = 2.0


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def drain_outbox_task() -> int:
    """Deliveries of the outbox rows recorded since the last drain; the senders of each batch's
    endpoints are queued (or woken) as soon as it is committed. Then it waits a moment for the
    next commits instead of ending."""
    _started(DRAIN_FLAG)
    wait = None if _eager() else _waiter(*DRAIN_KEYS[:2])
    idle = settings.WEBHOOK_SENDER_IDLE_SECONDS
    deadline = time.monotonic() + SLICE_SECONDS
    events = 0
    while True:
        events += outbox_drain(now=timezone.now(), on_batch=_dispatch).events
        left = deadline - time.monotonic()
        if wait is None or idle <= 0 or left <= 0 or not wait(outbox_pending, min(idle, left)):
            return events


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def send_webhook_deliveries_task(endpoint_id: str) -> int:
    """Attempts the endpoint's due deliveries for a while; queues itself for what is left,
    and for the earliest retry."""
    _started(_send_flag(endpoint_id))
    eager = _eager()
    report = endpoint_deliveries_send(
        endpoint_id=UUID(endpoint_id),
        clock=timezone.now,
        max_seconds=None if eager else SLICE_SECONDS,
        wait_for_more=None if eager else _waiter(*_send_keys(endpoint_id)[:2]),
        idle_seconds=settings.WEBHOOK_SENDER_IDLE_SECONDS,
    )
    if report.more:
        _dispatch([endpoint_id])
    if report.retry_at is not None and not eager:
        countdown = max((report.retry_at - timezone.now()).total_seconds(), 0)
        send_webhook_deliveries_task.apply_async((endpoint_id,), countdown=countdown)
    return report.attempted


def _eager() -> bool:
    # an eager countdown would run at once, before the retry is due: the sweep sends it
    return bool(send_webhook_deliveries_task.app.conf.task_always_eager)


@shared_task
def deliver_webhooks_task() -> int:
    """The sweep: drains what no notification drained, and wakes the sender of every endpoint
    with a due delivery (retries whose timer was lost, attempts of a killed worker)."""
    now = timezone.now()
    report = outbox_drain(now=now, on_batch=_dispatch)  # a backlog's senders start meanwhile
    endpoints = set(endpoints_with_due_deliveries(now=now)) | report.endpoint_ids
    _dispatch(endpoints, coalesce=False)  # the safety net ignores flags a lost task left behind
    return len(endpoints)


@shared_task
def purge_webhook_deliveries_task() -> int:
    """Daily: the delivery log keeps `WEBHOOK_LOG_RETENTION_DAYS` days."""
    return deliveries_purge(now=timezone.now())


def drain_soon() -> None:
    """Receiver of `billing.outbox.on_events_recorded`: a drain after each commit (the waiting
    one woken, or one queued at a time)."""
    _notify(DRAIN_KEYS, drain_outbox_task)
