"""manage.py compile_document_messages [--check] [--dry-run]: compiles the invoice, credit note
and payment receipt catalogs (`invoicing/locale/*/LC_MESSAGES/django.po`) to `.mo` with Babel.

`--check` (CI) writes nothing and exits 1 when a committed `.mo` is missing or stale;
`--dry-run` lists the `.mo` files that would be written.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from invoicing.document_messages import LOCALE_DIR, catalogs, write_catalogs


class Command(BaseCommand):
    help = "Compiles the document translation catalogs (.po) to .mo files with Babel."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check", action="store_true", help="fail if a .mo is missing or stale"
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="list the stale .mo files, write nothing"
        )

    def handle(self, *args: object, **options: object) -> None:
        items = catalogs()
        stale = [item for item in items if item.stale]
        for item in stale:
            self.stdout.write(f"stale: {item.mo.relative_to(LOCALE_DIR.parent)}")
        if options["check"]:
            if stale:
                raise CommandError(
                    f"{len(stale)} .mo file(s) out of date: run compile_document_messages"
                )
            self.stdout.write(f"{len(items)} catalog(s) up to date")
            return
        if options["dry_run"]:
            return
        written = write_catalogs(items)
        self.stdout.write(f"{len(written)} of {len(items)} catalog(s) compiled")
