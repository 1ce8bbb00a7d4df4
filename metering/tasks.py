"""Clock of metering (spec §27): thin Celery wrappers around the services."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from celery import current_app, shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError
from django.utils import timezone

from billing.actors import SYSTEM
from metering.services.cached_aggregations import cached_aggregations_prune
from metering.services.events_errors import events_errors_report
from metering.services.refresh import passes_wanted, refresh_usage


@shared_task(acks_late=True)
def events_errors_report_task() -> int:
    """Hourly :05 (spec §27 "post-validate events"): report the last whole hour's events."""
    return len(events_errors_report(actor=SYSTEM, now=timezone.now()))


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def cached_aggregations_prune_task() -> int:
    """Daily 02:30: drop the pay-in-advance states that later ones superseded (35 days)."""
    return cached_aggregations_prune(now=timezone.now())


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def refresh_usage_task() -> int:
    """Every minute: lifetime usage, usage alerts and wallets of the subscriptions that received
    events since the last pass; more flagged subscriptions than a batch start more passes on
    other workers (`passes_wanted`), all up to the same instant. Returns how many
    subscriptions this pass refreshed."""
    now = timezone.now()
    for _ in range(passes_wanted(now=now, most=settings.USAGE_REFRESH_MAX_PASSES) - 1):
        refresh_usage_pass_task.delay(now.isoformat())
    return refresh_usage(actor=SYSTEM, now=now).subscriptions


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def refresh_usage_pass_task(until: str) -> int:
    """One more pass of a busy minute: the subscriptions flagged up to `until` (ISO instant)
    that the other passes have not claimed."""
    return refresh_usage(actor=SYSTEM, now=datetime.fromisoformat(until)).subscriptions


REFRESH_QUEUED_KEY = "metering:refresh-usage-queued"


def queue_refresh_after_events(
    *, organization_id: UUID, events: list[list[str]], **kwargs: object
) -> bool:
    """`metering.hooks.on_events_ingested` (after commit): queues a refresh pass
    `USAGE_REFRESH_KICK_SECONDS` later, so that the subscriptions these events flagged are
    refreshed (lifetime usage, alerts, progressive billing, wallets) without waiting for the
    minute's beat. One queued pass per window (a cache key living as long as the delay: the
    pass refreshes every subscription flagged by then); none when tasks run eagerly (no worker
    to delay it to: the job runs by hand) or when the setting is 0. Returns whether it queued."""
    delay = settings.USAGE_REFRESH_KICK_SECONDS
    if not delay or not events or current_app.conf.task_always_eager:
        return False
    if not cache.add(REFRESH_QUEUED_KEY, 1, timeout=delay):
        return False
    refresh_usage_task.apply_async(countdown=delay)
    return True
