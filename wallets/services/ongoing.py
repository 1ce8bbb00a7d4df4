"""Ongoing balance of wallets (spec §17.4).

`balance_cents` moves only with settled credits (the ledger). The ongoing figures estimate what
is left once the usage not yet invoiced is paid from the wallets:

    ongoing_usage_balance_cents = the share of the customer's not yet invoiced usage allocated
                                  to the wallet
    ongoing_balance_cents       = balance_cents - ongoing_usage_balance_cents   (may be < 0)

The usage is the current usage, taxes included, of the customer's active subscriptions
(`metering.usage`; pay-in-advance charges that invoice each event are already billed and left
out) plus the totals of the customer's draft invoices (read through the
`wallets.ports.draft_invoices_for_customer` port: invoicing sits above this app). It is
allocated to the wallets as prepaid credits would be at finalization (§17.5): by fee key
(fee type, billable metric, currency), largest first, each to the applicable wallets in
priority order, each wallet up to its balance, the last applicable wallet taking what is left.
A wallet with an active threshold rule takes everything that reaches it (it may go negative) so
that its rule can refill it (Lago `AllocateOngoingUsageByWalletsService`).

Refreshing (within a minute of an event, where Lago waits up to 5 minutes): ingesting events
flags the customer's active wallets (`flag_wallets_for_events`, run by the
`metering.hooks.on_events_ingested` hook of `wallets.tasks`). Only the ingestion that flips the
flag queues a refresh of that customer, `REFRESH_DELAY_SECONDS` later, so a burst of events
shares one refresh and at most one refresh per customer waits in the queue; later events find
the wallets flagged and cost one SELECT, no write, no row lock. `refresh_flagged_wallets`
(every minute) sweeps what is still flagged (a lost task, a failed refresh), then runs
threshold top-ups and alerts. `refresh_customer_wallets` does the same for one customer at once
(a draft invoice created, refreshed or deleted, an invoice finalized). The flag is cleared
*before* the usage is read, so events arriving during a refresh flag the wallets again and
queue the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db import connection, transaction

from billing.actors import Actor
from billing.db import prepared_cursor
from customers.models import Customer, Subscription
from metering.usage import FeeTaxes, fee_tax_figures, subscription_usage, usage_window
from wallets import ports
from wallets.credits import cents_to_credits
from wallets.locks import lock_active_wallets
from wallets.models import RecurringTransactionRule, Wallet
from wallets.services import ledger

logger = logging.getLogger(__name__)

Rule = RecurringTransactionRule
# Seconds between the event that flags a customer's wallets and their refresh: the events of a
# burst share one refresh. Well under a minute, the delay the sweeper guarantees anyway.
REFRESH_DELAY_SECONDS = 10
ALL_FEE_TYPES = frozenset(Wallet.FeeType.values)

# (fee_type or None for an unscoped remainder, billable_metric_id or None, currency)
FeeKey = tuple[str | None, UUID | None, str]


# --------------------------------------------------------------------------------------------
# Allocation (pure)


@dataclass(frozen=True)
class WalletScope:
    """What the allocation needs to know of one wallet (in priority order)."""

    wallet_id: UUID
    currency: str
    balance_cents: int
    fee_types: frozenset[str] = frozenset()
    billable_metric_ids: frozenset[UUID] = frozenset()
    absorbs_all: bool = False  # an active threshold rule: takes everything, may go negative

    @property
    def unrestricted(self) -> bool:
        # spec §17.5: selecting every fee type is selecting none
        return not self.billable_metric_ids and (
            not self.fee_types or self.fee_types >= ALL_FEE_TYPES
        )

    def applies_to(self, key: FeeKey) -> bool:
        fee_type, metric_id, currency = key
        if currency != self.currency:
            return False
        if self.unrestricted:
            return True
        if fee_type is None:
            return False
        return fee_type in self.fee_types or (
            fee_type == Wallet.FeeType.CHARGE and metric_id in self.billable_metric_ids
        )


def allocate_ongoing_usage(
    amounts: dict[FeeKey, int], wallets: Sequence[WalletScope]
) -> dict[UUID, int]:
    """Cents of usage allocated to each wallet (every wallet present, 0 when none).

    Keys with a net amount <= 0 receive nothing, but their negative net lowers the budget of
    their currency, as credits lower an invoice total."""
    allocations = {scope.wallet_id: 0 for scope in wallets}
    budgets: dict[str, int] = {}
    for (_, _, currency), amount in amounts.items():
        budgets[currency] = budgets.get(currency, 0) + amount
    pool = sorted(
        ((key, amount) for key, amount in amounts.items() if amount > 0),
        key=lambda item: (-item[1], tuple(str(part) for part in item[0])),
    )
    for key, amount in pool:
        currency = key[2]
        remaining = min(amount, max(budgets[currency], 0))
        applicable = [scope for scope in wallets if scope.applies_to(key)]
        for index, scope in enumerate(applicable):
            if remaining <= 0:
                break
            if scope.absorbs_all or index == len(applicable) - 1:
                take = remaining
            else:
                room = scope.balance_cents - allocations[scope.wallet_id]
                if room <= 0:
                    continue
                take = min(remaining, room)
            allocations[scope.wallet_id] += take
            remaining -= take
            budgets[currency] -= take
    return allocations


# --------------------------------------------------------------------------------------------
# What the customer owes and has not been invoiced yet


def _add(amounts: dict[FeeKey, int], key: FeeKey, cents: int) -> None:
    amounts[key] = amounts.get(key, 0) + cents


def current_usage_amounts(*, customer: Customer, now: datetime) -> dict[FeeKey, int]:
    """Current usage of the customer's active subscriptions, taxes included, by fee key.

    Each usage line is taxed on its own (fee level, §14.2), as Lago sums `amount + taxes` of
    the usage fees. Pay-in-advance charges that invoice each event are already invoiced (their
    invoices drew on the wallets at finalization): left out. So is what the period's progressive
    billing invoices billed (`ports.progressive_billed_fees`, §21.2): a key they billed beyond
    its usage goes negative and lowers the currency's budget (Lago nets them the same way)."""
    amounts: dict[FeeKey, int] = {}
    subscription_ids: list[UUID] = []
    subscriptions = (
        Subscription.objects.filter(customer=customer, status=Subscription.Status.ACTIVE)
        .select_related("plan", "customer__billing_entity", "customer__organization")
        .order_by("created_at", "id")
    )
    for subscription in subscriptions:
        window = usage_window(subscription=subscription, at=now)
        usages = subscription_usage(
            subscription=subscription, window=window, include_pay_in_advance=True
        )
        taxes = FeeTaxes(subscription=subscription)
        currency = subscription.plan.amount_currency
        for usage in usages:
            charge = usage.charge
            if charge.pay_in_advance and charge.invoiceable:
                continue
            if not usage.amount_cents:
                continue
            tax = fee_tax_figures(usage.amount_cents, taxes.for_charge(charge)).amount_cents
            key = (Wallet.FeeType.CHARGE.value, charge.billable_metric_id, currency)
            _add(amounts, key, usage.amount_cents + tax)
        subscription_ids.append(subscription.pk)
    if subscription_ids:
        for fee in ports.progressive_billed_fees(subscription_ids=subscription_ids, at=now):
            key = (fee.fee_type, fee.billable_metric_id, fee.currency)
            _add(amounts, key, -fee.amount_cents)
    return amounts


