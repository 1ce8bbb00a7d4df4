"""Usage windows: the billing period containing an instant, in the customer's timezone, and
the part of it that usage is read over (spec §10, §25)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from billing.periods import Period, local_date, period_containing
from customers.models import Subscription
from customers.services.subscription_reads import subscription_cycle


@dataclass(frozen=True)
class UsageWindow:
    """Boundaries of one usage computation (an `invoice_subscriptions` row, spec §10.3)."""

    from_datetime: datetime  # subscription-fee period boundaries
    to_datetime: datetime
    charges_from_datetime: datetime  # usage window, both ends inclusive
    charges_to_datetime: datetime
    charges_duration_days: int  # days of the full period of the usage window (§10.2)
    timezone: str  # the customer's applicable timezone


def usage_period(*, subscription: Subscription, at: datetime) -> Period:
    """The plan period containing `at`, clamped to the subscription's life (spec §10.1)."""
    cycle = subscription_cycle(subscription)
    started_at = subscription.started_at or subscription.subscription_at
    reference = max(at, started_at)
    terminated_at = subscription.terminated_at
    if terminated_at is not None:
        reference = min(reference, max(terminated_at, started_at))
    return period_containing(
        cycle,
        local_date(reference, cycle.timezone),
        started_at=started_at,
        terminated_at=terminated_at,
    )


def window_of(period: Period) -> UsageWindow:
    """The usage window of a `billing.periods.Period` (invoicing builds its windows this way)."""
    return UsageWindow(
        from_datetime=period.from_datetime,
        to_datetime=period.to_datetime,
        charges_from_datetime=period.charges_from_datetime,
        charges_to_datetime=period.charges_to_datetime,
        charges_duration_days=period.charges_duration_days,
        timezone=period.timezone.key,
    )


def usage_window(*, subscription: Subscription, at: datetime) -> UsageWindow:
    """The usage window of the period containing `at` (current usage)."""
    return window_of(usage_period(subscription=subscription, at=at))


def selection_end(window: UsageWindow, subscription: Subscription) -> datetime:
    """Last instant selected: a window ending on a whole second (local 23:59:59) also takes the
    events stamped within that second; a window cut at the termination instant stops there."""
    end = window.charges_to_datetime
    if subscription.terminated_at is not None and end >= subscription.terminated_at:
        return end
    return end.replace(microsecond=999_999)


def days_to_period_end(at: datetime, window: UsageWindow) -> int:
    """Local days from the day of `at` to the window's last day, both included (the days a
    pay-in-advance prorated event bills, spec §7.14)."""
    tz = ZoneInfo(window.timezone)
    return (local_date(window.charges_to_datetime, tz) - local_date(at, tz)).days + 1
