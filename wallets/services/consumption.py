"""Prepaid credits applied to an invoice at finalization (spec §17.5, §12.3 step 12), and given
back when the invoice is voided (§12.8).

`invoicing` (above this app) builds an invoice's fee lines, asks for the customer's prepaid
credits and hands the allocator to `invoicing.calculation.compute_invoice`; once the invoice is
saved it calls `draw`, which writes one outbound `invoiced` transaction per wallet through the
ledger and returns the granted / purchased split:

    prepaid = prepaid_credits(customer_id=..., currency=..., lines=lines, now=now)
    computed = compute_invoice(lines, coupons, ..., prepaid_credit_allocator=prepaid.allocator)
    ...  # the invoice row is saved
    split = prepaid.draw(invoice_id=invoice.pk, now=now)

The allocator (Lago's `Credits::AllocatePrepaidCreditsByWalletsService`):
1. candidate wallets: the customer's active wallets in the invoice currency, not past their
   expiration, with a positive balance, locked in id order (two finalizations never wait on each
   other in opposite orders), then used by `priority`, then `created_at`;
2. buckets: for each fee line with a non-zero net, cap = net + precise taxes (- credit-note share,
   none here); key (fee_type, billable metric code of a charge); largest first; when the total
   to pay exceeds the caps by at most one cent per bucket, the largest bucket takes the rest;
3. for each wallet, the buckets it may pay (unrestricted wallet, fee type in `applies_to.
   fee_types`, or charge of a metric in `applies_to.billable_metric_codes`) each give
   min(bucket left, wallet balance left, invoice total left);
4. what a wallet gives is rounded to whole cents once, capped by its balance and the total left.

The fee lines are read when the allocator runs, i.e. after coupons and taxes are computed on
them. Fee line objects only need `fee_type`, `charge_metric_code`,
`sub_total_excluding_taxes_amount_cents` and `taxes_precise_amount_cents`
(`invoicing.calculation.FeeLine`); allocations follow the `Allocator` protocol of that module
(a callable receiving the total still to pay and returning an object with `amount_cents`,
`details`, `granted_amount_cents`, `purchased_amount_cents`), which this module cannot import.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from django.db.models import Sum

from billing.actors import Actor
from billing.money import round_cents
from wallets.locks import lock_customer_wallets, lock_wallet
from wallets.models import Wallet, WalletTarget, WalletTransaction, WalletTransactionConsumption
from wallets.services import ledger

Tx = WalletTransaction
ZERO = Decimal(0)
CHARGE = "charge"
BucketKey = tuple[str, str | None]


class FeeLineLike(Protocol):
    fee_type: str
    charge_metric_code: str | None

    @property
    def sub_total_excluding_taxes_amount_cents(self) -> Decimal: ...

    taxes_precise_amount_cents: Decimal


# --------------------------------------------------------------------------------------------
# Pure allocation (spec §17.5 steps 2-4)


@dataclass(frozen=True)
class WalletFunds:
    """What allocation reads of a wallet: its balance and its scope (`applies_to`)."""

    wallet_id: UUID
    balance_cents: int
    fee_types: frozenset[str] = frozenset()
    metric_codes: frozenset[str] = frozenset()

    @property
    def unrestricted(self) -> bool:
        return not self.fee_types and not self.metric_codes

    def covers(self, key: BucketKey) -> bool:
        fee_type, metric_code = key
        if self.unrestricted or fee_type in self.fee_types:
            return True
        return fee_type == CHARGE and metric_code is not None and metric_code in self.metric_codes


def buckets(lines: Sequence[FeeLineLike], total_cents: int) -> dict[BucketKey, Decimal]:
    """Caps by (fee type, metric), largest first, reconciled with the total to pay."""
    caps: dict[BucketKey, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        net = Decimal(line.sub_total_excluding_taxes_amount_cents)
        if net == 0:
            continue
        cap = net + Decimal(line.taxes_precise_amount_cents)
        if cap <= 0:
            continue
        metric = line.charge_metric_code if line.fee_type == CHARGE else None
        caps[(line.fee_type, metric)] += cap
    ordered = dict(sorted(caps.items(), key=lambda item: -item[1]))  # stable on ties
    if ordered:
        difference = total_cents - sum(ordered.values(), ZERO)
        # taxes are rounded once per invoice: at most a cent per bucket is missing
        if 0 < difference <= len(ordered):
            largest = next(iter(ordered))
            ordered[largest] += difference
    return ordered


def allocate(
    wallets: Sequence[WalletFunds], lines: Sequence[FeeLineLike], total_cents: int
) -> list[tuple[UUID, int]]:
    """(wallet id, cents) for each wallet that pays part of `total_cents`, in wallet order."""
    remaining = buckets(lines, total_cents)
    left = total_cents
    paid: list[tuple[UUID, int]] = []
    for wallet in wallets:
        if left <= 0:
            break
        balance = wallet.balance_cents
        taken = ZERO
        for key, bucket_left in remaining.items():
            if bucket_left <= 0 or not wallet.covers(key):
                continue
            take = min(bucket_left, balance - taken, left - taken)
            if take <= 0:
                continue
            remaining[key] = bucket_left - take
            taken += take
        cents = min(round_cents(taken), balance, left)
        if cents > 0:
            paid.append((wallet.wallet_id, cents))
            left -= cents
    return paid


# --------------------------------------------------------------------------------------------
# Wallets of a customer


def _expired(wallet: Wallet, now: datetime | None) -> bool:
    """Past its `expiration_at` (the hourly job terminates it soon): no longer pays."""
    return now is not None and wallet.expiration_at is not None and wallet.expiration_at <= now


def _candidates(
    *, customer_id: UUID, currency: str, now: datetime | None, lock: bool
) -> list[WalletFunds]:
    if lock:
        rows = lock_customer_wallets(customer_id=customer_id, currency=currency)
    else:
        rows = Wallet.objects.filter(
            customer_id=customer_id, status=Wallet.Status.ACTIVE, currency=currency
        ).order_by("pk")
    wallets = [wallet for wallet in rows if wallet.balance_cents > 0 and not _expired(wallet, now)]
    if not wallets:
        return []
    metric_codes: dict[UUID, set[str]] = defaultdict(set)
    for wallet_id, code in WalletTarget.objects.filter(
        wallet_id__in=[w.pk for w in wallets]
    ).values_list("wallet_id", "billable_metric__code"):
        metric_codes[wallet_id].add(code)
    wallets.sort(key=lambda w: (w.priority, w.created_at, w.pk))
    return [
        WalletFunds(
            wallet_id=wallet.pk,
            balance_cents=wallet.balance_cents,
            fee_types=frozenset(wallet.allowed_fee_types or ()),
            metric_codes=frozenset(metric_codes.get(wallet.pk, ())),
        )
        for wallet in wallets
    ]


@dataclass(frozen=True)
class CreditAllocation:
    """Structurally an `invoicing.calculation.Allocation`; details are (wallet id, cents)."""

    amount_cents: int
    details: tuple[object, ...] = ()
    granted_amount_cents: int = 0
    purchased_amount_cents: int = 0


@dataclass(frozen=True)
class Split:
    """What the draws took from the wallets: granted and purchased credits, in cents."""

    amount_cents: int = 0
    granted_amount_cents: int = 0
    purchased_amount_cents: int = 0
    transactions: tuple[WalletTransaction, ...] = ()


@dataclass
class PrepaidCredits:
    """The allocator of one invoice and, once the invoice is saved, its draws."""

    customer_id: UUID
    currency: str
    lines: Sequence[FeeLineLike]
    now: datetime | None
    lock: bool = True
    allocated: list[tuple[UUID, int]] = field(default_factory=list)
    drawn: bool = False

    def allocator(self, total_cents: int) -> CreditAllocation:
        """Called by `compute_invoice` with the total still to pay (> 0)."""
        wallets = _candidates(
            customer_id=self.customer_id, currency=self.currency, now=self.now, lock=self.lock
        )
        self.allocated = allocate(wallets, self.lines, total_cents)
        return CreditAllocation(
            amount_cents=sum(cents for _, cents in self.allocated),
            details=tuple(self.allocated),
        )

    def draw(self, *, invoice_id: UUID, actor: Actor, now: datetime) -> Split:
        """One outbound `invoiced` transaction per wallet, in the caller's transaction."""
        if self.drawn:
            raise RuntimeError("prepaid credits already drawn for this invoice")
        if not self.lock and self.allocated:
            raise RuntimeError("an estimate (lock=False) never draws")
        self.drawn = True
        granted = purchased = 0
        transactions = []
        for wallet_id, cents in self.allocated:
            result = ledger.draw(
                wallet=lock_wallet(wallet_id),
                amount_cents=cents,
                transaction_status=Tx.TransactionStatus.INVOICED,
                actor=actor,
                now=now,
                invoice_id=invoice_id,
            )
            granted += result.granted_amount_cents
            purchased += result.purchased_amount_cents
            transactions.append(result.transaction)
        return Split(
            amount_cents=granted + purchased,
            granted_amount_cents=granted,
            purchased_amount_cents=purchased,
            transactions=tuple(transactions),
        )


