"""The benchmarks' own databases: created when missing, emptied of the previous run's rows."""

from __future__ import annotations

from urllib.parse import urlparse

# every table a run fills, children first (TRUNCATE ... CASCADE takes care of the rest)
RUN_TABLES = [
    "customers_cachedaggregation",
    "invoicing_feeappliedtax",
    "invoicing_invoiceappliedtax",
    "invoicing_credit",
    "invoicing_fee",
    "invoicing_invoicesubscription",
    "invoicing_invoicemetadata",
    "invoicing_invoicesequence",
    "invoicing_invoice",
    "invoicing_collectionfiguredelta",
    "invoicing_customerfiguredelta",
    "invoicing_receivablefiguredelta",
    "billing_event",
    "billing_outboxevent",
]


def recreate(url: str) -> None:
    """Drops and creates the PostgreSQL database of `url`; refuses a name that does not start
    with `billing_bench` (a benchmark must never drop another database)."""
    import psycopg

    name = url.rsplit("/", 1)[1]
    if not name.startswith("billing_bench"):
        raise SystemExit("the benchmark drops its database; its name must start with billing_bench")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def ensure_database(url: str) -> None:
    """Creates the PostgreSQL database of `url` when it does not exist."""
    import psycopg

    name = urlparse(url).path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')


def reset(organization_name: str) -> None:
    """Drops the previous run's rows (the database is the benchmark's own): the run tables,
    then the catalog, customers and the organization named `organization_name`."""
    from django.db import connection

    from billing.models import Organization
    from customers.models import Customer, Subscription
    from plans.models import BillableMetric, Charge, Plan, Tax

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(RUN_TABLES)} CASCADE")
    for organization in Organization.objects.filter(name=organization_name):
        for model in (Subscription, Customer, Charge, Plan, BillableMetric, Tax):
            model.objects.filter(organization=organization).delete()
        organization.delete()
