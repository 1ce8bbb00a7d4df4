"""The official lago-python-client against a live server: wallets and wallet transactions."""

from __future__ import annotations

import pytest
from django.db import transaction
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models.wallet import AppliesTo, RecurringTransactionRule, Wallet
from lago_python_client.models.wallet import RecurringTransactionRuleList as Rules
from lago_python_client.models.wallet_transaction import WalletTransaction

from billing.actors import SYSTEM
from tests.customers.factories import CustomerFactory
from tests.plans.factories import BillableMetricFactory
from wallets.models import WalletTransaction as Tx
from wallets.services import ledger

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


@pytest.fixture
def customer(organization):
    return CustomerFactory(organization=organization, external_id="acme", currency="EUR")


def new_wallet(lago, **fields):
    return lago.wallets.create(
        Wallet(external_customer_id="acme", rate_amount="1", currency="EUR", **fields)
    )


def test_client_creates_and_finds_a_wallet(lago, organization, customer):
    BillableMetricFactory(organization=organization, code="api_calls")
    created = new_wallet(
        lago,
        name="Prepaid",
        code="prepaid",
        priority=3,
        granted_credits="10",
        applies_to=AppliesTo(fee_types=["charge"], billable_metric_codes=["api_calls"]),
        recurring_transaction_rules=Rules(
            __root__=[
                RecurringTransactionRule(
                    trigger="interval", interval="monthly", granted_credits="5"
                )
            ]
        ),
        metadata={"crm": "42"},
    )
    assert (created.code, created.priority, created.status) == ("prepaid", 3, "active")
    assert (created.credits_balance, created.balance_cents) == ("10.0", 1_000)
    assert created.applies_to.fee_types == ["charge"]
    assert created.applies_to.billable_metric_codes == ["api_calls"]
    [rule] = created.recurring_transaction_rules.__root__
    assert (rule.trigger, rule.interval, rule.granted_credits) == ("interval", "monthly", "5.0")
    assert created.metadata == {"crm": "42"}
    found = lago.wallets.find(created.lago_id)
    assert found.lago_id == created.lago_id
    assert found.external_customer_id == "acme"


def test_client_lists_updates_and_destroys_wallets(lago, customer):
    first = new_wallet(lago, code="a", granted_credits="2")
    new_wallet(lago, code="b")
    listing = lago.wallets.find_all({"external_customer_id": "acme", "per_page": 1})
    assert len(listing["wallets"]) == 1
    assert listing["meta"]["total_count"] == 2
    updated = lago.wallets.update(Wallet(name="Renamed", priority=1), first.lago_id)
    assert (updated.name, updated.priority) == ("Renamed", 1)
    terminated = lago.wallets.destroy(first.lago_id)
    assert (terminated.status, terminated.balance_cents) == ("terminated", 0)


def test_client_sees_wallet_errors(lago, customer):
    with pytest.raises(LagoApiError) as raised:
        new_wallet(lago, priority=99)
    assert raised.value.status_code == 422
    with pytest.raises(LagoApiError) as missing:
        lago.wallets.find("0b1e1d6c-9c1f-4c43-9b39-2f9a8d5b7e11")
    assert missing.value.status_code == 404


def test_client_wallet_metadata(lago, customer):
    wallet = new_wallet(lago)
    assert lago.wallets.replace_metadata(wallet.lago_id, {"a": "1"}) == {"a": "1"}
    assert lago.wallets.merge_metadata(wallet.lago_id, {"b": "2"}) == {"a": "1", "b": "2"}
    assert lago.wallets.delete_metadata_key(wallet.lago_id, "a") == {"b": "2"}
    assert lago.wallets.delete_all_metadata(wallet.lago_id) is None


def test_client_tops_up_and_lists_transactions(lago, customer):
    wallet = new_wallet(lago)
    created = lago.wallet_transactions.create(
        WalletTransaction(
            wallet_id=wallet.lago_id,
            paid_credits="17.9699999999999988631316",
            granted_credits="5",
            metadata=[{"key": "k", "value": "v"}],
        )
    )
    transactions = created["wallet_transactions"]
    assert [(t.transaction_status, t.status) for t in transactions] == [
        ("purchased", "pending"),
        ("granted", "settled"),
    ]
    assert transactions[0].credit_amount == "17.97"
    assert transactions[0].lago_invoice_id is not None
    listing = lago.wallet_transactions.find_all(wallet.lago_id, {"status": "settled"})
    assert [t.transaction_status for t in listing["wallet_transactions"]] == ["granted"]
    assert listing["meta"]["total_count"] == 1
    with pytest.raises(LagoApiError) as no_provider:
        lago.wallet_transactions.payment_url(transactions[0].lago_id)
    assert no_provider.value.status_code == 422


def test_client_consumptions_and_fundings(lago, customer):
    wallet = new_wallet(lago, granted_credits="10")
    inbound = Tx.objects.get(wallet_id=wallet.lago_id)
    from wallets.models import Wallet as WalletModel

    with transaction.atomic():
        drawn = ledger.draw(
            wallet=WalletModel.objects.get(pk=wallet.lago_id),
            amount_cents=400,
            transaction_status="invoiced",
            actor=SYSTEM,
            now=inbound.created_at,
        )
    fundings = lago.wallet_transactions.fundings(str(drawn.transaction.pk))
    [funding] = fundings["wallet_transaction_fundings"]
    assert (funding.amount_cents, funding.credit_amount) == (400, "4.0")
    assert funding.wallet_transaction.lago_id == str(inbound.pk)
    consumptions = lago.wallet_transactions.consumptions(str(inbound.pk))
    [consumption] = consumptions["wallet_transaction_consumptions"]
    assert consumption.wallet_transaction.lago_id == str(drawn.transaction.pk)
    assert consumptions["meta"]["total_count"] == 1
