"""Ingestion and current-usage benchmark (docs/benchmarks.md), run by `scripts/bench`.

Not a pytest module (pytest ignores tests/benchmarks). `scripts/bench` creates a dedicated
database, an organization and an API key, starts gunicorn the production way and runs:

    python tests/benchmarks/bench_ingestion_usage.py --url http://127.0.0.1:8765 --key KEY \
        --organization Bench

Steps (every request goes to 127.0.0.1; every loop is bounded):
1. seed through the API: 5 billable metrics (sum, count, unique count, max, weighted sum), a
   plan with one standard charge on each, a customer and its subscriptions;
2. batch ingestion over HTTP: 8 concurrent clients, 100 events a request, 200,000 events;
3. single-event latency: sequential `POST /events`;
4. bulk load through the event store's `write_batch` (in-process, same database) up to
   1,000,000 stored events, `--main-share` of them on the measured subscription's period;
5. `current_usage` latency of that subscription (5 charges), and the time of each charge's
   aggregation statement in-process (where the time goes).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
METRICS = [
    {"code": "bench_sum", "aggregation_type": "sum_agg", "field_name": "amount"},
    {"code": "bench_count", "aggregation_type": "count_agg"},
    {"code": "bench_unique", "aggregation_type": "unique_count_agg", "field_name": "user_id"},
    {"code": "bench_max", "aggregation_type": "max_agg", "field_name": "cpu"},
    {
        "code": "bench_gb",
        "aggregation_type": "weighted_sum_agg",
        "field_name": "gb",
        "weighted_interval": "seconds",
    },
]
MAIN_SUBSCRIPTION = "bench_main"
LOAD_SUBSCRIPTIONS = [f"bench_load_{i}" for i in range(8)]
MAX_ATTEMPTS = 3  # per request: a benchmark must not loop forever on a sick server


# --------------------------------------------------------------------------------------------
# HTTP: one keep-alive connection per thread, bodies serialized before timing starts


class Api:
    def __init__(self, url: str, key: str) -> None:
        parsed = urlparse(url)
        if parsed.hostname not in ("127.0.0.1", "localhost"):
            raise SystemExit("the benchmark only talks to 127.0.0.1")
        self.host, self.port = parsed.hostname, parsed.port or 80
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.local.connection = connection
        return connection

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        for attempt in range(MAX_ATTEMPTS):
            connection = self._connection()
            try:
                connection.request(method, path, body=body, headers=self.headers)
                response = connection.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, OSError):
                connection.close()
                self.local.connection = None
                if attempt == MAX_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, payload: object | None = None) -> dict:
        body = None if payload is None else json.dumps(payload).encode()
        status, content = self.request(method, path, body)
        if status >= 300:
            raise SystemExit(f"{method} {path} -> {status}: {content[:500]!r}")
        return json.loads(content)


# --------------------------------------------------------------------------------------------
# Events


def period_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def event_properties(code: str, rng: random.Random) -> dict:
    match code:
        case "bench_sum":
            return {"amount": rng.randint(1, 100)}
        case "bench_unique":
            return {"user_id": f"user_{rng.randint(1, 5000)}"}
        case "bench_max":
            return {"cpu": rng.randint(1, 64)}
        case "bench_gb":
            return {"gb": rng.choice((5, 10, -5, 20, -10))}
    return {}


def event_payloads(
    prefix: str, count: int, subscription: str, start: datetime, end: datetime, seed: int
) -> list[dict]:
    rng = random.Random(seed)
    span = max(int((end - start).total_seconds()), 1)
    codes = [m["code"] for m in METRICS]
    return [
        {
            "transaction_id": f"{prefix}_{i}",
            "external_subscription_id": subscription,
            "code": (code := codes[i % len(codes)]),
            "timestamp": int(start.timestamp()) + rng.randrange(span),
            "properties": event_properties(code, rng),
        }
        for i in range(count)
    ]


# --------------------------------------------------------------------------------------------
# Steps


def seed(api: Api, started_at: datetime) -> None:
    metric_ids = {}
    for metric in METRICS:
        body = api.json(
            "POST",
            "/api/v1/billable_metrics",
            {"billable_metric": {"name": metric["code"], **metric}},
        )
        metric_ids[metric["code"]] = body["billable_metric"]["lago_id"]
    prices = {"bench_sum": "0.01", "bench_count": "0.001", "bench_unique": "1",
              "bench_max": "2", "bench_gb": "0.5"}  # fmt: skip
    api.json(
        "POST",
        "/api/v1/plans",
        {
            "plan": {
                "name": "Bench",
                "code": "bench",
                "interval": "monthly",
                "amount_cents": 10000,
                "amount_currency": "EUR",
                "charges": [
                    {
                        "billable_metric_id": metric_ids[code],
                        "charge_model": "standard",
                        "properties": {"amount": price},
                    }
                    for code, price in prices.items()
                ],
            }
        },
    )
    api.json(
        "POST",
        "/api/v1/customers",
        {"customer": {"external_id": "bench_customer", "name": "Bench", "currency": "EUR"}},
    )
    for external_id in [MAIN_SUBSCRIPTION, *LOAD_SUBSCRIPTIONS]:
        api.json(
            "POST",
            "/api/v1/subscriptions",
            {
                "subscription": {
                    "external_customer_id": "bench_customer",
                    "plan_code": "bench",
                    "external_id": external_id,
                    "subscription_at": started_at.isoformat().replace("+00:00", "Z"),
                }
            },
        )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))
    return ordered[index]


def run_concurrently(jobs: list[Callable[[], None]], clients: int) -> float:
    """Runs the jobs on `clients` threads; returns the wall time."""
    queue = list(reversed(jobs))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not queue or errors:
                    return
                job = queue.pop()
            try:
                job()
            except BaseException as exc:  # report, stop the others
                with lock:
                    errors.append(exc)
                return

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def bench_batch(api: Api, now: datetime, total: int, clients: int, size: int) -> dict:
    per_client = total // clients
    bodies: list[bytes] = []
    for client in range(clients):
        payloads = event_payloads(
            f"http{client}", per_client, LOAD_SUBSCRIPTIONS[client], period_start(now), now, client
        )
        bodies += [
            json.dumps({"events": payloads[i : i + size]}).encode()
            for i in range(0, per_client, size)
        ]

    def post(body: bytes) -> Callable[[], None]:
        def job() -> None:
            status, content = api.request("POST", "/api/v1/events/batch", body)
            if status != 200:
                raise RuntimeError(f"batch -> {status}: {content[:300]!r}")

        return job

    wall = run_concurrently([post(body) for body in bodies], clients)
    sent = len(bodies) * size
    return {"events": sent, "requests": len(bodies), "seconds": wall, "events_per_s": sent / wall}


def bench_single(api: Api, now: datetime, count: int) -> dict:
    payloads = event_payloads("single", count, MAIN_SUBSCRIPTION, period_start(now), now, 99)
    bodies = [json.dumps({"event": p}).encode() for p in payloads]
    latencies = []
    for body in bodies:
        started = time.perf_counter()
        status, content = api.request("POST", "/api/v1/events", body)
        latencies.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"event -> {status}: {content[:300]!r}")
    return summary(latencies)


def summary(latencies: list[float]) -> dict:
    return {
        "count": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
    }


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
    import django

    django.setup()


def bulk_load(organization_name: str, now: datetime, target: int, main_events: int) -> dict:
    """Fill the store up to `target` events through `write_batch` (as ingestion would)."""
    from django.db import connection

    from billing.models import Organization
    from customers.models import Subscription
    from metering.store import EventInput, get_event_store

    organization = Organization.objects.get(name=organization_name)
    store = get_event_store()
    stored = store.list_events(organization.id).count()
    subscriptions = {
        s.external_id: s for s in Subscription.objects.filter(organization=organization)
    }
    start = period_start(now)
    span = int((now - start).total_seconds())
    rng = random.Random(7)
    codes = [m["code"] for m in METRICS]
    fields = {m["code"]: m.get("field_name") for m in METRICS}
    types = {m["code"]: m["aggregation_type"] for m in METRICS}
    numeric = {"bench_sum", "bench_max", "bench_gb"}
    plan = [(MAIN_SUBSCRIPTION, main_events)]
    rest = max(target - stored - main_events, 0)
    plan += [(LOAD_SUBSCRIPTIONS[i % 8], rest // 8) for i in range(8)]
    started = time.perf_counter()
    written = 0
    batch_size = 5000
    for external_id, count in plan:
        subscription = subscriptions[external_id]
        for offset in range(0, count, batch_size):
            batch = []
            for i in range(offset, min(offset + batch_size, count)):
                code = codes[i % len(codes)]
                properties = event_properties(code, rng)
                value = properties[fields[code]] if code in numeric else None
                batch.append(
                    EventInput(
                        transaction_id=f"bulk_{external_id}_{i}",
                        external_subscription_id=external_id,
                        code=code,
                        timestamp=start + timedelta(seconds=rng.randrange(span)),
                        properties=properties,
                        value=None if value is None else Decimal(value),
                        subscription_id=subscription.id,
                        customer_id=subscription.customer_id,
                        # as ingestion passes the metric's field and type
                        field_name=fields[code],
                        aggregation_type=types[code],
                    )
                )
            result = store.write_batch(organization.id, batch, now=now)
            if not result.written:
                raise RuntimeError(f"bulk batch refused: {result.duplicate_indexes[:5]}")
            written += len(batch)
    load_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_event")  # what autovacuum does after a bulk load
    return {
        "written": written,
        "seconds": load_seconds,
        "total_stored": store.list_events(organization.id).count(),
        "main_subscription_events": store.list_events(
            organization.id, external_subscription_id=MAIN_SUBSCRIPTION
        ).count(),
    }


STAT_TABLES = ("billing_event", "metering_event_rollup", "metering_event_property_state")
STATS_FLUSH_SECONDS = 11  # an idle PostgreSQL 15 backend reports its table counters within 10 s


def rows_read() -> dict[str, int]:
    """Rows read so far from the event tables (sequential + index fetches), all backends."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) "
            "FROM pg_stat_user_tables WHERE relname = ANY(%s)",
            [list(STAT_TABLES)],
        )
        return dict(cursor.fetchall())


