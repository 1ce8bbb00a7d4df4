"""Wallet factories (deterministic sequences). Others may add factories at the END of this file.

Balances are never set directly: fund a wallet through `wallets.services.ledger` (or
`fund_wallet` below) so the ledger invariants hold (`check_wallets` stays clean).
"""

import datetime as dt
from decimal import Decimal

import factory

from billing.actors import SYSTEM
from tests.customers.factories import CustomerFactory
from wallets.models import RecurringTransactionRule, Wallet, WalletTransaction
from wallets.services import ledger

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


class WalletFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Wallet

    customer = factory.SubFactory(
        CustomerFactory, organization=factory.SelfAttribute("..organization")
    )
    name = factory.Sequence(lambda n: f"Wallet {n}")
    code = factory.Sequence(lambda n: f"wallet_{n:04d}")
    currency = factory.SelfAttribute("customer.currency")
    rate_amount = Decimal("1")


class RecurringTransactionRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RecurringTransactionRule

    wallet = factory.SubFactory(WalletFactory, organization=factory.SelfAttribute("..organization"))
    trigger = RecurringTransactionRule.Trigger.INTERVAL
    method = RecurringTransactionRule.Method.FIXED
    interval = RecurringTransactionRule.Interval.MONTHLY
    threshold_credits = Decimal(0)
    paid_credits = Decimal(0)
    granted_credits = Decimal("10")


def fund_wallet(
    wallet: Wallet,
    credits: str | Decimal,
    *,
    status: str = WalletTransaction.TransactionStatus.GRANTED,
    settled: bool = True,
    priority: int | None = None,
    now: dt.datetime = NOW,
) -> WalletTransaction:
    """An inbound transaction through the ledger (granted and settled by default)."""
    return ledger.inbound_create(
        wallet=wallet,
        credit_amount=Decimal(credits),
        transaction_status=status,
        settled=settled,
        priority=priority,
        actor=SYSTEM,
        now=now,
    )
