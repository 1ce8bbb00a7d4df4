"""Clock of metering (spec §27): thin Celery wrappers around the services."""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from billing.actors import SYSTEM
from metering.services.cached_aggregations import cached_aggregations_prune
from metering.services.events_errors import events_errors_report
from metering.services.refresh import refresh_usage


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
    events since the last pass; returns how many subscriptions were refreshed."""
    return refresh_usage(actor=SYSTEM, now=timezone.now()).subscriptions
