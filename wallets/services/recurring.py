"""Automatic top-ups of recurring transaction rules (spec §17.6) and their expiry.

Both jobs call `wallets.services.transactions.wallet_top_up` (the same service as a manual
top-up) with the rule's terms and a `trigger_key` naming the occurrence. The key is unique per
wallet (constraint `wallets_wallettransaction_trigger_once`), so an occurrence tops up once even
when two workers run the job at the same time or a job is re-run:

- interval rules: `interval:<local date of the occurrence>` — one top-up per rule period;
- threshold rules: `threshold:<id of the wallet's latest transaction>` read under the wallet
  lock. A top-up is itself the wallet's latest transaction, so once a crossing topped up, the
  same crossing cannot top up again, while a later crossing (after the top-up lifted the
  balance) has a new key and tops up again. Pending purchased credits count toward the
  threshold, so a paid top-up awaiting payment does not fire the rule twice either.

Safeguard (threshold rules): after a failed paid automatic top-up the rule pauses for an hour,
unless a paid top-up settled since.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Max, Q, QuerySet, Sum

from billing.actors import Actor
from billing.errors import DomainError
from billing.periods import local_date
from wallets.credits import cents_to_credits
from wallets.locks import lock_wallet
from wallets.models import RecurringTransactionRule, Wallet, WalletTransaction
from wallets.recurring_math import (
    TopUp,
    due_occurrence,
    fixed_threshold_paid_credits,
    target_top_up,
    threshold_reached,
)
from wallets.services.transactions import wallet_top_up

logger = logging.getLogger(__name__)

Rule = RecurringTransactionRule
Tx = WalletTransaction
FAILURE_PAUSE = timedelta(hours=1)
AUTOMATIC_SOURCES = (Tx.Source.INTERVAL, Tx.Source.THRESHOLD)
TRIGGER_ONCE = "wallets_wallettransaction_trigger_once"


def _active_rules(trigger: str, now: datetime) -> QuerySet[Rule]:
    return (
        Rule.objects.filter(
            status=Rule.Status.ACTIVE, trigger=trigger, wallet__status=Wallet.Status.ACTIVE
        )
        .filter(Q(expiration_at__isnull=True) | Q(expiration_at__gt=now))
        .select_related("wallet__customer__billing_entity", "wallet__customer__organization")
        .order_by("wallet_id")
    )


def _limit_credits(cents: int | None, wallet: Wallet) -> Decimal | None:
    if cents is None:
        return None
    return cents_to_credits(cents, wallet.rate_amount, wallet.currency)


def pending_credits(wallet: Wallet) -> Decimal:
    """Purchased credits awaiting payment (they count toward the threshold, §17.6)."""
    total = Tx.objects.filter(
        wallet_id=wallet.pk,
        transaction_type=Tx.TransactionType.INBOUND,
        status=Tx.Status.PENDING,
    ).aggregate(total=Sum("credit_amount"))["total"]
    return total or Decimal(0)


def rule_top_up(rule: Rule, wallet: Wallet, *, pending: Decimal) -> tuple[TopUp, bool]:
    """The credits of the rule's next top-up on `wallet` (locked, fresh), and whether the
    paid top-up limits are to be ignored by `wallet_top_up` (spec §17.6)."""
    ongoing = wallet.credits_ongoing_balance
    if rule.method == Rule.Method.TARGET:
        target = rule.target_ongoing_balance or Decimal(0)
        minimum = None
        if not rule.ignore_paid_top_up_limits:
            minimum = _limit_credits(wallet.paid_top_up_min_amount_cents, wallet)
        top_up = target_top_up(
            target=target,
            ongoing=ongoing,
            grants_target_top_up=rule.grants_target_top_up,
            min_credits=minimum,
        )
        return top_up, True  # minimum applied above; the maximum is ignored for a target
    paid = rule.paid_credits
    if rule.trigger == Rule.Trigger.THRESHOLD:
        maximum = None
        if not rule.ignore_paid_top_up_limits:
            maximum = _limit_credits(wallet.paid_top_up_max_amount_cents, wallet)
        paid = fixed_threshold_paid_credits(
            paid_credits=rule.paid_credits,
            granted_credits=rule.granted_credits,
            threshold=rule.threshold_credits or Decimal(0),
            ongoing=ongoing,
            pending=pending,
            max_credits=maximum,
        )
    return TopUp(paid, rule.granted_credits), rule.ignore_paid_top_up_limits


def _top_up(
    rule: Rule,
    wallet: Wallet,
    top_up: TopUp,
    *,
    ignore_limits: bool,
    key: str,
    actor: Actor,
    now: datetime,
) -> list[WalletTransaction]:
    """`wallet_top_up` in a savepoint: a duplicate occurrence (the trigger key exists) is a
    no-op; a refused or failed top-up is logged and, when it bought credits, recorded on the
    rule (the threshold pause)."""
    try:
        with transaction.atomic():
            return wallet_top_up(
                wallet=wallet,
                paid_credits=top_up.paid_credits,
                granted_credits=top_up.granted_credits,
                actor=actor,
                now=now,
                source=rule.trigger,
                name=rule.transaction_name,
                metadata=list(rule.transaction_metadata or []),
                invoice_requires_successful_payment=rule.invoice_requires_successful_payment,
                ignore_paid_top_up_limits=ignore_limits,
                payment_method=rule.payment_method or None,
                purchase_order_number=rule.purchase_order_number,
                recurring_transaction_rule_id=rule.pk,
                trigger_key=key,
            )
    except IntegrityError as exc:
        if TRIGGER_ONCE not in str(exc):
            raise
        return []
    except DomainError as exc:
        logger.warning("automatic top-up of wallet %s (rule %s): %r", wallet.pk, rule.pk, exc)
        if top_up.paid_credits > 0:
            rule.last_failed_at = now
            rule.save(update_fields=["last_failed_at", "updated_at"])
        return []


# --------------------------------------------------------------------------------------------
# Interval rules (hourly :55)


def interval_due_on(rule: Rule, now: datetime) -> str | None:
    """The local date (ISO) of the rule's occurrence today in the customer's timezone, if any."""
    wallet = rule.wallet
    zone = ZoneInfo(wallet.customer.applicable_timezone)
    day = due_occurrence(
        rule.interval,
        anchor=local_date(rule.started_at or wallet.created_at, zone),
        today=local_date(now, zone),
        created_on=local_date(wallet.created_at, zone),
    )
    return None if day is None else day.isoformat()


def interval_top_up(*, rule: Rule, actor: Actor, now: datetime) -> list[WalletTransaction]:
    """Tops the rule's wallet up if today is one of its occurrences and it did not yet."""
    day = interval_due_on(rule, now)
    if day is None:
        return []
    key = f"interval:{day}"
    with transaction.atomic():
        wallet = lock_wallet(rule.wallet_id)
        if not wallet.is_active or Tx.objects.filter(wallet_id=wallet.pk, trigger_key=key).exists():
            return []
        top_up, ignore = rule_top_up(rule, wallet, pending=pending_credits(wallet))
        if top_up.is_empty:
            return []
        return _top_up(rule, wallet, top_up, ignore_limits=ignore, key=key, actor=actor, now=now)


