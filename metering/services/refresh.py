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
   when missing, and their alerts; each plan's charges once per pass), then refreshes the batch
   in one transaction: the per-subscription advisory locks in one statement (a subscription
   another pass is busy with is flagged again instead of waited for), the chains' starts in one
   query, the invoiced part of the lifetime usages that need it (flagged, or a new period) in
   three queries for all, the current usage of the whole batch with one statement per charge
   bucket (`subscriptions_usage`: the event store's `aggregate_many`), the usage alerts
   evaluated with it (the alerts whose value moved locked in one statement and moved in one
   UPDATE, the crossings' rows and outbox events in two INSERTs), and the lifetime usages in
   two UPDATEs. A steady batch costs the same dozen statements whatever its size;
3. fires `metering.hooks.on_usage_refreshed` after each batch: wallets refresh the ongoing
   balance of the customers concerned, invoicing checks the progressive billing thresholds.

The every-minute task starts as many passes at once as the flagged subscriptions fill batches
(`passes_wanted`, up to `USAGE_REFRESH_MAX_PASSES`) so that several Celery workers share a busy
minute; claims never overlap.

A batch that fails is rolled back and done again one subscription per transaction: a
subscription whose processing fails is logged and flagged again; the others go on.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.db import connection, transaction

from billing.actors import Actor
from customers.models import Subscription
from customers.services.subscription_reads import initial_started_at_many
from metering import hooks
from metering.models import (
    LifetimeUsage,
    SubscriptionActivity,
    TriggeredUsageAlert,
    UsageAlert,
)
from metering.services.activity import claim_flagged, flag_subscriptions
from metering.services.lifetime_usages import (
    lifetime_usage_current_only,
    lifetime_usage_refresh,
    lifetime_usage_set_current,
    lifetime_usages_for,
    lifetime_usages_read_invoiced,
    lifetime_usages_store,
    lifetime_usages_store_current,
)
from metering.services.usage_alerts import (
    alert_value,
    usage_alert_evaluate,
    usage_alerts_evaluate,
)
from metering.usage import plan_charges, subscription_usage, subscriptions_usage, usage_window
from plans.models import Charge

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
# a subscription put back by a pass is flagged just after the pass's instant: the next pass
# takes it, this one does not loop on it
_LATER = timedelta(microseconds=1)


def _lock_key(subscription_id: UUID) -> int:
    digest = hashlib.blake2b(f"usage_refresh:{subscription_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _try_lock_subscriptions(subscription_ids: list[UUID]) -> set[UUID]:
    """Transaction-scoped advisory locks on these subscriptions' refresh, taken in one
    statement; the ids locked (another pass holds the others). SQLite serializes writers
    anyway: all of them."""
    if connection.vendor != "postgresql" or not subscription_ids:
        return set(subscription_ids)
    keys = {_lock_key(i): i for i in subscription_ids}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k FROM unnest(%s::bigint[]) AS k WHERE pg_try_advisory_xact_lock(k)",
            [list(keys)],
        )
        return {keys[row[0]] for row in cursor.fetchall()}


@dataclass
class RefreshReport:
    """What one pass did."""

    subscriptions: int = 0  # subscriptions refreshed
    skipped: int = 0  # claimed but not active any more, or busy in another pass (re-flagged)
    failed: int = 0
    triggered: list[TriggeredUsageAlert] = field(default_factory=list)
    customer_ids: set[UUID] = field(default_factory=set)
    subscription_ids: list[UUID] = field(default_factory=list)  # those refreshed


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
        keys = {(s.organization_id, s.external_id) for s in active}
        if active:
            # the organizations' alerts of these external ids (a superset when several
            # organizations share an external id), kept for the batch's pairs
            for alert in (
                UsageAlert.objects.filter(
                    organization_id__in={organization for organization, _ in keys},
                    external_subscription_id__in={external_id for _, external_id in keys},
                )
                .select_related("billable_metric")
                .order_by("created_at", "id")
            ):
                key = (alert.organization_id, alert.external_subscription_id)
                if key in keys:
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
    chain_started_at: datetime | None = None,
    deferred: list[LifetimeUsage] | None = None,
) -> list[TriggeredUsageAlert]:
    """One subscription's refresh: its current usage computed once, then its lifetime usage
    and its usage alerts (in the caller's transaction); returns the crossings recorded.
    With `deferred`, the caller has read the lifetime usage's invoiced part when it had to
    (`lifetime_usages_read_invoiced`): the current part is set on the object, appended there
    for the caller to write with the others of its batch before its transaction ends; the
    alerts read the new value either way."""
    window = usage_window(subscription=subscription, at=now)
    usages = subscription_usage(
        subscription=subscription,
        window=window,
        include_pay_in_advance=True,
        charges=charges,
        chain_started_at=chain_started_at,
    )
    if deferred is not None:
        deferred.append(lifetime_usage_set_current(lifetime, usages, window, now))
    else:
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


def _flag_again(subscriptions: list[Subscription], now: datetime) -> None:
    by_organization: dict[UUID, list[UUID]] = {}
    for subscription in subscriptions:
        by_organization.setdefault(subscription.organization_id, []).append(subscription.pk)
    for organization_id, ids in by_organization.items():
        flag_subscriptions(organization_id=organization_id, subscription_ids=ids, now=now + _LATER)


def _refresh_one(
    subscription_id: UUID,
    batch: _Batch,
    charges: dict[UUID, list[Charge]],
    report: RefreshReport,
    *,
    actor: Actor,
    now: datetime,
) -> None:
    """One subscription in its own transaction (the fallback of a batch that failed)."""
    subscription = batch.subscriptions.get(subscription_id)
    if subscription is None or subscription.status != Subscription.Status.ACTIVE:
        report.skipped += 1  # terminated since: its usage was invoiced with it
        return
    with transaction.atomic():
        if not _try_lock_subscriptions([subscription_id]):
            _flag_again([subscription], now)
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
        report.subscription_ids.append(subscription_id)


def _refresh_batch(
    ids: list[UUID],
    batch: _Batch,
    charges: dict[UUID, list[Charge]],
    *,
    actor: Actor,
    now: datetime,
) -> RefreshReport:
    """A whole batch in one transaction: its advisory locks in one statement (a subscription
    busy in another pass is flagged again), the chains' starts in one query, the invoiced
    parts that need reading together, each charge's usage aggregated for the whole batch in
    one statement (`subscriptions_usage`), the alerts whose value moved locked in one
    statement and written in one UPDATE, their crossings in two INSERTs, the lifetime usages
    in two UPDATEs at the end. Raises if any
    subscription fails: nothing of the batch is kept then (its alert rows stay locked until
    the batch commits)."""
    report = RefreshReport()
    active = [
        batch.subscriptions[i]
        for i in ids
        if i in batch.subscriptions and batch.subscriptions[i].status == Subscription.Status.ACTIVE
    ]
    report.skipped += len(ids) - len(active)  # terminated since: invoiced with it
    with transaction.atomic():
        locked = _try_lock_subscriptions([s.pk for s in active])
        busy = [s for s in active if s.pk not in locked]
        if busy:
            # another pass is refreshing them: it may have read the usage before the latest
            # events, so they stay flagged for the next pass
            _flag_again(busy, now)
            report.skipped += len(busy)
        mine = [s for s in active if s.pk in locked]
        starts = initial_started_at_many(mine)
        windows = {s.pk: usage_window(subscription=s, at=now) for s in mine}
        # the lifetime usages flagged, or entering a new period, read their invoiced part
        # first, all together (the usage does not depend on it; their alerts do)
        first = [
            (batch.lifetimes[s.pk], s)
            for s in mine
            if not lifetime_usage_current_only(batch.lifetimes[s.pk], windows[s.pk])
        ]
        with_invoiced = {id(row) for row in lifetime_usages_read_invoiced(first, now)}
        for subscription in mine:
            if subscription.plan_id not in charges:  # one read of a plan's charges per pass
                charges[subscription.plan_id] = plan_charges(subscription)
        # each charge's aggregation once for the whole batch
        usages = subscriptions_usage(
            subscriptions=mine,
            windows=windows,
            charges=charges,
            chain_started_at=starts,
            include_pay_in_advance=True,
        )
        deferred: list[LifetimeUsage] = []
        evaluations = []
        for subscription in mine:
            usage = usages[subscription.pk]
            lifetime = batch.lifetimes[subscription.pk]
            deferred.append(
                lifetime_usage_set_current(lifetime, usage, windows[subscription.pk], now)
            )
            for alert in batch.alerts.get(
                (subscription.organization_id, subscription.external_id), []
            ):
                value = alert_value(alert, usage, lifetime)
                if value is not None:
                    evaluations.append((alert, subscription, value))
            report.subscriptions += 1
            report.customer_ids.add(subscription.customer_id)
            report.subscription_ids.append(subscription.pk)
        # the batch's alert moves: one lock statement, one UPDATE, its crossings two INSERTs
        report.triggered += usage_alerts_evaluate(evaluations=evaluations, actor=actor, now=now)
        lifetime_usages_store([row for row in deferred if id(row) in with_invoiced])
        # the others: their current part only (an invoice may flag their invoiced part now)
        lifetime_usages_store_current([row for row in deferred if id(row) not in with_invoiced])
    return report


def _refresh_each(
    ids: list[UUID],
    batch: _Batch,
    charges: dict[UUID, list[Charge]],
    *,
    actor: Actor,
    now: datetime,
) -> RefreshReport:
    """The batch one subscription at a time, each in its own transaction: a failing one is
    logged and flagged again, the others go on."""
    report = RefreshReport()
    for subscription_id in ids:
        try:
            _refresh_one(subscription_id, batch, charges, report, actor=actor, now=now)
        except Exception:
            logger.exception("usage refresh failed for subscription %s", subscription_id)
            report.failed += 1
            subscription = batch.subscriptions.get(subscription_id)
            if subscription is not None:
                _flag_again([subscription], now)
    return report


def refresh_usage(*, actor: Actor, now: datetime, batch_size: int = BATCH_SIZE) -> RefreshReport:
    """The pass: every subscription flagged at or before `now`, claimed batch by batch, each
    batch refreshed in one transaction (one subscription at a time when the batch fails);
    `on_usage_refreshed` after each batch, so that the wallets of a batch do not wait for the
    whole pass (after commit: `jobs run refresh_usage --dry-run` rolls it all back)."""
    report = RefreshReport()
    charges: dict[UUID, list[Charge]] = {}
    while ids := claim_flagged(now=now, limit=batch_size):
        batch = _Batch.load(ids)
        try:
            done = _refresh_batch(ids, batch, charges, actor=actor, now=now)
        except Exception:
            logger.warning("usage refresh batch failed, retried one by one", exc_info=True)
            batch = _Batch.load(ids)  # the rolled back transaction's objects are stale
            done = _refresh_each(ids, batch, charges, actor=actor, now=now)
        report.subscriptions += done.subscriptions
        report.skipped += done.skipped
        report.failed += done.failed
        report.triggered += done.triggered
        report.customer_ids |= done.customer_ids
        report.subscription_ids += done.subscription_ids
        refreshed = done.subscription_ids
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


def passes_wanted(*, now: datetime, batch_size: int = BATCH_SIZE, most: int) -> int:
    """How many passes the flagged subscriptions keep busy (one per batch, up to `most`): the
    every-minute task starts that many at once on the Celery workers."""
    waiting = SubscriptionActivity.objects.filter(flagged_at__lte=now)[: most * batch_size].count()
    return max(1, min(most, -(-waiting // batch_size)))
