"""Monthly partitioning of the events table, measured (issue 20; docs/benchmarks.md, "Events
table partitioning").

Not a pytest module. Drops and recreates its own database, then builds two copies of the
event store's tables side by side, each in its own schema, from the models (the real columns,
constraints and indexes, `schema_editor.create_model`; the rollup tables with the fillfactor of
metering migration 0004):

- `plain`: `billing_event` as it is, with its unique constraint (organization,
  external_subscription_id, transaction_id) as the dedup key;
- `part`: `billing_event` partitioned by RANGE (timestamp), one partition per month and a
  default one, primary key (id, timestamp), the same three indexes; since a partitioned table's
  unique constraints must contain the partition key, the dedup key moves to an unpartitioned
  `billing_event_key` (organization, external_subscription_id, transaction_id, timestamp) that
  the write statement fills first (`ON CONFLICT DO NOTHING`), inserting only the events whose
  key it inserted.

Both are written with the store's own write statement (`INSERT_WITH_ROLLUPS_SQL`, events and the
two rollup upserts in one statement; `part` with the key CTE spliced in) and read with the
store's own reads (`list_events`, `get_event`, `aggregate_postgres`), the schema chosen by
`search_path`. Then:

1. the tables grow (`--sizes`, 12 months of events over 10 organizations and 10,000
   subscriptions, loaded by one INSERT ... SELECT per million rows, the same rows in both); at
   each size, batches of 100 and of 5,000 events of the current month are written alternately
   to both: wall time, CPU of the PostgreSQL backend (`/proc/<pid>/schedstat`) and WAL
   (`pg_current_wal_lsn`) per batch;
2. the reads that still scan events, at each size;
3. table and index sizes, at each size;
4. retention at the last size: the oldest month removed by `DELETE` + `VACUUM` (plain) and by
   `DETACH` + `DROP` of its partition plus `DELETE` + `VACUUM` of its keys (part): time, CPU,
   WAL, free space left in the table (pgstattuple);
5. the idempotency checks: a replayed transaction id with another month's timestamp, and the
   same transaction id sent by 8 concurrent connections with 8 different timestamps, on `part`
   and on a partitioned table whose unique constraint includes the timestamp (`naive`).

    python tests/benchmarks/bench_event_partitioning.py                    # 1M then 5M rows
    python tests/benchmarks/bench_event_partitioning.py --sizes 2000000    # retention at 2M
    python tests/benchmarks/bench_event_partitioning.py --sizes 200000,500000 \\
        --batches 10 --big-batches 2                                       # a smoke run (~1 min)

The bulk load dominates: 1.4 min for the first million rows (both tables) at load average 7,
3 to over 10 min per further million at load average 10 to 14 on the shared 2-core machine
(so 10,000,000 rows did not fit in a run there).

`--database-url` (default postgres://postgres@127.0.0.1:5432/billing_bench_partitioning; the
name must start with billing_bench); the database is dropped at the end unless `--keep`.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks._db import recreate  # noqa: E402 (after sys.path)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/billing_bench_partitioning"
MONTHS = 12
ORGANIZATIONS = [UUID(int=0x5EED0000 + i) for i in range(10)]
SUBSCRIPTIONS = 10_000
CODES = ["bench_count", "bench_sum", "bench_max", "bench_users", "bench_gb"]
REGIONS = ["eu", "us", "asia", "latam"]
LOAD_CHUNK = 1_000_000
SCHEMAS = ("plain", "part")

# The dedup key of the partitioned variant, spliced into the store's write statement: the
# events are inserted only for the keys this statement inserted (a concurrent insert of the
# same key waits for the first transaction, as on the plain table's unique constraint).
KEYS_CTE = """keys AS (
    INSERT INTO billing_event_key (
        organization_id, external_subscription_id, transaction_id, "timestamp"
    )
    SELECT %(organization_id)s, external_subscription_id, transaction_id, ts
    FROM numbered ORDER BY position
    ON CONFLICT ON CONSTRAINT billing_event_key_unique DO NOTHING
    RETURNING external_subscription_id, transaction_id
),
"""
PLAIN_DEDUP = """    FROM numbered ORDER BY position
    ON CONFLICT ON CONSTRAINT billing_event_transaction_unique DO NOTHING
