"""Wallet admin: scoped list, the wallet page and its ledger, buttons calling the services,
service errors as messages, and the wallets panel of the customer 360 page."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from billing.actors import SYSTEM
from billing.roles import ensure_role_groups
from billing.services import membership_set
from tests.customers.factories import CustomerFactory
from tests.plans.factories import BillableMetricFactory
from wallets.models import RecurringTransactionRule, Wallet, WalletTarget, WalletTransaction
from wallets.services import ledger

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/wallets/wallet/"
NOW = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
Tx = WalletTransaction


def change_url(wallet: Wallet) -> str:
    return f"{CHANGELIST}{wallet.pk}/change/"


def credits_url(wallet: Wallet, operation: str) -> str:
    return f"{CHANGELIST}{wallet.pk}/credits/{operation}/"


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def make_wallet(organization, *, customer=None, code="main_wallet", currency="EUR", rate="1",
                **fields) -> Wallet:  # fmt: skip
    customer = customer or CustomerFactory(organization=organization, currency=currency)
    return Wallet.objects.create(
        organization=organization,
        customer=customer,
        code=code,
        currency=currency,
        rate_amount=Decimal(rate),
        **fields,
    )


def grant(wallet: Wallet, credits: str, **kwargs) -> WalletTransaction:
    return ledger.inbound_create(
        wallet=wallet,
        credit_amount=Decimal(credits),
        transaction_status=Tx.TransactionStatus.GRANTED,
        settled=True,
        actor=SYSTEM,
        now=NOW,
        **kwargs,
    )


@pytest.fixture(autouse=True)
def _role_groups():
    ensure_role_groups()


def _staff(organization, username: str, role: str = "finance"):
    user = get_user_model().objects.create_user(username, f"{username}@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role=role)
    return user


@pytest.fixture
def finance_client(client, organization):
    client.force_login(_staff(organization, "fin"))
    return client


@pytest.fixture
def globex(organization):
    return CustomerFactory(organization=organization, name="Globex", external_id="globex")


@pytest.fixture
def wallet(organization, globex):
    wallet = make_wallet(organization, customer=globex, name="Prepaid credits")
    grant(wallet, "150")
    wallet.refresh_from_db()
    return wallet


# --- the list ---------------------------------------------------------------------------------


def test_changelist_shows_customer_status_and_formatted_balances(admin_client, wallet):
    Wallet.objects.filter(pk=wallet.pk).update(
        expiration_at=dt.datetime(2027, 1, 31, tzinfo=dt.UTC), priority=7
    )
    page = admin_client.get(CHANGELIST).content.decode()
    for expected in ("Prepaid credits", "main_wallet · EUR", "Globex", "globex", "Active",
                     "expires 2027-01-31", "€150.00", "150.00 credits"):  # fmt: skip
        assert expected in page, expected
    assert re.search(r'<td class="field-priority[^"]*"[^>]*>7</td>', page)
    assert "td.field-balance" in page  # right-aligned money column


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("q=globex", "main_wallet", "jp_wallet"),
        ("q=Initech", "jp_wallet", "main_wallet"),
        ("q=jp_wall", "jp_wallet", "main_wallet"),
        ("currency__exact=JPY", "jp_wallet", "main_wallet"),
        ("status__exact=terminated", "jp_wallet", "main_wallet"),
    ],
)
def test_changelist_search_and_filters(admin_client, organization, wallet, query, shown, hidden):
    initech = CustomerFactory(organization=organization, name="Initech", currency="JPY")
    make_wallet(organization, customer=initech, code="jp_wallet", currency="JPY",
                status=Wallet.Status.TERMINATED)  # fmt: skip
    page = admin_client.get(f"{CHANGELIST}?{query}").content.decode()
    assert shown in page
    assert hidden not in page


def test_staff_see_only_their_organizations_wallets(finance_client, wallet, other_organization):
    foreign = make_wallet(other_organization, code="foreign_wallet", currency="USD")
    page = finance_client.get(CHANGELIST).content.decode()
    assert "main_wallet" in page
    assert "foreign_wallet" not in page
    # the admin's own page redirects on an unknown object; the wallet's buttons are 404
    assert finance_client.get(change_url(foreign)).status_code == 302
    assert finance_client.get(credits_url(foreign, "grant")).status_code == 404
    assert finance_client.post(credits_url(foreign, "grant"), {"credits": "5"}).status_code == 404
    assert finance_client.post(f"{CHANGELIST}{foreign.pk}/terminate/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.balance_cents == 0


# --- the wallet page --------------------------------------------------------------------------


def test_wallet_page_shows_the_balances_and_the_buttons(finance_client, wallet):
    Wallet.objects.filter(pk=wallet.pk).update(
        ongoing_usage_balance_cents=20_000,
        ongoing_balance_cents=-5_000,
        credits_ongoing_balance=Decimal("-50"),
        last_balance_sync_at=NOW,
    )
    page = finance_client.get(change_url(wallet)).content.decode()
    for expected in ("€150.00", "150.00 credits", "Ongoing balance", "-€50.00", "€200.00",
                     "2026-11-01 12:00", "1 credit = €1.00", "Top up", "Grant credits",
                     "Void credits", "Terminate wallet"):  # fmt: skip
        assert expected in page, expected
    assert "wal-negative" in page  # a negative ongoing balance stands out


def test_wallet_page_shows_scope_and_recurring_rule(admin_client, organization, wallet):
    Wallet.objects.filter(pk=wallet.pk).update(allowed_fee_types=["charge"])
    metric = BillableMetricFactory(organization=organization, code="api_calls", name="API calls")
    WalletTarget.objects.create(organization=organization, wallet=wallet, billable_metric=metric)
    RecurringTransactionRule.objects.create(
        organization=organization,
        wallet=wallet,
        trigger=RecurringTransactionRule.Trigger.THRESHOLD,
        threshold_credits=Decimal("20"),
        paid_credits=Decimal("100"),
    )
    page = admin_client.get(change_url(wallet)).content.decode()
    for expected in ("Applies to", "Charge", "API calls", "api_calls", "Recurring top-up",
                     "Threshold", "20.00", "100.00"):  # fmt: skip
        assert expected in page, expected


def test_ledger_traces_what_each_consumption_drew_from(admin_client, organization, wallet):
    from tests.invoicing.invoice_builders import build_invoice

    invoice = build_invoice(organization, customer=wallet.customer, number="ACM-0042")
    purchase = ledger.inbound_create(
        wallet=wallet,
        credit_amount=Decimal("40"),
        transaction_status=Tx.TransactionStatus.PURCHASED,
        settled=True,
        priority=1,
        actor=SYSTEM,
        now=NOW,
    )
    consumed = ledger.draw(
        wallet=wallet,
        amount_cents=6_000,
        transaction_status=Tx.TransactionStatus.INVOICED,
        invoice_id=invoice.pk,
        actor=SYSTEM,
        now=NOW,
    ).transaction
    page = admin_client.get(change_url(wallet)).content.decode()
    assert f'id="tx-{consumed.pk}"' in page
    assert "\u2212€60.00" in page  # outbound, signed
    assert "+€40.00" in page
    # the purchase (priority 1) went first, then the grant
    assert page.count("drawn from") == 2
    assert page.count("consumed by") == 2
    assert f'href="#tx-{purchase.pk}"' in page
    assert f'href="#tx-{consumed.pk}"' in page
    assert f"/admin/invoicing/invoice/{invoice.pk}/change/" in page
    assert "ACM-0042" in page  # invoicing labels its invoices
    assert "€130.00" in page  # the grant's remaining amount


@pytest.mark.parametrize(
    ("rate", "currency", "shown"),
    [("1.5", "EUR", "€1.50"), ("0.001", "EUR", "0.001 EUR"), ("100", "JPY", "¥100")],
)
def test_the_rate_shows_as_money_or_exactly(organization, rate, currency, shown):
    from wallets.admin import rate_text

    wallet = make_wallet(organization, rate=rate, currency=currency)
    assert rate_text(wallet) == shown


def test_ledger_is_read_only(admin_client, wallet):
    page = admin_client.get(change_url(wallet)).content.decode()
    assert 'name="_save"' not in page
    assert admin_client.get("/admin/wallets/wallettransaction/").status_code == 404


# --- the buttons ------------------------------------------------------------------------------


def test_grant_creates_a_settled_granted_transaction(finance_client, wallet):
    response = finance_client.post(
        credits_url(wallet, "grant"), {"credits": "25.5", "name": "Goodwill"}, follow=True
    )
    tx = Tx.objects.get(wallet=wallet, name="Goodwill")
    assert (tx.transaction_status, tx.status, tx.credit_amount) == ("granted", "settled", 25.5)
    wallet.refresh_from_db()
    assert wallet.balance_cents == 17_550
    assert messages_of(response) == ["25.50 credits granted (granted settled)."]
    assert response.redirect_chain[-1][0] == change_url(wallet)


def test_void_draws_on_the_balance(finance_client, wallet):
    finance_client.post(credits_url(wallet, "void"), {"credits": "50"})
    tx = Tx.objects.get(wallet=wallet, transaction_status="voided")
    assert (tx.transaction_type, tx.status, tx.amount_cents) == ("outbound", "settled", 5_000)
    wallet.refresh_from_db()
    assert wallet.balance_cents == 10_000


def test_top_up_creates_a_pending_purchase(finance_client, wallet):
    response = finance_client.post(
        credits_url(wallet, "top-up"),
        {"credits": "30", "invoice_requires_successful_payment": "true"},
        follow=True,
    )
    tx = Tx.objects.get(wallet=wallet, transaction_status="purchased")
    assert (tx.status, tx.amount_cents, tx.invoice_requires_successful_payment) == (
        "pending",
        3_000,
        True,
    )
    assert tx.invoice_id is not None  # its credit invoice
    wallet.refresh_from_db()
    assert wallet.balance_cents == 15_000  # until the invoice is paid
    assert messages_of(response) == ["30.00 credits topped up (purchased pending)."]


def test_terminate_voids_the_remaining_credits(finance_client, wallet):
    assert "void" in finance_client.get(f"{CHANGELIST}{wallet.pk}/terminate/").content.decode()
    response = finance_client.post(f"{CHANGELIST}{wallet.pk}/terminate/", follow=True)
    wallet.refresh_from_db()
    assert (wallet.status, wallet.balance_cents) == ("terminated", 0)
    assert Tx.objects.get(wallet=wallet, transaction_status="voided").amount_cents == 15_000
    assert messages_of(response) == ["1 terminated."]
    page = response.content.decode()
    assert "Terminate wallet" not in page
    assert "Grant credits" not in page


def test_terminating_a_terminated_wallet_only_says_so(finance_client, wallet):
    finance_client.post(f"{CHANGELIST}{wallet.pk}/terminate/", follow=True)
    response = finance_client.post(f"{CHANGELIST}{wallet.pk}/terminate/", follow=True)
    assert messages_of(response) == ["Prepaid credits is already terminated."]
    assert Tx.objects.filter(wallet=wallet, transaction_status="voided").count() == 1


def test_terminate_action_of_the_list(admin_client, wallet):
    admin_client.post(CHANGELIST, {"action": "terminate_wallets", "_selected_action": [wallet.pk]})
    wallet.refresh_from_db()
    assert wallet.status == Wallet.Status.TERMINATED


# --- service errors are messages, not 500s ---------------------------------------------------


def test_voiding_more_than_the_balance_is_refused_with_a_message(finance_client, wallet):
    response = finance_client.post(credits_url(wallet, "void"), {"credits": "500"})
    assert response.status_code == 200
    assert messages_of(response) == ["Not voided: voided credits: insufficient credits"]
    assert not Tx.objects.filter(wallet=wallet, transaction_status="voided").exists()


def test_paid_top_up_outside_the_limits_is_refused_with_a_message(finance_client, wallet):
    Wallet.objects.filter(pk=wallet.pk).update(paid_top_up_min_amount_cents=10_000)
    response = finance_client.post(credits_url(wallet, "top-up"), {"credits": "30"})
    assert response.status_code == 200
    assert messages_of(response) == ["Not topped up: paid credits: amount below minimum"]
    response = finance_client.post(
        credits_url(wallet, "top-up"), {"credits": "30", "ignore_paid_top_up_limits": "on"}
    )
    assert response.status_code == 302
    assert Tx.objects.filter(wallet=wallet, transaction_status="purchased").count() == 1


def test_acting_on_a_terminated_wallet_is_refused_with_a_message(finance_client, wallet):
    Wallet.objects.filter(pk=wallet.pk).update(status=Wallet.Status.TERMINATED)
    response = finance_client.post(credits_url(wallet, "grant"), {"credits": "5"})
    assert response.status_code == 200
    assert messages_of(response) == ["Not granted: wallet id: wallet is terminated"]


def test_a_bad_amount_is_a_form_error(finance_client, wallet):
    response = finance_client.post(credits_url(wallet, "grant"), {"credits": "-3"})
    assert response.status_code == 200
    assert response.context["form"].errors["credits"]
    assert Tx.objects.filter(wallet=wallet).count() == 1


def test_view_only_staff_see_the_wallet_without_buttons(client, organization, wallet):
    user = _staff(organization, "viewer")
    user.groups.clear()
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="wallets", codename="view_wallet"),
        Permission.objects.get(content_type__app_label="customers", codename="view_customer"),
    )
    client.force_login(user)
    page = client.get(change_url(wallet)).content.decode()
    assert "€150.00" in page
    assert "Grant credits" not in page
    assert client.post(credits_url(wallet, "grant"), {"credits": "5"}).status_code == 403


# --- customer 360 -----------------------------------------------------------------------------


def test_customer_page_lists_the_wallets_with_balances_and_links(admin_client, organization,
                                                                 wallet):  # fmt: skip
    make_wallet(organization, customer=wallet.customer, code="old", status="terminated")
    response = admin_client.get(f"/admin/customers/customer/{wallet.customer_id}/change/")
    page = response.content.decode()
    assert 'id="c360-wallets"' in page
    assert f'href="{change_url(wallet)}"' in page
    assert "€150.00" in page
    assert "Terminated" in page
    make_wallet(organization, code="someone_elses")
    (panel,) = [p for p in response.context["customer_360_panels"] if p.title == "Wallets"]
    listed = admin_client.get(dict(panel.actions)["All wallets"])
    assert listed.status_code == 200
    assert "main_wallet" in listed.content.decode()
    assert "someone_elses" not in listed.content.decode()


def test_customer_without_wallets_says_so(admin_client, globex):
    page = admin_client.get(f"/admin/customers/customer/{globex.pk}/change/").content.decode()
    assert "No wallets." in page
