"""Lifetime usage of subscriptions (Lago `LifetimeUsages::*`).

    total = historical (set through the API: usage billed before Lago)
          + invoiced   (charge fees of the subscription's invoices, upgrade chain included,
                        read through `metering.ports.invoiced_usage_amount_cents`)
          + current    (usage of the current period, not invoiced yet)

All pre-tax, in-arrears charges only. The refresh pass (`metering.services.refresh`) keeps the
current part fresh for subscriptions that received events; the invoiced part is re-read when an
invoice of the subscription is finalized (`lifetime_usages_flag_invoiced`, called by invoicing)
and when a new period starts (its drafts hold the previous period's usage).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.db import transaction

from billing.actors import Actor
from billing.bulk import bulk_set
from billing.errors import Invalid
from customers.models import Subscription
from customers.selectors import applicable_usage_thresholds
from metering import ports
from metering.locks import lock_lifetime_usage, lock_lifetime_usages
from metering.models import LifetimeUsage, SubscriptionActivity
from metering.usage import ChargeUsage, UsageWindow


def chain_subscription_ids(subscription: Subscription) -> list[UUID]:
    """The subscriptions of the same external id and start (upgrades and downgrades), but
    canceled ones: their invoices count in the lifetime usage (Lago)."""
    return list(
        Subscription.objects.filter(
            organization_id=subscription.organization_id,
            external_id=subscription.external_id,
            subscription_at=subscription.subscription_at,
        )
        .exclude(status=Subscription.Status.CANCELED)
        .values_list("pk", flat=True)
    )


def in_arrears_amount_cents(usages: Iterable[ChargeUsage]) -> int:
    """Pre-tax amount of the in-arrears charges of a usage (pay-in-advance ones are billed
    event by event: they are not part of the lifetime usage)."""
    return sum(u.amount_cents for u in usages if not u.charge.pay_in_advance)


def lifetime_usages_for(subscriptions: Iterable[Subscription]) -> dict[UUID, LifetimeUsage]:
    """The lifetime usage of each subscription, by subscription id, the missing ones created
    (their invoiced part flagged for reading): two queries for a whole batch."""
    subscriptions = list(subscriptions)
    LifetimeUsage.objects.bulk_create(
        [
            LifetimeUsage(
                organization_id=s.organization_id,
                subscription_id=s.pk,
                recalculate_invoiced_usage=True,
            )
            for s in subscriptions
        ],
        ignore_conflicts=True,
    )
    rows = LifetimeUsage.objects.filter(subscription_id__in=[s.pk for s in subscriptions])
    return {row.subscription_id: row for row in rows}


def lifetime_usage_refresh(
    *,
    lifetime: LifetimeUsage,
    subscription: Subscription,
    usages: Iterable[ChargeUsage],
    window: UsageWindow,
    now: datetime,
) -> LifetimeUsage:
    """Stores the current part computed by the caller: one UPDATE of the current fields (the
    caller serializes refreshes of a subscription). When flagged, or in a new period, the
    invoiced part is read again under the row lock."""
    current = in_arrears_amount_cents(usages)
    new_period = lifetime.current_usage_from_datetime != window.charges_from_datetime
    if not (lifetime.recalculate_invoiced_usage or new_period):
        LifetimeUsage.objects.filter(pk=lifetime.pk).update(
            current_usage_amount_cents=current,
            current_usage_amount_refreshed_at=now,
            current_usage_from_datetime=window.charges_from_datetime,
            updated_at=now,
        )
        lifetime.current_usage_amount_cents = current
        lifetime.current_usage_amount_refreshed_at = now
        lifetime.current_usage_from_datetime = window.charges_from_datetime
        return lifetime
    with transaction.atomic(savepoint=False):
        lifetime = lock_lifetime_usage(lifetime.pk)
        lifetime.invoiced_usage_amount_cents = ports.invoiced_usage_amount_cents(
            subscription_ids=chain_subscription_ids(subscription)
        )
        lifetime.recalculate_invoiced_usage = False
        lifetime.invoiced_usage_amount_refreshed_at = now
        lifetime.current_usage_amount_cents = current
        lifetime.current_usage_amount_refreshed_at = now
        lifetime.current_usage_from_datetime = window.charges_from_datetime
        lifetime.save()
    return lifetime


def lifetime_usage_current_only(lifetime: LifetimeUsage, window: UsageWindow) -> bool:
    """Whether a refresh of this row changes its current part only (no invoiced part to read
    again): what `lifetime_usages_store_current` can write for many rows at once."""
    return not lifetime.recalculate_invoiced_usage and (
        lifetime.current_usage_from_datetime == window.charges_from_datetime
    )


def lifetime_usage_set_current(
    lifetime: LifetimeUsage, usages: Iterable[ChargeUsage], window: UsageWindow, now: datetime
) -> LifetimeUsage:
    """The current part on the object only (`lifetime_usages_store_current` writes it)."""
    lifetime.current_usage_amount_cents = in_arrears_amount_cents(usages)
    lifetime.current_usage_amount_refreshed_at = now
    lifetime.current_usage_from_datetime = window.charges_from_datetime
    lifetime.updated_at = now
    return lifetime


def lifetime_usages_store_current(lifetimes: Collection[LifetimeUsage]) -> None:
    """One UPDATE of the current part of many rows (set by `lifetime_usage_set_current`); the
    invoiced part and its flag are not written (an invoice may flag them meanwhile)."""
    bulk_set(
        LifetimeUsage,
        lifetimes,
        [
            "current_usage_amount_cents",
            "current_usage_amount_refreshed_at",
            "current_usage_from_datetime",
            "updated_at",
        ],
    )


def lifetime_usages_read_invoiced(
    pairs: Collection[tuple[LifetimeUsage, Subscription]], now: datetime
) -> list[LifetimeUsage]:
    """The invoiced part of many lifetime usages at once (what `lifetime_usage_refresh` reads
    for one): their rows locked in one statement, their chains in one query, the chains' fees
    in one read; set on the objects, flag cleared, for `lifetime_usages_store` to write in the
    caller's transaction. Returns the objects."""
    if not pairs:
        return []
    by_pk = {lifetime.pk: lifetime for lifetime, _ in pairs}
    fresh = lock_lifetime_usages(by_pk)
    subscriptions = [subscription for _, subscription in pairs]
    chains: dict[tuple, list[UUID]] = {}
    for pk, organization_id, external_id, subscription_at in (
        Subscription.objects.filter(
            organization_id__in={s.organization_id for s in subscriptions},
            external_id__in={s.external_id for s in subscriptions},
            subscription_at__in={s.subscription_at for s in subscriptions},
        )
        .exclude(status=Subscription.Status.CANCELED)
        .values_list("pk", "organization_id", "external_id", "subscription_at")
    ):
        chains.setdefault((organization_id, external_id, subscription_at), []).append(pk)
    amounts = ports.invoiced_usage_by_subscription(
        subscription_ids=[pk for ids in chains.values() for pk in ids]
    )
    for lifetime, subscription in pairs:
        row = fresh.get(lifetime.pk, lifetime)
        lifetime.historical_usage_amount_cents = row.historical_usage_amount_cents
        chain = chains.get(
            (subscription.organization_id, subscription.external_id, subscription.subscription_at),
            [],
        )
        lifetime.invoiced_usage_amount_cents = sum(amounts.get(pk, 0) for pk in chain)
        lifetime.recalculate_invoiced_usage = False
        lifetime.invoiced_usage_amount_refreshed_at = now
    return [lifetime for lifetime, _ in pairs]