def draft_invoice_amounts(*, customer: Customer) -> dict[FeeKey, int]:
    """Totals of the customer's draft invoices by fee key (`ports.draft_invoices_for_customer`).

    Each draft counts for its total; what its fee breakdown does not explain (invoice-level
    rounding, credits) goes to its largest fee, an empty breakdown to an unscoped key that
    only unrestricted wallets take."""
    amounts: dict[FeeKey, int] = {}
    for draft in ports.draft_invoices_for_customer(customer_id=customer.pk):
        fees = [fee for fee in draft.fees if fee.amount_cents]
        if not fees:
            if draft.total_amount_cents:
                _add(amounts, (None, None, draft.currency), draft.total_amount_cents)
            continue
        rest = draft.total_amount_cents - sum(fee.amount_cents for fee in fees)
        largest = max(range(len(fees)), key=lambda i: fees[i].amount_cents)
        for index, fee in enumerate(fees):
            cents = fee.amount_cents + (rest if index == largest else 0)
            _add(amounts, (fee.fee_type, fee.billable_metric_id, draft.currency), cents)
    return amounts


def ongoing_usage_amounts(*, customer: Customer, now: datetime) -> dict[FeeKey, int]:
    amounts = current_usage_amounts(customer=customer, now=now)
    for key, cents in draft_invoice_amounts(customer=customer).items():
        _add(amounts, key, cents)
    return amounts


