"""The wallet ledger (wallets/services/ledger.py): balances, traceability, integrity."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from billing.actors import SYSTEM
from billing.errors import Invalid, NotAllowed
from tests.customers.factories import CustomerFactory
from wallets.models import Wallet, WalletTransaction, WalletTransactionConsumption
from wallets.services import ledger

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
Tx = WalletTransaction
GRANTED, PURCHASED = Tx.TransactionStatus.GRANTED, Tx.TransactionStatus.PURCHASED


def make_wallet(organization, *, rate="1", currency="EUR", **fields) -> Wallet:
    customer = CustomerFactory(organization=organization, currency=currency)
    return Wallet.objects.create(
        organization=organization,
        customer=customer,
        code=fields.pop("code", "main"),
        currency=currency,
        rate_amount=Decimal(rate),
        **fields,
    )


def fund(wallet, credits, status=GRANTED, *, priority=None, settled=True):
    return ledger.inbound_create(
        wallet=wallet,
        credit_amount=Decimal(credits),
        transaction_status=status,
        settled=settled,
        priority=priority,
        actor=SYSTEM,
        now=NOW,
    )


def test_granted_credits_settle_at_once(organization):
    wallet = make_wallet(organization)
    tx = fund(wallet, "10")
    wallet.refresh_from_db()
    assert (tx.status, tx.amount_cents, tx.remaining_amount_cents) == ("settled", 1_000, 1_000)
    assert (wallet.balance_cents, wallet.credits_balance) == (1_000, Decimal("10"))
    assert wallet.ongoing_balance_cents == 1_000


def test_pending_purchase_moves_the_balance_only_when_settled(organization):
    wallet = make_wallet(organization, rate="1.5")
    tx = fund(wallet, "10", PURCHASED, settled=False)
    wallet.refresh_from_db()
    assert (tx.status, tx.amount_cents, wallet.balance_cents) == ("pending", 1_500, 0)

    ledger.inbound_settle(transaction_id=tx.pk, actor=SYSTEM, now=NOW)
    ledger.inbound_settle(transaction_id=tx.pk, actor=SYSTEM, now=NOW)  # idempotent

    wallet.refresh_from_db()
    assert (wallet.balance_cents, wallet.credits_balance) == (1_500, Decimal("10"))


def test_failed_purchase_credits_nothing_until_a_later_payment_succeeds(organization):
    wallet = make_wallet(organization)
    tx = fund(wallet, "10", PURCHASED, settled=False)
    ledger.inbound_fail(transaction_id=tx.pk, actor=SYSTEM, now=NOW)
    wallet.refresh_from_db()
    assert wallet.balance_cents == 0

    ledger.inbound_settle(transaction_id=tx.pk, actor=SYSTEM, now=NOW)

    wallet.refresh_from_db()
    assert wallet.balance_cents == 1_000


def test_outbound_transactions_cannot_be_settled(organization):
    wallet = make_wallet(organization)
    fund(wallet, "1")
    out = ledger.draw(
        wallet=wallet, amount_cents=100, transaction_status="voided", actor=SYSTEM, now=NOW
    )
    WalletTransaction.objects.filter(pk=out.transaction.pk).update(status="pending")
    with pytest.raises(NotAllowed):
        ledger.inbound_settle(transaction_id=out.transaction.pk, actor=SYSTEM, now=NOW)


def test_draw_consumes_by_priority_then_age_and_splits_granted_and_purchased(organization):
    wallet = make_wallet(organization)
    late_purchase = fund(wallet, "5", PURCHASED, priority=10)
    old_grant = fund(wallet, "3", GRANTED)  # default priority 50
    first = fund(wallet, "2", GRANTED, priority=10)
    Tx.objects.filter(pk=first.pk).update(created_at=NOW - dt.timedelta(days=1))

    result = ledger.draw(
        wallet=wallet,
        amount_cents=800,
        transaction_status=Tx.TransactionStatus.INVOICED,
        actor=SYSTEM,
        now=NOW,
    )

    drawn = {
        c.inbound_wallet_transaction_id: c.consumed_amount_cents
        for c in WalletTransactionConsumption.objects.filter(
            outbound_wallet_transaction=result.transaction
        )
    }
    assert drawn == {first.pk: 200, late_purchase.pk: 500, old_grant.pk: 100}
    assert (result.granted_amount_cents, result.purchased_amount_cents) == (300, 500)
    wallet.refresh_from_db()
    assert (wallet.balance_cents, wallet.credits_balance) == (200, Decimal("2"))
    assert (wallet.consumed_amount_cents, wallet.consumed_credits) == (800, Decimal("8"))
    assert ledger.wallet_drifts(wallet) == []


def test_draw_beyond_the_balance_is_refused_and_writes_nothing(organization):
    wallet = make_wallet(organization)
    fund(wallet, "1")
    with pytest.raises(Invalid), transaction.atomic():
        ledger.draw(
            wallet=wallet, amount_cents=101, transaction_status="voided", actor=SYSTEM, now=NOW
        )
    assert Tx.objects.filter(transaction_type="outbound").count() == 0


def test_emptying_a_wallet_at_an_uneven_rate_leaves_no_credit_dust(organization):
    wallet = make_wallet(organization, rate="1.5")
    fund(wallet, "10")  # 15.00
    ledger.draw(
        wallet=wallet, amount_cents=1_000, transaction_status="invoiced", actor=SYSTEM, now=NOW
    )
    ledger.draw(wallet=wallet, amount_cents=500, transaction_status="voided", actor=SYSTEM, now=NOW)
    wallet.refresh_from_db()
    assert (wallet.balance_cents, wallet.credits_balance) == (0, Decimal(0))
    assert ledger.wallet_drifts(wallet) == []


def test_terminated_wallet_takes_no_new_credits(organization):
    wallet = make_wallet(organization, status=Wallet.Status.TERMINATED)
    with pytest.raises(NotAllowed):
        fund(wallet, "1")


def test_drift_is_reported_when_the_stored_balance_disagrees(organization):
    wallet = make_wallet(organization)
    fund(wallet, "10")
    Wallet.objects.filter(pk=wallet.pk).update(balance_cents=999)
    wallet.refresh_from_db()
    assert {d.what for d in ledger.wallet_drifts(wallet)} == {
        "balance_cents",
        "remaining_amount_cents",
    }


def test_database_refuses_a_negative_balance(organization):
    wallet = make_wallet(organization)
    with pytest.raises(IntegrityError), transaction.atomic():
        Wallet.objects.filter(pk=wallet.pk).update(balance_cents=-1)


def test_database_refuses_consuming_more_than_an_inbound_amount(organization):
    wallet = make_wallet(organization)
    tx = fund(wallet, "1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Tx.objects.filter(pk=tx.pk).update(remaining_amount_cents=101)