def lifetime_usages_store(lifetimes: Collection[LifetimeUsage]) -> None:
    """One UPDATE of the invoiced and current parts of many rows (read by
    `lifetime_usages_read_invoiced` under their row locks, set by `lifetime_usage_set_current`)."""
    bulk_set(
        LifetimeUsage,
        lifetimes,
        [
            "invoiced_usage_amount_cents",
            "recalculate_invoiced_usage",
            "invoiced_usage_amount_refreshed_at",
            "current_usage_amount_cents",
            "current_usage_amount_refreshed_at",
            "current_usage_from_datetime",
            "updated_at",
        ],
    )


def lifetime_usages_flag_invoiced(
    *,
    subscription_ids: Collection[UUID] = (),
    now: datetime,
    subscriptions: Collection[Subscription] | None = None,
) -> int:
    """An invoice of these subscriptions was finalized: their lifetime usage re-reads the
    invoiced part at the next refresh pass (flagged too). In the caller's transaction; returns
    how many lifetime usages were flagged. `subscriptions`: the rows, when the caller has them
    loaded under its lock (instead of `subscription_ids`)."""
    if subscriptions is None:
        subscriptions = Subscription.objects.filter(pk__in=list(subscription_ids))
    subscriptions = sorted(subscriptions, key=lambda s: s.pk)
    if not subscriptions:
        return 0
    flagged = LifetimeUsage.objects.filter(subscription__in=subscriptions).update(
        recalculate_invoiced_usage=True
    )
    SubscriptionActivity.objects.bulk_create(
        [
            SubscriptionActivity(
                subscription_id=s.pk, organization_id=s.organization_id, flagged_at=now
            )
            for s in subscriptions
            if s.status == Subscription.Status.ACTIVE
        ],
        ignore_conflicts=True,
    )
    return flagged