# --------------------------------------------------------------------------------------------
# Refresh


def _scope(wallet: Wallet, threshold_wallet_ids: set[UUID]) -> WalletScope:
    return WalletScope(
        wallet_id=wallet.pk,
        currency=wallet.currency,
        balance_cents=wallet.balance_cents,
        fee_types=frozenset(wallet.allowed_fee_types or ()),
        billable_metric_ids=frozenset(wallet.targets.values_list("billable_metric_id", flat=True)),
        absorbs_all=wallet.pk in threshold_wallet_ids,
    )


def _threshold_wallet_ids(wallet_ids: Iterable[UUID], now: datetime) -> set[UUID]:
    rules = Rule.objects.filter(
        wallet_id__in=list(wallet_ids),
        status=Rule.Status.ACTIVE,
        trigger=Rule.Trigger.THRESHOLD,
    ).exclude(expiration_at__lte=now)
    return set(rules.values_list("wallet_id", flat=True))


_ONGOING_FIELDS = [
    "ongoing_usage_balance_cents",
    "credits_ongoing_usage_balance",
    "ongoing_balance_cents",
    "credits_ongoing_balance",
    "depleted_ongoing_balance",
    "last_balance_sync_at",
    "updated_at",
]


def _write_ongoing(wallet: Wallet, usage_cents: int, *, actor: Actor, now: datetime) -> None:
    """Under the wallet lock: the ongoing figures from the locked balance (never changed)."""
    usage_credits = cents_to_credits(usage_cents, wallet.rate_amount, wallet.currency)
    wallet.ongoing_usage_balance_cents = usage_cents
    wallet.credits_ongoing_usage_balance = usage_credits
    wallet.ongoing_balance_cents = wallet.balance_cents - usage_cents
    wallet.credits_ongoing_balance = wallet.credits_balance - usage_credits
    wallet.last_balance_sync_at = now
    depleted = wallet.ongoing_balance_cents <= 0
    newly_depleted = depleted and not wallet.depleted_ongoing_balance
    wallet.depleted_ongoing_balance = depleted
    wallet.save(update_fields=_ONGOING_FIELDS)
    if newly_depleted:  # once per depletion: recorded again only after it went back above 0
        ledger.emit_wallet_event(wallet, "wallet.depleted_ongoing_balance", actor=actor)


