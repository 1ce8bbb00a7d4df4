"""Where the time of one `current_usage` request goes, in-process (docs/benchmarks.md,
"Pre-aggregation"). Not a pytest module.

Runs against a database that `scripts/bench` built (it keeps `billing_bench` after the run):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_bench \\
        python tests/benchmarks/bench_usage_read.py --requests 30

1. the whole request through Django's test client (auth, request log, view, rendering), N
   times: wall time and CPU time of this process and of its PostgreSQL backend
   (`/proc/<pid>/stat`: both are on this machine), statements and SQL time per request;
2. each charge's aggregation statement under `EXPLAIN (ANALYZE, BUFFERS)`: rows read per table
   (rows returned by the scans plus rows they removed by filter), planning and execution time.

CPU times and rows read hold under load; wall times do not (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("API_RATE_LIMITS", "events=1000000,usage=1000000,default=1000000")
    import django

    django.setup()


def backend_cpu_ms(pid: int) -> float:
    """utime + stime of a process of this machine, in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / CLOCK_TICKS


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def kind_of(sql: str) -> str:
    text = " ".join(sql.replace('"', "").split())[:300]
    if "metering_event_rollup" in sql or "metering_event_property_state" in sql:
        return "aggregation"
    if "billing_event" in sql and "SELECT" in text[:40]:
        return "aggregation (raw)"
    for word in ("INSERT", "UPDATE", "DELETE", "SAVEPOINT", "RELEASE"):
        if text.startswith(word):
            return word.lower()
    table = text.split(" FROM ", 1)[1].split()[0].strip('"') if " FROM " in text else "?"
    return f"select {table}"


def requests_profile(organization, subscription, count: int) -> dict:
    from django.db import connection
    from django.test import Client

    from billing.services import api_key_create

    _, raw = api_key_create(organization=organization, name="bench_usage_read")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    path = (
        f"/api/v1/customers/{subscription.customer.external_id}/current_usage"
        f"?external_subscription_id={subscription.external_id}"
    )
    response = client.get(path)  # warm-up: connection, caches
    assert response.status_code == 200, response.content[:300]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    walls, cpus, backend_cpus, statements, sql_ms = [], [], [], [], []
    by_kind: dict[str, list[float]] = defaultdict(list)
    for _ in range(count):
        timings: list[tuple[str, float]] = []

        def record(execute, sql, params, many, context, timings=timings):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timings.append((sql, (time.perf_counter() - started) * 1000))

        cpu, pg_cpu, started = time.process_time(), backend_cpu_ms(backend), time.perf_counter()
        with connection.execute_wrapper(record):
            response = client.get(path)
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        backend_cpus.append(backend_cpu_ms(backend) - pg_cpu)
        assert response.status_code == 200
        statements.append(len(timings))
        sql_ms.append(sum(ms for _, ms in timings))
        kinds: Counter[str] = Counter()
        for sql, ms in timings:
            kinds[kind_of(sql)] += ms
        for kind, ms in kinds.items():
            by_kind[kind].append(ms)
    per_kind_count = Counter(kind_of(sql) for sql, _ in timings)
    return {
        "body": response.json()["customer_usage"],
        "wall_p50": statistics.median(walls),
        "wall_p99": percentile(walls, 0.99),
        "cpu_p50": statistics.median(cpus),
        "backend_cpu_mean": statistics.mean(backend_cpus),
        "statements": statistics.median(statements),
        "sql_p50": statistics.median(sql_ms),
        "by_kind": {
            kind: (per_kind_count[kind], statistics.median(values))
            for kind, values in sorted(by_kind.items(), key=lambda item: -sum(item[1]))
        },
    }


def scan_rows(plan: dict, rows: Counter) -> None:
    """Rows each base-table scan of a plan read (returned + removed by its filter)."""
    relation = plan.get("Relation Name")
    if relation:
        loops = plan.get("Actual Loops", 1)
        removed = plan.get("Rows Removed by Filter", 0)
        removed += plan.get("Rows Removed by Index Recheck", 0)
        rows[relation] += (plan.get("Actual Rows", 0) + removed) * loops
        if plan.get("Heap Fetches"):
            rows[f"{relation} (heap fetches)"] += plan["Heap Fetches"]
    for child in plan.get("Plans", []):
        scan_rows(child, rows)