"""
PART_DEDUP = """    FROM numbered JOIN keys USING (external_subscription_id, transaction_id)
    ORDER BY position
"""


def cpu_ns(pid: int) -> int:
    """Nanoseconds `pid` has spent on a CPU (waiting for a core does not count)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def drop(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def month_start(instant: datetime, back: int = 0) -> datetime:
    month = instant.year * 12 + instant.month - 1 - back
    return datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        from django.db import connection

        self.args = args
        self.connection = connection
        self.now = datetime.now(UTC)
        self.current = month_start(self.now)
        self.first = month_start(self.now, MONTHS - 1)  # the oldest month of the loaded data
        self.loaded = 0
        self.rng = random.Random(20)
        self.run = 0

    # -- plumbing --------------------------------------------------------------------------

    def sql(self, statement: str, params: object = None) -> list[tuple]:
        with self.connection.cursor() as cursor:
            cursor.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def use(self, schema: str) -> None:
        self.sql(f"SET search_path TO {schema}, public")

    def pid(self) -> int:
        return self.sql("SELECT pg_backend_pid()")[0][0]

    def lsn(self) -> str:
        return self.sql("SELECT pg_current_wal_lsn()")[0][0]

    def wal_since(self, lsn: str) -> int:
        return int(self.sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)", [lsn])[0][0])

    @contextmanager
    def measured(self, into: dict[str, list[float]]) -> Iterator[None]:
        """Appends wall ms, backend CPU ms and WAL bytes of the block to `into`."""
        pid, lsn = self.pid(), self.lsn()
        cpu, wall = cpu_ns(pid), time.perf_counter()
        yield
        into["wall"].append((time.perf_counter() - wall) * 1000)
        into["cpu"].append((cpu_ns(pid) - cpu) / 1e6)
        into["wal"].append(self.wal_since(lsn))

    # -- schema ----------------------------------------------------------------------------

    def create_tables(self) -> None:
        from metering.models import Event, EventPropertyState, EventRollup

        # the organization table as a foreign key target only (the events reference it)
        self.sql("CREATE TABLE billing_organization (id uuid PRIMARY KEY)")
        self.sql("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        for organization in ORGANIZATIONS:
            self.sql("INSERT INTO billing_organization VALUES (%s)", [organization])
        for schema in SCHEMAS:
            self.sql(f"CREATE SCHEMA {schema}")
            self.use(schema)
            models = (EventRollup, EventPropertyState) + ((Event,) if schema == "plain" else ())
            with self.connection.schema_editor() as editor:
                for model in models:
                    editor.create_model(model)
            for table in ("metering_event_rollup", "metering_event_property_state"):
                self.sql(f"ALTER TABLE {table} SET (fillfactor = 50)")  # metering 0004
        self.use("part")
        self.sql(
            """
            CREATE TABLE billing_event (LIKE plain.billing_event INCLUDING DEFAULTS)
                PARTITION BY RANGE ("timestamp");
            CREATE SEQUENCE billing_event_id_seq START 1000000000000 OWNED BY billing_event.id;
            ALTER TABLE billing_event ALTER COLUMN id SET DEFAULT nextval('billing_event_id_seq');
            ALTER TABLE billing_event ADD CONSTRAINT billing_event_pkey
                PRIMARY KEY (id, "timestamp");
            ALTER TABLE billing_event ADD CONSTRAINT billing_event_organization_fk
                FOREIGN KEY (organization_id) REFERENCES billing_organization (id)
                DEFERRABLE INITIALLY DEFERRED;
            CREATE INDEX billing_event_aggregation_idx ON billing_event
                (organization_id, external_subscription_id, code, "timestamp");
            CREATE INDEX billing_event_list_idx ON billing_event
                (organization_id, "timestamp" DESC, id DESC);
            CREATE INDEX billing_event_txn_idx ON billing_event (organization_id, transaction_id);
            CREATE TABLE billing_event_default PARTITION OF billing_event DEFAULT;
            CREATE TABLE billing_event_key (
                organization_id uuid NOT NULL REFERENCES billing_organization (id)
                    DEFERRABLE INITIALLY DEFERRED,
                external_subscription_id varchar(255) NOT NULL,
                transaction_id varchar(255) NOT NULL,
                "timestamp" timestamptz NOT NULL,
                CONSTRAINT billing_event_key_unique
                    PRIMARY KEY (organization_id, external_subscription_id, transaction_id)
            );
            """
        )
        for back in range(MONTHS - 1, -2, -1):  # the 12 months and the next one
            start, end = month_start(self.now, back), month_start(self.now, back - 1)
            self.sql(
                f"CREATE TABLE {self.partition(start)} PARTITION OF billing_event "
                "FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
        self.use("plain")

    @staticmethod
    def partition(start: datetime) -> str:
        return f"billing_event_y{start.year}m{start.month:02d}"

    # -- writes ----------------------------------------------------------------------------

    def load(self, upto: int) -> dict[str, dict[str, float]]:
        """Grows both tables to `upto` rows (bulk, the same rows in both): one INSERT ... SELECT
        per chunk; returns seconds and backend CPU seconds per schema."""
        span = int((self.current - self.first).total_seconds())  # the 11 full months
        span += int((self.now - self.current).total_seconds())  # and this one so far
        figures = {schema: {"wall": 0.0, "cpu": 0.0, "wal": 0.0} for schema in SCHEMAS}
        while self.loaded < upto:
            low, high = self.loaded, min(self.loaded + LOAD_CHUNK, upto)
            rows = f"""
                SELECT (%(orgs)s::uuid[])[1 + i %% 10] AS org, 'b' || i AS txn,
                       'sub_' || ((i * 7919) %% {SUBSCRIPTIONS}) AS ext,
                       (%(codes)s::text[])[1 + i %% 5] AS code,
                       %(first)s::timestamptz + ((i * 104729) %% {span}) * interval '1 second'
                           AS ts,
                       jsonb_build_object('region', (%(regions)s::text[])[1 + i %% 4],
                                          'user', 'u' || (i %% 500), 'amount', i %% 1000)
                           AS props,
                       (i %% 1000)::numeric AS value
                FROM generate_series(%(low)s::bigint, %(high)s::bigint - 1) AS i
            """
            insert = """
                INSERT INTO billing_event (
                    organization_id, transaction_id, external_subscription_id, code,
                    "timestamp", properties, precise_total_amount_cents, value, created_at
                )
                SELECT org, txn, ext, code, ts, props, 0, value, ts + interval '2 seconds'
                FROM rows
            """
            params = {
                "orgs": ORGANIZATIONS,
                "codes": CODES,
                "regions": REGIONS,
                "first": self.first,
                "low": low,
                "high": high,
            }
            for schema in SCHEMAS:
                self.use(schema)
                keys = (
                    "keys AS (INSERT INTO billing_event_key SELECT org, ext, txn, ts FROM rows), "
                    if schema == "part"
                    else ""
                )
                run: dict[str, list[float]] = {"wall": [], "cpu": [], "wal": []}
                with self.measured(run):
                    self.sql(f"WITH rows AS ({rows}), {keys}ins AS ({insert}) SELECT 1", params)
                for name in figures[schema]:
                    figures[schema][name] += run[name][0]
            self.loaded = high
            print(f"  loaded {self.loaded:,} rows", file=sys.stderr)
        for schema in SCHEMAS:
            self.use(schema)
            self.sql("VACUUM ANALYZE billing_event")
            if schema == "part":
                self.sql("VACUUM ANALYZE billing_event_key")
        self.use("plain")
        return figures

    def write_sql(self) -> dict[str, str]:
        from metering.store.rollups import INSERT_WITH_ROLLUPS_SQL

        if PLAIN_DEDUP not in INSERT_WITH_ROLLUPS_SQL or "ins AS (" not in INSERT_WITH_ROLLUPS_SQL:
            raise SystemExit("the store's write statement changed: update PLAIN_DEDUP")
        part = INSERT_WITH_ROLLUPS_SQL.replace(PLAIN_DEDUP, PART_DEDUP).replace(
            "ins AS (", KEYS_CTE + "ins AS (", 1
        )
        return {"plain": INSERT_WITH_ROLLUPS_SQL, "part": part}

    def batch(self, size: int, timestamp: Callable[[], datetime]) -> list:
        from metering.store import EventInput

        self.run += 1
        events = []
        for i in range(size):
            code = CODES[i % len(CODES)]
            amount = self.rng.randrange(1000)
            events.append(
                EventInput(
                    transaction_id=f"m{self.run}_{i}",
                    external_subscription_id=f"sub_{self.rng.randrange(SUBSCRIPTIONS)}",
                    code=code,
                    timestamp=timestamp(),
                    properties={
                        "region": self.rng.choice(REGIONS),
                        "user": f"u{self.rng.randrange(500)}",
                        "amount": amount,
                    },
                    value=None if code == "bench_count" else Decimal(amount),
                    field_name=None if code == "bench_count" else "amount",
                )
            )
        return events

    @staticmethod
    def write_params(organization: UUID, events: list, now: datetime) -> dict:
        """The parameters `PostgresEventStore.write_batch` passes (rows in key order)."""
        from metering.store import _columns_json
        from metering.store.inputs import _stored_value
        from metering.store.rollups import WRITE_PARAMS

        order = sorted(
            range(len(events)),
            key=lambda i: (events[i].external_subscription_id, events[i].transaction_id),
        )
        rows = [events[i] for i in order]
        values = [_stored_value(event.value) for event in rows]
        return {
            "organization_id": organization,
            "created_at": now,
            **_columns_json(rows, values, order),
            **WRITE_PARAMS,
        }

    def write_batches(self, size: int, count: int) -> dict[str, dict[str, list[float]]]:
        """`count` batches of `size` events of the current month to each schema, alternating
        which goes first."""
        from django.db import transaction

        statements = self.write_sql()
        span = max(int((self.now - self.current).total_seconds()), 1)
        figures = {schema: {"wall": [], "cpu": [], "wal": []} for schema in SCHEMAS}
        for round_ in range(count):
            order = SCHEMAS if round_ % 2 == 0 else tuple(reversed(SCHEMAS))
            organization = ORGANIZATIONS[round_ % len(ORGANIZATIONS)]
            # the same events to both, so that both tables hold the same rows
            events = self.batch(
                size, lambda: self.current + timedelta(seconds=self.rng.randrange(span))
            )
            params = self.write_params(organization, events, self.now)
            for schema in order:
                self.use(schema)
                with (
                    self.measured(figures[schema]),
                    transaction.atomic(),
                    self.connection.cursor() as cursor,
                ):
                    cursor.execute(statements[schema], params)
                    stored = len(cursor.fetchall())
                if stored != size:
                    raise SystemExit(f"{schema}: {stored} of {size} events stored")
        self.use("plain")
        return figures

    # -- reads -----------------------------------------------------------------------------

    def reads(self, repeat: int) -> dict[str, dict[str, dict[str, list[float]]]]:
        from metering.store import AggregationQuery, PostgresEventStore
        from metering.store.aggregation import aggregate_postgres

        store = PostgresEventStore(rollups=False)
        organization = ORGANIZATIONS[3]
        subscription = "sub_4321"
        previous = month_start(self.now, 1)
        month_sum = AggregationQuery(
            organization_id=organization,
            external_subscription_id=subscription,
            code="bench_sum",
            aggregation_type="sum_agg",
            field_name="amount",
            from_datetime=previous,
            to_datetime=self.current - timedelta(microseconds=1),
        )
        recurring_sum = replace(month_sum, recurring=True, subscription_started_at=self.first)
        unique_count = AggregationQuery(
            organization_id=organization,
            external_subscription_id=subscription,
            code="bench_users",
            aggregation_type="unique_count_agg",
            field_name="user",
            from_datetime=previous,
            to_datetime=self.current - timedelta(microseconds=1),
        )
        hour = self.now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=30)
        reads: dict[str, Callable[[], object]] = {
            "list: first page (100, newest first)": lambda: list(
                store.list_events(organization)[:100]
            ),
            "list: count (pagination meta)": lambda: store.list_events(organization).count(),
            "list: page 50": lambda: list(store.list_events(organization)[4900:5000]),
            "list: one subscription, first page": lambda: list(
                store.list_events(organization, external_subscription_id=subscription)[:100]
            ),
            "get_event by transaction id": lambda: store.get_event(organization, "b4723"),
            "raw aggregation: sum, one month": lambda: aggregate_postgres(month_sum),
            "raw aggregation: recurring sum, 12 months": lambda: aggregate_postgres(recurring_sum),
            "raw aggregation: unique count, one month": lambda: aggregate_postgres(unique_count),
            "errors report: an hour by created_at": lambda: list(
                store.list_events(organization)
                .filter(created_at__gte=hour, created_at__lt=hour + timedelta(hours=1))
                .order_by("created_at", "id")
                .values_list("transaction_id", flat=True)[:1000]
            ),
        }
        figures: dict[str, dict[str, dict[str, list[float]]]] = {}
        for name, read in reads.items():
            figures[name] = {}
            answers = []
            for schema in SCHEMAS:
                self.use(schema)
                read()  # warm
                figures[name][schema] = {"wall": [], "cpu": [], "wal": []}
                for _ in range(repeat):
                    with self.measured(figures[name][schema]):
                        answer = read()
                answers.append(repr(answer))
            if answers[0] != answers[1]:
                raise SystemExit(f"{name}: the two tables answer differently")
        self.use("plain")
        return figures

    # -- sizes -----------------------------------------------------------------------------

    def sizes(self) -> dict[str, dict[str, int]]:
        """Bytes of the events table and of each of its indexes (summed over partitions),
        and the partitioned variant's key table."""
        figures: dict[str, dict[str, int]] = {}
        for schema in SCHEMAS:
            names = {
                "table (heap + TOAST)": "billing_event",
                "primary key": "billing_event_pkey",
                "aggregation_idx": "billing_event_aggregation_idx",
                "list_idx": "billing_event_list_idx",
                "txn_idx": "billing_event_txn_idx",
            }
            if schema == "plain":
                names["dedup: transaction_unique"] = "billing_event_transaction_unique"
            else:
                names["dedup: key table (heap)"] = "billing_event_key"
                names["dedup: key table's unique index"] = "billing_event_key_unique"
            figures[schema] = {}
            for label, relation in names.items():
                size = "pg_table_size" if "table" in label else "pg_relation_size"
                # a partitioned table or index: the sum of its partitions' (pg_partition_tree
                # lists the relation itself too, of size 0; no rows for a plain relation)
                (bytes_,) = self.sql(
                    f"SELECT COALESCE((SELECT SUM({size}(relid)) "
                    f"FROM pg_partition_tree(%(r)s::regclass)), {size}(%(r)s::regclass))",
                    {"r": f"{schema}.{relation}"},
                )[0]
                figures[schema][label] = int(bytes_)
        return figures

    # -- retention -------------------------------------------------------------------------

    def retention(self) -> dict[str, dict[str, float]]:
        """The oldest month out: DELETE + VACUUM on plain; DETACH + DROP of its partition and
        DELETE + VACUUM of its keys on part."""
        oldest, cutoff = self.first, month_start(self.now, MONTHS - 2)
        figures: dict[str, dict[str, float]] = {}

        def step(name: str, statements: list[str], params: object = None) -> None:
            run: dict[str, list[float]] = {"wall": [], "cpu": [], "wal": []}
            with self.measured(run):
                for statement in statements:
                    self.sql(statement, params)
            figures[name] = {key: values[0] for key, values in run.items()}

        self.use("plain")
        self.sql("CHECKPOINT")
        (rows,) = self.sql('SELECT COUNT(*) FROM billing_event WHERE "timestamp" < %s', [cutoff])[0]
        figures["rows removed"] = {"rows": rows}
        step("plain: DELETE", ['DELETE FROM billing_event WHERE "timestamp" < %s'], [cutoff])
        step("plain: VACUUM", ["VACUUM billing_event"])
        figures["plain: after"] = self.free_space("plain.billing_event")

        self.use("part")
        self.sql("CHECKPOINT")
        partition = self.partition(oldest)
        step(
            "part: DETACH + DROP partition",
            [f"ALTER TABLE billing_event DETACH PARTITION {partition}", f"DROP TABLE {partition}"],
        )
        step(
            "part: DELETE keys",
            ['DELETE FROM billing_event_key WHERE "timestamp" < %s'],
            [cutoff],
        )
        step("part: VACUUM keys", ["VACUUM billing_event_key"])
        figures["part: after (key table)"] = self.free_space("part.billing_event_key")
        self.use("plain")
        return figures

    def free_space(self, relation: str) -> dict[str, float]:
        (size, free) = self.sql(
            "SELECT pg_table_size(%(r)s::regclass), approx_free_percent "
            "FROM pgstattuple_approx(%(r)s::regclass)",
            {"r": relation},
        )[0]
        return {"bytes": int(size), "free %": float(free)}

    # -- idempotency -----------------------------------------------------------------------

    def idempotency(self, url: str, connections: int, rounds: int) -> dict[str, list[int]]:
        """Rows stored for one transaction id sent with different timestamps: one after the
        other across two months, then by `connections` connections at once (each its own
        month), `rounds` times."""
        import psycopg

        self.use("part")
        self.sql(
            """
            CREATE SCHEMA naive;
            CREATE TABLE naive.billing_event (LIKE part.billing_event INCLUDING DEFAULTS)
                PARTITION BY RANGE ("timestamp");
            ALTER TABLE naive.billing_event ADD CONSTRAINT billing_event_transaction_unique
                UNIQUE (organization_id, external_subscription_id, transaction_id, "timestamp");
            CREATE SEQUENCE naive.billing_event_id_seq OWNED BY naive.billing_event.id;
            CREATE TABLE naive.billing_event_default PARTITION OF naive.billing_event DEFAULT;
            CREATE TABLE naive.metering_event_rollup (LIKE part.metering_event_rollup
                INCLUDING ALL);
            ALTER TABLE naive.metering_event_rollup ADD CONSTRAINT metering_event_rollup_key
                UNIQUE (organization_id, external_subscription_id, code, bucket, field_name,
                        dims_hash);
            CREATE TABLE naive.metering_event_property_state (LIKE
                part.metering_event_property_state INCLUDING ALL);
            ALTER TABLE naive.metering_event_property_state
                ADD CONSTRAINT metering_event_property_state_key
                UNIQUE (organization_id, external_subscription_id, code, field_name, dims_hash,
                        prop_hash);
            """
        )
        for back in range(MONTHS - 1, -2, -1):
            start, end = month_start(self.now, back), month_start(self.now, back - 1)
            self.sql(
                f"CREATE TABLE naive.{self.partition(start)} PARTITION OF naive.billing_event "
                "FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
        statements = self.write_sql()
        statements["naive"] = statements["plain"]
        organization = ORGANIZATIONS[0]
        months = [month_start(self.now, back) + timedelta(days=3) for back in range(MONTHS)]

        def stored(schema: str, transaction_id: str) -> int:
            return self.sql(
                f"SELECT COUNT(*) FROM {schema}.billing_event WHERE transaction_id = %s",
                [transaction_id],
            )[0][0]

        def params(transaction_id: str, timestamp: datetime) -> dict:
            [event] = self.batch(1, lambda: timestamp)
            event = replace(
                event, transaction_id=transaction_id, external_subscription_id="sub_replayed"
            )
            return self.write_params(organization, [event], self.now)

        results: dict[str, list[int]] = {}
        for schema in ("plain", "part", "naive"):
            transaction_id = f"replayed_{schema}"
            for timestamp in months[:2]:
                with psycopg.connect(url, autocommit=True) as connection:
                    connection.execute(f"SET search_path TO {schema}, public")
                    connection.execute(statements[schema], params(transaction_id, timestamp))
            results[f"{schema}: replayed across two months, one after the other"] = [
                stored(schema, transaction_id)
            ]
            counts = []
            for round_ in range(rounds):
                transaction_id = f"concurrent_{schema}_{round_}"
                barrier = threading.Barrier(connections)
                payloads = [params(transaction_id, months[i % MONTHS]) for i in range(connections)]
                errors: list[BaseException] = []

                def send(payload: dict, schema: str = schema, barrier=barrier, errors=errors):
                    try:
                        with psycopg.connect(url) as connection:
                            connection.execute(f"SET search_path TO {schema}, public")
                            barrier.wait()
                            connection.execute(statements[schema], payload)
                            connection.commit()
                    except BaseException as exc:  # reported below
                        errors.append(exc)

                threads = [threading.Thread(target=send, args=(p,)) for p in payloads]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                if errors:
                    raise SystemExit(f"{schema}: {errors[0]!r}")
                counts.append(stored(schema, transaction_id))
            results[f"{schema}: {connections} connections at once, {rounds} rounds"] = counts
        self.use("plain")
        return results


def summary(samples: dict[str, list[float]], per: int = 1) -> str:
    wall, cpu, wal = (statistics.median(samples[key]) for key in ("wall", "cpu", "wal"))
    text = f"wall {wall:9.2f} ms  backend CPU {cpu:8.2f} ms  WAL {wal / 1024:9.1f} KiB"
    if per > 1:
        text += f"  | per event: CPU {cpu * 1000 / per:6.1f} us, WAL {wal / per:6.0f} B"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--sizes", default="1000000,5000000", help="stored events, ascending")
    parser.add_argument("--batches", type=int, default=30, help="100-event batches per size")
    parser.add_argument("--big-batches", type=int, default=4, help="5,000-event batches")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each read")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    recreate(args.database_url)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
    import django

    django.setup()
    started = time.perf_counter()
    print(f"load average at start: {loadavg()}")
    bench = Bench(args)
    try:
        bench.create_tables()
        for size in sizes:
            loaded = bench.load(size)
            print(f"\n== {size:,} events stored (load average {loadavg()})")
            for schema, figures in loaded.items():
                print(
                    f"  bulk load to this size, {schema:5}: wall {figures['wall'] / 1000:6.1f} s,"
                    f" backend CPU {figures['cpu'] / 1000:6.1f} s,"
                    f" WAL {figures['wal'] / 2**20:7.0f} MiB"
                )
            for batch_size, count in ((100, args.batches), (5000, args.big_batches)):
                written = bench.write_batches(batch_size, count)
                for schema, figures in written.items():
                    print(
                        f"  batch of {batch_size:5} ({count} each), {schema:5}: "
                        + summary(figures, batch_size)
                    )
            for name, by_schema in bench.reads(args.repeat).items():
                for schema, figures in by_schema.items():
                    print(f"  {name:43} {schema:5}: " + summary(figures))
            for schema, figures in bench.sizes().items():
                for label, bytes_ in figures.items():
                    print(f"  size {schema:5} {label:32} {bytes_ / 2**20:9.1f} MiB")
        print(f"\n== retention: the oldest month (load average {loadavg()})")
        for name, figures in bench.retention().items():
            text = ", ".join(
                f"{key} {value / 1024:.0f} KiB" if key == "wal" else f"{key} {value:,.1f}"
                for key, value in figures.items()
            )
            print(f"  {name:32} {text}")
        print("\n== idempotency: rows stored per transaction id")
        for name, counts in bench.idempotency(args.database_url, 8, 10).items():
            print(f"  {name:60} {counts}")
        print(f"\nload average at end: {loadavg()}; run took {time.perf_counter() - started:.0f} s")
    finally:
        from django.db import connection

        connection.close()
        if not args.keep:
            drop(args.database_url)


if __name__ == "__main__":
    main()
