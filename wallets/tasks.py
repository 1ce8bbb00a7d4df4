"""Clock of the wallets (spec §17.4, §17.6, §17.7, §27): thin Celery wrappers around services.

Each service decides under the wallet lock and names automatic top-ups by their occurrence
(`trigger_key`), so a task run twice, or twice at once, tops up nothing twice.
"""

from __future__ import annotations

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from billing.actors import SYSTEM
from wallets.services.alerts import evaluate_wallet_alerts
from wallets.services.expiration import terminate_expired_wallets
from wallets.services.ongoing import refresh_customer_wallets, refresh_flagged_wallets
from wallets.services.recurring import expire_rules, run_interval_top_ups

RETRY = {
    "acks_late": True,
    "autoretry_for": (OperationalError,),  # lock timeouts, lost connections: worth a retry
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(**RETRY)
def terminate_expired_wallets_task() -> int:
    """Hourly :45: terminate wallets whose `expiration_at` passed (credits voided)."""
    return terminate_expired_wallets(actor=SYSTEM, now=timezone.now())


@shared_task(**RETRY)
def expire_recurring_rules_task() -> int:
    """Hourly :50: terminate recurring top-up rules whose `expiration_at` passed."""
    return expire_rules(actor=SYSTEM, now=timezone.now())


@shared_task(**RETRY)
def interval_top_ups_task() -> int:
    """Hourly :55: interval top-ups whose occurrence is today (customer's timezone)."""
    return run_interval_top_ups(actor=SYSTEM, now=timezone.now())


@shared_task(**RETRY)
def refresh_ongoing_balances_task() -> int:
    """Every 5 minutes: ongoing balance of flagged wallets, then their threshold top-ups,
    then the alerts of every wallet whose watched figure moved."""
    now = timezone.now()
    refreshed = refresh_flagged_wallets(actor=SYSTEM, now=now)
    evaluate_wallet_alerts(actor=SYSTEM, now=now)
    return refreshed


@shared_task(**RETRY)
def refresh_customer_wallets_task(customer_id: str) -> int:
    """Right after an invoice of the customer was finalized (spec §17.4): its wallets' ongoing
    balance, then their threshold top-ups and alerts."""
    return refresh_customer_wallets(customer_id=customer_id, actor=SYSTEM, now=timezone.now())