def run_interval_top_ups(*, actor: Actor, now: datetime) -> int:
    """Every active interval rule whose occurrence is today (customer's day); returns the
    number of transactions created. A failing rule is logged; the others go on."""
    created = 0
    for rule in _active_rules(Rule.Trigger.INTERVAL, now):
        try:
            created += len(interval_top_up(rule=rule, actor=actor, now=now))
        except Exception:
            logger.exception("interval top-up failed for rule %s", rule.pk)
    return created


# --------------------------------------------------------------------------------------------
# Threshold rules (after each ongoing balance refresh)


def threshold_paused(rule: Rule, wallet: Wallet, now: datetime) -> bool:
    """A paid automatic top-up failed less than an hour ago and no paid top-up settled since."""
    failed_at = Tx.objects.filter(
        wallet_id=wallet.pk,
        transaction_status=Tx.TransactionStatus.PURCHASED,
        status=Tx.Status.FAILED,
        source__in=AUTOMATIC_SOURCES,
    ).aggregate(last=Max("failed_at"))["last"]
    failures = [at for at in (failed_at, rule.last_failed_at) if at is not None]
    if not failures:
        return False
    last_failure = max(failures)
    if last_failure <= now - FAILURE_PAUSE:
        return False
    return not Tx.objects.filter(
        wallet_id=wallet.pk,
        transaction_status=Tx.TransactionStatus.PURCHASED,
        status=Tx.Status.SETTLED,
        settled_at__gt=last_failure,
    ).exists()


def _latest_transaction_id(wallet: Wallet) -> UUID | None:
    return (
        Tx.objects.filter(wallet_id=wallet.pk)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
        .first()
    )


def threshold_top_up(*, rule: Rule, actor: Actor, now: datetime) -> list[WalletTransaction]:
    """Tops the wallet up when its ongoing balance (with pending top-ups) is at or below the
    rule's threshold; decided on the locked wallet, once per crossing (see the module doc)."""
    with transaction.atomic():
        wallet = lock_wallet(rule.wallet_id)
        if not wallet.is_active:
            return []
        pending = pending_credits(wallet)
        if not threshold_reached(
            threshold=rule.threshold_credits or Decimal(0),
            ongoing=wallet.credits_ongoing_balance,
            pending=pending,
        ):
            return []
        if threshold_paused(rule, wallet, now):
            return []
        top_up, ignore = rule_top_up(rule, wallet, pending=pending)
        if top_up.is_empty:
            return []
        key = f"threshold:{_latest_transaction_id(wallet) or 'first'}"
        return _top_up(rule, wallet, top_up, ignore_limits=ignore, key=key, actor=actor, now=now)


def run_threshold_top_ups(
    *, actor: Actor, now: datetime, wallet_ids: list[UUID] | None = None
) -> int:
    """Threshold rules of the given wallets (all active ones when None); returns the number of
    transactions created. A failing rule is logged; the others go on."""
    rules = _active_rules(Rule.Trigger.THRESHOLD, now)
    if wallet_ids is not None:
        rules = rules.filter(wallet_id__in=list(wallet_ids))
    created = 0
    for rule in rules:
        try:
            created += len(threshold_top_up(rule=rule, actor=actor, now=now))
        except Exception:
            logger.exception("threshold top-up failed for rule %s", rule.pk)
    return created


# --------------------------------------------------------------------------------------------
# Expiry (hourly :50)


def expire_rules(*, actor: Actor, now: datetime) -> int:
    """Active rules whose `expiration_at` passed are terminated; returns how many."""
    return Rule.objects.filter(status=Rule.Status.ACTIVE, expiration_at__lte=now).update(
        status=Rule.Status.TERMINATED, terminated_at=now, updated_at=now
    )
