"""Concurrent top-ups and invoice finalizations on one wallet (spec §17.5, DESIGN: balances
change under row locks), with real threads on PostgreSQL: the balance is exact, never
negative, no credit is spent twice and the ledger has no drift."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum

from billing.actors import SYSTEM
from invoicing.models import Fee, Invoice
from invoicing.services.generation import invoice_create_for_in_advance_fee
from invoicing.services.lifecycle import invoice_finalize
from invoicing.services.payments import invoice_update
from tests.concurrency import run_at_once
from tests.invoicing.billing_helpers import customer, plan, separate_drafts, subscribe, utc
from tests.plans.factories import BillableMetricFactory, ChargeFactory
from tests.wallets.factories import WalletFactory, fund_wallet
from wallets.models import Wallet, WalletTransaction, WalletTransactionConsumption
from wallets.services import ledger
from wallets.services.transactions import wallet_top_up

pytestmark = pytest.mark.django_db(transaction=True)

Tx = WalletTransaction
DRAFTS = 20
TOP_UPS = 20
FEE_CENTS = 1000
FINALIZED_AT = utc(2024, 2, 5)


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def drafts_and_wallet(organization, credits: str) -> tuple[list[Invoice], Wallet]:
    """Twenty drafts of 10.00 each (grace period) and one funded wallet of the customer."""
    drafts = separate_drafts(organization, DRAFTS, FEE_CENTS)
    wallet = WalletFactory(organization=organization, customer=drafts[0].customer)
    with transaction.atomic():
        fund_wallet(wallet, credits)
    return drafts, wallet


def finalize(draft: Invoice) -> Callable[[], object]:
    return lambda: invoice_finalize(invoice=draft, actor=SYSTEM, now=FINALIZED_AT)


def grant(wallet: Wallet) -> Callable[[], object]:
    return lambda: wallet_top_up(wallet=wallet, granted_credits="5", actor=SYSTEM, now=FINALIZED_AT)


def buy_and_pay(wallet: Wallet) -> Callable[[], object]:
    def job() -> None:
        [tx] = wallet_top_up(wallet=wallet, paid_credits="5", actor=SYSTEM, now=FINALIZED_AT)
        invoice = Invoice.objects.get(pk=tx.invoice_id)
        invoice_update(invoice=invoice, payment_status="succeeded", actor=SYSTEM, now=FINALIZED_AT)

    return job


def assert_ledger_consistent(wallet: Wallet) -> None:
    wallet.refresh_from_db()
    assert wallet.balance_cents >= 0
    assert ledger.wallet_drifts(wallet) == []
    outbound = Tx.objects.filter(wallet=wallet, transaction_type="outbound").aggregate(
        total=Sum("amount_cents")
    )["total"]
    traced = WalletTransactionConsumption.objects.filter(
        outbound_wallet_transaction__wallet=wallet
    ).aggregate(total=Sum("consumed_amount_cents"))["total"]
    assert traced == outbound
    for inbound in Tx.objects.filter(wallet=wallet, transaction_type="inbound", status="settled"):
        consumed = inbound.fundings_given.aggregate(total=Sum("consumed_amount_cents"))["total"]
        assert (consumed or 0) + inbound.remaining_amount_cents == inbound.amount_cents


def test_twenty_top_ups_and_twenty_finalizations_leave_the_exact_balance(organization):
    drafts, wallet = drafts_and_wallet(organization, "200")
    jobs = [finalize(draft) for draft in drafts]
    jobs += [grant(wallet) for _ in range(TOP_UPS // 2)]
    jobs += [buy_and_pay(wallet) for _ in range(TOP_UPS // 2)]

    assert run_at_once(jobs) == []

    # 200.00 + 20 x 5.00 - 20 x 10.00, whatever the order
    wallet.refresh_from_db()
    assert (wallet.balance_cents, wallet.credits_balance) == (10_000, Decimal("100"))
    finalized = Invoice.objects.filter(pk__in=[d.pk for d in drafts])
    assert {(i.status, i.prepaid_credit_amount_cents, i.total_amount_cents) for i in finalized} == {
        ("finalized", FEE_CENTS, 0)
    }
    invoiced = Tx.objects.filter(wallet=wallet, transaction_status="invoiced")
    assert sorted(invoiced.values_list("invoice_id", flat=True)) == sorted(d.pk for d in drafts)
    assert Tx.objects.filter(
        wallet=wallet, transaction_status="purchased", status="settled"
    ).count() == (TOP_UPS // 2)
    assert_ledger_consistent(wallet)


def test_twenty_finalizations_on_a_short_wallet_spend_it_exactly_once(organization):
    drafts, wallet = drafts_and_wallet(organization, "55")

    assert run_at_once([finalize(draft) for draft in drafts]) == []

    wallet.refresh_from_db()
    assert (wallet.balance_cents, wallet.credits_balance) == (0, Decimal(0))
    finalized = list(Invoice.objects.filter(pk__in=[d.pk for d in drafts]))
    assert sum(i.prepaid_credit_amount_cents for i in finalized) == 5_500
    assert all(i.prepaid_credit_amount_cents + i.total_amount_cents == FEE_CENTS for i in finalized)
    # five invoices fully paid, one half paid, the rest not at all
    assert sorted(i.prepaid_credit_amount_cents for i in finalized)[-6:] == [500] + [FEE_CENTS] * 5
    assert_ledger_consistent(wallet)


def in_advance_fees(organization, acme, count: int) -> list[Fee]:
    """Invoiceable pay-in-advance fees of 10.00 waiting for their invoice (spec §7.14)."""
    monthly = plan(organization, amount_cents=0)
    charge = ChargeFactory(
        organization=organization,
        plan=monthly,
        billable_metric=BillableMetricFactory(organization=organization, count=True),
        pay_in_advance=True,
        properties={"amount": "10"},
    )
    subscription = subscribe(organization, acme, monthly, utc(2024, 1, 1))
    at = utc(2024, 2, 5).isoformat()
    return [
        Fee.objects.create(
            organization=organization,
            customer=acme,
            subscription=subscription,
            charge=charge,
            fee_type=Fee.FeeType.CHARGE,
            amount_cents=FEE_CENTS,
            precise_amount_cents=FEE_CENTS,
            amount_currency="EUR",
            units=1,
            pay_in_advance=True,
            invoiceable=True,
            pay_in_advance_event_transaction_id=f"tx_{index}",
            properties={"timestamp": at, "from_datetime": at, "to_datetime": at},
        )
        for index in range(count)
    ]


def test_paid_top_ups_and_in_advance_invoices_at_once_never_deadlock(organization):
    """In-advance invoices lock the customer, then the wallet; a paid top-up holds the wallet
    while its credit invoice references the customer (a foreign-key check, which the billing
    lock - FOR NO KEY UPDATE - lets through)."""
    acme = customer(organization, external_id="acme")
    fees = in_advance_fees(organization, acme, DRAFTS)
    wallet = WalletFactory(organization=organization, customer=acme)
    with transaction.atomic():
        fund_wallet(wallet, "200")
    jobs = [
        (lambda fee=fee: invoice_create_for_in_advance_fee(fee=fee, actor=SYSTEM, now=FINALIZED_AT))
        for fee in fees
    ]
    jobs += [buy_and_pay(wallet) for _ in range(TOP_UPS)]

    assert run_at_once(jobs) == []

    wallet.refresh_from_db()
    assert wallet.balance_cents == 20_000 + TOP_UPS * 500 - DRAFTS * FEE_CENTS
    assert_ledger_consistent(wallet)
