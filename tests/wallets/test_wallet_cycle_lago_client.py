"""Issue 8's full flow through the official lago-python-client against a live server: a wallet
created with paid and granted credits, the credit invoice paid, a top-up, the transactions
listed, the credits consumed by the month's invoice, and the balance read back (spec §17)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from lago_python_client.models.billable_metric import BillableMetric
from lago_python_client.models.charge import Charge, Charges
from lago_python_client.models.customer import Customer
from lago_python_client.models.event import Event
from lago_python_client.models.invoice import InvoicePaymentStatusChange
from lago_python_client.models.plan import Plan
from lago_python_client.models.subscription import Subscription
from lago_python_client.models.wallet import Wallet
from lago_python_client.models.wallet_transaction import WalletTransaction

from invoicing.tasks import bill_customers_task, finalize_due_drafts_task
from wallets.models import Wallet as WalletRow
from wallets.services.ledger import wallet_drifts

pytestmark = pytest.mark.django_db(transaction=True)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def test_prepaid_wallet_cycle_through_the_client(lago, organization):
    with time_machine.travel(at("2024-03-01T09:00:00"), tick=False):
        metric = lago.billable_metrics.create(
            BillableMetric(name="API calls", code="api_calls", aggregation_type="count_agg")
        )
        lago.plans.create(
            Plan(
                name="Usage",
                code="usage",
                interval="monthly",
                amount_cents=1_000,
                amount_currency="EUR",
                pay_in_advance=False,
                charges=Charges(
                    __root__=[
                        Charge(
                            billable_metric_id=metric.lago_id,
                            charge_model="standard",
                            properties={"amount": "2.00"},
                        )
                    ]
                ),
            )
        )
        lago.customers.create(
            Customer(external_id="cust_w", name="Wallet Co", currency="EUR", timezone="UTC")
        )
        lago.subscriptions.create(
            Subscription(external_customer_id="cust_w", plan_code="usage", external_id="sub_w")
        )
        wallet = lago.wallets.create(
            Wallet(
                external_customer_id="cust_w",
                name="Prepaid",
                rate_amount="1",
                currency="EUR",
                paid_credits="20",
                granted_credits="5",
            )
        )
    assert (Decimal(wallet.credits_balance), wallet.balance_cents) == (Decimal(5), 500)

    # the paid credits wait for their credit invoice to be paid
    [credit_invoice] = lago.invoices.find_all({"external_customer_id": "cust_w"})["invoices"]
    assert (credit_invoice.invoice_type, credit_invoice.total_amount_cents) == ("credit", 2_000)
    with time_machine.travel(at("2024-03-02T09:00:00"), tick=False):
        lago.invoices.update(
            InvoicePaymentStatusChange(payment_status="succeeded"), credit_invoice.lago_id
        )
        [granted] = lago.wallet_transactions.create(
            WalletTransaction(wallet_id=wallet.lago_id, granted_credits="3")
        )["wallet_transactions"]
    assert (granted.status, granted.transaction_status) == ("settled", "granted")
    assert lago.wallets.find(wallet.lago_id).balance_cents == 2_800

    listed = lago.wallets.find_all({"external_customer_id": "cust_w"})["wallets"]
    assert [w.lago_id for w in listed] == [wallet.lago_id]

    for index in range(4):  # 4 calls x 2.00 = 8.00 + subscription 10.00 = 18.00
        with time_machine.travel(at(f"2024-03-1{index}T12:00:00"), tick=False):
            lago.events.create(
                Event(
                    transaction_id=f"tx_{index}",
                    external_subscription_id="sub_w",
                    code="api_calls",
                    properties={},
                )
            )
    with time_machine.travel(at("2024-04-01T00:10:00"), tick=False):
        assert bill_customers_task() == 1
        finalize_due_drafts_task()

    invoices = lago.invoices.find_all({"external_customer_id": "cust_w"})["invoices"]
    [invoice] = [i for i in invoices if i.invoice_type == "subscription"]
    assert invoice.status == "finalized"
    assert (invoice.fees_amount_cents, invoice.prepaid_credit_amount_cents) == (1_800, 1_800)
    assert invoice.total_amount_cents == 0

    after = lago.wallets.find(wallet.lago_id)
    assert after.balance_cents == 1_000
    assert Decimal(after.consumed_credits) == Decimal(18)
    transactions = lago.wallet_transactions.find_all(wallet.lago_id)["wallet_transactions"]
    kinds = sorted(
        (t.transaction_type, t.transaction_status, Decimal(t.amount)) for t in transactions
    )
    assert kinds == [
        ("inbound", "granted", Decimal(3)),
        ("inbound", "granted", Decimal(5)),
        ("inbound", "purchased", Decimal(20)),
        ("outbound", "invoiced", Decimal(18)),
    ]
    [outbound] = [t for t in transactions if t.transaction_type == "outbound"]
    assert outbound.lago_invoice_id == invoice.lago_id
    assert wallet_drifts(WalletRow.objects.get(pk=wallet.lago_id)) == []
