"""What pre-aggregation costs a batch write (docs/benchmarks.md, "Pre-aggregation").

Not a pytest module. Writes batches of 100 events (the 5 metrics of bench_ingestion_usage.py,
timestamps over the current month) alternately through `PostgresEventStore.write_batch` (events
plus the two pre-aggregation upserts, one statement) and through the store's INSERT as it was
before pre-aggregation (events only), in-process on an existing migrated database, and prints
the median and p99 time per batch of each. Alternating the two makes the comparison robust to
the load of a shared machine.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_bench \\
        python tests/benchmarks/bench_rollup_writes.py --organization Bench --rounds 300
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

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))

# the events-only INSERT of the PostgreSQL store before pre-aggregation
BASELINE_SQL = """
INSERT INTO billing_event (
    organization_id, transaction_id, external_subscription_id, code, timestamp, properties,
    precise_total_amount_cents, value, subscription_id, customer_id, created_at
)
SELECT %(organization_id)s, t.transaction_id, t.external_subscription_id, t.code, t.ts,
       t.properties::jsonb, t.amount, t.value, t.subscription_id, t.customer_id, %(created_at)s
FROM unnest(
    %(transaction_ids)s::text[], %(external_subscription_ids)s::text[], %(codes)s::text[],
    %(timestamps)s::timestamptz[], %(properties)s::text[], %(amounts)s::numeric[],
    %(event_values)s::numeric[], %(subscription_ids)s::uuid[], %(customer_ids)s::uuid[]
) WITH ORDINALITY AS t(
    transaction_id, external_subscription_id, code, ts, properties, amount, value,
    subscription_id, customer_id, position
)
ORDER BY t.position
ON CONFLICT ON CONSTRAINT billing_event_transaction_unique DO NOTHING
RETURNING id, external_subscription_id, transaction_id
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organization", required=True)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--size", type=int, default=100)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
    import django

    django.setup()
    from bench_ingestion_usage import METRICS, event_properties, period_start
    from django.db import connection, transaction

    from billing.models import Organization
    from metering.store import EventInput, PostgresEventStore
    from metering.store.inputs import _json

    organization = Organization.objects.get(name=args.organization)
    store = PostgresEventStore()
    now = datetime.now(UTC)
    start = period_start(now)
    span = max(int((now - start).total_seconds()), 1)
    rng = random.Random(11)
    codes = [m["code"] for m in METRICS]
    fields = {m["code"]: m.get("field_name") for m in METRICS}
    numeric = {"bench_sum", "bench_max", "bench_gb"}
    run = int(time.time())

    def batch(kind: str, round_: int) -> list[EventInput]:
        events = []
        for i in range(args.size):
            code = codes[i % len(codes)]
            properties = event_properties(code, rng)
            value = properties[fields[code]] if code in numeric else None
            events.append(
                EventInput(
                    transaction_id=f"w{run}_{kind}_{round_}_{i}",
                    external_subscription_id=f"bench_writes_{kind}",
                    code=code,
                    timestamp=start + timedelta(seconds=rng.randrange(span)),
                    properties=properties,
                    value=None if value is None else Decimal(value),
                    field_name=fields[code],
                )
            )
        return sorted(events, key=lambda e: e.transaction_id)

    def baseline(events: list[EventInput]) -> None:
        params = {
            "organization_id": organization.id,
            "created_at": now,
            "transaction_ids": [e.transaction_id for e in events],
            "external_subscription_ids": [e.external_subscription_id for e in events],
            "codes": [e.code for e in events],
            "timestamps": [e.timestamp for e in events],
            "properties": [_json(e.properties) for e in events],
            "amounts": [e.precise_total_amount_cents for e in events],
            "event_values": [e.value for e in events],
            "subscription_ids": [None for _ in events],
            "customer_ids": [None for _ in events],
        }
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(BASELINE_SQL, params)
            cursor.fetchall()

    timings: dict[str, list[float]] = {"events only (before)": [], "events + rollups": []}
    for round_ in range(args.rounds):
        for name in timings if round_ % 2 == 0 else reversed(list(timings)):
            events = batch("base" if name.startswith("events only") else "rollup", round_)
            started = time.perf_counter()
            if name.startswith("events only"):
                baseline(events)
            else:
                assert store.write_batch(organization.id, events, now=now).written
            timings[name].append((time.perf_counter() - started) * 1000)
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")
    for name, samples in timings.items():
        p99 = sorted(samples)[int(0.99 * len(samples)) - 1]
        print(
            f"{name}: {len(samples)} batches of {args.size}, median "
            f"{statistics.median(samples):.2f} ms, p99 {p99:.2f} ms"
        )


if __name__ == "__main__":
    main()
