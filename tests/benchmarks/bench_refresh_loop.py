"""The usage refresh loop: from ingestion to the effect (docs/benchmarks.md).

Not a pytest module (pytest ignores tests/benchmarks). Run from the project folder:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_bench_refresh \
        .venv/bin/python tests/benchmarks/bench_refresh_loop.py --subscriptions 10000

The database is created and migrated when missing, then emptied of the previous run's
organization. Setup: one organization, a calendar monthly plan with one standard charge (a
count metric, 10.00 a call), `--subscriptions` active subscriptions (one customer each), each
watched by a `current_usage_amount` alert at 10.00, and `--wallets` of the customers with a
funded wallet. Then:

1. ingestion: one event per subscription through `event_create_batch` (what `POST
   /events/batch` calls), 100 events a batch, timed (flags included); the wallets' queued
   refresh (eager without a broker) is replaced by its flag alone, so that the loop does the
   wallet work as it does when the queued task is late or lost;
2. `--workers` refresh passes at once (processes, each its own connection, as several Celery
   workers picking up the every-minute task), started right after the ingestion;
3. from the rows' own timestamps: for each subscription, the time from the end of its event's
   batch to its `alert.triggered` row, and for each wallet to its `last_balance_sync_at`.

The loop's worst case from an event to its effect is the wait for the next every-minute beat
(up to 60 s) plus the time the pass takes to reach the subscription; the figures printed are the
second part, measured.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing_bench_refresh")
os.environ.pop("CELERY_BROKER_URL", None)

from tests.benchmarks._db import ensure_database, reset  # noqa: E402 (after sys.path)

ORGANIZATION = "Refresh loop benchmark"
START = datetime(2026, 3, 1, tzinfo=UTC)


def setup(args: argparse.Namespace) -> object:
    from decimal import Decimal

    from django.db import connection, transaction

    from billing.actors import SYSTEM
    from billing.services import organization_create
    from customers.models import Customer, Subscription
    from metering.models import UsageAlert
    from plans.models import BillableMetric, Charge, Plan
    from wallets.models import Wallet
    from wallets.services import ledger

    with connection.cursor() as cursor:  # the benchmark's own database: the loop's tables
        cursor.execute(
            "TRUNCATE metering_subscriptionactivity, metering_triggeredusagealert, "
            "metering_usagealert, metering_lifetimeusage, wallets_wallet CASCADE"
        )
    reset(ORGANIZATION)
    organization = organization_create(name=ORGANIZATION, default_currency="EUR")
    entity = organization.default_billing_entity()
    metric = BillableMetric.objects.create(
        organization=organization, name="Calls", code="calls", aggregation_type="count_agg"
    )
    plan = Plan.objects.create(
        organization=organization, name="Usage", code="usage", interval="monthly",
        amount_cents=0, amount_currency="EUR",
    )  # fmt: skip
    Charge.objects.create(
        organization=organization, plan=plan, billable_metric=metric, code="calls",
        charge_model="standard", properties={"amount": "10"},
    )  # fmt: skip
    n = args.subscriptions
    customers = Customer.objects.bulk_create(
        Customer(
            organization=organization, billing_entity=entity, external_id=f"cust_{i:05d}",
            sequential_id=i + 1, name=f"Customer {i}", currency="EUR", timezone="UTC",
        )
        for i in range(n)
    )  # fmt: skip
    Subscription.objects.bulk_create(
        Subscription(
            organization=organization, customer=customer, plan=plan, external_id=f"sub_{i:05d}",
            status="active", billing_time="calendar", subscription_at=START, started_at=START,
        )
        for i, customer in enumerate(customers)
    )  # fmt: skip
    UsageAlert.objects.bulk_create(
        UsageAlert(
            organization=organization, external_subscription_id=f"sub_{i:05d}",
            alert_type="current_usage_amount", code="usage",
            thresholds=[{"code": None, "value": "1000.0", "recurring": False}],
        )
        for i in range(n)
    )  # fmt: skip
    for customer in customers[: args.wallets]:
        wallet = Wallet.objects.create(
            organization=organization, customer=customer, name="Prepaid", code="prepaid",
            currency="EUR", rate_amount=Decimal(1),
        )  # fmt: skip
        with transaction.atomic():
            ledger.inbound_create(
                wallet=wallet, credit_amount=Decimal(100), transaction_status="granted",
                settled=True, actor=SYSTEM, now=START,
            )  # fmt: skip
    return organization


def ingest(organization: object, n: int) -> dict[str, float]:
    """One event per subscription through the ingestion service; the end of each subscription's
    batch (epoch seconds) by external id, and the figures."""
    from django.utils import timezone

    from billing.actors import SYSTEM
    from metering import hooks
    from metering.services.ingestion import event_create_batch
    from wallets.services.ongoing import flag_wallets_for_events
    from wallets.tasks import queue_refresh_for_events

    hooks.on_events_ingested.disconnect(queue_refresh_for_events)
    hooks.on_events_ingested.connect(flag_wallets_for_events)
    from customers.models import Subscription
    from metering.services.activity import flag_subscriptions

    ended: dict[str, float] = {}
    batches, flags = [], []
    started = time.perf_counter()
    for offset in range(0, n, 100):
        ids = [f"sub_{i:05d}" for i in range(offset, min(offset + 100, n))]
        payloads = [
            {"transaction_id": f"tx_{sub}", "external_subscription_id": sub, "code": "calls"}
            for sub in ids
        ]
        begun = time.perf_counter()
        event_create_batch(
            organization=organization, payloads=payloads, actor=SYSTEM, now=timezone.now()
        )
        batches.append(time.perf_counter() - begun)
        stamp = time.time()
        ended.update(dict.fromkeys(ids, stamp))
    seconds = time.perf_counter() - started
    print(f"ingestion: {n} events in {seconds:.1f} s -> {n / seconds:.0f} events/s, "
          f"batch of 100 p50 {statistics.median(batches) * 1000:.1f} ms", flush=True)  # fmt: skip
    # the flag statement alone, on rows already flagged (what every later batch of a busy
    # subscription pays): the share of ingestion the loop costs
    subscription_ids = list(
        Subscription.objects.filter(organization=organization).values_list("pk", flat=True)[:100]
    )
    for _ in range(200):
        begun = time.perf_counter()
        flag_subscriptions(
            organization_id=organization.pk, subscription_ids=subscription_ids, now=timezone.now()
        )
        flags.append(time.perf_counter() - begun)
    flag_ms, batch_ms = statistics.median(flags) * 1000, statistics.median(batches) * 1000
    print(f"flag statement (100 subscriptions, already flagged): p50 {flag_ms:.2f} ms = "
          f"{flag_ms / batch_ms:.1%} of a batch", flush=True)  # fmt: skip
    return ended


def run_pass(index: int) -> tuple[int, float]:
    import django

    django.setup()
    from django.utils import timezone

    from billing.actors import SYSTEM
    from metering.services.refresh import refresh_usage

    started = time.perf_counter()
    report = refresh_usage(actor=SYSTEM, now=timezone.now())
    return report.subscriptions, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--wallets", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.db import connection

    from metering.models import TriggeredUsageAlert
    from wallets.models import Wallet

    started = time.perf_counter()
    organization = setup(args)
    print(f"setup: {args.subscriptions} subscriptions, {args.wallets} wallets in "
          f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    ended = ingest(organization, args.subscriptions)
    connection.close()

    began = time.perf_counter()
    context = multiprocessing.get_context("fork")
    with context.Pool(args.workers) as pool:
        results = pool.map(run_pass, range(args.workers))
    wall = time.perf_counter() - began
    refreshed = sum(count for count, _ in results)
    print(f"passes: {args.workers} workers refreshed {refreshed} subscriptions in {wall:.1f} s "
          f"-> {refreshed / wall:.0f} subscriptions/s "
          f"(per worker: {', '.join(f'{c} in {s:.1f} s' for c, s in results)})")  # fmt: skip

    alert_lags = [
        row.created_at.timestamp() - ended[sub]
        for row, sub in (
            (row, row.alert.external_subscription_id)
            for row in TriggeredUsageAlert.objects.select_related("alert")
        )
    ]
    # `last_balance_sync_at` is the pass's instant; `updated_at` is when the row was written
    wallet_lags = [
        wallet.updated_at.timestamp() - ended[f"sub_{wallet.customer.external_id[5:]}"]
        for wallet in Wallet.objects.filter(organization=organization).select_related("customer")
        if wallet.last_balance_sync_at is not None
    ]
    ingestion_end = max(ended.values())
    print(f"alerts recorded: {len(alert_lags)} of {args.subscriptions}")
    for name, lags in (("alert.triggered", alert_lags), ("ongoing balance", wallet_lags)):
        if lags:
            print(
                f"{name}: event batch to effect p50 {statistics.median(lags):.1f} s, "
                f"p99 {percentile(lags, 0.99):.1f} s, max {max(lags):.1f} s "
                f"(the ingestion itself lasted {ingestion_end - min(ended.values()):.1f} s)"
            )


if __name__ == "__main__":
    main()
