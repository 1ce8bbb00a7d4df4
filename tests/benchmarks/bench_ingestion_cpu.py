"""CPU cost of one `POST /events/batch` request (docs/benchmarks.md, "Ingestion and current
usage"): a figure that holds on a loaded machine, unlike events/s.

Not a pytest module. On its own database (recreated: the name must start with `billing_bench`)
it migrates, creates an organization and an API key, seeds the catalog of
`bench_ingestion_usage.py` through the API (5 metrics, a plan with a charge on each, 9
subscriptions), then sends batches of 100 events (timestamps spread over the current month, as
the HTTP benchmark does) in one of two ways:

- `--mode inprocess` (default): through Django's test client in this process (middleware, DRF,
  ingestion, store, request log, after-commit hooks: everything but gunicorn's HTTP parsing);
  prints the CPU time per request of this process and of its PostgreSQL backend, read from
  `/proc/<pid>/schedstat` (nanoseconds on a CPU: waiting for a core does not count).
  `--profile` adds a cProfile of the requests (top functions by cumulative and own time);
  `--queries` the statements of one request with their wall time.
- `--mode http --url URL --key KEY`: over HTTP, one keep-alive connection, to a server started
  separately; the CPU per request of the server processes (`--server-pids`), of the PostgreSQL
  backends connected to the database and of this client. Start the server with
  `DB_CONN_MAX_AGE` longer than the run: a backend closed during the run takes its CPU time
  with it (the run then stops and says so).

The whole machine's throughput at idle is roughly cores / (CPU per request, all processes) x
100 events.

    python tests/benchmarks/bench_ingestion_cpu.py \\
        --database-url postgres://postgres@127.0.0.1:5432/billing_bench_cpu --requests 300
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))

from tests.benchmarks._db import recreate  # noqa: E402 (after sys.path)


def cpu_ns(pid: int | str = "self") -> int:
    """Nanoseconds `pid` has spent on a CPU, all its threads (`/proc/<pid>/schedstat` alone
    counts only the main thread: a gthread gunicorn worker serves requests on others)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
    return total


class ClientApi:
    """`bench_ingestion_usage.Api`'s `json` and `request` over Django's test client."""

    def __init__(self, key: str) -> None:
        from django.test import Client

        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {key}")

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        response = self.client.generic(method, path, body or b"", "application/json")
        return response.status_code, response.content

    def json(self, method: str, path: str, payload: object | None = None) -> dict:
        body = None if payload is None else json.dumps(payload).encode()
        status, content = self.request(method, path, body)
        if status >= 300:
            raise SystemExit(f"{method} {path} -> {status}: {content[:500]!r}")
        return json.loads(content)


def batch_bodies(count: int, size: int, now: datetime, run: str) -> list[bytes]:
    from bench_ingestion_usage import LOAD_SUBSCRIPTIONS, event_payloads, period_start

    bodies = []
    for index in range(count):
        subscription = LOAD_SUBSCRIPTIONS[index % len(LOAD_SUBSCRIPTIONS)]
        payloads = event_payloads(
            f"{run}_{index}", size, subscription, period_start(now), now, index
        )
        bodies.append(json.dumps({"events": payloads}).encode())
    return bodies


def single_bodies(count: int, now: datetime, run: str) -> list[bytes]:
    from bench_ingestion_usage import MAIN_SUBSCRIPTION, event_payloads, period_start

    payloads = event_payloads(f"{run}_single", count, MAIN_SUBSCRIPTION, period_start(now), now, 5)
    return [json.dumps({"event": payload}).encode() for payload in payloads]


def setup(url: str, fresh: bool) -> str:
    """Django set up on `url`; returns an API key of the seeded organization."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
    if fresh:
        recreate(url)
    import django

    django.setup()
    from django.core.management import call_command

    from billing.models import Organization
    from billing.services import api_key_create

    if fresh:
        call_command("migrate", verbosity=0)
        call_command("create_organization", "Bench", "--currency", "EUR", stdout=io.StringIO())
    organization = Organization.objects.get(name="Bench")
    _, key = api_key_create(organization=organization, name="cpu")
    if fresh:
        from bench_ingestion_usage import period_start, seed

        seed(ClientApi(key), started_at=period_start(datetime.now(UTC)) - timedelta(days=40))
    return key


def post_body(connection, path: str, body: bytes, headers: dict) -> tuple[int, bytes]:  # type: ignore[no-untyped-def]
    """POSTs `body` on a keep-alive `http.client` connection; (status, content read)."""
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


def client_backends(admin, database: str) -> list[int]:  # type: ignore[no-untyped-def]
    """The pids of the client backends connected to `database`, the `admin` connection's own
    excepted (autovacuum and other background processes are not the server's)."""
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s "
        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
        [database],
    ).fetchall()
    return [row[0] for row in rows]


def backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[max(0, int(0.9 * len(ordered)) - 1)]
    return (
        f"{name}: mean {statistics.fmean(samples):.2f} ms, median "
        f"{statistics.median(samples):.2f} ms, p90 {p90:.2f} ms"
    )


