"""Row locks of wallets and their transactions and alerts, held until the caller's transaction
ends (STYLE §7).

Several rows are always locked in primary-key order and only the app's own table is locked
(`of=("self",)`), so concurrent top-ups, voids, refreshes and invoice finalizations touching
the same wallets never wait on each other in a circle.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from wallets.models import Wallet, WalletAlert, WalletTransaction


def lock_wallet(wallet_id: UUID) -> Wallet:
    """The wallet row: its balances change only under this lock."""
    return Wallet.objects.select_for_update(of=("self",)).get(pk=wallet_id)


def lock_active_wallets(ids: Iterable[UUID]) -> list[Wallet]:
    """The active wallets among `ids`, in pk order."""
    return list(
        Wallet.objects.filter(pk__in=list(ids), status=Wallet.Status.ACTIVE)
        .order_by("pk")
        .select_for_update(of=("self",))
    )


def lock_customer_wallets(*, customer_id: UUID, currency: str) -> list[Wallet]:
    """The customer's active wallets in `currency`, in pk order: concurrent finalizations and
    top-ups lock them in one order."""
    return list(
        Wallet.objects.filter(
            customer_id=customer_id, status=Wallet.Status.ACTIVE, currency=currency
        )
        .order_by("pk")
        .select_for_update(of=("self",))
    )


def lock_wallet_transaction(transaction_id: UUID) -> WalletTransaction:
    """One wallet transaction (its wallet must be locked first: the one lock order)."""
    return WalletTransaction.objects.select_for_update(of=("self",)).get(pk=transaction_id)


def lock_spendable_inbound(wallet_id: UUID) -> list[WalletTransaction]:
    """The wallet's settled inbound transactions with something left, in pk order (the
    wallet locked first); the caller orders them for consumption."""
    return list(
        WalletTransaction.objects.filter(
            wallet_id=wallet_id,
            transaction_type=WalletTransaction.TransactionType.INBOUND,
            status=WalletTransaction.Status.SETTLED,
            remaining_amount_cents__gt=0,
        )
        .order_by("pk")
        .select_for_update(of=("self",))
    )


def lock_wallet_alert(alert_id: UUID) -> WalletAlert | None:
    """The alert row (None when it was deleted meanwhile)."""
    return WalletAlert.objects.select_for_update(of=("self",)).filter(pk=alert_id).first()
