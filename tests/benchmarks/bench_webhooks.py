"""Webhook delivery: deliveries per second and delay from commit to receipt (docs/benchmarks.md;
target on 2 cores: >= 500 deliveries/s, p99 delay <= 2 s with healthy receivers).

Not a pytest module (pytest ignores tests/benchmarks). Run from the project folder:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_bench_webhooks \
    BENCH_REDIS_URL=redis://127.0.0.1:6379/2 \
        .venv/bin/python tests/benchmarks/bench_webhooks.py --events 10000 --workers 4

The database is created and migrated when missing and emptied of the previous run. 10,000
customers are stored, three local receivers start in a process each (two endpoints sign with
HMAC, one with JWT), and a real Celery worker (`--workers` prefork processes, Redis broker,
`DEBUG=0`) delivers. Two phases, `--events` events each (`customer.updated` of distinct
customers, recorded through `billing.outbox.emit` and committed in transactions of `--batch`):

1. burst: every transaction committed as fast as possible; deliveries/s = deliveries / (last
   receipt - first commit);
2. paced: `--rate` events per second (healthy receivers, no backlog); delay of each delivery =
   its first receipt - the commit of the transaction that recorded its event (p50, p99, max).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing_bench_webhooks")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
os.environ["CELERY_BROKER_URL"] = REDIS_URL
os.environ["WEBHOOKS_ALLOW_PRIVATE_URLS"] = "1"

from tests.benchmarks._db import ensure_database  # noqa: E402 (after sys.path)

ORGANIZATION = "Webhook bench"


# --- receivers (a process each, so that neither the producer's GIL nor each other's slow them) -


def _serve(ports: multiprocessing.Queue) -> None:
    records: list = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # kept-alive connections, one thread each
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            records.append((self.headers["X-Lago-Unique-Key"], time.time()))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            body = json.dumps(records).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    Thread(target=server.serve_forever, daemon=True).start()
    ports.put(server.server_address[1])
    signal.sigwait({signal.SIGTERM})


def _receivers(count: int) -> tuple[list[multiprocessing.Process], list[int]]:
    queue: multiprocessing.Queue = multiprocessing.Queue()
    processes = [
        multiprocessing.Process(target=_serve, args=(queue,), daemon=True) for _ in range(count)
    ]
    for process in processes:
        process.start()
    return processes, [queue.get(timeout=10) for _ in processes]


def _received(ports: list[int]) -> dict[str, float]:
    """First receipt time of every unique key, over all receivers."""
    first: dict[str, float] = {}
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as response:
            for key, at in json.loads(response.read()):
                first[key] = min(at, first.get(key, at))
    return first


# --- the run ------------------------------------------------------------------------------------


def _worker(concurrency: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key"),
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "billing", "worker", "--concurrency",
         str(concurrency), "--without-gossip", "--without-mingle", "-n", "bench@%h"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def _cpu_by_process() -> dict[int, tuple[int, float]]:
    """pid -> (process group, user + system CPU seconds) of every live process."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry)] = (int(fields[2]), (int(fields[11]) + int(fields[12])) / tick)
    return found