def prepaid_credits(
    *,
    customer_id: UUID,
    currency: str,
    lines: Sequence[FeeLineLike],
    now: datetime | None,
    lock: bool = True,
) -> PrepaidCredits:
    """The prepaid credits of an invoice being finalized (`lock=False`: an estimate for a
    preview, which reads the balances without locking and never draws)."""
    return PrepaidCredits(
        customer_id=customer_id, currency=currency, lines=lines, now=now, lock=lock
    )


# --------------------------------------------------------------------------------------------
# Void (spec §12.8, Lago `WalletTransactions::RecreditService`)


def recredit_invoice(*, invoice_id: UUID, actor: Actor, now: datetime) -> list[WalletTransaction]:
    """Gives the prepaid credits a voided invoice consumed back to their wallets.

    For each outbound `invoiced` transaction of the invoice whose wallet is still active: one
    inbound settled transaction per kind consumed (granted credits back as granted, purchased
    as purchased), carrying `voided_invoice_id`; the wallet's consumed credits go down by as
    much. Terminated wallets get nothing back (their credits were voided). Runs in the
    caller's transaction; wallets are locked in id order.
    """
    outbound = list(
        Tx.objects.filter(
            invoice_id=invoice_id,
            transaction_type=Tx.TransactionType.OUTBOUND,
            transaction_status=Tx.TransactionStatus.INVOICED,
            status=Tx.Status.SETTLED,
        ).order_by("wallet_id", "created_at", "id")
    )
    created: list[WalletTransaction] = []
    for out in outbound:
        wallet = lock_wallet(out.wallet_id)
        if not wallet.is_active:
            continue
        if Tx.objects.filter(
            wallet_id=wallet.pk,
            voided_invoice_id=invoice_id,
            transaction_type=Tx.TransactionType.INBOUND,
        ).exists():
            continue  # already given back
        by_kind = {
            row["inbound_wallet_transaction__transaction_status"]: row["credits"]
            for row in WalletTransactionConsumption.objects.filter(
                outbound_wallet_transaction_id=out.pk
            )
            .values("inbound_wallet_transaction__transaction_status")
            .annotate(credits=Sum("consumed_credit_amount"))
        }
        given_credits = ZERO
        given_cents = 0
        for kind in (Tx.TransactionStatus.GRANTED, Tx.TransactionStatus.PURCHASED):
            credits = by_kind.get(kind) or ZERO
            if credits <= 0:
                continue
            tx = ledger.inbound_create(
                wallet=wallet,
                credit_amount=credits,
                transaction_status=kind,
                settled=True,
                actor=actor,
                now=now,
            )
            tx.voided_invoice_id = invoice_id
            tx.save(update_fields=["voided_invoice_id", "updated_at"])
            created.append(tx)
            given_credits += credits
            given_cents += tx.amount_cents
        if given_cents or given_credits:  # Lago `reset_consumed_credits`
            wallet.consumed_credits = max(wallet.consumed_credits - given_credits, ZERO)
            wallet.consumed_amount_cents = max(wallet.consumed_amount_cents - given_cents, 0)
            wallet.save(update_fields=["consumed_credits", "consumed_amount_cents", "updated_at"])
    return created
