"""Wallet expiration (wallets/services/expiration.py, spec §17.7): the hourly job terminates
expired wallets, voids what is left and stops any further consumption."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.actors import SYSTEM
from billing.errors import NotAllowed
from billing.models import OutboxEvent
from tests.wallets.factories import RecurringTransactionRuleFactory, WalletFactory, fund_wallet
from wallets.models import Wallet, WalletTransaction
from wallets.services import ledger
from wallets.services.expiration import terminate_expired_wallets
from wallets.services.recurring import run_interval_top_ups

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 1, 12, 45, tzinfo=dt.UTC)


def expiring_wallet(organization, expiration_at, credits="25") -> Wallet:
    wallet = WalletFactory(organization=organization, expiration_at=expiration_at)
    fund_wallet(wallet, credits)
    return wallet


def test_expired_wallet_is_terminated_and_its_credits_voided(organization):
    wallet = expiring_wallet(organization, NOW - dt.timedelta(minutes=1))

    assert terminate_expired_wallets(actor=SYSTEM, now=NOW) == 1

    wallet.refresh_from_db()
    assert (wallet.status, wallet.terminated_at) == ("terminated", NOW)
    assert (wallet.balance_cents, wallet.credits_balance) == (0, Decimal(0))
    [void] = WalletTransaction.objects.filter(wallet=wallet, transaction_type="outbound")
    assert (void.transaction_status, void.status) == ("voided", "settled")
    assert (void.amount_cents, void.credit_amount) == (2_500, Decimal("25"))
    assert ledger.wallet_drifts(wallet) == []
    assert OutboxEvent.objects.filter(event_type="wallet.terminated", object_id=str(wallet.pk))


def test_expired_wallet_cannot_be_consumed_any_more(organization):
    wallet = expiring_wallet(organization, NOW)
    terminate_expired_wallets(actor=SYSTEM, now=NOW)

    with pytest.raises(NotAllowed):
        ledger.draw(
            wallet=wallet, amount_cents=100, transaction_status="invoiced", actor=SYSTEM, now=NOW
        )


def test_wallet_not_yet_expired_stays_active(organization):
    wallet = expiring_wallet(organization, NOW + dt.timedelta(seconds=1))
    forever = expiring_wallet(organization, None)

    assert terminate_expired_wallets(actor=SYSTEM, now=NOW) == 0

    for w in (wallet, forever):
        w.refresh_from_db()
        assert (w.status, w.balance_cents) == ("active", 2_500)


def test_running_the_job_again_voids_nothing_more(organization):
    wallet = expiring_wallet(organization, NOW)

    terminate_expired_wallets(actor=SYSTEM, now=NOW)
    assert terminate_expired_wallets(actor=SYSTEM, now=NOW + dt.timedelta(hours=1)) == 0

    assert WalletTransaction.objects.filter(wallet=wallet, transaction_status="voided").count() == 1


def test_expired_wallet_stops_its_recurring_top_ups(organization):
    wallet = expiring_wallet(organization, NOW)
    rule = RecurringTransactionRuleFactory(
        organization=organization, wallet=wallet, interval="weekly", started_at=NOW
    )
    terminate_expired_wallets(actor=SYSTEM, now=NOW)

    assert run_interval_top_ups(actor=SYSTEM, now=NOW + dt.timedelta(days=7)) == 0
    rule.refresh_from_db()
    assert rule.status == "terminated"


def test_empty_expired_wallet_is_terminated_without_a_void(organization):
    wallet = WalletFactory(organization=organization, expiration_at=NOW)

    assert terminate_expired_wallets(actor=SYSTEM, now=NOW) == 1

    wallet.refresh_from_db()
    assert wallet.status == "terminated"
    assert not WalletTransaction.objects.filter(wallet=wallet).exists()
