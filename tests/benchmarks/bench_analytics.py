"""Analytics endpoints and the finance overview on a big organization (docs/benchmarks.md).

Not a pytest module (pytest ignores tests/benchmarks). Run from the project folder:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_bench_analytics \
        .venv/bin/python tests/benchmarks/bench_analytics.py --invoices 100000 --fees-per-invoice 10

The database is created and migrated when missing, then emptied of the previous run's
organization. One organization created 24 months ago, 1,000 customers (companies and
individuals in five countries), plans of every interval
(monthly in arrears and in advance, weekly, quarterly, semiannual and yearly), 4 billable metrics
with a charge each; then, bulk-inserted with `INSERT ... SELECT generate_series` (not through the
ORM): `--invoices` invoices over the 24 months (94 % finalized, 3 % voided, 3 % drafts; paid,
pending, failed and overdue), `--fees-per-invoice` fees on each (a subscription fee, charge fees,
a fixed charge, a commitment or add-on), and 20,000 pay-in-advance fees with no invoice;
`ANALYZE`. Then, in-process through Django's test client (authentication, DRF, serialization
included; no HTTP socket), each analytics endpoint `--requests` times, with the currency of the
dashboard and without, usage with each of its filters, and the admin overview page as a
logged-in superuser. Prints p50 / p95 per request, then per request the queries, their SQL time
(each SELECT run again under EXPLAIN ANALYZE) and the rows its scans read, and exits non-zero
past the targets (endpoints p50 <= 200 ms, overview p50 <= 300 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing_bench_analytics")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key")
# the limiter is not what is measured (with DEBUG off its default, 50 requests/s, answers 429)
os.environ.setdefault("API_RATE_LIMITS", "events=1000000,usage=1000000,default=1000000")

from tests.benchmarks._db import ensure_database, reset  # noqa: E402 (after sys.path)

ORGANIZATION = "Analytics benchmark"
CUSTOMERS = 1000
ENDPOINT_TARGET_MS = 200
OVERVIEW_TARGET_MS = 300
# the last 45 days: half pending, 10 % failed; older invoices: 2 % pending, 1 % failed (overdue)
PAYMENT_STATUS_SQL = """(CASE
    WHEN d >= CURRENT_DATE - 45 THEN (ARRAY['pending', 'pending', 'pending', 'pending', 'pending',
        'failed', 'succeeded', 'succeeded', 'succeeded', 'succeeded'])[1 + n %% 10]
    WHEN n %% 100 < 2 THEN 'pending' WHEN n %% 100 < 3 THEN 'failed'
    ELSE 'succeeded' END)"""
PLANS = (  # code, interval, pay in advance, amount
    ("m_arrears", "monthly", False, 9900),
    ("m_advance", "monthly", True, 4900),
    ("weekly", "weekly", False, 1500),
    ("quarterly", "quarterly", True, 27000),
    ("semiannual", "semiannual", False, 50000),
    ("yearly", "yearly", True, 100000),
)


def setup(args: argparse.Namespace):
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from billing.models import Organization
    from billing.services import organization_create
    from customers.models import Customer, Subscription
    from plans.models import BillableMetric, Charge, Plan

    call_command("migrate", "--no-input", verbosity=0)
    reset(ORGANIZATION)
    organization = organization_create(name=ORGANIZATION, default_currency="EUR")
    start = (datetime.now(UTC) - timedelta(days=730)).replace(day=1)
    Organization.objects.filter(pk=organization.pk).update(created_at=start)
    entity = organization.default_billing_entity()
    customers = Customer.objects.bulk_create(
        Customer(organization=organization, billing_entity=entity, external_id=f"bench_{i:05d}",
                 name=f"Customer {i}", currency="EUR", sequential_id=i + 1,
                 customer_type=("company", "individual")[i % 2],
                 country=("FR", "DE", "US", "GB", "ES")[i % 5])
        for i in range(CUSTOMERS)
    )  # fmt: skip
    plans = Plan.objects.bulk_create(
        Plan(organization=organization, code=code, name=code, interval=interval,
             pay_in_advance=advance, amount_cents=amount, amount_currency="EUR")
        for code, interval, advance, amount in PLANS
    )  # fmt: skip
    metrics = BillableMetric.objects.bulk_create(
        BillableMetric(organization=organization, code=f"metric_{i}", name=f"Metric {i}",
                       aggregation_type="sum_agg", field_name="value")
        for i in range(4)
    )  # fmt: skip
    charges = Charge.objects.bulk_create(
        Charge(organization=organization, plan=plan, billable_metric=metric,
               code=f"{plan.code}_{metric.code}", charge_model="standard",
               properties={"amount": "0.01"})
        for plan in plans
        for metric in metrics
    )  # fmt: skip
    subscriptions = Subscription.objects.bulk_create(
        Subscription(organization=organization, customer=customer, plan=plans[i % len(plans)],
                     external_id=f"bench_sub_{i:05d}", status="active", billing_time="calendar",
                     subscription_at=start, started_at=start)
        for i, customer in enumerate(customers)
    )  # fmt: skip
    with connection.cursor() as cursor:
        _insert_rows(cursor, args, organization, entity, start, customers, subscriptions, charges)
        cursor.execute("VACUUM ANALYZE invoicing_invoice")
        cursor.execute("VACUUM ANALYZE invoicing_fee")
        cursor.execute("ANALYZE customers_customer")  # the usage filters join customers
    from invoicing.services.analytics_figures import DELTAS, figures_rebuild

    t0 = time.perf_counter()
    monthly, spread = figures_rebuild(organization=organization)
    print(
        f"  figures rebuilt in {time.perf_counter() - t0:.1f} s ({monthly} monthly rows, "
        f"{spread} spread rows)",
        flush=True,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE invoicing_monthlyfeefigure")
        cursor.execute("ANALYZE invoicing_spreadfeefigure")
        cursor.execute("ANALYZE invoicing_dailyusagefigure")
        for model in DELTAS:
            cursor.execute(f"ANALYZE {model._meta.db_table}")
    return organization


def _insert_rows(cursor, args, organization, entity, start, customers, subscriptions, charges):
    """The invoices and fees, generated by PostgreSQL from the ids of the rows above."""
    t0 = time.perf_counter()
    cursor.execute(
        "CREATE TEMP TABLE bench_customers"
        " (idx int, customer_id uuid, subscription_id uuid, plan_index int)"
    )
    cursor.executemany(
        "INSERT INTO bench_customers VALUES (%s, %s, %s, %s)",
        [
            (i, c.pk, s.pk, i % len(PLANS))
            for i, (c, s) in enumerate(zip(customers, subscriptions, strict=True))
        ],
    )
    cursor.execute("CREATE TEMP TABLE bench_charges (plan_index int, slot int, charge_id uuid)")
    per_plan = len(charges) // len(PLANS)
    cursor.executemany(
        "INSERT INTO bench_charges VALUES (%s, %s, %s)",
        [(i // per_plan, i % per_plan, charge.pk) for i, charge in enumerate(charges)],
    )
    org, entity_id = str(organization.pk), str(entity.pk)
    # invoices: n -> customer n % 1000, issued on a day of month (n % 730) from the start
    cursor.execute(
        """
        INSERT INTO invoicing_invoice (
            id, created_at, updated_at, invoice_type, status, payment_status, number,
            issuing_date, payment_due_date, net_payment_term, payment_overdue, currency,
            fees_amount_cents, coupons_amount_cents, credit_notes_amount_cents,
            progressive_billing_credit_amount_cents, sub_total_excluding_taxes_amount_cents,
            taxes_amount_cents, taxes_rate, sub_total_including_taxes_amount_cents,
            prepaid_credit_amount_cents, prepaid_granted_credit_amount_cents,
            prepaid_purchased_credit_amount_cents, total_amount_cents, total_paid_amount_cents,
            total_offsetted_credit_note_amount_cents, version_number, self_billed,
            ready_to_be_refreshed, file, error_details,
            billing_entity_id, customer_id, organization_id, sequential_id, finalized_at)
        SELECT
            gen_random_uuid(), d::timestamptz, d::timestamptz, 'subscription',
            CASE WHEN n %% 100 < 94 THEN 'finalized' WHEN n %% 100 < 97 THEN 'voided'
                 ELSE 'draft' END,
            %(payment_status)s, 'BENCH-' || lpad((n + 1)::text, 6, '0'),
            d, d + 30, 30, (%(payment_status)s <> 'succeeded' AND d + 30 < CURRENT_DATE), 'EUR',
            10000, 0, 0, 0, 10000, 2000, 20, 12000, 0, 0, 0, 12000,
            CASE WHEN %(payment_status)s = 'succeeded' THEN 12000 ELSE 0 END, 0,
            4, false, false, '', '[]'::jsonb, %(entity)s, bc.customer_id, %(org)s, n + 1,
            d::timestamptz
        FROM generate_series(0, %(count)s - 1) AS n
        JOIN bench_customers bc ON bc.idx = n %% %(customers)s
        CROSS JOIN LATERAL (SELECT (%(start)s::date + (n %% 730))::date AS d) AS day
        """.replace("%(payment_status)s", PAYMENT_STATUS_SQL),
        {"entity": entity_id, "org": org, "count": args.invoices, "customers": CUSTOMERS,
         "start": start.date()},
    )  # fmt: skip
    t1 = time.perf_counter()
    print(f"  {args.invoices:,} invoices inserted in {t1 - t0:.1f} s", flush=True)
    # fees: per invoice, k = 0 subscription, last = fixed charge / commitment / add-on,
    # the others charges (cycling over the plan's charges)
    cursor.execute(
        """
        INSERT INTO invoicing_fee (
            id, created_at, updated_at, fee_type, amount_cents, precise_amount_cents,
            amount_currency, unit_amount_cents, precise_unit_amount, units, events_count,
            taxes_amount_cents, taxes_precise_amount_cents, taxes_rate,
            precise_coupons_amount_cents, precise_credit_notes_amount_cents, pay_in_advance,
            invoiceable, payment_status, pay_in_advance_event_transaction_id,
            invoice_display_name, description, amount_details, grouped_by, properties,
            customer_id, organization_id, presentation_breakdowns, invoice_id, subscription_id,
            charge_id)
        SELECT
            gen_random_uuid(), i.created_at, i.created_at,
            CASE WHEN k = 0 THEN 'subscription'
                 WHEN k = %(last)s
                 THEN (ARRAY['fixed_charge', 'commitment', 'add_on'])[1 + i.sequential_id %% 3]
                 ELSE 'charge' END,
            1000, 1000, 'EUR', 1000, 10, 100, 10, 200, 200, 20, 0, 0, false, true,
            i.payment_status,
            '', '', '', '{}'::jsonb, '{}'::jsonb,
            CASE WHEN k = 0 THEN jsonb_build_object(
                'from_datetime', (i.issuing_date - 30)::timestamptz,
                'to_datetime', i.issuing_date::timestamptz - interval '1 second')
            ELSE '{}'::jsonb END,
            i.customer_id, i.organization_id, '[]'::jsonb, i.id, bc.subscription_id,
            CASE WHEN k > 0 AND k < %(last)s THEN ch.charge_id END
        FROM invoicing_invoice i
        JOIN bench_customers bc ON bc.customer_id = i.customer_id
        CROSS JOIN generate_series(0, %(last)s) AS k
        LEFT JOIN bench_charges ch ON ch.plan_index = bc.plan_index AND ch.slot = k %% 4
        WHERE i.organization_id = %(org)s
        """,
        {"org": org, "last": args.fees_per_invoice - 1},
    )  # fmt: skip
    t2 = time.perf_counter()
    print(f"  {cursor.rowcount:,} fees inserted in {t2 - t1:.1f} s", flush=True)
    cursor.execute(
        """
        INSERT INTO invoicing_fee (
            id, created_at, updated_at, fee_type, amount_cents, precise_amount_cents,
            amount_currency, unit_amount_cents, precise_unit_amount, units, events_count,
            taxes_amount_cents, taxes_precise_amount_cents, taxes_rate,
            precise_coupons_amount_cents, precise_credit_notes_amount_cents, pay_in_advance,
            invoiceable, payment_status, pay_in_advance_event_transaction_id,
            invoice_display_name, description, amount_details, grouped_by, properties,
            customer_id, organization_id, presentation_breakdowns, subscription_id, charge_id)
        SELECT gen_random_uuid(), %(start)s::timestamptz + (n %% 730) * interval '1 day',
            now(), 'charge', 50, 50, 'EUR', 50, 0.5, 1, 1, 0, 0, 0, 0, 0, true, false,
            'succeeded', 'bench_' || n, '', '', '{}'::jsonb, '{}'::jsonb, '{}'::jsonb,
            bc.customer_id, %(org)s, '[]'::jsonb, bc.subscription_id, ch.charge_id
        FROM generate_series(0, 19999) AS n
        JOIN bench_customers bc ON bc.idx = n %% %(customers)s
        JOIN bench_charges ch ON ch.plan_index = bc.plan_index AND ch.slot = n %% 4
        """,
        {"org": org, "customers": CUSTOMERS, "start": start},
    )  # fmt: skip
    print(f"  20,000 uninvoiced pay-in-advance fees in {time.perf_counter() - t2:.1f} s")


def _scanned(plan: dict) -> int:
    """Rows read by the scan nodes of an EXPLAIN (ANALYZE, FORMAT JSON) plan: returned and
    removed by a filter, times the loops."""
    rows = 0
    if "Scan" in plan.get("Node Type", ""):
        loops = plan.get("Actual Loops", 1)
        rows += (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops
    return rows + sum(_scanned(child) for child in plan.get("Plans", []))


def sql_profile(call) -> tuple[int, float, int]:
    """(queries, SQL execution time in ms, rows scanned) of one request: its SELECTs captured,
    then each run again under EXPLAIN ANALYZE."""
    import json

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        call()
    selects = [
        q["sql"] for q in captured.captured_queries if q["sql"].lstrip().startswith("SELECT")
    ]
    total_ms, rows = 0.0, 0
    with connection.cursor() as cursor:
        for sql in selects:
            cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql.replace("%", "%%"))
            result = cursor.fetchone()[0]
            plan = (json.loads(result) if isinstance(result, str) else result)[0]
            total_ms += plan["Execution Time"]
            rows += _scanned(plan["Plan"])
    return len(captured.captured_queries), total_ms, rows


def measure(label: str, call, requests: int) -> dict:
    call()  # warm-up: imports, plans cached by PostgreSQL
    timings = []
    for _ in range(requests):
        t0 = time.perf_counter()
        response = call()
        timings.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (label, response.status_code, response.content[:300])
    timings.sort()
    p50 = statistics.median(timings)
    p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
    print(f"  {label:<48} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    return {"label": label, "p50": p50, "p95": p95}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--fees-per-invoice", type=int, default=10)
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--skip-setup", action="store_true", help="reuse the previous run's rows")
    args = parser.parse_args()
    ensure_database(os.environ["DATABASE_URL"])
    if args.skip_setup:
        import django

        django.setup()
        from django.core.management import call_command

        from billing.models import Organization

        call_command("migrate", "--no-input", verbosity=0)

        organization = Organization.objects.get(name=ORGANIZATION)
    else:
        print("setting up", flush=True)
        organization = setup(args)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import override_settings

    from billing.services import api_key_create

    _, raw = api_key_create(organization=organization, name="bench")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    user_model = get_user_model()
    admin = user_model.objects.filter(username="bench_admin").first() or (
        user_model.objects.create_superuser("bench_admin", "bench@example.com", "bench-pass")
    )
    browser = Client()
    browser.force_login(admin)
    # static file URLs without a collected manifest (the page's HTML is what is measured)
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    override_settings(STORAGES=storages).enable()
    print("measuring", flush=True)
    results = []
    for path in ("gross_revenue", "mrr", "invoiced_usage", "invoice_collection",
                 "overdue_balance"):  # fmt: skip
        for query in ("?currency=EUR", ""):
            url = f"/api/v1/analytics/{path}{query}"
            results.append(measure(url, lambda url=url: api.get(url), args.requests))
    year_ago = (datetime.now(UTC) - timedelta(days=365)).date().isoformat()
    for query in (
        "", "?time_granularity=monthly", "?time_granularity=weekly",
        f"?time_granularity=monthly&from_date={year_ago}&to_date=2099-12-31",
        "?time_granularity=monthly&customer_type=company",
        "?time_granularity=monthly&customer_country=FR",
        "?time_granularity=monthly&plan_code=yearly",
        "?time_granularity=monthly&billable_metric_code=metric_0",
        "?time_granularity=monthly&is_billable_metric_recurring=false",
        "?time_granularity=monthly&external_customer_id=bench_00007",
        "?time_granularity=monthly&external_subscription_id=bench_sub_00007",
    ):  # fmt: skip
        usage = f"/api/v1/analytics/usage{query}"
        results.append(measure(usage, lambda usage=usage: api.get(usage), args.requests))
    overview = f"/admin/overview/?organization={organization.pk}"
    page = measure("/admin/overview/", lambda: browser.get(overview), args.requests)
    print("SQL per request (EXPLAIN ANALYZE of each SELECT; load average "
          f"{Path('/proc/loadavg').read_text().split()[0]}):")  # fmt: skip
    for result in [*results, page]:
        url = overview if result["label"] == "/admin/overview/" else result["label"]
        client = browser if result["label"] == "/admin/overview/" else api
        queries, sql_ms, rows = sql_profile(lambda url=url, client=client: client.get(url))
        print(f"  {result['label']:<48} {queries:>3} queries  SQL {sql_ms:7.1f} ms"
              f"  {rows:>9,} rows read")  # fmt: skip
    slow = [r["label"] for r in results if r["p50"] > ENDPOINT_TARGET_MS]
    if page["p50"] > OVERVIEW_TARGET_MS:
        slow.append("/admin/overview/")
    if slow:
        print("over target: " + ", ".join(slow))
        return 1
    print("all within targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
