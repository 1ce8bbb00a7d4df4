"""Credit invoices of paid top-ups (spec §12.2 `credit`, §17.3, §19.3): created with the
purchase, finalized at once or left open until paid, settling (or failing) the credits with
their payment; their PDF line; void."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from invoicing.models import Fee, Invoice
from invoicing.pdf import render_invoice_html
from invoicing.services.payments import invoice_update
from invoicing.services.void import invoice_void
from tests.customers.factories import CustomerFactory
from tests.wallets.factories import WalletFactory, fund_wallet
from wallets.models import Wallet, WalletTransaction
from wallets.services import ledger
from wallets.services.transactions import wallet_top_up

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
PAID_AT = dt.datetime(2026, 3, 4, 9, tzinfo=dt.UTC)
Tx = WalletTransaction


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


@pytest.fixture
def wallet(organization) -> Wallet:
    customer = CustomerFactory(
        organization=organization, external_id="acme", currency="EUR", timezone="UTC"
    )
    return WalletFactory(organization=organization, customer=customer, name="Main wallet")


def buy(wallet: Wallet, credits: str, **options) -> tuple[WalletTransaction, Invoice]:
    [tx] = wallet_top_up(wallet=wallet, paid_credits=credits, actor=SYSTEM, now=NOW, **options)
    return tx, Invoice.objects.get(pk=tx.invoice_id)


def pay(invoice: Invoice, status: str = "succeeded", now: dt.datetime = PAID_AT) -> Invoice:
    return invoice_update(invoice=invoice, payment_status=status, actor=SYSTEM, now=now)


def events(invoice: Invoice) -> list[str]:
    return list(
        OutboxEvent.objects.filter(object_id=str(invoice.pk))
        .order_by("created_at", "id")
        .values_list("event_type", flat=True)
    )


# --------------------------------------------------------------------------------------------
# V86: paid top-up, invoice finalized at once


def test_v86_paid_top_up_is_billed_by_a_finalized_credit_invoice(wallet):
    tx, invoice = buy(wallet, "17.9699999999999988631316")

    assert (tx.status, tx.transaction_status, tx.credit_amount) == (
        "pending",
        "purchased",
        Decimal("17.97"),
    )
    assert (invoice.invoice_type, invoice.status, invoice.payment_status) == (
        "credit",
        "finalized",
        "pending",
    )
    assert (invoice.fees_amount_cents, invoice.taxes_amount_cents, invoice.total_amount_cents) == (
        1797,
        0,
        1797,
    )
    assert invoice.number
    assert not invoice.number.endswith("DRAFT")
    assert events(invoice) == ["invoice.paid_credit_added"]


def test_v86_credit_invoice_has_one_credit_fee_of_the_transaction(wallet):
    tx, invoice = buy(wallet, "17.9699999999999988631316")

    [fee] = Fee.objects.filter(invoice=invoice)
    assert (fee.fee_type, fee.amount_cents, fee.taxes_amount_cents) == ("credit", 1797, 0)
    assert (fee.units, fee.wallet_transaction_id) == (Decimal("17.97"), tx.pk)
    assert not fee.applied_taxes.exists()


def test_v86_balance_moves_only_when_the_invoice_is_paid(wallet):
    tx, invoice = buy(wallet, "17.9699999999999988631316")
    wallet.refresh_from_db()
    assert wallet.balance_cents == 0

    pay(invoice)

    tx.refresh_from_db()
    wallet.refresh_from_db()
    assert (tx.status, tx.settled_at) == ("settled", PAID_AT)
    assert (wallet.credits_balance, wallet.balance_cents) == (Decimal("17.97"), 1797)
    assert ledger.wallet_drifts(wallet) == []


def test_credit_invoice_amount_follows_the_rate(organization):
    rated = WalletFactory(organization=organization, rate_amount=Decimal("1.5"))

    _, invoice = buy(rated, "10")

    assert invoice.total_amount_cents == 1500
    assert Fee.objects.get(invoice=invoice).precise_unit_amount == Decimal("1.5")


def test_credit_invoice_is_not_paid_by_the_wallets_own_credits(wallet):
    fund_wallet(wallet, "50")

    _, invoice = buy(wallet, "10")

    assert (invoice.prepaid_credit_amount_cents, invoice.total_amount_cents) == (0, 1000)
    wallet.refresh_from_db()
    assert wallet.balance_cents == 5000


def test_failed_payment_fails_the_purchase(wallet):
    tx, invoice = buy(wallet, "10")

    pay(invoice, "failed")

    tx.refresh_from_db()
    wallet.refresh_from_db()
    assert (tx.status, tx.failed_at) == ("failed", PAID_AT)
    assert wallet.balance_cents == 0


def test_paying_twice_settles_once(wallet):
    _, invoice = buy(wallet, "10")

    pay(invoice)
    pay(invoice, "pending")
    pay(invoice)

    wallet.refresh_from_db()
    assert wallet.balance_cents == 1000
    assert ledger.wallet_drifts(wallet) == []


# --------------------------------------------------------------------------------------------
# invoice_requires_successful_payment: open until paid


def test_invoice_requiring_payment_stays_open_without_number(wallet, api):
    _, invoice = buy(wallet, "10", invoice_requires_successful_payment=True)

    assert (invoice.status, invoice.number, invoice.finalized_at) == ("open", "", None)
    assert events(invoice) == []
    assert api.get(f"/api/v1/invoices/{invoice.pk}").status_code == 404
    assert api.get("/api/v1/invoices").json()["invoices"] == []


def test_open_invoice_is_finalized_on_payment_with_the_payment_day(wallet):
    tx, invoice = buy(wallet, "10", invoice_requires_successful_payment=True)

    paid = pay(invoice)

    assert (paid.status, paid.finalized_at) == ("finalized", PAID_AT)
    assert paid.number
    assert not paid.number.endswith("DRAFT")
    assert paid.issuing_date == paid.payment_due_date == dt.date(2026, 3, 4)
    assert "invoice.paid_credit_added" in events(paid)
    tx.refresh_from_db()
    wallet.refresh_from_db()
    assert (tx.status, wallet.balance_cents) == ("settled", 1000)


def test_open_invoice_whose_payment_failed_stays_open(wallet):
    tx, invoice = buy(wallet, "10", invoice_requires_successful_payment=True)

    failed = pay(invoice, "failed")

    tx.refresh_from_db()
    assert (failed.status, failed.number, tx.status) == ("open", "", "failed")


# --------------------------------------------------------------------------------------------
# Void, PDF, API


def test_voiding_a_credit_invoice_fails_its_pending_purchase(wallet):
    tx, invoice = buy(wallet, "10")

    invoice_void(invoice=invoice, actor=SYSTEM, now=PAID_AT)

    tx.refresh_from_db()
    wallet.refresh_from_db()
    assert tx.status == "failed"
    assert wallet.balance_cents == 0
    assert ledger.wallet_drifts(wallet) == []


def test_pdf_line_reads_prepaid_credits_and_the_wallet_name(wallet):
    _, invoice = buy(wallet, "10")

    html = render_invoice_html(invoice)

    assert "Prepaid credits \N{EN DASH} Main wallet" in html


def test_api_credit_fee_item_points_to_the_wallet_transaction(wallet, api):
    tx, invoice = buy(wallet, "10")

    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()["invoice"]

    assert (body["invoice_type"], body["total_amount_cents"]) == ("credit", 1000)
    [fee] = body["fees"]
    assert fee["item"]["type"] == "credit"
    assert (fee["item"]["item_type"], fee["item"]["lago_item_id"]) == (
        "WalletTransaction",
        str(tx.pk),
    )


@pytest.mark.django_db(transaction=True)
def test_v86_full_flow_through_the_lago_client(lago, organization):
    from lago_python_client.models.invoice import Invoice as LagoInvoice
    from lago_python_client.models.wallet_transaction import WalletTransaction as LagoTx

    customer = CustomerFactory(organization=organization, external_id="acme", currency="EUR")
    main = WalletFactory(organization=organization, customer=customer)

    created = lago.wallet_transactions.create(
        LagoTx(wallet_id=str(main.pk), paid_credits="17.9699999999999988631316")
    )
    [tx] = created["wallet_transactions"]
    assert (tx.status, tx.credit_amount, tx.amount) == ("pending", "17.97", "17.97")
    invoice = lago.invoices.find(tx.lago_invoice_id)
    assert (invoice.invoice_type, invoice.status, invoice.payment_status) == (
        "credit",
        "finalized",
        "pending",
    )
    assert invoice.total_amount_cents == 1797

    lago.invoices.update(LagoInvoice(payment_status="succeeded"), tx.lago_invoice_id)

    wallet = lago.wallets.find(str(main.pk))
    assert (wallet.credits_balance, wallet.balance_cents) == ("17.97", 1797)