def _cpu_seconds(parts: dict[str, set[int]]) -> dict[str, float]:
    """CPU seconds used so far by each part: the worker's process group, the receivers, and
    the PostgreSQL sessions on the bench database (those alive now)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        sessions = {pid for (pid,) in cursor.fetchall()}
    processes = _cpu_by_process()
    worker_group = next(iter(parts["worker"]))
    return {
        "worker": sum(cpu for group, cpu in processes.values() if group == worker_group),
        "receivers": sum(processes[pid][1] for pid in parts["receivers"] if pid in processes),
        "postgres": {pid: processes[pid][1] for pid in sessions if pid in processes},
        "producer": sum(os.times()[:2]),
    }


def _cpu_used(before: dict, after: dict) -> dict[str, float]:
    used = {part: after[part] - before[part] for part in ("worker", "receivers", "producer")}
    used["postgres"] = sum(
        cpu - before["postgres"].get(pid, 0) for pid, cpu in after["postgres"].items()
    )
    return used


def _phase(name, organization, customers, *, events, batch, rate, ports, timeout, parts) -> dict:
    from django.db import transaction

    from billing.actors import SYSTEM
    from billing.outbox import emit
    from integrations.models import WebhookDelivery

    committed: dict[int, float] = {}
    cpu_before = _cpu_seconds(parts)
    started = time.monotonic()
    for first in range(0, events, batch):
        if rate:
            pause = started + first / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
        with transaction.atomic():
            rows = [
                emit(
                    event_type="customer.updated",
                    actor=SYSTEM,
                    obj=customer,
                    payload={"lago_id": str(customer.pk), "external_id": customer.external_id},
                )
                for customer in customers[first : first + batch]
            ]
        at = time.time()
        committed.update((row.pk, at) for row in rows)
    produced_in = time.monotonic() - started
    expected = len(committed) * len(ports)
    deadline = time.monotonic() + timeout
    while True:  # until every delivery of this phase's events was received (or the timeout)
        received = _received(ports)
        deliveries = dict(
            WebhookDelivery.objects.filter(outbox_event_id__in=list(committed)).values_list(
                "id", "outbox_event_id"
            )
        )
        missing = expected - sum(str(pk) in received for pk in deliveries)
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    cpu = _cpu_used(cpu_before, _cpu_seconds(parts))
    delays = sorted(
        received[str(delivery_id)] - committed[outbox_id]
        for delivery_id, outbox_id in deliveries.items()
        if str(delivery_id) in received
    )
    mine = [received[str(pk)] for pk in deliveries if str(pk) in received]
    span = max(mine) - min(committed.values()) if mine else float("nan")
    result = {
        "phase": name,
        "events": len(committed),
        "deliveries_expected": expected,
        "deliveries_received": len(delays),
        "produced_in_s": round(produced_in, 2),
        "span_s": round(span, 2),
        "deliveries_per_s": round(len(delays) / span, 1) if delays else 0,
        "delay_p50_s": round(statistics.median(delays), 3) if delays else None,
        "delay_p99_s": round(delays[int(len(delays) * 0.99) - 1], 3) if delays else None,
        "delay_max_s": round(delays[-1], 3) if delays else None,
        # CPU seconds (user + system) over the phase, per delivery received, by part: the
        # worker's processes, PostgreSQL's sessions on the bench database, the receivers, the
        # producer (this process); their sum is what the machine spends per delivery
        "cpu_ms_per_delivery": {
            part: round(seconds * 1000 / len(delays), 3) for part, seconds in cpu.items()
        }
        if delays
        else None,
        "cpu_ms_per_delivery_total": round(sum(cpu.values()) * 1000 / len(delays), 3)
        if delays
        else None,
        "load_avg_1min_at_end": os.getloadavg()[0],
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=20, help="events per transaction")
    parser.add_argument("--rate", type=float, default=150.0, help="events/s of the paced phase")
    parser.add_argument("--workers", type=int, default=4, help="Celery worker processes")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--phases", default="burst,paced")
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)

    from billing.models import Organization
    from billing.services import organization_create
    from customers.models import Customer
    from integrations.services.webhook_endpoints import webhook_endpoint_create

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE integrations_webhookdelivery, integrations_webhookbody, "
            "integrations_webhookendpoint, billing_outboxevent CASCADE"
        )
    for old in Organization.objects.filter(name=ORGANIZATION):
        Customer.objects.filter(organization=old).delete()
        old.delete()
    organization = organization_create(name=ORGANIZATION, default_currency="EUR")
    entity = organization.default_billing_entity()
    Customer.objects.bulk_create(
        Customer(
            organization=organization,
            billing_entity=entity,
            external_id=f"bench_{n}",
            sequential_id=n + 1,
            slug=f"BEN-{n + 1:05d}",
        )
        for n in range(args.events)
    )
    customers = list(Customer.objects.filter(organization=organization).order_by("external_id"))

    receivers, ports = _receivers(3)
    from billing.actors import SYSTEM

    for index, port in enumerate(ports):
        webhook_endpoint_create(
            organization=organization,
            values={
                "webhook_url": f"http://127.0.0.1:{port}/hook",
                "signature_algo": "jwt" if index == 0 else "hmac",
            },
            actor=SYSTEM,
        )
    import redis

    redis.Redis.from_url(REDIS_URL).delete("celery")
    worker = _worker(args.workers)
    try:
        time.sleep(8)  # worker start-up (Django, the key loaded on first use)
        print(
            f"# {os.cpu_count()} CPUs, {args.workers} worker processes, load "
            f"{os.getloadavg()[0]:.1f} at start",
            flush=True,
        )
        for phase in args.phases.split(","):
            _phase(
                phase, organization, customers, events=args.events, batch=args.batch,
                rate=args.rate if phase == "paced" else 0, ports=ports, timeout=args.timeout,
                parts={"worker": {worker.pid}, "receivers": {r.pid for r in receivers}},
            )  # fmt: skip
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        for receiver in receivers:
            receiver.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
