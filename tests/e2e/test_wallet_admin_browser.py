"""A finance member opens a customer's wallet from the 360 page, grants credits through the
button and sees the ledger line and the new balance.

Screenshots go to $SCREENSHOT_DIR (run with SCREENSHOT_DIR=/tmp for /tmp/wallet_*.png)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from billing.actors import SYSTEM
from billing.roles import ensure_role_groups
from billing.services import membership_set
from tests.customers.factories import CustomerFactory
from tests.e2e.conftest import SCREENSHOTS, admin_login
from tests.invoicing.invoice_builders import FeeSpec, build_invoice
from wallets.models import RecurringTransactionRule, Wallet, WalletTransaction
from wallets.services import ledger

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

Tx = WalletTransaction
NOW = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def finance(organization):
    ensure_role_groups()
    user = get_user_model().objects.create_user("fin", "fin@example.com", "s3cret-pass")
    membership_set(organization=organization, user=user, role="finance")
    return user


@transaction.atomic  # the ledger locks the wallet row
def _inbound(wallet, credits, status, *, name="", priority=None, settled=True):
    return ledger.inbound_create(
        wallet=wallet,
        credit_amount=Decimal(credits),
        transaction_status=status,
        settled=settled,
        priority=priority,
        name=name,
        actor=SYSTEM,
        now=NOW,
    )


@pytest.fixture
def wallet(organization):
    customer = CustomerFactory(organization=organization, name="Globex", external_id="globex")
    wallet = Wallet.objects.create(
        organization=organization,
        customer=customer,
        name="Prepaid credits",
        code="prepaid",
        currency="EUR",
        rate_amount=Decimal("1"),
        priority=10,
        allowed_fee_types=["charge", "subscription"],
        paid_top_up_min_amount_cents=5_000,
        last_balance_sync_at=NOW,
        metadata={"contract": "MSA-42"},
    )
    RecurringTransactionRule.objects.create(
        organization=organization,
        wallet=wallet,
        trigger=RecurringTransactionRule.Trigger.THRESHOLD,
        threshold_credits=Decimal("50"),
        paid_credits=Decimal("200"),
    )
    _inbound(wallet, "100", Tx.TransactionStatus.GRANTED, name="Welcome credits")
    _inbound(wallet, "500", Tx.TransactionStatus.PURCHASED, name="Annual pack", priority=1)
    invoice = build_invoice(
        organization,
        customer=customer,
        invoice_type="subscription",
        number="ACM-2026-0007",
        fees=[FeeSpec(kind="subscription", amount_cents=55_000, name="Scale plan")],
    )
    with transaction.atomic():
        ledger.draw(
            wallet=wallet,
            amount_cents=55_000,
            transaction_status=Tx.TransactionStatus.INVOICED,
            invoice_id=invoice.pk,
            actor=SYSTEM,
            now=NOW,
        )
    _inbound(wallet, "250", Tx.TransactionStatus.PURCHASED, name="Top-up", settled=False)
    Wallet.objects.filter(pk=wallet.pk).update(
        ongoing_usage_balance_cents=1_250, ongoing_balance_cents=3_750
    )
    Wallet.objects.create(
        organization=organization,
        customer=customer,
        name="Old credits",
        code="old",
        currency="EUR",
        rate_amount=Decimal("1"),
        status=Wallet.Status.TERMINATED,
        terminated_at=NOW,
    )
    return wallet


def test_finance_member_grants_credits_from_the_wallet_page(
    live_server, page, screenshot, finance, wallet
):
    admin_login(page, live_server.url, "fin", "s3cret-pass")
    page.goto(f"{live_server.url}/admin/customers/customer/{wallet.customer_id}/change/")
    panel = page.locator("#c360-wallets")
    panel.wait_for()
    assert "€50.00" in panel.inner_text()
    screenshot("wallet_customer_360")
    panel.screenshot(path=str(SCREENSHOTS / "wallet_customer_panel.png"))

    panel.locator("a", has_text="Prepaid credits").click()
    page.wait_for_selector("#wallet-ledger")
    assert page.locator("#wallet-balance").inner_text() == "€50.00"
    ledger_rows = page.locator("#wallet-ledger tr.wal-tx")
    assert ledger_rows.count() == 4
    assert page.locator("#wallet-ledger tr.wal-trace").count() == 4  # 2 drawn from, 2 consumed by
    assert page.locator("#wallet-ledger a", has_text="ACM-2026-0007").count() == 1
    # money columns are right-aligned
    for cell in ("#wallet-ledger td.num", "#wallet-ledger th.num"):
        align = page.locator(cell).first.evaluate("e => getComputedStyle(e).textAlign")
        assert align == "right", cell
    screenshot("wallet_page")

    page.click("#wallet-operations a:has-text('Grant credits')")
    page.fill("#id_credits", "25")
    page.fill("#id_name", "Goodwill gesture")
    screenshot("wallet_grant_form")
    page.click("#wallet-credits-form input[type=submit]")

    page.wait_for_selector(".messagelist .success")
    assert "25.00 credits granted" in page.locator(".messagelist").inner_text()
    assert page.locator("#wallet-balance").inner_text() == "€75.00"
    newest = ledger_rows.first
    assert "Goodwill gesture" in newest.inner_text()
    assert "+€25.00" in newest.inner_text()
    assert "Settled" in newest.inner_text()
    assert ledger_rows.count() == 5
    screenshot("wallet_after_grant")
    wallet.refresh_from_db()
    assert wallet.balance_cents == 7_500

    page.goto(f"{live_server.url}/admin/wallets/wallet/")
    assert page.locator("#result_list tbody tr").count() == 2
    align = page.locator("td.field-balance").first.evaluate("e => getComputedStyle(e).textAlign")
    assert align == "right"
    screenshot("wallet_list")


def test_service_refusal_shows_as_a_message(live_server, page, screenshot, finance, wallet):
    admin_login(page, live_server.url, "fin", "s3cret-pass")
    page.goto(f"{live_server.url}/admin/wallets/wallet/{wallet.pk}/credits/void/")
    page.fill("#id_credits", "1000")
    page.click("#wallet-credits-form input[type=submit]")
    page.wait_for_selector(".messagelist .error")
    assert "insufficient credits" in page.locator(".messagelist").inner_text()
    screenshot("wallet_void_refused")
