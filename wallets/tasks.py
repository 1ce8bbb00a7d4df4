"""Clock of the wallets (spec §17.4, §17.6, §17.7, §27): thin Celery wrappers around services,
and the two ways other code queues a refresh of a customer's ongoing balance.

Each service decides under the wallet lock and names automatic top-ups by their occurrence
(`trigger_key`), so a task run twice, or twice at once, tops up nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from celery import shared_task
from django.db import OperationalError, transaction
from django.utils import timezone

from billing.actors import SYSTEM
from wallets.models import Wallet
from wallets.services.alerts import evaluate_wallet_alerts
from wallets.services.expiration import terminate_expired_wallets
from wallets.services.ongoing import (
    REFRESH_DELAY_SECONDS,
    flag_wallets_for_events,
    refresh_customer_wallets,
    refresh_flagged_wallets,
)
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
    """Every minute, the sweeper: ongoing balance of the wallets still flagged (their queued
    refresh was lost or failed), then their threshold top-ups, then the alerts of every wallet
    whose watched figure moved."""
    now = timezone.now()
    refreshed = refresh_flagged_wallets(actor=SYSTEM, now=now)
    evaluate_wallet_alerts(actor=SYSTEM, now=now)
    return refreshed


@shared_task(**RETRY)
def refresh_customer_wallets_task(customer_id: str) -> int:
    """Queued by events or by an invoice of the customer (spec §17.4): its wallets' ongoing
    balance, then their threshold top-ups and alerts."""
    return refresh_customer_wallets(customer_id=customer_id, actor=SYSTEM, now=timezone.now())


def queue_refresh_for_events(
    *, organization_id: UUID, events: Sequence[Sequence[str]], **kwargs: object
) -> int:
    """`metering.hooks.on_events_ingested` (after commit): flags the wallets of the customers
    whose subscriptions received events and queues one delayed refresh per customer whose
    wallets this call flagged; returns how many were queued. A failed queueing leaves the
    wallets flagged for the sweeper."""
    customer_ids = flag_wallets_for_events(organization_id=organization_id, events=events)
    for customer_id in customer_ids:
        refresh_customer_wallets_task.apply_async(
            args=(str(customer_id),), countdown=REFRESH_DELAY_SECONDS
        )
    return len(customer_ids)


def queue_refresh_after_commit(
    *, customer_id: UUID, has_active_wallets: bool | None = None
) -> None:
    """Queues a refresh of the customer's wallets once the current transaction commits (a draft
    invoice created, refreshed or deleted, an invoice finalized: what the customer owes moved
    between usage, drafts and invoices). Nothing for a customer without an active wallet
    (`has_active_wallets`: what the caller read in this transaction, None: read now)."""
    if has_active_wallets is None:
        has_active_wallets = Wallet.objects.filter(
            customer_id=customer_id, status=Wallet.Status.ACTIVE
        ).exists()
    if not has_active_wallets:
        return
    transaction.on_commit(
        lambda: refresh_customer_wallets_task.delay(str(customer_id)), robust=True
    )


def refresh_after_usage_pass(
    *, customer_ids: Sequence[UUID], now: datetime, **kwargs: object
) -> int:
    """`metering.hooks.on_usage_refreshed`: the still-flagged wallets of the customers whose
    subscriptions the pass refreshed (their queued refresh has not run yet, or was lost), then
    their threshold top-ups and alerts; returns how many wallets were refreshed."""
    return refresh_flagged_wallets(actor=SYSTEM, now=now, customer_ids=customer_ids)
