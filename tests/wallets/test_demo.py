"""Demo wallets seeded by `manage.py seed_demo` (wallets/demo.py); idempotency of the whole seed
is tested in tests/billing/test_commands.py."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from invoicing.models import Invoice
from wallets.models import Wallet, WalletTransactionConsumption
from wallets.services.ledger import wallet_drifts

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded():
    call_command("seed_demo", stdout=StringIO(), stderr=StringIO())


def test_bergmann_has_granted_and_paid_purchased_credits(seeded):
    wallet = Wallet.objects.get(code="prepaid_credits")
    assert wallet.customer.external_id == "demo_bergmann_de"
    assert (wallet.balance_cents, wallet.credits_balance) == (60_000, Decimal(600))
    ledger = sorted(wallet.transactions.values_list("transaction_status", "status", "name"))
    assert ledger == [
        ("granted", "settled", "Welcome credits"),
        ("purchased", "settled", "Annual prepaid pack"),
    ]
    purchase = wallet.transactions.get(transaction_status="purchased")
    invoice = Invoice.objects.get(pk=purchase.invoice_id)
    assert (invoice.invoice_type, invoice.payment_status) == ("credit", "succeeded")
    assert wallet.recurring_transaction_rules.get().trigger == "threshold"


def test_marie_has_metric_limited_priority_credits_partly_voided(seeded):
    wallet = Wallet.objects.get(code="api_credits")
    assert wallet.customer.external_id == "demo_marie_dupont"
    assert wallet.priority == 1
    assert [t.billable_metric.code for t in wallet.targets.all()] == ["api_calls"]
    assert (wallet.balance_cents, wallet.credits_balance) == (1_500, Decimal(1500))
    voided = wallet.transactions.get(transaction_status="voided")
    drawn = WalletTransactionConsumption.objects.get(outbound_wallet_transaction=voided)
    assert (drawn.inbound_wallet_transaction.transaction_status, drawn.consumed_amount_cents) == (
        "granted",
        500,
    )


def test_demo_ledgers_have_no_drift(seeded):
    assert Wallet.objects.count() == 2
    assert [d for w in Wallet.objects.all() for d in wallet_drifts(w)] == []