def customer_refresh_ongoing_balances(
    *, customer: Customer, actor: Actor, now: datetime
) -> list[Wallet]:
    """Recomputes the ongoing figures of every active wallet of the customer (they share the
    usage); returns them in priority order. The usage is read outside any lock, the wallets
    are then locked (pk order) and written from their locked balances."""
    ids = list(
        Wallet.objects.filter(customer=customer, status=Wallet.Status.ACTIVE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not ids:
        return []
    Wallet.objects.filter(pk__in=ids, ready_to_be_refreshed=True).update(
        ready_to_be_refreshed=False
    )
    try:
        amounts = ongoing_usage_amounts(customer=customer, now=now)
        with transaction.atomic():
            locked = lock_active_wallets(ids)
            wallets = sorted(locked, key=lambda w: (w.priority, w.created_at, w.pk))
            threshold_ids = _threshold_wallet_ids(ids, now)
            allocations = allocate_ongoing_usage(
                amounts, [_scope(wallet, threshold_ids) for wallet in wallets]
            )
            for wallet in wallets:
                _write_ongoing(wallet, allocations[wallet.pk], actor=actor, now=now)
    except Exception:
        # the usage was not applied: flag the wallets again for the next run
        Wallet.objects.filter(pk__in=ids).update(ready_to_be_refreshed=True)
        raise
    return wallets


def _after_refresh(wallet_ids: list[UUID], *, actor: Actor, now: datetime) -> None:
    """Threshold top-ups, then alerts, of refreshed wallets (spec §17.4, §17.6, §17.8)."""
    from wallets.services.alerts import evaluate_wallet_alerts
    from wallets.services.recurring import run_threshold_top_ups

    if not wallet_ids:
        return
    run_threshold_top_ups(actor=actor, now=now, wallet_ids=wallet_ids)
    evaluate_wallet_alerts(wallet_ids=wallet_ids, actor=actor, now=now)


def wallet_refresh_ongoing_balance(*, wallet: Wallet, actor: Actor, now: datetime) -> Wallet:
    """Refreshes the wallet's customer at once, then its threshold top-ups and alerts; returns
    the wallet re-read."""
    refresh_customer_wallets(customer_id=wallet.customer_id, actor=actor, now=now)
    return Wallet.objects.get(pk=wallet.pk)


def refresh_customer_wallets(*, customer_id: UUID, actor: Actor, now: datetime) -> int:
    """Refreshes one customer's wallets at once (a draft invoice created, refreshed or deleted,
    an invoice finalized, events), then their threshold top-ups and alerts; returns how many
    wallets were refreshed (0 when the customer has no active wallet)."""
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        return 0
    refreshed = [
        w.pk for w in customer_refresh_ongoing_balances(customer=customer, actor=actor, now=now)
    ]
    _after_refresh(refreshed, actor=actor, now=now)
    return len(refreshed)


def refresh_flagged_wallets(
    *, actor: Actor, now: datetime, customer_ids: Iterable[UUID] | None = None
) -> int:
    """The every-minute sweeper: every customer (of `customer_ids` when given) with a flagged
    active wallet is refreshed, then the threshold top-ups and alerts of those wallets run. One
    failing customer is logged and stays flagged; the others go on. Returns the number of
    wallets refreshed."""
    flagged = Wallet.objects.filter(ready_to_be_refreshed=True, status=Wallet.Status.ACTIVE)
    if customer_ids is not None:
        flagged = flagged.filter(customer_id__in=list(customer_ids))
    customer_ids = list(
        flagged.order_by("customer_id").values_list("customer_id", flat=True).distinct()
    )
    refreshed: list[UUID] = []
    for customer in Customer.objects.filter(pk__in=customer_ids).select_related(
        "billing_entity", "organization"
    ):
        try:
            wallets = customer_refresh_ongoing_balances(customer=customer, actor=actor, now=now)
        except Exception:
            logger.exception("ongoing balance refresh failed for customer %s", customer.pk)
            continue
        refreshed += [wallet.pk for wallet in wallets]
    _after_refresh(refreshed, actor=actor, now=now)
    return len(refreshed)


# Run after every ingested batch: plain SQL (the ORM's query building cost more CPU than the
# query itself on the ingestion hot path).
_UNFLAGGED_SQL = f"""
SELECT DISTINCT w.customer_id FROM {Wallet._meta.db_table} w
WHERE w.organization_id = %s AND w.status = %s AND NOT w.ready_to_be_refreshed
  AND w.customer_id IN (
      SELECT s.customer_id FROM {Subscription._meta.db_table} s
      WHERE s.organization_id = %s AND s.external_id = ANY(%s)
  )
"""


def _unflagged_customers(organization_id: UUID, external_ids: set[str]) -> set[UUID]:
    """Customers of these subscriptions with an active wallet not flagged yet."""
    if connection.vendor != "postgresql":
        subscribers = Subscription.objects.filter(
            organization_id=organization_id, external_id__in=external_ids
        ).values("customer_id")
        return set(
            Wallet.objects.filter(
                organization_id=organization_id,
                status=Wallet.Status.ACTIVE,
                ready_to_be_refreshed=False,
                customer_id__in=subscribers,
            ).values_list("customer_id", flat=True)
        )
    with prepared_cursor() as cursor:  # every ingestion request runs it: planned once
        cursor.execute(
            _UNFLAGGED_SQL,
            [organization_id, Wallet.Status.ACTIVE.value, organization_id, sorted(external_ids)],
        )
        return {row[0] for row in cursor.fetchall()}


def flag_wallets_for_events(
    *, organization_id: UUID, events: Sequence[Sequence[str]], **kwargs: object
) -> list[UUID]:
    """Flags the active wallets of the customers whose subscriptions received events; returns
    the customers whose wallets this call flagged (each needs a refresh queued), not those
    already flagged (a refresh is queued for them)."""
    external_ids = {event[0] for event in events if event and event[0]}
    if not external_ids:
        return []
    unflagged = _unflagged_customers(organization_id, external_ids)
    flagged = []
    for customer_id in sorted(unflagged):
        # the conditional UPDATE decides between concurrent ingestions: only the one that
        # flips the flag queues the refresh
        if Wallet.objects.filter(
            organization_id=organization_id,
            customer_id=customer_id,
            status=Wallet.Status.ACTIVE,
            ready_to_be_refreshed=False,
        ).update(ready_to_be_refreshed=True):
            flagged.append(customer_id)
    return flagged