def server_times(path: str) -> dict:
    """Server-side duration of the logged requests to `path` (the API request log)."""
    from billing.models import ApiRequestLog

    durations = [
        float(d)
        for d in ApiRequestLog.objects.filter(path=path).values_list("duration_ms", flat=True)
    ]
    return summary(durations) if durations else {}


USAGE_PATH = (
    f"/api/v1/customers/bench_customer/current_usage?external_subscription_id={MAIN_SUBSCRIPTION}"
)


def bench_usage(api: Api, count: int) -> dict:
    path = USAGE_PATH
    body = api.json("GET", path)["customer_usage"]  # warm-up, and the figures
    time.sleep(STATS_FLUSH_SECONDS)
    before = rows_read()
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        status, content = api.request("GET", path)
        latencies.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"current_usage -> {status}: {content[:300]!r}")
    time.sleep(STATS_FLUSH_SECONDS)
    after = rows_read()
    return {
        **summary(latencies),
        "rows_read_per_request": {
            table: round((after.get(table, 0) - before.get(table, 0)) / count)
            for table in STAT_TABLES
        },
        "amount_cents": body["amount_cents"],
        "charges": {c["billable_metric"]["code"]: c["units"] for c in body["charges_usage"]},
    }


def aggregation_breakdown(organization_name: str, now: datetime, rounds: int) -> dict:
    """Median in-process time of each charge's aggregation of the measured subscription."""
    from customers.models import Subscription
    from metering.usage import charge_usage, plan_charges, usage_window

    subscription = Subscription.objects.select_related("customer__billing_entity", "plan").get(
        organization__name=organization_name, external_id=MAIN_SUBSCRIPTION
    )
    window = usage_window(subscription=subscription, at=now)
    timings = {}
    for charge in plan_charges(subscription):
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            charge_usage(subscription=subscription, charge=charge, window=window)
            samples.append((time.perf_counter() - started) * 1000)
        timings[charge.billable_metric.aggregation_type] = statistics.median(samples)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--organization", required=True)
    parser.add_argument("--batch-events", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--single-events", type=int, default=2000)
    parser.add_argument("--total-events", type=int, default=1_000_000)
    parser.add_argument("--main-events", type=int, default=100_000)
    parser.add_argument("--usage-requests", type=int, default=100)
    parser.add_argument("--output", default="")
    args = parser.parse_args()

    api = Api(args.url, args.key)
    now = datetime.now(UTC)
    results: dict = {"cpus": os.cpu_count()}
    seed(api, started_at=period_start(now) - timedelta(days=40))
    print("seeded 5 metrics, a plan with 5 charges, 9 subscriptions", file=sys.stderr)
    results["batch"] = bench_batch(api, now, args.batch_events, args.clients, 100)
    print(f"batch: {results['batch']}", file=sys.stderr)
    results["single"] = bench_single(api, now, args.single_events)
    print(f"single: {results['single']}", file=sys.stderr)
    django_setup()
    results["bulk_load"] = bulk_load(args.organization, now, args.total_events, args.main_events)
    print(f"bulk load: {results['bulk_load']}", file=sys.stderr)
    results["current_usage"] = bench_usage(api, args.usage_requests)
    results["aggregation_ms"] = aggregation_breakdown(args.organization, now, 5)
    results["server_ms"] = {
        "events_batch": server_times("/api/v1/events/batch"),
        "current_usage": server_times(USAGE_PATH),
    }
    results["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]

    batch, single, usage = results["batch"], results["single"], results["current_usage"]
    print()
    print(f"machine: {results['cpus']} CPUs")
    print(
        f"batch ingestion: {batch['events']} events in {batch['seconds']:.1f} s over "
        f"{args.clients} clients -> {batch['events_per_s']:.0f} events/s (target >= 20000)"
    )
    print(
        f"single event: p50 {single['p50_ms']:.1f} ms, p99 {single['p99_ms']:.1f} ms "
        f"(target p99 <= 15 ms)"
    )
    print(
        f"current_usage ({results['bulk_load']['main_subscription_events']} events on the "
        f"subscription, {results['bulk_load']['total_stored']} stored): p50 "
        f"{usage['p50_ms']:.0f} ms, p99 {usage['p99_ms']:.0f} ms "
        "(target p50 <= 50 ms, p99 <= 150 ms)"
    )
    server = results["server_ms"]
    for name, figures in server.items():
        if figures:
            print(
                f"server time {name}: p50 {figures['p50_ms']:.1f} ms, p99 "
                f"{figures['p99_ms']:.1f} ms ({figures['count']} logged requests)"
            )
    print(f"rows read per current_usage: {usage['rows_read_per_request']}")
    print(f"load average at the end: {' '.join(results['loadavg'])}")
    print("aggregation per charge (in-process median): " + ", ".join(
        f"{kind} {ms:.0f} ms" for kind, ms in results["aggregation_ms"].items()
    ))  # fmt: skip
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
