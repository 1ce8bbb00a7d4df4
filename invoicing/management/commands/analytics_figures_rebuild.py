"""manage.py analytics_figures_rebuild [--organization NAME] [--dry-run]: recomputes the
figures the analytics and the overview read (fees, invoices, daily usage), from the
counted invoices and their fees and credit notes.

The services keep the figures exact as invoices are finalized, voided or lose a dispute (the
database moves a customer's usage when its type or country changes); run this
after writing invoices or fees another way (an import, a bulk load) or to check the figures
(`--dry-run` prints how many rows would be written and whether they differ, and changes nothing).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from billing.models import Organization
from invoicing.models import (
    DailyUsageFigure,
    MonthlyFeeFigure,
    MonthlyInvoiceFigure,
    SpreadFeeFigure,
)
from invoicing.services.analytics_figures import figures_rebuild


class _DryRun(Exception):
    """Rolls the transaction back once the outcome is printed."""


def _rows(organization: Organization) -> tuple[set, ...]:
    monthly = set(
        MonthlyFeeFigure.objects.filter(organization=organization, fees_count__gt=0).values_list(
            "billing_entity_id", "currency", "issuing_month", "created_month", "fee_type",
            "metric_code", "plan_interval", "net_amount_cents", "mrr_amount_cents", "fees_count",
        )
    )  # fmt: skip
    spread = set(
        SpreadFeeFigure.objects.filter(organization=organization, fees_count__gt=0).values_list(
            "billing_entity_id", "currency", "issuing_date", "period_minutes", "pay_in_advance",
            "mrr_amount_cents", "fees_count",
        )
    )  # fmt: skip
    invoices = set(
        MonthlyInvoiceFigure.objects.filter(organization=organization, invoices_count__gt=0)
        .values_list("billing_entity_id", "currency", "issuing_month", "invoices_count",
                     "total_amount_cents", "refund_amount_cents")
    )  # fmt: skip
    usage = set(
        DailyUsageFigure.objects.filter(organization=organization, fees_count__gt=0).values_list(
            "day", "currency", "charge_id", "customer_type", "customer_country", "amount_cents",
            "units", "fees_count",
        )
    )  # fmt: skip
    return monthly, spread, invoices, usage


class Command(BaseCommand):
    help = "Recomputes the analytics figures from the counted invoices and their fees."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", help="the organization's name (default: all)")
        parser.add_argument("--dry-run", action="store_true", help="compare, change nothing")

    def handle(self, *args: object, **options: object) -> None:
        organizations = Organization.objects.order_by("name")
        if options["organization"]:
            organizations = organizations.filter(name=options["organization"])
            if not organizations.exists():
                raise CommandError(f"no organization named {options['organization']!r}")
        for organization in organizations:
            before = _rows(organization)
            try:
                with transaction.atomic():
                    monthly, spread = figures_rebuild(organization=organization)
                    same = _rows(organization) == before
                    verb = "would write" if options["dry_run"] else "wrote"
                    self.stdout.write(
                        f"{organization.name}: {verb} {monthly} monthly and {spread} spread rows"
                        f" ({'unchanged' if same else 'they differed'})"
                    )
                    if options["dry_run"]:
                        raise _DryRun
            except _DryRun:
                pass
