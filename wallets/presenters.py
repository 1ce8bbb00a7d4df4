"""How wallets read for staff: badges, credits, the value of a credit, the customer's name, the
names of invoices, and the "Wallets" panel of the customer 360 page (listed in
`invoicing/customer_360.py`).

Invoices belong to `invoicing`, above this app: pages here link them by URL name only, and name
them through the `wallets.ports.invoice_labels` port that `invoicing/apps.py` binds.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from billing.admin_base import Panel, staff_may_in
from billing.money import format_money, to_minor
from customers.models import Customer
from customers.presenters import customer_name  # noqa: F401 - the wallet pages' customer label
from wallets.models import CREDITS, Wallet, WalletTransaction

Tx = WalletTransaction

# badge colours shared with the invoice admin: ok = green, warn = amber, off = red
_TAG = {
    Wallet.Status.ACTIVE: "ok",
    Wallet.Status.TERMINATED: "off",
    Tx.Status.SETTLED: "ok",
    Tx.Status.PENDING: "warn",
    Tx.Status.FAILED: "off",
}


def tag(label: str, kind: str = "") -> str:
    """A coloured badge: a wallet or transaction status, a transaction kind."""
    return format_html('<span class="wal-tag {}">{}</span>', _TAG.get(kind, kind), label)


def credits_text(value: Decimal | None) -> str:
    """Credits for people: thousands separated, at least two decimals, at most five."""
    if value is None:
        return "—"
    # credits are stored with CREDITS' decimal places: the format shows them, never rounds
    places = max(2, -value.normalize().as_tuple().exponent)
    return f"{value:,.{min(places, CREDITS['decimal_places'])}f}"


def rate_text(wallet: Wallet) -> str:
    """The value of one credit: money when it is whole minor units, else the exact rate."""
    precise = to_minor(wallet.rate_amount, wallet.currency)
    if precise == precise.to_integral_value():
        return format_money(int(precise), wallet.currency)
    return f"{wallet.rate_amount.normalize():f} {wallet.currency}"


def wallet_url(wallet: Wallet) -> str:
    return reverse("admin:wallets_wallet_change", args=[wallet.pk])


def wallets_panel(request: HttpRequest, customer: Customer) -> Panel:
    """The customer's wallets with their balances and pending top-ups."""
    wallets = list(
        Wallet.objects.filter(customer=customer)
        .annotate(
            _pending=Count(
                "transactions",
                filter=Q(
                    transactions__transaction_type=Tx.TransactionType.INBOUND,
                    transactions__status=Tx.Status.PENDING,
                ),
            )
        )
        .order_by("status", "priority", "created_at")
    )
    rows = [
        {
            "wallet": wallet,
            "url": wallet_url(wallet),
            "status": tag(wallet.get_status_display(), wallet.status),
            "balance": format_money(wallet.balance_cents, wallet.currency),
            "credits": credits_text(wallet.credits_balance),
            "ongoing_balance": format_money(wallet.ongoing_balance_cents, wallet.currency),
            "ongoing_negative": wallet.ongoing_balance_cents < 0,
            "pending": wallet._pending,
        }
        for wallet in wallets
    ]
    actions = []
    if rows:
        actions.append(
            (
                "All wallets",
                reverse("admin:wallets_wallet_changelist") + f"?customer__id__exact={customer.pk}",
            )
        )
    if customer.deleted_at is None and staff_may_in(
        request, "add", Wallet, customer.organization_id
    ):
        url = reverse("admin:wallets_wallet_add") + f"?customer={customer.pk}"
        actions.append(("New wallet", url))
    return Panel("Wallets", "admin/wallets/customer_panel.html", {"rows": rows}, actions)
