"""The wallet ledger: the only code that changes a wallet's balance (spec §17.3-§17.5).

Every function expects to run inside the caller's database transaction and takes the wallet
row lock itself (`wallets.locks.lock_wallet`), so concurrent top-ups, voids and invoice
finalizations on one wallet serialize on that row; the balances are re-read under the lock,
never trusted from the caller's copy.

Invariants (checked by `manage.py check_wallets`, enforced in part by constraints):
- `balance_cents` = sum of `remaining_amount_cents` over settled inbound transactions
  = settled inbound `amount_cents` - settled outbound `amount_cents`;
- `credits_balance` = sum of `remaining_credit_amount` over settled inbound transactions;
- every outbound transaction is traced to the inbound ones it drew from
  (`WalletTransactionConsumption`), by inbound `priority`, then age.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from django.db.models import Q, Sum

from billing.actors import Actor
from billing.errors import Invalid, NotAllowed
from billing.models import OutboxEvent
from billing.outbox import emit
from wallets.credits import cents_to_amount, cents_to_credits, credits_to_cents
from wallets.locks import lock_spendable_inbound, lock_wallet, lock_wallet_transaction
from wallets.models import MAX_PRIORITY, Wallet, WalletTransaction, WalletTransactionConsumption

Tx = WalletTransaction


def _iso(instant: datetime | None) -> str | None:
    if instant is None:
        return None
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def emit_transaction_event(tx: WalletTransaction, event_type: str, *, actor: Actor) -> OutboxEvent:
    """`wallet_transaction.created|updated|payment_failure` outbox row, same transaction."""
    return emit(
        event_type=event_type,
        actor=actor,
        obj=tx,
        payload={
            "lago_id": str(tx.pk),
            "lago_wallet_id": str(tx.wallet_id),
            "status": tx.status,
            "transaction_status": tx.transaction_status,
            "transaction_type": tx.transaction_type,
            "amount": str(tx.amount),
            "credit_amount": str(tx.credit_amount),
            "settled_at": _iso(tx.settled_at),
        },
    )


def emit_wallet_event(wallet: Wallet, event_type: str, *, actor: Actor) -> OutboxEvent:
    """`wallet.created|updated|terminated|depleted_ongoing_balance` outbox row."""
    return emit(
        event_type=event_type,
        actor=actor,
        obj=wallet,
        payload={
            "lago_id": str(wallet.pk),
            "status": wallet.status,
            "balance_cents": wallet.balance_cents,
            "credits_balance": str(wallet.credits_balance),
            "ongoing_balance_cents": wallet.ongoing_balance_cents,
        },
    )


_BALANCE_FIELDS = [
    "balance_cents",
    "credits_balance",
    "ongoing_balance_cents",
    "credits_ongoing_balance",
    "updated_at",
]


def _apply_delta(wallet: Wallet, cents: int, credits: Decimal) -> None:
    """Moves the settled balance (and the ongoing balance with it) by a signed delta."""
    wallet.balance_cents += cents
    wallet.credits_balance += credits
    if wallet.balance_cents == 0:
        wallet.credits_balance = Decimal(0)  # no rounding dust left behind an empty wallet
    wallet.ongoing_balance_cents = wallet.balance_cents - wallet.ongoing_usage_balance_cents
    wallet.credits_ongoing_balance = wallet.credits_balance - wallet.credits_ongoing_usage_balance


# --------------------------------------------------------------------------------------------
# Inbound: purchased and granted credits


def inbound_create(
    *,
    wallet: Wallet,
    credit_amount: Decimal,
    transaction_status: str,
    settled: bool,
    actor: Actor,
    now: datetime,
    source: str = Tx.Source.MANUAL,
    priority: int | None = None,
    invoice_requires_successful_payment: bool = False,
    name: str = "",
    metadata: list | None = None,
    payment_method: dict | None = None,
    purchase_order_number: str = "",
    recurring_transaction_rule_id: UUID | None = None,
    trigger_key: str = "",
) -> WalletTransaction:
    """An inbound transaction of `credit_amount` credits: granted credits settle at once,
    purchased ones stay pending until their invoice is paid (`inbound_settle`)."""
    wallet = lock_wallet(wallet.pk)
    if not wallet.is_active:
        raise NotAllowed("wallet_not_active")
    cents = credits_to_cents(credit_amount, wallet.rate_amount, wallet.currency)
    tx = Tx(
        organization_id=wallet.organization_id,
        wallet=wallet,
        status=Tx.Status.SETTLED if settled else Tx.Status.PENDING,
        source=source,
        transaction_status=transaction_status,
        transaction_type=Tx.TransactionType.INBOUND,
        amount=cents_to_amount(cents, wallet.currency),
        amount_cents=cents,
        credit_amount=credit_amount,
        remaining_amount_cents=cents if settled else 0,
        remaining_credit_amount=credit_amount if settled else Decimal(0),
        priority=MAX_PRIORITY if priority is None else priority,
        invoice_requires_successful_payment=invoice_requires_successful_payment,
        name=name,
        metadata=metadata or [],
        payment_method=payment_method or {},
        purchase_order_number=purchase_order_number,
        recurring_transaction_rule_id=recurring_transaction_rule_id,
        trigger_key=trigger_key,
        settled_at=now if settled else None,
    )
    tx.save(force_insert=True)
    if settled:
        _apply_delta(wallet, cents, credit_amount)
        wallet.save(update_fields=_BALANCE_FIELDS)
    emit_transaction_event(tx, "wallet_transaction.created", actor=actor)
    return tx


def inbound_settle(*, transaction_id: UUID, actor: Actor, now: datetime) -> WalletTransaction:
    """A purchase becomes settled (its invoice was paid): the balance grows.

    Idempotent: an already settled transaction is returned unchanged. A purchase whose payment
    failed settles when a later payment succeeds (the customer paid: the credits are due)."""
    tx = Tx.objects.get(pk=transaction_id)
    wallet = lock_wallet(tx.wallet_id)
    tx = lock_wallet_transaction(transaction_id)
    if tx.status == Tx.Status.SETTLED:
        return tx
    settleable = (Tx.Status.PENDING, Tx.Status.FAILED)
    if tx.status not in settleable or tx.transaction_type != Tx.TransactionType.INBOUND:
        raise NotAllowed("transaction_not_pending")
    tx.status, tx.settled_at = Tx.Status.SETTLED, now
    tx.remaining_amount_cents, tx.remaining_credit_amount = tx.amount_cents, tx.credit_amount
    tx.save(
        update_fields=[
            "status", "settled_at", "remaining_amount_cents", "remaining_credit_amount",
            "updated_at",
        ]
    )  # fmt: skip
    _apply_delta(wallet, tx.amount_cents, tx.credit_amount)
    wallet.save(update_fields=_BALANCE_FIELDS)
    if not wallet.is_active:  # paid after the wallet ended: voided at once (§17.7)
        draw(
            wallet=wallet,
            amount_cents=tx.amount_cents,
            transaction_status=Tx.TransactionStatus.VOIDED,
            actor=actor,
            now=now,
            allow_inactive=True,
        )
    emit_transaction_event(tx, "wallet_transaction.updated", actor=actor)
    return tx


def inbound_fail(*, transaction_id: UUID, actor: Actor, now: datetime) -> WalletTransaction:
    """A pending purchase whose payment failed: `failed`, the balance never moved."""
    tx = Tx.objects.get(pk=transaction_id)
    lock_wallet(tx.wallet_id)
    tx = lock_wallet_transaction(transaction_id)
    if tx.status != Tx.Status.PENDING:
        return tx
    tx.status, tx.failed_at = Tx.Status.FAILED, now
    tx.save(update_fields=["status", "failed_at", "updated_at"])
    emit_transaction_event(tx, "wallet_transaction.payment_failure", actor=actor)
    return tx


# --------------------------------------------------------------------------------------------
# Outbound: voided and invoiced credits, traced to the inbound ones they drew from


@dataclass(frozen=True)
class Draw:
    """One outbound transaction and the granted / purchased split of what it consumed."""

    transaction: WalletTransaction
    granted_amount_cents: int
    purchased_amount_cents: int


def draw(
    *,
    wallet: Wallet,
    amount_cents: int,
    transaction_status: str,
    actor: Actor,
    now: datetime,
    invoice_id: UUID | None = None,
    name: str = "",
    metadata: list | None = None,
    allow_inactive: bool = False,
) -> Draw:
    """An outbound settled transaction of `amount_cents`, drawn from the settled inbound
    transactions by priority then age (spec §17.5); never more than the balance."""
    wallet = lock_wallet(wallet.pk)
    if not wallet.is_active and not allow_inactive:
        raise NotAllowed("wallet_not_active")
    if amount_cents <= 0:
        raise Invalid({"amount_cents": ["value_is_out_of_range"]})
    if amount_cents > wallet.balance_cents:
        raise Invalid({"credits": ["insufficient_credits"]})
    whole = amount_cents == wallet.balance_cents
    out = Tx(
        organization_id=wallet.organization_id,
        wallet=wallet,
        status=Tx.Status.SETTLED,
        transaction_status=transaction_status,
        transaction_type=Tx.TransactionType.OUTBOUND,
        amount=cents_to_amount(amount_cents, wallet.currency),
        amount_cents=amount_cents,
        credit_amount=Decimal(0),  # set below from what was drawn
        invoice_id=invoice_id,
        name=name,
        metadata=metadata or [],
        settled_at=now,
    )
    out.save(force_insert=True)
    inbound = sorted(
        lock_spendable_inbound(wallet.pk), key=lambda tx: (tx.priority, tx.created_at, tx.id)
    )
    left = amount_cents
    credits = Decimal(0)
    granted = purchased = 0
    consumptions = []
    for source in inbound:
        if left <= 0:
            break
        take = min(source.remaining_amount_cents, left)
        if take == source.remaining_amount_cents:
            take_credits = source.remaining_credit_amount
        else:
            take_credits = min(
                cents_to_credits(take, wallet.rate_amount, wallet.currency),
                source.remaining_credit_amount,
            )
        source.remaining_amount_cents -= take
        source.remaining_credit_amount -= take_credits
        source.save(
            update_fields=["remaining_amount_cents", "remaining_credit_amount", "updated_at"]
        )
        consumptions.append(
            WalletTransactionConsumption(
                organization_id=wallet.organization_id,
                inbound_wallet_transaction=source,
                outbound_wallet_transaction=out,
                consumed_amount_cents=take,
                consumed_credit_amount=take_credits,
            )
        )
        if source.transaction_status == Tx.TransactionStatus.GRANTED:
            granted += take
        else:
            purchased += take
        credits += take_credits
        left -= take
    if left:  # the balance said there was enough: the ledger has drifted
        raise RuntimeError(f"wallet {wallet.pk}: inbound transactions short by {left} cents")
    WalletTransactionConsumption.objects.bulk_create(consumptions)
    if whole:
        credits = wallet.credits_balance
    out.credit_amount = credits
    out.save(update_fields=["credit_amount", "updated_at"])
    _apply_delta(wallet, -amount_cents, -credits)
    update_fields = list(_BALANCE_FIELDS)
    if transaction_status == Tx.TransactionStatus.INVOICED:
        wallet.consumed_credits += credits
        wallet.consumed_amount_cents += amount_cents
        wallet.last_consumed_credit_at = now
        update_fields += ["consumed_credits", "consumed_amount_cents", "last_consumed_credit_at"]
    wallet.save(update_fields=update_fields)
    emit_transaction_event(out, "wallet_transaction.created", actor=actor)
    return Draw(transaction=out, granted_amount_cents=granted, purchased_amount_cents=purchased)


# --------------------------------------------------------------------------------------------
# Integrity check (`manage.py check_wallets`)


@dataclass(frozen=True)
class Drift:
    wallet_id: UUID
    what: str
    stored: object
    expected: object


def wallet_drifts(wallet: Wallet) -> list[Drift]:
    """Differences between the wallet's stored balances and its ledger (empty when exact)."""
    settled = Tx.objects.filter(wallet_id=wallet.pk, status=Tx.Status.SETTLED)
    sums = settled.aggregate(
        inbound=Sum("amount_cents", filter=Q(transaction_type=Tx.TransactionType.INBOUND)),
        outbound=Sum("amount_cents", filter=Q(transaction_type=Tx.TransactionType.OUTBOUND)),
        remaining=Sum("remaining_amount_cents", filter=Q(transaction_type="inbound")),
        remaining_credits=Sum("remaining_credit_amount", filter=Q(transaction_type="inbound")),
    )
    inbound, outbound = sums["inbound"] or 0, sums["outbound"] or 0
    remaining = sums["remaining"] or 0
    remaining_credits = sums["remaining_credits"] or Decimal(0)
    drifts = []
    if wallet.balance_cents != inbound - outbound:
        drifts.append(Drift(wallet.pk, "balance_cents", wallet.balance_cents, inbound - outbound))
    if wallet.balance_cents != remaining:
        drifts.append(Drift(wallet.pk, "remaining_amount_cents", remaining, wallet.balance_cents))
    if wallet.credits_balance != remaining_credits:
        drifts.append(
            Drift(wallet.pk, "credits_balance", wallet.credits_balance, remaining_credits)
        )
    traced = (
        WalletTransactionConsumption.objects.filter(
            outbound_wallet_transaction__wallet_id=wallet.pk
        ).aggregate(total=Sum("consumed_amount_cents"))["total"]
        or 0
    )
    if traced != outbound:
        drifts.append(Drift(wallet.pk, "traced_outbound_cents", traced, outbound))
    return drifts
