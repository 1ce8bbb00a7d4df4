"""The usage refresh loop: what follows new events within a minute (Lago's subscription
activities: lifetime usage, usage alerts, wallets' ongoing balance).

Ingestion flags each active subscription that received events with one statement
(`flag_subscriptions`: `INSERT ... ON CONFLICT DO NOTHING` into `SubscriptionActivity`, a row
per subscription however many events arrive). The every-minute pass (`refresh_usage`, job
`refresh_usage`):

1. claims flagged subscriptions in batches (`DELETE ... WHERE ... FOR UPDATE SKIP LOCKED
   RETURNING`: two concurrent passes never claim the same row, and events arriving after the
   claim flag the subscription again for the next pass);
2. reads what a batch needs in a few queries (its subscriptions, their lifetime usages, created
   when missing, and their alerts; each plan's charges once per pass), then refreshes each
   subscription in its own transaction under a per-subscription advisory lock (a second pass
   busy with it re-flags it instead of waiting): computes the current usage once, stores the
   lifetime usage, evaluates the usage alerts with it (an unchanged value writes nothing);
3. fires `metering.hooks.on_usage_refreshed` after each batch: wallets refresh the ongoing
   balance of the customers concerned, invoicing checks the progressive billing thresholds.

A subscription whose processing fails is logged and flagged again; the others go on.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Q

from billing.actors import Actor
from customers.models import Subscription
from metering import hooks
from metering.models import LifetimeUsage, TriggeredUsageAlert, UsageAlert
from metering.services.activity import claim_flagged, flag_subscriptions
from metering.services.lifetime_usages import lifetime_usage_refresh, lifetime_usages_for
from metering.services.usage_alerts import alert_value, usage_alert_evaluate
from metering.usage import plan_charges, subscription_usage, usage_window
from plans.models import Charge

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
# a subscription put back by a pass is flagged just after the pass's instant: the next pass
# takes it, this one does not loop on it
_LATER = timedelta(microseconds=1)


def _try_lock_subscription(subscription_id: UUID) -> bool:
    """A transaction-scoped advisory lock on one subscription's refresh (PostgreSQL; SQLite
    serializes writers anyway)."""
    if connection.vendor != "postgresql":
        return True
    digest = hashlib.blake2b(f"usage_refresh:{subscription_id}".encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)]
        )
        return bool(cursor.fetchone()[0])


@dataclass
class RefreshReport:
    """What one pass did."""

    subscriptions: int = 0  # subscriptions refreshed
    skipped: int = 0  # claimed but not active any more, or busy in another pass (re-flagged)
    failed: int = 0
    triggered: list[TriggeredUsageAlert] = field(default_factory=list)
    customer_ids: set[UUID] = field(default_factory=set)


@dataclass
class _Batch:
    """What a batch of claimed subscriptions needs, read in a few queries for all of them."""

    subscriptions: dict[UUID, Subscription]
    lifetimes: dict[UUID, LifetimeUsage]
    alerts: dict[tuple[UUID, str], list[UsageAlert]]

    @classmethod
    def load(cls, ids: list[UUID]) -> _Batch:
        subscriptions = {
            s.pk: s
            for s in Subscription.objects.filter(pk__in=ids).select_related(
                "plan", "customer__billing_entity", "customer__organization", "organization"
            )
        }
        active = [s for s in subscriptions.values() if s.status == Subscription.Status.ACTIVE]
        alerts: dict[tuple[UUID, str], list[UsageAlert]] = {}
        query = Q()
        for subscription in active:
            query |= Q(
                organization_id=subscription.organization_id,
                external_subscription_id=subscription.external_id,
            )
        if active:
            for alert in (
                UsageAlert.objects.filter(query)
                .select_related("billable_metric")
                .order_by("created_at", "id")
            ):
                key = (alert.organization_id, alert.external_subscription_id)
                alerts.setdefault(key, []).append(alert)
        return cls(subscriptions, lifetime_usages_for(active) if active else {}, alerts)


def subscription_refresh_usage(
    *,
    subscription: Subscription,
    lifetime: LifetimeUsage,
    alerts: list[UsageAlert],
    charges: list[Charge],
    actor: Actor,
    now: datetime,
) -> list[TriggeredUsageAlert]:
    """One subscription's refresh: its current usage computed once, then its lifetime usage
    and its usage alerts (in the caller's transaction); returns the crossings recorded."""
    window = usage_window(subscription=subscription, at=now)
    usages = subscription_usage(
        subscription=subscription, window=window, include_pay_in_advance=True, charges=charges
    )
    lifetime = lifetime_usage_refresh(
        lifetime=lifetime, subscription=subscription, usages=usages, window=window, now=now
    )
    triggered = []
    for alert in alerts:
        value = alert_value(alert, usages, lifetime)
        if value is None:
            continue
        crossing = usage_alert_evaluate(
            alert=alert, subscription=subscription, value=value, actor=actor, now=now
        )
        if crossing is not None:
            triggered.append(crossing)
    return triggered


def _refresh_one(
    subscription_id: UUID,
    batch: _Batch,
    charges: dict[UUID, list[Charge]],
    report: RefreshReport,
    *,
    actor: Actor,
    now: datetime,
) -> None:
    subscription = batch.subscriptions.get(subscription_id)
    if subscription is None or subscription.status != Subscription.Status.ACTIVE:
        report.skipped += 1  # terminated since: its usage was invoiced with it
        return
    with transaction.atomic():
        if not _try_lock_subscription(subscription_id):
            # another pass is refreshing it: it may have read the usage before the latest
            # events, so the subscription stays flagged for the next pass
            flag_subscriptions(
                organization_id=subscription.organization_id,
                subscription_ids=[subscription_id],
                now=now + _LATER,
            )
            report.skipped += 1
            return
        if subscription.plan_id not in charges:  # one read of a plan's charges per pass
            charges[subscription.plan_id] = plan_charges(subscription)
        report.triggered += subscription_refresh_usage(
            subscription=subscription,
            lifetime=batch.lifetimes[subscription_id],
            alerts=batch.alerts.get((subscription.organization_id, subscription.external_id), []),
            charges=charges[subscription.plan_id],
            actor=actor,
            now=now,
        )
        report.subscriptions += 1
        report.customer_ids.add(subscription.customer_id)


def refresh_usage(*, actor: Actor, now: datetime, batch_size: int = BATCH_SIZE) -> RefreshReport:
    """The pass: every subscription flagged at or before `now`, claimed batch by batch;
    `on_usage_refreshed` after each batch, so that the wallets of a batch do not wait for the
    whole pass (after commit: `jobs run refresh_usage --dry-run` rolls it all back)."""
    report = RefreshReport()
    charges: dict[UUID, list[Charge]] = {}
    while ids := claim_flagged(now=now, limit=batch_size):
        batch = _Batch.load(ids)
        refreshed: list[UUID] = []
        for subscription_id in ids:
            before = report.subscriptions
            try:
                _refresh_one(subscription_id, batch, charges, report, actor=actor, now=now)
            except Exception:
                logger.exception("usage refresh failed for subscription %s", subscription_id)
                report.failed += 1
                subscription = batch.subscriptions.get(subscription_id)
                if subscription is not None:
                    flag_subscriptions(
                        organization_id=subscription.organization_id,
                        subscription_ids=[subscription_id],
                        now=now + _LATER,
                    )
                continue
            if report.subscriptions > before:
                refreshed.append(subscription_id)
        if refreshed:
            subscriptions = [batch.subscriptions[i] for i in refreshed]
            hooks.on_usage_refreshed.fire_after_commit(
                organization_ids=sorted({s.organization_id for s in subscriptions}),
                subscription_ids=refreshed,
                customer_ids=sorted({s.customer_id for s in subscriptions}),
                now=now,
            )
        if len(ids) < batch_size:
            break
    return report
