"""Reads of wallets and wallet transactions, scoped by organization (spec §17)."""

from __future__ import annotations

import uuid

from django.db.models import Case, IntegerField, Prefetch, QuerySet, Value, When

from billing.errors import NotFound
from billing.models import Organization
from customers.selectors import customer_get
from wallets.models import (
    RecurringTransactionRule,
    Wallet,
    WalletTransaction,
    WalletTransactionConsumption,
)

Tx = WalletTransaction


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def wallet_list(
    *, organization: Organization, external_customer_id: str | None = None
) -> QuerySet[Wallet]:
    """The organization's wallets, newest first, with what the API renders; a given
    `external_customer_id` of no alive customer is 404 `customer_not_found`."""
    wallets = (
        Wallet.objects.for_organization(organization)
        .select_related("customer__billing_entity")
        .prefetch_related(
            "targets__billable_metric",
            Prefetch(
                "recurring_transaction_rules",
                queryset=RecurringTransactionRule.objects.filter(
                    status=RecurringTransactionRule.Status.ACTIVE
                ),
                to_attr="active_rules",
            ),
        )
        .order_by("-created_at", "-id")
    )
    if external_customer_id is not None:
        customer = customer_get(organization=organization, external_id=external_customer_id)
        wallets = wallets.filter(customer=customer)
    return wallets


def wallet_get(*, organization: Organization, lago_id: object) -> Wallet:
    """The wallet with this id, else 404 `wallet_not_found` (another tenant's too)."""
    pk = _uuid(lago_id)
    wallet = wallet_list(organization=organization).filter(pk=pk).first() if pk else None
    if wallet is None:
        raise NotFound("wallet")
    return wallet


def wallet_get_by_code(
    *, organization: Organization, external_customer_id: str, code: str
) -> Wallet:
    """A customer's wallet by code: the active one, else the latest terminated one."""
    wallet = (
        wallet_list(organization=organization, external_customer_id=external_customer_id)
        .filter(code=code)
        .order_by(
            Case(
                When(status=Wallet.Status.ACTIVE, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            ),
            "-created_at",
            "-id",
        )
        .first()
    )
    if wallet is None:
        raise NotFound("wallet")
    return wallet


def wallet_transaction_list(
    *,
    wallet: Wallet,
    status: str | None = None,
    transaction_type: str | None = None,
    transaction_status: str | None = None,
) -> QuerySet[WalletTransaction]:
    """A wallet's ledger, newest first, filtered as `GET /wallets/{id}/wallet_transactions`."""
    transactions = Tx.objects.filter(wallet=wallet).order_by("-created_at", "-id")
    for field, value in (
        ("status", status),
        ("transaction_type", transaction_type),
        ("transaction_status", transaction_status),
    ):
        if value:
            transactions = transactions.filter(**{field: value})
    return transactions


def wallet_transaction_get(*, organization: Organization, lago_id: object) -> WalletTransaction:
    """The transaction with this id, else 404 `wallet_transaction_not_found`."""
    pk = _uuid(lago_id)
    tx = (
        Tx.objects.for_organization(organization).select_related("wallet").filter(pk=pk).first()
        if pk
        else None
    )
    if tx is None:
        raise NotFound("wallet_transaction")
    return tx


def wallet_transaction_consumptions(
    *, transaction: WalletTransaction
) -> QuerySet[WalletTransactionConsumption]:
    """What drew on an inbound transaction, oldest first (each with its outbound one)."""
    return (
        WalletTransactionConsumption.objects.filter(inbound_wallet_transaction=transaction)
        .select_related("outbound_wallet_transaction")
        .order_by("created_at", "id")
    )


def wallet_transaction_fundings(
    *, transaction: WalletTransaction
) -> QuerySet[WalletTransactionConsumption]:
    """The inbound transactions an outbound transaction drew from, in consumption order."""
    return (
        WalletTransactionConsumption.objects.filter(outbound_wallet_transaction=transaction)
        .select_related("inbound_wallet_transaction")
        .order_by("created_at", "id")
    )
