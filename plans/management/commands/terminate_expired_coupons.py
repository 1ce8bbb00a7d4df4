"""manage.py terminate_expired_coupons [--dry-run]: the hourly job of spec §27 (:30), by hand."""

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone

from billing.actors import SYSTEM
from plans.services.coupons import coupon_terminate_expired


class _DryRun(Exception):
    """Rolls the transaction back once the outcome is printed."""


class Command(BaseCommand):
    help = "Terminates time-limited coupons whose expiration date has passed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="list the coupons, change nothing"
        )

    def handle(self, *args: object, **options: object) -> None:
        try:
            with transaction.atomic():
                coupons = coupon_terminate_expired(actor=SYSTEM, now=timezone.now())
                for coupon in coupons:
                    self.stderr.write(f"{coupon.organization_id} {coupon.code}")
                if options["dry_run"]:
                    raise _DryRun
        except _DryRun:
            self.stdout.write(f"{len(coupons)} coupon(s) would be terminated (dry run).")
            return
        self.stdout.write(f"{len(coupons)} coupon(s) terminated.")