def run_inprocess(args: argparse.Namespace, key: str) -> None:
    from django.db import connection

    api = ClientApi(key)
    now = datetime.now(UTC)
    run = f"c{int(time.time() * 1000)}"
    path = "/api/v1/events/batch" if not args.single else "/api/v1/events"
    make = (
        (lambda n, tag: single_bodies(n, now, tag))
        if args.single
        else (lambda n, tag: batch_bodies(n, args.size, now, tag))
    )
    for body in make(args.warmup, f"{run}w"):
        status, content = api.request("POST", path, body)
        assert status == 200, content[:300]
    bodies = make(args.requests, run)
    pid = backend_pid()
    own, backend = [], []
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    for body in bodies:
        own_before, backend_before = cpu_ns(), cpu_ns(pid)
        if profiler is not None:
            profiler.enable()
        status, content = api.request("POST", path, body)
        if profiler is not None:
            profiler.disable()
        own_after, backend_after = cpu_ns(), cpu_ns(pid)
        assert status == 200, content[:300]
        own.append((own_after - own_before) / 1e6)
        backend.append((backend_after - backend_before) / 1e6)
    assert backend_pid() == pid, "the connection was reopened during the run"
    total = [a + b for a, b in zip(own, backend, strict=True)]
    print(f"load average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(f"{len(bodies)} requests to {path} ({'1' if args.single else args.size} events each)")
    print(summary("python process CPU", own))
    print(summary("PostgreSQL backend CPU", backend))
    print(summary("both", total))
    if profiler is not None:
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            stats = pstats.Stats(profiler, stream=out)
            stats.sort_stats(order).print_stats(args.profile)
            print(out.getvalue())
    if args.queries:
        from django.test.utils import CaptureQueriesContext

        [body] = make(1, f"{run}q")
        timings: list[tuple[float, str]] = []

        def timer(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timings.append(((time.perf_counter() - started) * 1000, sql))

        with CaptureQueriesContext(connection), connection.execute_wrapper(timer):
            api.request("POST", path, body)
        print(f"{len(timings)} statements:")
        for ms, sql in timings:
            print(f"  {ms:7.2f} ms  {' '.join(sql.split())[:150]}")


def run_http(args: argparse.Namespace) -> None:
    import http.client

    import psycopg

    host, port = args.url.split("//", 1)[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Authorization": f"Bearer {args.key}", "Content-Type": "application/json"}
    now = datetime.now(UTC)
    run = f"h{int(time.time() * 1000)}"
    path = "/api/v1/events/batch" if not args.single else "/api/v1/events"
    bodies = (
        single_bodies(args.requests + args.warmup, now, run)
        if args.single
        else batch_bodies(args.requests + args.warmup, args.size, now, run)
    )
    name = args.database_url.rsplit("/", 1)[1]
    with psycopg.connect(args.database_url.rsplit("/", 1)[0] + "/postgres") as admin:

        def post(body: bytes) -> None:
            status, content = post_body(connection, path, body, headers)
            assert status == 200, content[:300]

        for body in bodies[: args.warmup]:
            post(body)
        servers = [int(pid) for pid in args.server_pids.split(",") if pid]
        pids = client_backends(admin, name)

        def snapshot() -> dict[str, int]:
            return {
                "server": sum(cpu_ns(pid) for pid in servers),
                "postgres": sum(cpu_ns(pid) for pid in pids),
                "client": cpu_ns(),
            }

        before = snapshot()
        started = time.perf_counter()
        for body in bodies[args.warmup :]:
            post(body)
        wall = time.perf_counter() - started
        try:
            after = snapshot()
        except FileNotFoundError:
            raise SystemExit("a server or backend process ended during the run: rerun") from None
    count = args.requests
    print(f"load average: {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    print(f"{count} requests to {path}, one connection, {wall / count * 1000:.2f} ms wall each")
    total = 0.0
    for part in ("server", "postgres", "client"):
        ms = (after[part] - before[part]) / 1e6 / count
        total += ms
        print(f"CPU per request, {part}: {ms:.2f} ms")
    print(f"CPU per request, all: {total:.2f} ms")
    if not args.single:
        print(f"idle 2-core estimate: {2000 / total * args.size:.0f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--mode", choices=("inprocess", "http"), default="inprocess")
    parser.add_argument("--fresh", action="store_true", help="recreate and seed the database")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--single", action="store_true", help="POST /events, one event each")
    parser.add_argument("--profile", type=int, default=0, help="cProfile: lines to print")
    parser.add_argument("--queries", action="store_true", help="statements of one request")
    parser.add_argument("--url", default="http://127.0.0.1:8766")
    parser.add_argument("--key", default="")
    parser.add_argument("--server-pids", default="", help="gunicorn worker pids, comma-separated")
    args = parser.parse_args()
    if args.mode == "http":
        run_http(args)
        return
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
    os.environ.setdefault("API_REQUEST_LOG", "1")
    os.environ.setdefault("API_RATE_LIMITS", "events=1000000,usage=1000000,default=1000000")
    os.environ.pop("CELERY_BROKER_URL", None)
    key = setup(args.database_url, args.fresh)
    run_inprocess(args, key)


if __name__ == "__main__":
    main()
