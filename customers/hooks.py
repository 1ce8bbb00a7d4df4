"""Subscription life events for apps to the right of `customers` (invoicing first of all).

`customers` may not import `invoicing` (DESIGN: apps import only to their left), yet starting,
terminating or changing the plan of a subscription must bill it (spec §9.3-§9.5, §11, §18.6).
This module is the meeting point: invoicing appends callables to the lists below (typically
from its `AppConfig.ready()`), and the subscription services fire them **after commit**
(`transaction.on_commit`), so a rolled-back change bills nothing.

    # invoicing/apps.py
    def ready(self):
        from customers import hooks
        from invoicing.tasks import bill_started_subscription_task

        @hooks.register(hooks.on_subscription_started)
        def bill_start(*, subscription_id, started_at):
            bill_started_subscription_task.delay(str(subscription_id), started_at.isoformat())

Every hook is called with keyword arguments only (ids and aware UTC datetimes):

- `on_subscription_started(subscription_id, started_at)`: a subscription became active without
  replacing another one: created with a start today or in the past, or a pending one whose
  `subscription_at` date arrived. Pay-in-advance plans bill their first fee here unless a trial
  runs or the start is in the past (spec §9.3).
- `on_subscription_terminated(subscription_id, terminated_at)`: a subscription ended by itself
  (API or admin termination, `ending_at` reached). The closing invoice and the credit note
  follow the subscription's `on_termination_invoice` / `on_termination_credit_note` (§9.5).
- `on_plan_changed(previous_subscription_id, subscription_id, change, timestamp)`: a plan
  change was applied: `change` is "upgrade" (applied at `timestamp` = now: the previous
  subscription is terminated at that instant and the new one started at it) or "downgrade"
  (applied on the period boundary: the previous subscription is terminated at the last second
  of its period and the new one started at `timestamp`, the next local midnight). Lago bills
  both in one invoice (`invoicing_reason: upgrading`) and credits unused in-advance days
  (§9.4, §18.6 upgrade variant). Neither `on_subscription_started` nor
  `on_subscription_terminated` fires for a plan change.
- `on_trial_ended(subscription_id, trial_ended_at)`: the free trial of an active subscription is
  over; pay-in-advance plans bill the rest of the period now (§11 trial rules, V63).

Hooks must be quick and idempotent (enqueue a task, re-check state there). A hook that raises
is logged and skipped (`robust=True`), never undoing the committed change; the durable record
of every change is the `billing.OutboxEvent` row written in the same transaction.

The other way round, the applied coupon objects of the API show what invoicing drew from each
coupon (spec §15.2, §15.3): `coupon_credits` is a `billing.hooks.Slot` that invoicing fills from
its `AppConfig.ready()`; without invoicing no coupon was ever drawn from.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple
from uuid import UUID

from django.db import transaction

from billing.hooks import Slot

Hook = Callable[..., object]

on_subscription_started: list[Hook] = []
on_subscription_terminated: list[Hook] = []
on_plan_changed: list[Hook] = []
on_trial_ended: list[Hook] = []


def register(hooks: list[Hook]) -> Callable[[Hook], Hook]:
    """Decorator appending a callable to one of the hook lists (once)."""

    def decorator(hook: Hook) -> Hook:
        if hook not in hooks:
            hooks.append(hook)
        return hook

    return decorator


def fire(hooks: list[Hook], **kwargs: object) -> None:
    """Calls every hook of a list with `kwargs` once the current transaction commits."""
    for hook in list(hooks):
        call = partial(hook, **kwargs)
        # Django logs a failing robust callback by its `__qualname__`, which partials lack.
        call.__qualname__ = getattr(hook, "__qualname__", repr(hook))  # type: ignore[attr-defined]
        transaction.on_commit(call, robust=True)


class CouponCredit(NamedTuple):
    """One invoice credit drawn from an applied coupon (Lago's credit of type coupon)."""

    lago_id: UUID
    amount_cents: int
    amount_currency: str
    before_taxes: bool
    invoice_id: UUID
    invoice_payment_status: str
    consumes: bool  # still counts against the coupon (its invoice was not voided, §12.8)


def _no_credits(*, applied_coupon_ids: Sequence[UUID]) -> dict[UUID, list[CouponCredit]]:
    return {}


# (applied_coupon_ids=) -> {applied coupon id: its credits, oldest first}; ids without credits
# may be left out
coupon_credits = Slot("coupon_credits", _no_credits)