def charges_profile(subscription, rounds: int) -> list[dict]:
    """EXPLAIN ANALYZE of each charge's aggregation statement, as the engine builds it."""
    import json

    from django.db import connection
    from django.utils import timezone

    from customers.services.subscription_reads import initial_started_at
    from metering.store import get_event_store
    from metering.store.aggregation import aggregation_statement
    from metering.store.rollups import pre_aggregated, rollup_statement
    from metering.usage import plan_charges, usage_window
    from metering.usage.buckets import charge_buckets
    from metering.usage.engine import _query

    window = usage_window(subscription=subscription, at=timezone.now())
    chain = initial_started_at(subscription)
    store = get_event_store()
    found = []
    for charge in plan_charges(subscription):
        (bucket,) = charge_buckets(charge)
        query = _query(
            subscription=subscription,
            charge=charge,
            bucket=bucket,
            window=window,
            chain_started_at=chain,
        )
        rollups = getattr(store, "reads_rollups", False) and pre_aggregated(query)
        if rollups:
            sql, params = rollup_statement(query)
        else:
            statement = aggregation_statement(query)
            sql, params = statement.sql, statement.params
        samples = []
        for _ in range(rounds):
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
                (plan,) = cursor.fetchone()[0]
            samples.append(plan)
        # in-process: the store's whole call (statement, conversion)
        walls = []
        for _ in range(rounds):
            started = time.perf_counter()
            store.aggregate(query)
            walls.append((time.perf_counter() - started) * 1000)
        rows: Counter = Counter()
        scan_rows(samples[-1]["Plan"], rows)
        found.append(
            {
                "type": charge.billable_metric.aggregation_type,
                "read": "rollups" if rollups else "raw",
                "rows": dict(rows),
                "planning_ms": statistics.median(p["Planning Time"] for p in samples),
                "execution_ms": statistics.median(p["Execution Time"] for p in samples),
                "aggregate_ms": statistics.median(walls),
                "buffers": samples[-1]["Plan"].get("Shared Hit Blocks", 0)
                + samples[-1]["Plan"].get("Shared Read Blocks", 0),
            }
        )
        if os.environ.get("BENCH_SHOW_PLANS"):
            print(json.dumps(samples[-1], indent=1), file=sys.stderr)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organization", default="Bench")
    parser.add_argument("--subscription", default="bench_main")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5, help="EXPLAIN runs per charge")
    args = parser.parse_args()
    django_setup()

    from customers.models import Subscription

    subscription = Subscription.objects.select_related(
        "customer__billing_entity", "plan", "organization"
    ).get(organization__name=args.organization, external_id=args.subscription)
    charges = charges_profile(subscription, args.rounds)
    profile = requests_profile(subscription.organization, subscription, args.requests)

    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"load average: {load}")
    print("per charge (EXPLAIN ANALYZE medians; rows read = returned + removed by filter):")
    for charge in charges:
        rows = ", ".join(f"{table} {count}" for table, count in charge["rows"].items())
        print(
            f"  {charge['type']:<18} {charge['read']:<7} plan {charge['planning_ms']:6.2f} ms"
            f"  exec {charge['execution_ms']:7.2f} ms  store.aggregate "
            f"{charge['aggregate_ms']:7.2f} ms  buffers {charge['buffers']}  rows: {rows}"
        )
    print(
        f"request (test client, {args.requests} runs): wall p50 {profile['wall_p50']:.1f} ms, "
        f"p99 {profile['wall_p99']:.1f} ms; CPU p50 {profile['cpu_p50']:.1f} ms (Django process)"
        f" + {profile['backend_cpu_mean']:.1f} ms (PostgreSQL backend, mean)"
    )
    print(
        f"statements per request: {profile['statements']:.0f}, SQL time p50 "
        f"{profile['sql_p50']:.1f} ms"
    )
    for kind, (count, ms) in profile["by_kind"].items():
        print(f"  {kind:<40} x{count:<3} {ms:7.2f} ms")
    body = profile["body"]
    print(
        "units: "
        + ", ".join(
            f"{c['billable_metric']['aggregation_type']} {c['units']}"
            for c in body["charges_usage"]
        )
        + f"; amount_cents {body['amount_cents']}"
    )


if __name__ == "__main__":
    main()
