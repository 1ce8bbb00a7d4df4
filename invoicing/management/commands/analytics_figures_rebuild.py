"""manage.py analytics_figures_rebuild [--organization NAME] [--dry-run]: recomputes the
figures the analytics and the overview read (fees, invoices, daily usage, and the collection,
customer and receivable figure deltas), from the counted invoices and their fees and credit
notes.

The services keep the figures exact as invoices are finalized, voided or lose a dispute (the
database appends the invoices' figure deltas and moves a customer's usage when its type or
country changes); run this after writing invoices or fees another way (an import, a bulk load)
or to check the figures (`--dry-run` prints how many rows would be written and whether the
figures, summed per key, differ; it changes nothing).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.models import Organization
from invoicing.services.analytics_figures import (
    figures_rebuild,
    figures_snapshot,
    figures_summed,
)


class _DryRun(Exception):
    """Rolls the transaction back once the outcome is printed."""


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
            try:
                # one snapshot for the comparison too: an invoice finalized meanwhile would
                # otherwise show as a difference
                with figures_snapshot():
                    before = figures_summed(organization)
                    monthly, spread = figures_rebuild(organization=organization)
                    same = figures_summed(organization) == before
                    verb = "would write" if options["dry_run"] else "wrote"
                    self.stdout.write(
                        f"{organization.name}: {verb} {monthly} monthly and {spread} spread rows"
                        f" ({'unchanged' if same else 'they differed'})"
                    )
                    if options["dry_run"]:
                        raise _DryRun
            except _DryRun:
                pass
