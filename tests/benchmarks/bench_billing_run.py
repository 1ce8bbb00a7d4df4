"""Billing run throughput (docs/benchmarks.md, target: >= 5,000 subscriptions invoiced / minute).

Not a pytest module (pytest ignores tests/benchmarks). Run from the project folder:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_bench_run \
        .venv/bin/python tests/benchmarks/bench_billing_run.py --subscriptions 10000 --workers 2

The database is created and migrated when missing, then emptied of the previous run's
organization. One organization, a monthly plan in arrears with three usage charges (standard on a
count, graduated on a sum, package on a unique count) and a tax; N customers with one calendar
subscription each, started 2024-01-01; realistic events in January (count, sum and unique-count
events per subscription, spread over the month). The run is what the hourly job does on
2024-02-01 00:10 UTC: `customers_due`, then `bill_customer` per customer (each one transaction:
lock, usage through the event store, fees, taxes, number, outbox), split across `--workers`
processes as Celery would fan it out, in chunks of `--chunk-size` customers sharing one catalog
(`bill_customers`, what `bill_customers_chunk_task` runs). PDFs are excluded
(`INVOICE_PDF_ON_FINALIZE = False`); the tasks queued after each commit (outbox drain, payment
collection) go to an in-memory broker and are not run (other workers' load in production).
With `--profile`, one worker's share is run under cProfile and the top functions are printed.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import multiprocessing
import os
import pstats
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing_bench_run")

from tests.benchmarks._db import ensure_database, reset  # noqa: E402 (after sys.path)

ORGANIZATION = "Billing run benchmark"
START = datetime(2024, 1, 1, tzinfo=UTC)
BILLING_AT = datetime(2024, 2, 1, 0, 10, tzinfo=UTC)


def setup(subscriptions: int, events_per_metric: int, *, fresh: bool = False) -> None:
    from billing.services import organization_create
    from customers.models import Customer, Subscription
    from metering.store import EventInput, get_event_store
    from plans.models import BillableMetric, Charge, Plan, Tax

    organization = organization_create(
        name=ORGANIZATION, default_currency="EUR", timezone="UTC", document_number_prefix="BEN"
    )
    vat = Tax.objects.create(organization=organization, name="VAT", code="vat", rate=20)
    plan = Plan.objects.create(
        organization=organization,
        name="Usage",
        code="usage",
        interval="monthly",
        amount_cents=4900,
        amount_currency="EUR",
    )
    plan.taxes.add(vat)
    calls = BillableMetric.objects.create(
        organization=organization, name="Calls", code="calls", aggregation_type="count_agg"
    )
    storage = BillableMetric.objects.create(
        organization=organization,
        name="Storage",
        code="storage",
        aggregation_type="sum_agg",
        field_name="gb",
    )
    users = BillableMetric.objects.create(
        organization=organization,
        name="Users",
        code="users",
        aggregation_type="unique_count_agg",
        field_name="user_id",
    )
    tiers = [
        {"from_value": 0, "to_value": 100, "per_unit_amount": "0.5", "flat_amount": "1"},
        {"from_value": 101, "to_value": None, "per_unit_amount": "0.25", "flat_amount": "0"},
    ]
    charges = [
        (calls, "standard", {"amount": "0.02"}),
        (storage, "graduated", {"graduated_ranges": tiers}),
        (users, "package", {"amount": "10", "package_size": 5, "free_units": 2}),
    ]
    for metric, model, properties in charges:
        Charge.objects.create(
            organization=organization,
            plan=plan,
            billable_metric=metric,
            code=metric.code,
            charge_model=model,
            properties=properties,
        )
    entity = organization.default_billing_entity()
    customers = Customer.objects.bulk_create(
        Customer(
            organization=organization,
            billing_entity=entity,
            external_id=f"bench_{n:06d}",
            sequential_id=n + 1,
            name=f"Customer {n}",
            currency="EUR",
            timezone="UTC",
        )
        for n in range(subscriptions)
    )
    rows = Subscription.objects.bulk_create(
        Subscription(
            organization=organization,
            customer=customer,
            plan=plan,
            external_id=f"sub_{n:06d}",
            status=Subscription.Status.ACTIVE,
            subscription_at=START,
            started_at=START,
        )
        for n, customer in enumerate(customers)
    )
    store = get_event_store()
    rng = random.Random(42)
    batch: list[EventInput] = []
    written = 0
    for n, subscription in enumerate(rows):
        for index in range(events_per_metric * 3):
            code = ("calls", "storage", "users")[index % 3]
            properties = {}
            value = None
            if code == "storage":
                value = Decimal(rng.randint(1, 40))
                properties = {"gb": str(value)}
            elif code == "users":
                properties = {"user_id": f"u{rng.randint(1, 12)}"}
            batch.append(
                EventInput(
                    transaction_id=f"{n}-{index}",
                    external_subscription_id=subscription.external_id,
                    code=code,
                    timestamp=START + timedelta(minutes=rng.randint(0, 31 * 24 * 60 - 1)),
                    properties=properties,
                    value=value,
                    subscription_id=subscription.pk,
                    customer_id=subscription.customer_id,
                )
            )
        if len(batch) >= 3000:
            written += len(store.write_batch(organization.id, batch, now=START).events)
            batch = []
    if batch:
        written += len(store.write_batch(organization.id, batch, now=START).events)
    from django.db import connection

    with connection.cursor() as cursor:
        # A month's events in production have been through autovacuum before the run that
        # bills them (insert-driven vacuum, PostgreSQL 13+): planner statistics, hint bits and
        # the visibility map set. A freshly loaded table has none of these: without statistics
        # the planner scans the (organization, timestamp) index instead of the aggregation
        # index (~30 ms instead of ~0.1 ms per aggregation at 60,000 events), and the run's
        # first reads pay for setting the hint bits (measured: 15.0 instead of 3.8 ms of
        # PostgreSQL CPU a subscription). `--no-vacuum` measures that freshly loaded case.
        # Only the tables the setup filled: autovacuum leaves an empty table alone, and once
        # analyzed as empty, a table the run fills from nothing (invoices) keeps the plans that
        # suit an empty table, in particular the foreign-key checks each backend plans once
        # and caches (a sequential scan of the invoices for every fee row: measured 4.4 ->
        # 12.5 ms of PostgreSQL CPU a subscription over a 10,000-subscription run). With
        # autovacuum on, as in production, the run's own inserts get the tables analyzed again
        # and those plans replaced; the CI configuration of this machine's server turns it off.
        command = "ANALYZE" if fresh else "VACUUM (ANALYZE)"
        for table in filled_tables(cursor):
            cursor.execute(f'{command} "{table}"')
    print(f"setup: {subscriptions} subscriptions, {written} events", file=sys.stderr)


def filled_tables(cursor) -> list[str]:
    """The names of this database's tables (schema public) that hold at least one row."""
    cursor.execute(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
    )
    filled = []
    for (table,) in cursor.fetchall():
        cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{table}")')
        if cursor.fetchone()[0]:
            filled.append(table)
    return filled


