"""Concurrent top-ups on one wallet (spec §17.3 integrity): twenty granted top-ups from real
threads on PostgreSQL serialize on the wallet row lock and leave the exact balance."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import close_old_connections, connections

from billing.actors import SYSTEM
from tests.wallets.factories import WalletFactory
from wallets.models import Wallet, WalletTransaction
from wallets.services.ledger import wallet_drifts
from wallets.services.transactions import wallet_top_up

pytestmark = pytest.mark.django_db(transaction=True)
THREADS = 20
NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def all_at_once(work, count: int) -> list[Exception]:
    barrier = threading.Barrier(count)
    errors: list[Exception] = []

    def run(index: int) -> None:
        close_old_connections()
        try:
            barrier.wait()
            work(index)
        except Exception as exc:  # collected, asserted empty by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_twenty_concurrent_granted_top_ups_leave_the_exact_balance(organization):
    wallet = WalletFactory(organization=organization, rate_amount=Decimal("1.5"))
    # credits 1..20 at rate 1.5: 1.5 * 210 = 315.00
    errors = all_at_once(
        lambda index: wallet_top_up(
            wallet=wallet, granted_credits=str(index + 1), actor=SYSTEM, now=NOW
        ),
        THREADS,
    )
    assert errors == []
    wallet = Wallet.objects.get(pk=wallet.pk)
    assert (wallet.balance_cents, wallet.credits_balance) == (31_500, Decimal(210))
    assert WalletTransaction.objects.filter(wallet=wallet).count() == THREADS
    assert wallet_drifts(wallet) == []
    out = StringIO()
    call_command("check_wallets", stdout=out, stderr=out)  # exit 0: no SystemExit
    assert "no drift" in out.getvalue()


def test_concurrent_voids_never_overdraw(organization):
    wallet = WalletFactory(organization=organization)
    wallet_top_up(wallet=wallet, granted_credits="10", actor=SYSTEM, now=NOW)
    # twenty voids of 1 credit on a 10-credit wallet: exactly ten succeed
    errors = all_at_once(
        lambda _: wallet_top_up(wallet=wallet, voided_credits="1", actor=SYSTEM, now=NOW), THREADS
    )
    assert len(errors) == THREADS - 10
    wallet = Wallet.objects.get(pk=wallet.pk)
    assert (wallet.balance_cents, wallet.credits_balance) == (0, Decimal(0))
    assert wallet_drifts(wallet) == []
