"""Subscription life events for the apps to the right of `customers` (invoicing first of all).

`customers` may not import `invoicing` (DESIGN: apps import only to their left), yet starting,
terminating or changing the plan of a subscription must bill it (spec §9.3-§9.5, §11). Each
event is a `billing.signals.Hook` declared below; the subscription services fire it after
commit, so a rolled-back change bills nothing, and `invoicing/apps.py` connects its receivers.
Arguments are ids and aware UTC datetimes, passed by keyword.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from billing.signals import hook


@hook
def on_subscription_started(*, subscription_id: UUID, started_at: datetime) -> None:
    """A subscription became active without replacing another one: created with a start today
    or in the past, or a pending one whose `subscription_at` date arrived. Pay-in-advance plans
    bill their first fee here unless a trial runs or the start is in the past (spec §9.3)."""


@hook
def on_subscription_terminated(*, subscription_id: UUID, terminated_at: datetime) -> None:
    """A subscription ended by itself (API or admin termination, `ending_at` reached). The
    closing invoice and the credit note follow the subscription's `on_termination_invoice` /
    `on_termination_credit_note` (spec §9.5)."""


@hook
def on_plan_changed(
    *, previous_subscription_id: UUID, subscription_id: UUID, change: str, timestamp: datetime
) -> None:
    """A plan change was applied. `change` is a `billing.periods.PlanChange`: "upgrade" (applied
    at `timestamp` = now: the previous subscription is terminated at that instant and the new
    one started at it) or "downgrade" (applied on the period boundary: the previous subscription
    is terminated at the last second of its period and the new one started at `timestamp`, the
    next local midnight). Lago bills both in one invoice (`invoicing_reason: upgrading`) and
    credits unused in-advance days (spec §9.4, §18.6). Neither `on_subscription_started` nor
    `on_subscription_terminated` fires for a plan change."""


@hook
def on_trial_ended(*, subscription_id: UUID, trial_ended_at: datetime) -> None:
    """The free trial of an active subscription is over; pay-in-advance plans bill the rest of
    the period now (spec §11 trial rules, V63)."""


@hook
def on_customer_payment_provider_set(
    *, customer_id: UUID, provider_customer_id_changed: bool, sync: bool
) -> None:
    """A customer was saved with payment provider settings in its `billing_configuration`
    (`payment_provider`, `payment_provider_code`, `provider_customer_id`, `sync_with_provider`,
    `provider_payment_methods`). The provider's app creates or links the customer at the
    provider (spec §19.2); `provider_customer_id_changed` tells whether an existing provider
    customer was just linked, `sync` whether the caller asked for it to happen at once."""
