"""Invoice PDF render time (docs/benchmarks.md, target: one-page invoice <= 300 ms).

Not a pytest module (pytest ignores tests/benchmarks). Run from the project folder:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_bench_pdf \
        .venv/bin/python tests/benchmarks/bench_pdf.py --renders 30

The database is created and migrated when missing; the invoice (subscription fee, graduated
charge with its tier breakdown, add-on, coupon, VAT; French locale) is built in a transaction
that is rolled back at the end. The first render (fonts loaded, CSS parsed) is reported apart;
p50/p95 are over the following renders, each `render_invoice_pdf` end to end: context, template,
WeasyPrint layout and PDF.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/billing_bench_pdf")

from tests.benchmarks._db import ensure_database  # noqa: E402 (after sys.path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=30)
    args = parser.parse_args()
    if os.environ["DATABASE_URL"].startswith("postgres"):
        ensure_database(os.environ["DATABASE_URL"])

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    call_command("migrate", verbosity=0)

    from billing.services import organization_create
    from invoicing.pdf import render_invoice_pdf
    from tests.invoicing.test_pdf import keep_sample, pdf_text, rich_invoice

    class Rollback(Exception):
        pass

    timings: list[float] = []
    try:
        with transaction.atomic():
            organization = organization_create(
                name=f"PDF bench {time.time_ns()}", default_currency="EUR", timezone="Europe/Paris"
            )
            invoice = rich_invoice(organization, "fr")
            start = time.perf_counter()
            first = render_invoice_pdf(invoice)
            cold = time.perf_counter() - start
            for _ in range(max(args.renders, 1)):
                start = time.perf_counter()
                render_invoice_pdf(invoice)
                timings.append(time.perf_counter() - start)
            keep_sample("bench-invoice-fr", first)
            _, pages = pdf_text(first)
            raise Rollback
    except Rollback:
        pass
    timings.sort()
    p50 = statistics.median(timings) * 1000
    p95 = timings[max(math.ceil(0.95 * len(timings)) - 1, 0)] * 1000  # nearest rank
    slowest = timings[-1] * 1000
    print(f"pages: {pages}")
    print(f"first render (cold: fonts, CSS): {cold * 1000:.0f} ms")
    print(f"renders: {len(timings)}  p50: {p50:.0f} ms  p95: {p95:.0f} ms  max: {slowest:.0f} ms")
    return 0 if p95 <= 300 else 1


if __name__ == "__main__":
    sys.exit(main())