def drop_invoices() -> None:
    """The previous run's invoices and what billing wrote with them (`--skip-setup`)."""
    from django.db import connection

    from tests.benchmarks._db import RUN_TABLES

    kept = ("billing_event", "customers_cachedaggregation")
    with connection.cursor() as cursor:
        tables = ", ".join(t for t in RUN_TABLES if t not in kept)
        cursor.execute(f"TRUNCATE {tables} CASCADE")


def _backend_cpu_reader():  # -> Callable[[], float]
    """CPU seconds used so far by this process's PostgreSQL backend (user + system, from
    /proc: the server runs on this machine), or 0.0 when it cannot be read."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / ticks

    return read


def bill_share(job: tuple[list[str], int]) -> tuple[int, int, float, float, int, float]:
    """Bills a share of the due customers, in chunks as `bill_customers_chunk_task` does (or one
    `bill_customer` each with chunk size 0); (invoices, subscriptions, seconds, CPU seconds,
    SQL statements, CPU seconds of its PostgreSQL backend)."""
    customer_ids, chunk_size = job
    from django.conf import settings
    from django.db import connection, connections

    settings.INVOICE_PDF_ON_FINALIZE = False
    from billing.celery import app

    # the tasks queued after each commit (outbox drain, payment collection) go to a broker for
    # other workers, as in production, instead of running eagerly inside the measured run
    app.conf.broker_url, app.conf.task_always_eager = "memory://", False
    from billing.actors import SYSTEM
    from customers.models import Customer
    from invoicing.services.billing_run import bill_customer

    connections.close_all()
    from invoicing.models import InvoiceSubscription

    invoice_ids: list = []
    statements = [0]

    def count(execute, sql, params, many, context):
        statements[0] += 1
        return execute(sql, params, many, context)

    backend = _backend_cpu_reader()
    start, cpu, db_cpu = time.perf_counter(), time.process_time(), backend()
    day = BILLING_AT.date()
    with connection.execute_wrapper(count):
        if chunk_size:
            from invoicing.services.billing_run import bill_customers

            for index in range(0, len(customer_ids), chunk_size):
                chunk = [(pk, day) for pk in customer_ids[index : index + chunk_size]]
                for result in bill_customers(due=chunk, actor=SYSTEM, now=BILLING_AT):
                    invoice_ids.extend(invoice.pk for invoice in result.invoices)
        for customer_id in customer_ids if not chunk_size else ():
            customer = Customer(pk=customer_id)
            result = bill_customer(
                customer=customer, billing_date=day, actor=SYSTEM, now=BILLING_AT
            )
            invoice_ids.extend(invoice.pk for invoice in result.invoices)
    elapsed, cpu, db_cpu = (
        time.perf_counter() - start,
        time.process_time() - cpu,
        backend() - db_cpu,
    )
    invoices = len(invoice_ids)
    subscriptions = InvoiceSubscription.objects.filter(invoice_id__in=invoice_ids).count()
    connections.close_all()
    return invoices, subscriptions, elapsed, cpu, statements[0], db_cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--events-per-metric", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=100,
        help="customers per chunk (BILLING_RUN_CHUNK_SIZE); 0: one bill_customer each",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile one worker's share")
    parser.add_argument("--limit", type=int, default=0, help="bill only the first N due customers")
    parser.add_argument(
        "--no-vacuum",
        action="store_true",
        help="bill the events right after loading them (no VACUUM: the first reads set hint bits)",
    )
    parser.add_argument(
        "--skip-setup",
        action="store_true",
        help="keep the previous run's customers and events; only its invoices are dropped",
    )
    args = parser.parse_args()
    if os.environ["DATABASE_URL"].startswith("postgres"):
        ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    settings.INVOICE_PDF_ON_FINALIZE = False
    call_command("migrate", verbosity=0)
    print(f"load average before: {os.getloadavg()}", file=sys.stderr)
    if args.skip_setup:
        drop_invoices()
    else:
        reset(ORGANIZATION)
        started = time.perf_counter()
        setup(args.subscriptions, args.events_per_metric, fresh=args.no_vacuum)
        print(f"setup took {time.perf_counter() - started:.1f} s", file=sys.stderr)

    from invoicing.services.billing_run import customers_due

    start = time.perf_counter()
    due = customers_due(now=BILLING_AT)
    selection = time.perf_counter() - start
    ids = [str(customer_id) for customer_id, _ in due][: args.limit or None]
    connections.close_all()

    if args.profile:
        profiler = cProfile.Profile(time.process_time)  # CPU time: robust to the load
        share = ids[: max(len(ids) // 10, 1)]
        profiler.enable()
        invoices, subs, elapsed, *_ = bill_share((share, args.chunk_size))
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(
            os.environ.get("SORT", "cumulative")
        ).print_stats(int(os.environ.get("ROWS", "45")))
        print(out.getvalue())
        rate = subs / elapsed * 60
        print(f"profiled share: {subs} subscriptions in {elapsed:.1f} s = {rate:,.0f} / min")
        return 0

    shares = [(ids[i :: args.workers], args.chunk_size) for i in range(args.workers)]
    start = time.perf_counter()
    if args.workers == 1:
        results = [bill_share(shares[0])]
    else:
        context = multiprocessing.get_context("fork")
        with context.Pool(args.workers) as pool:
            results = pool.map(bill_share, shares)
    wall = time.perf_counter() - start
    invoices = sum(r[0] for r in results)
    subscriptions = sum(r[1] for r in results)
    cpu = sum(r[3] for r in results)
    statements = sum(r[4] for r in results)
    db_cpu = sum(r[5] for r in results)
    rate = subscriptions / (wall + selection) * 60
    print(
        f"customers_due: {len(due)} customers in {selection:.2f} s; "
        f"billing: {invoices} invoices, {subscriptions} subscriptions in {wall:.1f} s "
        f"with {args.workers} worker(s)"
    )
    print(
        f"worker CPU: {cpu / max(subscriptions, 1) * 1000:.1f} ms per subscription "
        f"(Python side; PostgreSQL runs on the same cores); load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    per_sub = max(subscriptions, 1)
    print(
        f"PostgreSQL backends' CPU: {db_cpu / per_sub * 1000:.1f} ms per subscription; "
        f"SQL statements: {statements / per_sub:.1f} per subscription"
    )
    total_cpu = (cpu + db_cpu) / per_sub
    if total_cpu:
        print(
            f"CPU-bound capacity of this machine when idle ({os.cpu_count()} cores, workers + "
            f"PostgreSQL): {os.cpu_count() * 60 / total_cpu:,.0f} subscriptions / minute"
        )
    print(f"throughput: {rate:,.0f} subscriptions invoiced / minute (target >= 5,000)")
    again = customers_due(now=BILLING_AT + timedelta(hours=1))
    print(
        f"re-run an hour later: {len(again)} customers still due (expected {len(due) - len(ids)})"
    )
    return 0 if rate >= 5000 and len(again) == len(due) - len(ids) else 1


if __name__ == "__main__":
    sys.exit(main())
