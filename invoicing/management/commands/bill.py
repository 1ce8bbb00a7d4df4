"""manage.py bill [--date D] [--customer X] [--organization O] [--dry-run]: the billing run.

Without `--date`, bills what the hourly job bills now (each customer's local today). With
`--date D`, bills exactly what the hourly job would have billed on D (spec §27): periods ending
on D - 1 in each customer's timezone, in-advance fees of periods starting on D, decided from the
subscriptions' start and period dates, never from when their rows were created. Running it again
for the same D bills nothing twice. Exit code 1 when an invoice could not be generated.
"""

from __future__ import annotations

import logging
import sys
import uuid
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from billing.actors import SYSTEM
from billing.models import Organization
from customers.models import Customer
from invoicing.models import Invoice
from invoicing.services.billing_run import CustomerBilling, bill_customer, customers_due

logger = logging.getLogger(__name__)
# No customer is more than 14 hours ahead of UTC.
_AHEAD_OF_UTC = timedelta(hours=14)


class _DryRun(Exception):
    """Rolls one customer's billing back once it is printed."""

    def __init__(self, result: CustomerBilling) -> None:
        super().__init__("dry run")
        self.result = result


class Command(BaseCommand):
    help = "Bills the customers whose billing day has come (or the given date), idempotently."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--date",
            type=date.fromisoformat,
            help="billing date YYYY-MM-DD (default: each customer's local today)",
        )
        parser.add_argument("--customer", help="external id of the customer to bill")
        parser.add_argument("--organization", help="organization name or lago id")
        parser.add_argument(
            "--dry-run", action="store_true", help="compute and print the invoices, write nothing"
        )

    def handle(self, *args: object, **options: object) -> None:
        now = timezone.now()
        billing_date: date | None = options["date"]  # type: ignore[assignment]
        if billing_date is not None and billing_date > (now + _AHEAD_OF_UTC).date():
            raise CommandError(f"{billing_date} has not started in any timezone yet")
        organization = self._organization(options.get("organization"))  # type: ignore[arg-type]
        customers = self._customers(options.get("customer"), organization)  # type: ignore[arg-type]
        due = customers_due(
            now=now,
            billing_date=billing_date,
            organization=organization,
            customer_ids=customers,
        )
        created = already = failed = 0
        dry_run = bool(options["dry_run"])
        names = dict(
            Customer.objects.filter(pk__in={pk for pk, _ in due}).values_list("pk", "external_id")
        )
        progress = getattr(self.stderr, "_out", sys.stderr)  # tqdm needs the raw stream
        for customer_id, day in tqdm(
            due, desc="billing", unit="customer", file=progress, disable=not due
        ):
            try:
                result = self._bill(customer_id, day, now, dry_run=dry_run)
            except Exception as exc:
                failed += 1
                logger.exception("customer %s not billed on %s", customer_id, day)
                self.stderr.write(f"FAILED {names.get(customer_id, customer_id)} {day}: {exc}")
                continue
            created += len(result.invoices)
            already += len(result.already_billed)
            if dry_run or options["verbosity"] > 1:  # type: ignore[operator]
                for invoice in result.invoices:
                    self.stdout.write(self._line(names.get(customer_id, ""), day, invoice))
        when = billing_date.isoformat() if billing_date else "today"
        summary = (
            f"{'would bill' if dry_run else 'billed'} {created} invoice(s) for "
            f"{len(due)} customer(s) due {when}; {already} already billed, {failed} failed"
        )
        self.stdout.write(summary + (" (dry run, nothing written)" if dry_run else ""))
        if failed:
            raise CommandError(f"{failed} customer(s) could not be billed")

    def _bill(self, customer_id, day: date, now, *, dry_run: bool) -> CustomerBilling:
        customer = Customer.objects.get(pk=customer_id)
        if not dry_run:
            return bill_customer(customer=customer, billing_date=day, actor=SYSTEM, now=now)
        try:
            with transaction.atomic():
                result = bill_customer(customer=customer, billing_date=day, actor=SYSTEM, now=now)
                # read what the run wrote before it is rolled back
                for invoice in result.invoices:
                    invoice.fees_count = invoice.fees.count()  # type: ignore[attr-defined]
                raise _DryRun(result)
        except _DryRun as rolled_back:
            return rolled_back.result

    @staticmethod
    def _line(external_id: str, day: date, invoice: Invoice) -> str:
        fees = getattr(invoice, "fees_count", None)
        if fees is None:
            fees = invoice.fees.count()
        return (
            f"{external_id}\t{day}\t{invoice.number}\t{invoice.status}\t"
            f"{invoice.total_amount_cents} {invoice.currency}\t{fees} fee(s)"
        )

    @staticmethod
    def _organization(value: str | None) -> Organization | None:
        if not value:
            return None
        found = Organization.objects.filter(name=value).first()
        if found is None:
            try:
                found = Organization.objects.filter(pk=uuid.UUID(value)).first()
            except ValueError:  # neither a name nor a lago id
                found = None
        if found is None:
            raise CommandError(f"unknown organization {value!r}")
        return found

    @staticmethod
    def _customers(external_id: str | None, organization: Organization | None) -> list | None:
        if not external_id:
            return None
        rows = Customer.objects.filter(external_id=external_id, deleted_at__isnull=True)
        if organization is not None:
            rows = rows.filter(organization=organization)
        ids = list(rows.values_list("pk", flat=True))
        if not ids:
            raise CommandError(f"unknown customer {external_id!r}")
        return ids
