"""Automatic top-ups (wallets/services/recurring.py, spec §17.6, V88): interval rules on their
schedule, threshold rules once per crossing, target rules up to the target, rule expiry."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from billing.actors import SYSTEM
from tests.customers.factories import CustomerFactory
from tests.wallets.factories import RecurringTransactionRuleFactory, WalletFactory, fund_wallet
from wallets.models import RecurringTransactionRule, Wallet, WalletTransaction
from wallets.services import ledger
from wallets.services.recurring import (
    expire_rules,
    run_interval_top_ups,
    run_threshold_top_ups,
)

pytestmark = pytest.mark.django_db

Rule = RecurringTransactionRule
Tx = WalletTransaction
D = Decimal
CREATED = dt.datetime(2026, 1, 15, 9, tzinfo=dt.UTC)


def at(day: str, hour: int = 10, minute: int = 55) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, minute=minute, tzinfo=dt.UTC)


def make_wallet(organization, *, timezone="UTC", created_at=CREATED, **fields) -> Wallet:
    customer = CustomerFactory(organization=organization, timezone=timezone)
    wallet = WalletFactory(organization=organization, customer=customer, **fields)
    Wallet.objects.filter(pk=wallet.pk).update(created_at=created_at)
    wallet.refresh_from_db()
    return wallet


def make_rule(wallet, **fields) -> Rule:
    return RecurringTransactionRuleFactory(
        organization=wallet.organization, wallet=wallet, **fields
    )


def inbound(wallet) -> list[WalletTransaction]:
    return list(
        Tx.objects.filter(wallet=wallet, transaction_type="inbound").order_by("created_at", "id")
    )


def spend(wallet, cents: int) -> None:
    """Credits consumed by an invoice (the ledger draw a finalization makes)."""
    ledger.draw(
        wallet=wallet, amount_cents=cents, transaction_status="invoiced", actor=SYSTEM, now=CREATED
    )


# --------------------------------------------------------------------------------------------
# Interval rules


class TestIntervalRules:
    def test_monthly_rule_tops_up_on_its_day_once(self, organization):
        wallet = make_wallet(organization)
        rule = make_rule(wallet, interval="monthly", granted_credits=D("10"))

        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15")) == 1
        assert (
            run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15", hour=11)) == 0
        )  # same day, re-run

        [tx] = inbound(wallet)
        assert (tx.source, tx.transaction_status, tx.status) == ("interval", "granted", "settled")
        assert (tx.credit_amount, tx.trigger_key) == (D("10"), "interval:2026-02-15")
        assert tx.recurring_transaction_rule_id == rule.pk
        wallet.refresh_from_db()
        assert wallet.balance_cents == 1_000

    def test_monthly_rule_skips_other_days_and_tops_up_next_month(self, organization):
        wallet = make_wallet(organization)
        make_rule(wallet, interval="monthly", granted_credits=D("10"))

        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-02-16")) == 0
        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15")) == 1
        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-03-15")) == 1
        assert [tx.trigger_key for tx in inbound(wallet)] == [
            "interval:2026-02-15",
            "interval:2026-03-15",
        ]

    def test_creation_day_never_tops_up(self, organization):
        wallet = make_wallet(organization)
        make_rule(wallet, interval="weekly", granted_credits=D("10"))

        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-01-15", hour=23)) == 0
        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-01-22")) == 1

    def test_started_at_anchors_the_schedule(self, organization):
        wallet = make_wallet(organization)
        make_rule(
            wallet, interval="monthly", granted_credits=D("5"), started_at=at("2026-01-31", 0, 0)
        )

        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15")) == 0
        assert (
            run_interval_top_ups(actor=SYSTEM, now=at("2026-02-28")) == 1
        )  # Jan 31 clamped to Feb 28
        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-03-31")) == 1

    def test_day_is_the_customers_day(self, organization):
        wallet = make_wallet(organization, timezone="Asia/Tokyo")
        make_rule(wallet, interval="monthly", granted_credits=D("10"))

        # Feb 14 16:30 UTC is Feb 15 01:30 in Tokyo: the anniversary there
        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-02-14", hour=16, minute=30)) == 1
        assert inbound(wallet)[0].trigger_key == "interval:2026-02-15"
        assert (
            run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15", hour=10)) == 0
        )  # still Feb 15 there

    def test_paid_interval_top_up_is_pending_with_its_credit_invoice(self, organization):
        wallet = make_wallet(organization)
        make_rule(wallet, interval="monthly", paid_credits=D("20"), granted_credits=D("5"))

        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15")) == 2

        purchased, granted = inbound(wallet)
        assert (purchased.transaction_status, purchased.status) == ("purchased", "pending")
        assert purchased.invoice_id is not None  # the credit invoice (invoicing's hook)
        assert (granted.transaction_status, granted.status) == ("granted", "settled")
        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15", hour=12)) == 0

    def test_target_rule_tops_up_to_the_target_once_per_period(self, organization):
        wallet = make_wallet(organization)
        fund_wallet(wallet, "30")
        make_rule(
            wallet,
            interval="monthly",
            method="target",
            target_ongoing_balance=D("100"),
            grants_target_top_up=True,
            granted_credits=D(0),
        )

        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15")) == 1
        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15", hour=12)) == 0

        top_up = inbound(wallet)[-1]
        assert (top_up.transaction_status, top_up.credit_amount) == ("granted", D("70"))
        wallet.refresh_from_db()
        assert wallet.credits_balance == D("100")

    def test_target_rule_at_target_tops_up_nothing(self, organization):
        wallet = make_wallet(organization)
        fund_wallet(wallet, "120")
        make_rule(wallet, interval="monthly", method="target", target_ongoing_balance=D("100"))

        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15")) == 0

    def test_paid_target_is_raised_to_the_paid_minimum(self, organization):
        wallet = make_wallet(organization, paid_top_up_min_amount_cents=5_000)
        fund_wallet(wallet, "90")
        make_rule(wallet, interval="monthly", method="target", target_ongoing_balance=D("100"))

        run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15"))

        top_up = inbound(wallet)[-1]
        assert (top_up.transaction_status, top_up.credit_amount) == ("purchased", D("50"))

    def test_paid_target_ignores_the_paid_maximum(self, organization):
        wallet = make_wallet(organization, paid_top_up_max_amount_cents=1_000)
        make_rule(wallet, interval="monthly", method="target", target_ongoing_balance=D("100"))

        run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15"))

        assert inbound(wallet)[-1].credit_amount == D("100")

    def test_terminated_or_expired_rules_do_not_top_up(self, organization):
        expired = make_wallet(organization)
        make_rule(expired, interval="monthly", expiration_at=at("2026-02-01"))
        ended = make_wallet(organization)
        make_rule(ended, interval="monthly", status="terminated")

        assert run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15")) == 0

    def test_rule_name_and_metadata_go_on_the_transaction(self, organization):
        wallet = make_wallet(organization)
        make_rule(
            wallet,
            interval="monthly",
            transaction_name="Monthly grant",
            transaction_metadata=[{"key": "origin", "value": "rule"}],
        )

        run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15"))

        [tx] = inbound(wallet)
        assert (tx.name, tx.metadata) == ("Monthly grant", [{"key": "origin", "value": "rule"}])


# --------------------------------------------------------------------------------------------
# Threshold rules


def threshold_rule(wallet, **fields) -> Rule:
    fields.setdefault("threshold_credits", D("20"))
    fields.setdefault("granted_credits", D("50"))
    return make_rule(wallet, trigger="threshold", interval="", **fields)


class TestThresholdRules:
    def test_crossing_tops_up_once(self, organization):
        wallet = make_wallet(organization)
        fund_wallet(wallet, "50")
        threshold_rule(wallet)
        spend(wallet, 3_500)  # 15 credits left <= 20

        assert run_threshold_top_ups(actor=SYSTEM, now=CREATED) == 1
        assert run_threshold_top_ups(actor=SYSTEM, now=CREATED) == 0  # same crossing: nothing more

        top_up = inbound(wallet)[-1]
        assert (top_up.source, top_up.credit_amount) == ("threshold", D("50"))
        assert top_up.trigger_key.startswith("threshold:")
        wallet.refresh_from_db()
        assert wallet.credits_balance == D("65")

    def test_a_later_crossing_tops_up_again(self, organization):
        wallet = make_wallet(organization)
        fund_wallet(wallet, "50")
        threshold_rule(wallet)
        spend(wallet, 3_500)
        run_threshold_top_ups(actor=SYSTEM, now=CREATED)

        spend(wallet, 5_000)  # 65 -> 15 credits: crossed again
        assert run_threshold_top_ups(actor=SYSTEM, now=CREATED) == 1

        assert len([tx for tx in inbound(wallet) if tx.source == "threshold"]) == 2

    def test_above_threshold_tops_up_nothing(self, organization):
        wallet = make_wallet(organization)
        fund_wallet(wallet, "50")
        threshold_rule(wallet)

        assert run_threshold_top_ups(actor=SYSTEM, now=CREATED) == 0

    def test_threshold_is_inclusive(self, organization):
        wallet = make_wallet(organization)
        fund_wallet(wallet, "20")
        threshold_rule(wallet)

        assert run_threshold_top_ups(actor=SYSTEM, now=CREATED) == 1

    def test_v88_fixed_paid_credits_are_multiplied_to_clear_the_threshold(self, organization):
        wallet = make_wallet(organization)
        threshold_rule(wallet, paid_credits=D("10"), granted_credits=D(0))
        # ongoing balance -15 credits: 15 credits of usage not yet invoiced, nothing in the wallet
        Wallet.objects.filter(pk=wallet.pk).update(
            ongoing_usage_balance_cents=1_500,
            credits_ongoing_usage_balance=D("15"),
            ongoing_balance_cents=-1_500,
            credits_ongoing_balance=D("-15"),
        )

        assert run_threshold_top_ups(actor=SYSTEM, now=CREATED) == 1

        [tx] = inbound(wallet)
        assert (tx.transaction_status, tx.status, tx.credit_amount) == (
            "purchased",
            "pending",
            D("40"),  # gap 35 -> 10 x (3 + 1)
        )

    def test_pending_top_ups_count_toward_the_threshold(self, organization):
        wallet = make_wallet(organization)
        threshold_rule(wallet, paid_credits=D("10"), granted_credits=D(0))
        Wallet.objects.filter(pk=wallet.pk).update(
            ongoing_balance_cents=-1_500, credits_ongoing_balance=D("-15")
        )
        run_threshold_top_ups(actor=SYSTEM, now=CREATED)  # 40 credits pending

        # still -15 ongoing, but -15 + 40 pending > 20: no second purchase
        assert run_threshold_top_ups(actor=SYSTEM, now=CREATED + dt.timedelta(minutes=5)) == 0
        assert len(inbound(wallet)) == 1

    def test_failed_paid_top_up_pauses_the_rule_for_an_hour(self, organization):
        wallet = make_wallet(organization)
        threshold_rule(wallet, paid_credits=D("30"), granted_credits=D(0))
        [tx] = ledger_top_up_and_fail(wallet, at=CREATED)

        assert run_threshold_top_ups(actor=SYSTEM, now=CREATED + dt.timedelta(minutes=30)) == 0
        assert run_threshold_top_ups(actor=SYSTEM, now=CREATED + dt.timedelta(minutes=61)) == 1
        assert inbound(wallet)[-1].status == "pending"
        assert tx.status == "failed"

    def test_a_settled_paid_top_up_lifts_the_pause(self, organization):
        wallet = make_wallet(organization)
        threshold_rule(wallet, paid_credits=D("30"), granted_credits=D(0))
        ledger_top_up_and_fail(wallet, at=CREATED)
        manual = fund_wallet(wallet, "5", status="purchased", settled=False)
        ledger.inbound_settle(
            transaction_id=manual.pk, actor=SYSTEM, now=CREATED + dt.timedelta(minutes=10)
        )

        assert run_threshold_top_ups(actor=SYSTEM, now=CREATED + dt.timedelta(minutes=20)) == 1

    def test_target_threshold_rule_tops_up_to_the_target(self, organization):
        wallet = make_wallet(organization)
        fund_wallet(wallet, "50")
        threshold_rule(
            wallet,
            method="target",
            target_ongoing_balance=D("80"),
            grants_target_top_up=True,
            granted_credits=D(0),
        )
        spend(wallet, 4_000)  # 10 credits left

        assert run_threshold_top_ups(actor=SYSTEM, now=CREATED) == 1
        assert run_threshold_top_ups(actor=SYSTEM, now=CREATED) == 0

        assert inbound(wallet)[-1].credit_amount == D("70")
        wallet.refresh_from_db()
        assert wallet.credits_balance == D("80")

    def test_only_the_given_wallets_are_checked(self, organization):
        first, second = make_wallet(organization), make_wallet(organization)
        for wallet in (first, second):
            fund_wallet(wallet, "10")
            threshold_rule(wallet)

        assert run_threshold_top_ups(actor=SYSTEM, now=CREATED, wallet_ids=[first.pk]) == 1
        assert inbound(second)[-1].source == "manual"


def ledger_top_up_and_fail(wallet, *, at: dt.datetime) -> list[WalletTransaction]:
    """A paid threshold top-up whose payment failed at `at`."""
    run_threshold_top_ups(actor=SYSTEM, now=at)
    [tx] = [t for t in inbound(wallet) if t.source == "threshold"]
    return [ledger.inbound_fail(transaction_id=tx.pk, actor=SYSTEM, now=at)]


@pytest.mark.django_db(transaction=True)
def test_concurrent_threshold_runs_top_up_once(organization):
    wallet = make_wallet(organization)
    with transaction.atomic():
        fund_wallet(wallet, "10")
    threshold_rule(wallet)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            run_threshold_top_ups(actor=SYSTEM, now=CREATED)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert [tx.source for tx in inbound(wallet)] == ["manual", "threshold"]
    wallet.refresh_from_db()
    assert wallet.credits_balance == D("60")
    assert ledger.wallet_drifts(wallet) == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_interval_runs_top_up_once(organization):
    wallet = make_wallet(organization)
    make_rule(wallet, interval="monthly", granted_credits=D("10"))
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            run_interval_top_ups(actor=SYSTEM, now=at("2026-02-15"))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(inbound(wallet)) == 1
    wallet.refresh_from_db()
    assert wallet.balance_cents == 1_000


# --------------------------------------------------------------------------------------------
# Expiry of rules


def test_expired_rules_are_terminated(organization):
    wallet = make_wallet(organization)
    expired = make_rule(wallet, expiration_at=at("2026-02-01", 0, 0))
    other = make_wallet(organization)
    later = make_rule(other, expiration_at=at("2026-03-01", 0, 0))
    now = at("2026-02-01", 0, 50)

    assert expire_rules(actor=SYSTEM, now=now) == 1
    assert expire_rules(actor=SYSTEM, now=now) == 0

    expired.refresh_from_db()
    later.refresh_from_db()
    assert (expired.status, expired.terminated_at) == ("terminated", now)
    assert later.status == "active"
