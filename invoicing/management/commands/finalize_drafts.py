"""manage.py finalize_drafts [--dry-run]: the hourly job of spec §27 (:20), by hand.

Finalizes the draft invoices whose grace period is over in their customer's timezone
(`COALESCE(expected_finalization_date, issuing_date) <= today`, spec §12.5). A draft that cannot
be finalized becomes `failed` (retried every 15 minutes); the exit code is then 1.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from billing.actors import SYSTEM
from invoicing.models import Invoice
from invoicing.services.lifecycle import finalize_due_drafts


class _DryRun(Exception):
    """Rolls the transaction back once the outcome is printed."""


class Command(BaseCommand):
    help = "Finalizes the draft invoices whose grace period is over."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="list the drafts, change nothing"
        )

    def handle(self, *args: object, **options: object) -> None:
        now = timezone.now()
        failed_before = Invoice.objects.filter(status=Invoice.Status.FAILED).count()
        finalized: list[Invoice] = []
        if options["dry_run"]:
            try:
                with transaction.atomic():
                    finalized = finalize_due_drafts(actor=SYSTEM, now=now)
                    self._list(finalized)
                    raise _DryRun
            except _DryRun:
                self.stdout.write(f"{len(finalized)} draft(s) would be finalized (dry run).")
                return
        finalized = finalize_due_drafts(actor=SYSTEM, now=now)  # one transaction per draft
        self._list(finalized)
        failed = Invoice.objects.filter(status=Invoice.Status.FAILED).count() - failed_before
        self.stdout.write(f"{len(finalized)} draft(s) finalized, {max(failed, 0)} failed.")
        if failed > 0:
            raise CommandError(f"{failed} draft(s) could not be finalized")

    def _list(self, invoices: list[Invoice]) -> None:
        for invoice in invoices:
            self.stderr.write(f"{invoice.number or invoice.pk}\t{invoice.status}")
