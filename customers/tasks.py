"""Clock of the subscription life cycle (spec §27): thin Celery wrappers around the services.

Each service re-checks every subscription under its locks, so a task run twice, or twice at
once, changes nothing more; each returns how many subscriptions it moved.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from billing.actors import SYSTEM
from customers.services.subscription_clock import (
    subscription_activate_pending,
    subscription_end_trials,
    subscription_terminate_ended,
    subscription_termination_alerts,
)

RETRY = {
    "acks_late": True,
    "autoretry_for": (OperationalError,),  # lock timeouts, lost connections: worth a retry
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(**RETRY)
def subscription_activate_pending_task() -> int:
    """Every 5 minutes: start pending subscriptions and apply downgrades that are due."""
    return len(subscription_activate_pending(actor=SYSTEM, now=timezone.now()))


@shared_task(**RETRY)
def subscription_terminate_ended_task() -> int:
    """Hourly :05: terminate subscriptions whose `ending_at` passed."""
    return len(subscription_terminate_ended(actor=SYSTEM, now=timezone.now()))


@shared_task(**RETRY)
def subscription_termination_alerts_task() -> int:
    """Hourly :50: `subscription.termination_alert` 45 and 15 days before `ending_at`."""
    return len(subscription_termination_alerts(actor=SYSTEM, now=timezone.now()))


@shared_task(**RETRY)
def subscription_end_trials_task() -> int:
    """Hourly :35: mark ended free trials (invoicing bills in-advance plans on the hook)."""
    return len(subscription_end_trials(actor=SYSTEM, now=timezone.now()))
