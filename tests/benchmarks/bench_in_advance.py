"""Pay-in-advance fees per event: cached aggregations vs the full replay (docs/benchmarks.md).

Not a pytest module (pytest ignores tests/benchmarks). Run from the project folder:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_bench_in_advance \
        .venv/bin/python tests/benchmarks/bench_in_advance.py --events 5000

The database is created and migrated when missing, then emptied of the previous run's
organization. One organization, a calendar monthly plan, one pay-in-advance charge on one metric
(`--aggregation` sum, count or unique_count; `--charge-model` standard or graduated),
non-invoiceable unless `--invoiceable` (then every event also gets its own finalized invoice:
numbering, taxes, outbox), one customer and two subscriptions that receive the same N events,
spread over March 2024 and stored first with `write_batch` (what ingestion does). Each event is
then billed through `invoicing.services.in_advance.in_advance_fees_create` (what the Celery task
calls, one transaction per event), in timestamp order, on one subscription with the cached
aggregations and on the other with `IN_ADVANCE_CACHED_AGGREGATIONS = False` (the full replay of
the period). `--skip-full` measures the cached path only. Prints events/s and per-event p50 /
p99 for each path, the p50 of the first and last 10 % of the events (an empty and a full
period), and checks both paths billed the same.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from billing.actors import SYSTEM

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing_bench_in_advance")

from tests.benchmarks._db import ensure_database, reset  # noqa: E402 (after sys.path)

ORGANIZATION = "In-advance benchmark"
START = datetime(2024, 1, 1, tzinfo=UTC)
PERIOD = datetime(2024, 3, 1, tzinfo=UTC)  # the events' period (31 days)
PROCESSED = datetime(2024, 3, 31, 23, 0, tzinfo=UTC)
AGGREGATIONS = {"sum": "sum_agg", "count": "count_agg", "unique_count": "unique_count_agg"}
MODELS = {
    "standard": {"amount": "0.05"},
    "graduated": {
        "graduated_ranges": [
            {"from_value": 0, "to_value": 1000, "per_unit_amount": "0.05", "flat_amount": "1"},
            {"from_value": 1001, "to_value": None, "per_unit_amount": "0.02", "flat_amount": "0"},
        ]
    },
}


def setup(args: argparse.Namespace) -> tuple[object, list[str]]:
    """The catalog, the two subscriptions and their events; (organization, transaction ids in
    timestamp order)."""
    from billing.services import organization_create
    from customers.models import Customer, Subscription
    from metering.store import EventInput, get_event_store
    from plans.models import BillableMetric, Charge, Plan

    organization = organization_create(
        name=ORGANIZATION, default_currency="EUR", timezone="UTC", document_number_prefix="ADV"
    )
    plan = Plan.objects.create(
        organization=organization,
        name="Usage",
        code="usage",
        interval="monthly",
        amount_cents=0,
        amount_currency="EUR",
    )
    kind = AGGREGATIONS[args.aggregation]
    field_name = {"sum": "amount", "unique_count": "user_id"}.get(args.aggregation)
    metric = BillableMetric.objects.create(
        organization=organization,
        name="Usage",
        code="usage",
        aggregation_type=kind,
        field_name=field_name,
    )
    Charge.objects.create(
        organization=organization,
        plan=plan,
        billable_metric=metric,
        code="usage",
        charge_model=args.charge_model,
        properties=MODELS[args.charge_model],
        pay_in_advance=True,
        invoiceable=args.invoiceable,
    )
    customer = Customer.objects.create(
        organization=organization,
        billing_entity=organization.default_billing_entity(),
        external_id="bench_customer",
        sequential_id=1,
        name="Customer",
        currency="EUR",
        timezone="UTC",
    )
    for external_id in ("sub_cached", "sub_full"):
        Subscription.objects.create(
            organization=organization,
            customer=customer,
            plan=plan,
            external_id=external_id,
            status=Subscription.Status.ACTIVE,
            subscription_at=START,
            started_at=START,
        )
    rng = random.Random(42)
    seconds = sorted(rng.randrange(31 * 86400) for _ in range(args.events))
    events = []
    for index, offset in enumerate(seconds):
        properties: dict[str, object] = {}
        value = None
        if args.aggregation == "sum":
            value = Decimal(rng.randint(-5, 20))
            properties = {"amount": str(value)}
        elif args.aggregation == "unique_count":
            properties = {"user_id": f"u{rng.randint(1, 500)}"}
            if rng.random() < 0.2:
                properties["operation_type"] = "remove"
        events.append((f"tx_{index:06d}", PERIOD + timedelta(seconds=offset), properties, value))
    store = get_event_store()
    for external_id in ("sub_cached", "sub_full"):
        batch = [
            EventInput(
                # a fee is unique per charge and transaction id (not per subscription)
                transaction_id=f"{external_id}_{tx}",
                external_subscription_id=external_id,
                code="usage",
                timestamp=timestamp,
                properties=properties,
                value=value,
            )
            for tx, timestamp, properties, value in events
        ]
        for first in range(0, len(batch), 5000):
            store.write_batch(organization.id, batch[first : first + 5000], now=PROCESSED)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # planner statistics, as autovacuum keeps them in production
    return organization, [tx for tx, *_ in events]


def bill(organization: object, external_id: str, ids: list[str], cached: bool) -> list[float]:
    """Bills every event in order; the seconds each took."""
    from django.conf import settings

    from invoicing.services.in_advance import in_advance_fees_create

    settings.IN_ADVANCE_CACHED_AGGREGATIONS = cached
    timings = []
    for tx in ids:
        start = time.perf_counter()
        fees = in_advance_fees_create(
            organization_id=organization.id,
            external_subscription_id=external_id,
            transaction_id=f"{external_id}_{tx}",
            actor=SYSTEM,
            now=PROCESSED,
        )
        timings.append(time.perf_counter() - start)
        assert len(fees) == 1, (tx, fees)
    return timings


def summary(name: str, timings: list[float]) -> str:
    ordered = sorted(timings)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    tenth = max(len(timings) // 10, 1)
    first, last = statistics.median(timings[:tenth]), statistics.median(timings[-tenth:])
    return (
        f"{name:>7}: {len(timings) / sum(timings):8,.0f} events/s  "
        f"p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  p50 of the first / last 10 %: "
        f"{first * 1000:.2f} / {last * 1000:.2f} ms  ({sum(timings):.1f} s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--aggregation", choices=sorted(AGGREGATIONS), default="sum")
    parser.add_argument("--charge-model", choices=sorted(MODELS), default="standard")
    parser.add_argument("--invoiceable", action="store_true")
    parser.add_argument("--skip-full", action="store_true", help="measure the cached path only")
    args = parser.parse_args()
    if os.environ["DATABASE_URL"].startswith("postgres"):
        ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db.models import Sum

    from invoicing.models import Fee

    settings.INVOICE_PDF_ON_FINALIZE = False
    settings.DEBUG = False  # no query log kept in memory, as in production
    call_command("migrate", verbosity=0)
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    reset(ORGANIZATION)
    organization, ids = setup(args)
    print(
        f"{args.events} events of one subscription ({args.aggregation}, {args.charge_model}, "
        f"{'invoiceable' if args.invoiceable else 'not invoiceable'})"
    )
    results = {"cached": bill(organization, "sub_cached", ids, cached=True)}
    if not args.skip_full:
        results["full"] = bill(organization, "sub_full", ids, cached=False)
    for name, timings in results.items():
        print(summary(name, timings))
    totals = {
        name: Fee.objects.filter(subscription__external_id=f"sub_{name}").aggregate(
            total=Sum("amount_cents")
        )["total"]
        for name in results
    }
    print(f"fees billed (cents): {totals}")
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0 if len(set(totals.values())) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
