"""The same usage read on PostgreSQL and on ClickHouse (embedded, chdb), N stored events.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_bench_clickhouse \\
        python tests/benchmarks/bench_clickhouse_store.py --events 10000000 --subscriptions 100

Loads N events (S subscriptions x 2 metrics, spread over July-September 2023, `properties.v`
from 0 to 99, no stored value: aggregation reads the property) into PostgreSQL's `billing_event`
(one INSERT ... SELECT generate_series, then ANALYZE; then its pre-aggregated rows rebuilt
from those events with `rebuild_rollups`, as ingestion would have kept them) and into the
ClickHouse store's table (INSERT ... SELECT FROM numbers), then times `aggregate()` of one
subscription's metric over August (count, sum, max, latest, unique count, weighted sum, the
recurring weighted sum carried from July, recurring prorated sum and unique count; median of
--repeat runs) on PostgreSQL reading its pre-aggregated rows (the default), PostgreSQL scanning
the events (`EVENT_STORE_ROLLUPS` off) and chdb, and checks that all three give the same units.
Prints the load average before and after the reads. Needs
the clickhouse extra; the database is the benchmark's own (its name must start with
billing_bench; its events are replaced).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

START = datetime(2023, 7, 1, tzinfo=UTC)
SPAN_SECONDS = 92 * 86400
AUGUST = (datetime(2023, 8, 1, tzinfo=UTC), datetime(2023, 8, 31, 23, 59, 59, tzinfo=UTC))
# (label, aggregation type, field, extra query fields)
PRORATED = {"recurring": True, "prorated": True, "period_duration_days": 31}
READS = [
    ("sum", "sum_agg", "v", {}),
    ("count", "count_agg", None, {}),
    ("max", "max_agg", "v", {}),
    ("latest", "latest_agg", "v", {}),
    ("unique count", "unique_count_agg", "v", {}),
    ("weighted sum", "weighted_sum_agg", "v", {"period_duration_days": 31}),
    (
        "weighted sum, recurring",
        "weighted_sum_agg",
        "v",
        {"recurring": True, "period_duration_days": 31},
    ),
    ("sum, recurring prorated", "sum_agg", "v", PRORATED),
    ("unique count, recurring prorated", "unique_count_agg", "v", PRORATED),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    url = os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing_bench_clickhouse"
    )
    if not url.rsplit("/", 1)[1].startswith("billing_bench"):
        sys.exit(
            "the benchmark replaces its database's events: its name must start with billing_bench"
        )
    sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
    from _db import ensure_database

    ensure_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from billing.models import Organization
    from metering.store import AggregationQuery, PostgresEventStore
    from metering.store.clickhouse import TABLE, ChdbConnection, ClickHouseEventStore
    from metering.store.rollups import rebuild_rollups

    call_command("migrate", verbosity=0)
    organization, _ = Organization.objects.get_or_create(name="Bench ClickHouse store")
    n, subs = args.events, args.subscriptions

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE billing_event")
        cursor.execute(
            """
            INSERT INTO billing_event (organization_id, transaction_id, external_subscription_id,
                code, timestamp, properties, precise_total_amount_cents, created_at)
            SELECT %s, 'tx_' || i, 'sub_' || (i %% %s),
                   CASE WHEN (i / %s) %% 2 = 0 THEN 'metric' ELSE 'other' END,
                   %s::timestamptz + make_interval(secs => i::float8 * %s / %s),
                   jsonb_build_object('v', i %% 100), 0, now()
            FROM generate_series(0, %s - 1) AS i
            """,
            [organization.id, subs, subs, START, SPAN_SECONDS, n, n],
        )
        cursor.execute("ANALYZE billing_event")
    pg_load = time.perf_counter() - started
    started = time.perf_counter()
    # every event keeps its property state (no aggregation types given): the reads below use
    # the same field with every aggregation, unique counts included
    rollup_rows = rebuild_rollups(organization.id, {"metric": "v", "other": "v"})
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE metering_event_rollup")
        cursor.execute("ANALYZE metering_event_property_state")
    rollup_load = time.perf_counter() - started

    tmp = tempfile.TemporaryDirectory(prefix="bench-chdb-")
    clickhouse = ClickHouseEventStore(ChdbConnection(tmp.name))
    started = time.perf_counter()
    clickhouse.db.command(
        f"""
        INSERT INTO {TABLE} (id, organization_id, transaction_id, external_subscription_id,
            code, timestamp, properties, precise_total_amount_cents, value, created_at)
        SELECT number + 1, toUUID('{organization.id}'), concat('tx_', toString(number)),
               concat('sub_', toString(number % {subs})),
               if(intDiv(number, {subs}) % 2 = 0, 'metric', 'other'),
               toDateTime64({int(START.timestamp())} + number * {SPAN_SECONDS} / {n}, 6, 'UTC'),
               concat('{{"v": ', toString(number % 100), '}}'), 0, NULL, now64(6)
        FROM numbers({n})
        """
    )
    ch_load = time.perf_counter() - started

    print(f"load average before reads: {Path('/proc/loadavg').read_text().strip()}")
    print(f"events: {n:,} ({subs} subscriptions x 2 metrics, July-September 2023)")
    print(
        f"load: PostgreSQL {pg_load:.1f} s (INSERT ... SELECT + ANALYZE), its pre-aggregated "
        f"rows {rollup_load:.1f} s ({rollup_rows:,} rows), chdb {ch_load:.1f} s"
    )
    stores = {
        "rollups": PostgresEventStore(rollups=True),
        "scan": PostgresEventStore(rollups=False),
        "clickhouse": clickhouse,
    }
    print(
        f"{'read (one subscription, August)':<34} {'PG rollups':>12} {'PG scan':>12} "
        f"{'chdb':>12}  events"
    )
    for label, aggregation_type, field_name, fields in READS:
        query = AggregationQuery(
            organization_id=organization.id,
            external_subscription_id="sub_7",
            code="metric",
            aggregation_type=aggregation_type,
            field_name=field_name,
            from_datetime=AUGUST[0],
            to_datetime=AUGUST[1],
            subscription_started_at=START,
            **fields,
        )
        timings = {}
        results = {}
        for name, store in stores.items():
            runs = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                results[name] = store.aggregate(query)
                runs.append(time.perf_counter() - started)
            timings[name] = statistics.median(runs)
        (first,) = results["clickhouse"]
        for name in ("rollups", "scan"):
            (result,) = results[name]
            assert result.units == first.units, (name, result, first)
            assert result.events_count == first.events_count, (name, result, first)
            assert result.total_aggregated_units == first.total_aggregated_units
        print(
            f"{label:<34} "
            + " ".join(f"{timings[name] * 1000:>9.1f} ms" for name in stores)
            + f"  {first.events_count:,}"
        )
    print(f"load average after reads: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
