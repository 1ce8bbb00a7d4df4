"""Ongoing balance (wallets/services/ongoing.py, spec §17.4): current usage and draft invoices
allocated to the wallets; events flag the wallets; the refresh recomputes them (what triggers
it and how soon: test_ongoing_refresh_triggers.py)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import time_machine

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice
from tests.metering.usage.conftest import Billing, at, make_billing
from tests.plans.factories import TaxFactory
from tests.wallets.factories import RecurringTransactionRuleFactory, WalletFactory, fund_wallet
from wallets.models import Wallet, WalletTarget, WalletTransaction
from wallets.services.ongoing import (
    WalletScope,
    allocate_ongoing_usage,
    refresh_flagged_wallets,
    wallet_refresh_ongoing_balance,
)

D = Decimal
NOW = "2026-03-10T12:00:00"


# --------------------------------------------------------------------------------------------
# Allocation (pure)

EUR_CALLS = ("charge", uuid.UUID(int=1), "EUR")
EUR_SEATS = ("charge", uuid.UUID(int=2), "EUR")
W1, W2, W3 = uuid.UUID(int=11), uuid.UUID(int=12), uuid.UUID(int=13)


def scope(wallet_id, balance, **fields) -> WalletScope:
    return WalletScope(wallet_id=wallet_id, currency="EUR", balance_cents=balance, **fields)


class TestAllocation:
    def test_single_wallet_takes_all_the_usage_even_beyond_its_balance(self):
        assert allocate_ongoing_usage({EUR_CALLS: 5_000}, [scope(W1, 1_000)]) == {W1: 5_000}

    def test_wallets_in_priority_order_up_to_their_balance_the_last_takes_the_rest(self):
        wallets = [scope(W1, 3_000), scope(W2, 1_000), scope(W3, 0)]
        assert allocate_ongoing_usage({EUR_CALLS: 5_000}, wallets) == {
            W1: 3_000,
            W2: 1_000,
            W3: 1_000,
        }

    def test_metric_limited_wallet_takes_only_its_metric(self):
        limited = scope(W1, 10_000, billable_metric_ids=frozenset({EUR_CALLS[1]}))
        amounts = {EUR_CALLS: 2_000, EUR_SEATS: 3_000}
        assert allocate_ongoing_usage(amounts, [limited, scope(W2, 0)]) == {W1: 2_000, W2: 3_000}

    def test_fee_type_limited_wallet_takes_only_its_fee_types(self):
        subscriptions_only = scope(W1, 10_000, fee_types=frozenset({"subscription"}))
        amounts = {EUR_CALLS: 2_000, ("subscription", None, "EUR"): 1_500}
        assert allocate_ongoing_usage(amounts, [subscriptions_only]) == {W1: 1_500}

    def test_every_fee_type_selected_is_unrestricted(self):
        every = scope(
            W1, 0, fee_types=frozenset({"charge", "subscription", "commitment", "fixed_charge"})
        )
        assert allocate_ongoing_usage({(None, None, "EUR"): 700}, [every]) == {W1: 700}

    def test_unscoped_amounts_go_only_to_unrestricted_wallets(self):
        limited = scope(W1, 10_000, fee_types=frozenset({"charge"}))
        assert allocate_ongoing_usage({(None, None, "EUR"): 700}, [limited, scope(W2, 0)]) == {
            W1: 0,
            W2: 700,
        }

    def test_threshold_wallet_absorbs_everything_that_reaches_it(self):
        wallets = [scope(W1, 0, absorbs_all=True), scope(W2, 10_000)]
        assert allocate_ongoing_usage({EUR_CALLS: 4_000}, wallets) == {W1: 4_000, W2: 0}

    def test_other_currencies_are_not_allocated(self):
        usd = WalletScope(wallet_id=W2, currency="USD", balance_cents=10_000)
        assert allocate_ongoing_usage({EUR_CALLS: 4_000}, [usd]) == {W2: 0}

    def test_a_negative_key_lowers_its_currency_budget(self):
        amounts = {EUR_CALLS: 4_000, EUR_SEATS: -1_000}
        assert allocate_ongoing_usage(amounts, [scope(W1, 10_000)]) == {W1: 3_000}


# --------------------------------------------------------------------------------------------
# Refresh from real usage


def calls_billing(api, organization, *, tax_rate: str | None = None) -> tuple[Billing, object]:
    billing = make_billing(api, organization, started_at="2026-03-01")
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric, properties={"amount": "10"})
    if tax_rate:
        charge.taxes.add(TaxFactory(organization=organization, rate=tax_rate))
    return billing, metric


def send(billing: Billing, capture, count: int, code: str = "calls") -> None:
    """`count` events through POST /events at NOW, running what ingestion triggers."""
    with time_machine.travel(at(NOW), tick=False), capture(execute=True):
        for _ in range(count):
            billing.send(code)


def wallet_of(billing: Billing, credits: str = "100", **fields) -> Wallet:
    wallet = WalletFactory(organization=billing.organization, customer=billing.customer, **fields)
    fund_wallet(wallet, credits)
    wallet.refresh_from_db()
    return wallet


@pytest.mark.django_db
class TestRefresh:
    def test_the_sweeper_recomputes_flagged_wallets_from_current_usage(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        billing, _ = calls_billing(api, organization)
        wallet = wallet_of(billing)
        Wallet.objects.filter(pk=wallet.pk).update(ready_to_be_refreshed=True)  # refresh queued
        send(billing, django_capture_on_commit_callbacks, 3)  # flagged already: nothing queued

        assert refresh_flagged_wallets(actor=SYSTEM, now=at(NOW)) == 1

        wallet.refresh_from_db()
        assert (wallet.ongoing_usage_balance_cents, wallet.ongoing_balance_cents) == (3_000, 7_000)
        assert (wallet.credits_ongoing_usage_balance, wallet.credits_ongoing_balance) == (
            D("30"),
            D("70"),
        )
        assert (wallet.balance_cents, wallet.credits_balance) == (10_000, D("100"))
        assert not wallet.ready_to_be_refreshed
        assert wallet.last_balance_sync_at == at(NOW)

    def test_more_events_move_it_again(self, api, organization, django_capture_on_commit_callbacks):
        billing, _ = calls_billing(api, organization)
        wallet = wallet_of(billing)
        send(billing, django_capture_on_commit_callbacks, 1)
        refresh_flagged_wallets(actor=SYSTEM, now=at(NOW))

        send(billing, django_capture_on_commit_callbacks, 2)
        refresh_flagged_wallets(actor=SYSTEM, now=at(NOW))

        wallet.refresh_from_db()
        assert wallet.ongoing_balance_cents == 7_000

    def test_usage_counts_with_its_taxes(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        billing, _ = calls_billing(api, organization, tax_rate="20")
        wallet = wallet_of(billing)
        send(billing, django_capture_on_commit_callbacks, 3)

        refresh_flagged_wallets(actor=SYSTEM, now=at(NOW))

        wallet.refresh_from_db()
        assert wallet.ongoing_usage_balance_cents == 3_600

    def test_unflagged_wallets_are_left_alone(self, api, organization):
        billing, _ = calls_billing(api, organization)
        wallet = wallet_of(billing)

        assert refresh_flagged_wallets(actor=SYSTEM, now=at(NOW)) == 0
        wallet.refresh_from_db()
        assert wallet.last_balance_sync_at is None

    def test_events_of_another_customer_flag_nothing(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        billing, _ = calls_billing(api, organization)
        other = SubscriptionFactory(
            organization=organization,
            plan=billing.plan,
            customer=CustomerFactory(organization=organization),
            subscription_at=at("2026-03-01"),
            started_at=at("2026-03-01"),
        )
        wallet = wallet_of(billing)

        with (
            time_machine.travel(at(NOW), tick=False),
            django_capture_on_commit_callbacks(execute=True),
        ):
            billing.send("calls", sub=other.external_id)

        wallet.refresh_from_db()
        assert not wallet.ready_to_be_refreshed

    def test_depleted_ongoing_balance_is_recorded_once_per_depletion(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        billing, _ = calls_billing(api, organization)
        wallet = wallet_of(billing, credits="25")

        send(billing, django_capture_on_commit_callbacks, 3)  # 30 EUR of usage > 25
        refresh_flagged_wallets(actor=SYSTEM, now=at(NOW))
        send(billing, django_capture_on_commit_callbacks, 1)
        refresh_flagged_wallets(actor=SYSTEM, now=at(NOW))

        depleted = OutboxEvent.objects.filter(
            event_type="wallet.depleted_ongoing_balance", object_id=str(wallet.pk)
        )
        assert depleted.count() == 1
        wallet.refresh_from_db()
        assert (wallet.ongoing_balance_cents, wallet.depleted_ongoing_balance) == (-1_500, True)

        fund_wallet(wallet, "100")  # back above zero, then depleted again
        wallet_refresh_ongoing_balance(wallet=wallet, actor=SYSTEM, now=at(NOW))
        send(billing, django_capture_on_commit_callbacks, 9)
        refresh_flagged_wallets(actor=SYSTEM, now=at(NOW))
        assert depleted.count() == 2

    def test_draft_invoices_count(self, api, organization):
        billing, _ = calls_billing(api, organization)
        wallet = wallet_of(billing)
        build_invoice(
            organization,
            customer=billing.customer,
            status="draft",
            fees=[FeeSpec(kind="add_on", amount_cents=2_000)],
        )
        build_invoice(  # finalized invoices drew on the wallets already: not counted
            organization,
            customer=billing.customer,
            status="finalized",
            fees=[FeeSpec(kind="add_on", amount_cents=5_000)],
        )

        wallet = wallet_refresh_ongoing_balance(wallet=wallet, actor=SYSTEM, now=at(NOW))

        assert (wallet.ongoing_usage_balance_cents, wallet.ongoing_balance_cents) == (2_000, 8_000)

    def test_metric_limited_wallet_counts_only_its_metric(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        billing, calls = calls_billing(api, organization)
        seats = billing.metric("seats", "count_agg")
        billing.charge(seats, properties={"amount": "1"})
        limited = wallet_of(billing, priority=1)
        WalletTarget.objects.create(
            organization=organization, wallet=limited, billable_metric=calls
        )
        general = wallet_of(billing, priority=2)

        send(billing, django_capture_on_commit_callbacks, 2)  # 20 EUR of calls
        send(billing, django_capture_on_commit_callbacks, 5, code="seats")  # 5 EUR of seats
        refresh_flagged_wallets(actor=SYSTEM, now=at(NOW))

        limited.refresh_from_db()
        general.refresh_from_db()
        assert (limited.ongoing_usage_balance_cents, general.ongoing_usage_balance_cents) == (
            2_000,
            500,
        )

    def test_refresh_runs_the_threshold_rule(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        billing, _ = calls_billing(api, organization)
        wallet = wallet_of(billing, credits="40")
        RecurringTransactionRuleFactory(
            organization=organization,
            wallet=wallet,
            trigger="threshold",
            interval="",
            threshold_credits=D("20"),
            granted_credits=D("50"),
        )

        send(billing, django_capture_on_commit_callbacks, 3)  # ongoing 40 - 30 = 10 <= 20
        refresh_flagged_wallets(actor=SYSTEM, now=at(NOW))
        refresh_flagged_wallets(actor=SYSTEM, now=at(NOW))

        [top_up] = WalletTransaction.objects.filter(wallet=wallet, source="threshold")
        assert top_up.credit_amount == D("50")
        wallet.refresh_from_db()
        assert (wallet.balance_cents, wallet.ongoing_balance_cents) == (9_000, 6_000)