@transaction.atomic
def lifetime_usage_update(
    *, lifetime_usage: LifetimeUsage, values: object, actor: Actor, now: datetime
) -> LifetimeUsage:
    """Sets `external_historical_usage_amount_cents` (usage billed before Lago)."""
    if not isinstance(values, dict):
        raise Invalid({"lifetime_usage": ["value_is_invalid"]})
    raw = values.get("external_historical_usage_amount_cents")
    if raw is None or raw == "":
        raise Invalid({"external_historical_usage_amount_cents": ["value_is_mandatory"]})
    try:
        amount = Decimal(str(raw).strip()) if not isinstance(raw, bool | float) else None
    except ArithmeticError:
        amount = None
    if (
        amount is None
        or not amount.is_finite()
        or amount != amount.to_integral_value()
        or amount < 0
        or amount >= 2**63
    ):
        raise Invalid({"external_historical_usage_amount_cents": ["value_is_invalid"]})
    lifetime = lock_lifetime_usage(lifetime_usage.pk)
    lifetime.historical_usage_amount_cents = int(amount)
    lifetime.save(update_fields=["historical_usage_amount_cents", "updated_at"])
    return lifetime


def lifetime_usage_get_or_create(*, subscription: Subscription) -> LifetimeUsage:
    """The subscription's lifetime usage, created empty (its invoiced part flagged for the
    next pass) when the subscription never had one."""
    lifetime, _ = LifetimeUsage.objects.get_or_create(
        subscription=subscription,
        defaults={
            "organization_id": subscription.organization_id,
            "recalculate_invoiced_usage": True,
        },
    )
    return lifetime


# --------------------------------------------------------------------------------------------
# Usage thresholds completion (pure over the thresholds and the total)


@dataclass(frozen=True)
class ThresholdCompletion:
    amount_cents: int
    completion_ratio: Decimal
    reached_at: datetime | None


def thresholds_completion(
    *,
    thresholds: list[tuple[int, bool]],
    total_cents: int,
    now: datetime,
    reached_at: Mapping[tuple[int, bool], Sequence[datetime]] | None = None,
) -> list[ThresholdCompletion]:
    """Where the lifetime usage stands against the plan's usage thresholds (`(amount_cents,
    recurring)` pairs), as Lago's `UsageThresholdsCompletionService` lists them: every passed
    one-time threshold (ratio 1), then the next one with its completion ratio and the later ones
    at 0 and the recurring one after the largest; once every one-time threshold is passed, each
    passed step of the recurring one (ratio 1) and the next step. A reached threshold is dated
    by the progressive billing invoice that applied it (`reached_at`, oldest first per
    threshold); with none, `now` (Lago's fallback)."""
    if not thresholds:
        return []
    reached_at = reached_at or {}

    def reached(amount: int, recurring: bool, index: int = 0) -> datetime:
        dates = reached_at.get((amount, recurring)) or ()
        return dates[index] if index < len(dates) else now

    one_time = sorted(amount for amount, recurring in thresholds if not recurring)
    recurring = next((amount for amount, is_recurring in thresholds if is_recurring), None)
    largest = one_time[-1] if one_time else 0
    passed = [amount for amount in one_time if amount <= total_cents]
    pending = [amount for amount in one_time if amount > total_cents]
    rows = [ThresholdCompletion(amount, Decimal(1), reached(amount, False)) for amount in passed]
    last_passed = passed[-1] if passed else 0
    if pending:
        first = pending[0]
        ratio = Decimal(total_cents - last_passed) / Decimal(first - last_passed)
        rows.append(ThresholdCompletion(first, ratio, None))
        rows += [ThresholdCompletion(amount, Decimal(0), None) for amount in pending[1:]]
        if recurring:
            rows.append(ThresholdCompletion(largest + recurring, Decimal(0), None))
    elif recurring:
        occurrences, remainder = divmod(total_cents - last_passed, recurring)
        rows += [
            ThresholdCompletion(
                last_passed + (i + 1) * recurring, Decimal(1), reached(recurring, True, i)
            )
            for i in range(occurrences)
        ]
        rows.append(
            ThresholdCompletion(
                total_cents - remainder + recurring, Decimal(remainder) / Decimal(recurring), None
            )
        )
    return rows


def lifetime_usage_thresholds(
    lifetime: LifetimeUsage, *, now: datetime
) -> list[ThresholdCompletion] | None:
    """The completion of the subscription's usage thresholds (its own, else its plan's),
    dated by its progressive billing invoices; None when it has none (no progressive
    billing: Lago leaves the key out)."""
    subscription = lifetime.subscription
    rows = [
        (threshold.amount_cents, threshold.recurring)
        for threshold in applicable_usage_thresholds(subscription=subscription)
    ]
    if not rows:
        return None
    reached_at = ports.usage_thresholds_reached_at(
        subscription_ids=chain_subscription_ids(subscription)
    )
    return thresholds_completion(
        thresholds=rows, total_cents=lifetime.total_amount_cents, now=now, reached_at=reached_at
    )
