"""CPU per ingestion request of two versions of the code, side by side (docs/benchmarks.md):
a figure that holds while the machine's speed drifts, unlike events/s measured in turn.

Not a pytest module. For each side, a code directory (for instance a `git worktree` of an older
commit, and this checkout) and its own database (recreated and seeded with `--fresh` by that
side's `bench_ingestion_cpu.py`: the name must start with `billing_bench`): one gunicorn sync
worker is started from that directory, then the two servers receive the same kind of requests
one after the other, A, B, A, B..., each on one keep-alive connection. Around every request
the CPU time of the server's worker and of its PostgreSQL backend is read (all threads,
`bench_ingestion_cpu.cpu_ns`); a slower or faster phase of the machine weighs on both sides
alike. Both servers run with this interpreter (this checkout's dependencies), production
settings and the shared cache in Redis.

    git worktree add /tmp/before <commit>
    python tests/benchmarks/bench_ingestion_ab.py --a /tmp/before --b . --fresh \\
        --database-a postgres://postgres@127.0.0.1:5432/billing_bench_a \\
        --database-b postgres://postgres@127.0.0.1:5432/billing_bench_b
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))

from bench_ingestion_cpu import (  # noqa: E402
    batch_bodies,
    client_backends,
    cpu_ns,
    post_body,
    single_bodies,
)

SERVER_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": "bench-only-secret-key",
    "API_REQUEST_LOG": "1",
    "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",  # testserver: the in-process seeding
    "API_RATE_LIMITS": "events=1000000,usage=1000000,default=1000000",
    "DB_CONN_MAX_AGE": "3600",  # one backend for the whole run: its CPU is read throughout
}


class Side:
    """One version: its code directory, database, gunicorn worker and PostgreSQL backend."""

    def __init__(self, name: str, directory: str, database_url: str, port: int, cache: str):
        self.name, self.directory, self.database_url, self.port = (
            name,
            directory,
            database_url,
            port,
        )
        self.env = {
            **os.environ,
            **SERVER_ENV,
            "PYTHONPATH": directory,
            "DATABASE_URL": database_url,
            "CACHE_REDIS_URL": cache,
        }
        self.env.pop("CELERY_BROKER_URL", None)
        self.samples: list[tuple[float, float]] = []
        self.server: subprocess.Popen | None = None

    def run(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, *args],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode:
            raise SystemExit(f"{self.name}: {' '.join(args)} failed:\n{result.stderr[-2000:]}")
        return result.stdout

    def seed(self) -> None:
        self.run(
            "tests/benchmarks/bench_ingestion_cpu.py",
            *("--database-url", self.database_url, "--fresh", "--requests", "1", "--warmup", "1"),
        )

    def start(self) -> None:
        output = self.run("manage.py", "create_api_key", "--organization", "Bench", "--name", "ab")
        self.key = output.strip().splitlines()[-1]
        self.server = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "billing.wsgi:application",
                "--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--threads", "1",
                "--access-logfile", "/dev/null", "--log-level", "warning",
            ],
            cwd=self.directory,
            env=self.env,
        )  # fmt: skip
        for _ in range(150):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit(f"{self.name}: gunicorn did not answer on port {self.port}")
        workers = Path(f"/proc/{self.server.pid}/task/{self.server.pid}/children").read_text()
        self.worker = int(workers.split()[0])
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> None:
        status, content = post_body(self.connection, path, body, self.headers)
        if status != 200:
            raise SystemExit(f"{self.name}: {path} -> {status}: {content[:300]!r}")

    def backend(self) -> int:
        import psycopg

        name = self.database_url.rsplit("/", 1)[1]
        admin_url = self.database_url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url) as admin:
            pids = client_backends(admin, name)
        if len(pids) != 1:
            raise SystemExit(f"{self.name}: expected one backend on {name}, found {len(pids)}")
        return pids[0]

    def stop(self) -> None:
        if self.server is not None:
            self.server.terminate()
            self.server.wait(timeout=30)


def report(side: Side) -> str:
    server = [s for s, _ in side.samples]
    postgres = [p for _, p in side.samples]
    total = [s + p for s, p in side.samples]
    return (
        f"{side.name} ({side.directory}): CPU per request {statistics.fmean(total):.2f} ms "
        f"(median {statistics.median(total):.2f}): worker {statistics.fmean(server):.2f}, "
        f"PostgreSQL {statistics.fmean(postgres):.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", required=True, help="code directory of version A")
    parser.add_argument("--b", required=True, help="code directory of version B")
    parser.add_argument("--database-a", required=True)
    parser.add_argument("--database-b", required=True)
    parser.add_argument("--fresh", action="store_true", help="recreate and seed both databases")
    parser.add_argument("--requests", type=int, default=300, help="measured requests per side")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--size", type=int, default=100, help="events per batch")
    parser.add_argument("--single", action="store_true", help="POST /events, one event each")
    parser.add_argument("--cache", default="redis://127.0.0.1:6379/13")
    args = parser.parse_args()
    for url in (args.database_a, args.database_b):
        if not url.rsplit("/", 1)[1].startswith("billing_bench"):
            raise SystemExit(
                "the databases are recreated: their names must start with billing_bench"
            )
    sides = [
        Side("A", str(Path(args.a).resolve()), args.database_a, 8781, args.cache),
        Side("B", str(Path(args.b).resolve()), args.database_b, 8782, args.cache),
    ]
    now = datetime.now(UTC)
    path = "/api/v1/events" if args.single else "/api/v1/events/batch"
    count = args.requests + args.warmup
    try:
        for index, side in enumerate(sides):
            if args.fresh:
                side.seed()
            side.start()
            tag = f"ab{index}{int(time.time() * 1000)}"
            side.bodies = (
                single_bodies(count, now, tag)
                if args.single
                else batch_bodies(count, args.size, now, tag)
            )
            for body in side.bodies[: args.warmup]:
                side.post(path, body)
            side.pids = (side.worker, side.backend())
        for body_index in range(args.warmup, count):
            for side in sides:
                worker, backend = side.pids
                before = cpu_ns(worker), cpu_ns(backend)
                side.post(path, side.bodies[body_index])
                after = cpu_ns(worker), cpu_ns(backend)
                side.samples.append(((after[0] - before[0]) / 1e6, (after[1] - before[1]) / 1e6))
    finally:
        for side in sides:
            side.stop()
    size = "1 event" if args.single else f"{args.size} events"
    print(f"{args.requests} requests of {size} per side, interleaved")
    for side in sides:
        print(report(side))
    a, b = (statistics.fmean(s + p for s, p in side.samples) for side in sides)
    print(f"B / A: {b / a:.3f}")


if __name__ == "__main__":
    main()
