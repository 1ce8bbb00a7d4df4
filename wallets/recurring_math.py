"""Recurring top-up rules (spec §17.6): pure date and credit arithmetic, no ORM.

Interval rules top a wallet up on the same weekday (weekly) or the same day of the month
(monthly, quarterly, semiannual, yearly) as their anchor: the rule's `started_at`, else the
wallet's creation, as a date in the customer's timezone. The n-th occurrence is computed from
the anchor, never stepped from the previous one, so an anchor on the 31st tops up on Feb 28 (29)
and again on Mar 31 (STYLE §6). The day the wallet was created never tops up: a rule started
that day tops up first on its next occurrence.

Threshold rules fire when the ongoing balance (plus pending top-ups) is at or below the
threshold. The fixed method multiplies its paid credits so that one top-up clears the threshold
(V88); the target method tops up to the target ongoing balance.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from wallets.credits import quantize_credits

ZERO = Decimal(0)

WEEKLY, MONTHLY, QUARTERLY, SEMIANNUAL, YEARLY = (
    "weekly", "monthly", "quarterly", "semiannual", "yearly",
)  # fmt: skip
_MONTHS = {MONTHLY: 1, QUARTERLY: 3, SEMIANNUAL: 6, YEARLY: 12}


# --------------------------------------------------------------------------------------------
# Interval occurrences


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _clamped(month_index: int, day: int) -> date:
    year, month = divmod(month_index, 12)
    month += 1
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def occurrence(interval: str, anchor: date, n: int) -> date:
    """The n-th occurrence of a rule anchored on `anchor` (n = 0 is the anchor itself)."""
    if interval == WEEKLY:
        return anchor + timedelta(weeks=n)
    return _clamped(_month_index(anchor) + n * _MONTHS[interval], anchor.day)


def is_occurrence(interval: str, anchor: date, day: date) -> bool:
    """Whether `day` is an occurrence of the rule (on or after its anchor)."""
    if day < anchor:
        return False
    if interval == WEEKLY:
        return (day - anchor).days % 7 == 0
    months = _month_index(day) - _month_index(anchor)
    step = _MONTHS[interval]
    return months % step == 0 and occurrence(interval, anchor, months // step) == day


def next_occurrence(interval: str, anchor: date, after: date) -> date:
    """The first occurrence strictly after `after` (the anchor itself if it is later)."""
    if after < anchor:
        return anchor
    if interval == WEEKLY:
        return anchor + timedelta(weeks=(after - anchor).days // 7 + 1)
    step = _MONTHS[interval]
    n = (_month_index(after) - _month_index(anchor)) // step
    while occurrence(interval, anchor, n) <= after:
        n += 1
    return occurrence(interval, anchor, n)


def due_occurrence(interval: str, *, anchor: date, today: date, created_on: date) -> date | None:
    """`today` when it is a top-up day of the rule, else None.

    The wallet's creation day never tops up (spec §17.6: a rule started on the creation day
    tops up first on its next occurrence)."""
    if today == created_on or not is_occurrence(interval, anchor, today):
        return None
    return today


def first_top_up_on(interval: str, *, anchor: date, created_on: date) -> date:
    """The first day an interval rule tops up (for display and tests)."""
    return anchor if anchor > created_on else next_occurrence(interval, anchor, created_on)


# --------------------------------------------------------------------------------------------
# Amounts


@dataclass(frozen=True)
class TopUp:
    """Credits of one automatic top-up."""

    paid_credits: Decimal
    granted_credits: Decimal

    @property
    def is_empty(self) -> bool:
        return self.paid_credits <= 0 and self.granted_credits <= 0


def threshold_reached(*, threshold: Decimal, ongoing: Decimal, pending: Decimal) -> bool:
    """Spec §17.6: ongoing <= threshold, and pending top-ups would not lift it above."""
    return ongoing <= threshold and ongoing + pending <= threshold


def fixed_threshold_paid_credits(
    *,
    paid_credits: Decimal,
    granted_credits: Decimal,
    threshold: Decimal,
    ongoing: Decimal,
    pending: Decimal,
    max_credits: Decimal | None = None,
) -> Decimal:
    """V88: gap g = threshold - ongoing - granted - pending; when g >= paid the paid credits
    are multiplied, paid x (floor(g / paid) + 1), so that one top-up clears the threshold;
    then capped by the wallet's paid top-up maximum (`max_credits`, None: no cap)."""
    paid = paid_credits
    if paid > 0:
        gap = threshold - ongoing - granted_credits - pending
        if gap >= paid:
            paid = paid * ((gap // paid) + 1)
    if max_credits is not None and paid > max_credits:
        paid = max_credits
    return quantize_credits(paid)


def target_top_up(
    *,
    target: Decimal,
    ongoing: Decimal,
    grants_target_top_up: bool = False,
    min_credits: Decimal | None = None,
) -> TopUp:
    """Spec §17.6 target method: the gap to the target ongoing balance (nothing when already
    at or above it), raised to the paid minimum (`min_credits`; the maximum is ignored).
    With `grants_target_top_up` the gap is granted for free instead (no minimum)."""
    gap = target - ongoing
    if gap <= 0:
        return TopUp(ZERO, ZERO)
    gap = quantize_credits(gap)
    if grants_target_top_up:
        return TopUp(ZERO, gap)
    if min_credits is not None and gap < min_credits:
        gap = min_credits
    return TopUp(gap, ZERO)
