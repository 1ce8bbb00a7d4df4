"""manage.py check_wallets [--organization NAME_OR_ID]: balances vs ledgers (spec §17.3).

Prints one line per drift (`wallets.services.ledger.wallet_drifts`) and exits with status 1
when there is any; prints a summary and exits 0 when every wallet matches its ledger.
"""

from __future__ import annotations

import sys
import uuid

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.models import Organization
from wallets.models import Wallet
from wallets.services.ledger import wallet_drifts


def _organization(value: str) -> Organization:
    try:
        found = Organization.objects.filter(pk=uuid.UUID(value)).first()
    except ValueError:
        found = None
    found = found or Organization.objects.filter(name=value).first()
    if found is None:
        raise CommandError(f"no organization named {value!r}")
    return found


class Command(BaseCommand):
    help = "Checks every wallet's balances against its ledger; exit status 1 on any drift."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", help="only this organization (name or id)")

    def handle(self, *args: object, **options: object) -> None:
        wallets = Wallet.objects.select_related("customer").order_by("created_at", "id")
        if options.get("organization"):
            wallets = wallets.filter(organization=_organization(str(options["organization"])))
        checked = drifted = 0
        for wallet in wallets.iterator(chunk_size=500):
            checked += 1
            drifts = wallet_drifts(wallet)
            if drifts:
                drifted += 1
            for drift in drifts:
                self.stdout.write(
                    f"wallet {drift.wallet_id} ({wallet.customer.external_id}/{wallet.code}): "
                    f"{drift.what} stored {drift.stored}, ledger {drift.expected}"
                )
        if drifted:
            self.stderr.write(f"{drifted} of {checked} wallets drift from their ledger")
            sys.exit(1)
        self.stdout.write(f"{checked} wallets checked, no drift")
