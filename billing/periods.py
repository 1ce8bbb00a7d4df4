"""Billing periods and day-based proration: pure functions over local dates and a `ZoneInfo`.

Nothing here touches the ORM (the vocabularies are Django `TextChoices`, plain `str` enums that
the models reuse as field choices). Date math happens on local dates in the customer's applicable
timezone (spec §10); a local day d becomes the UTC instants `start_of_day(d)` (00:00:00 local)
and `end_of_day(d)` (23:59:59 local, i.e. one second before the next local midnight), so
consecutive windows are adjacent: `next.from_datetime == previous.to_datetime + 1 second`.

The n-th period boundary is always computed from the anchor (the local date of
`subscription_at`), never stepped from the previous boundary (spec §10.1, STYLE §6): anchored on
Jan 31, monthly periods start Feb 28 (29) and then Mar 31 again.

Subscription fees are `round_cents(days * amount_cents / period_days)` (spec §11, §28).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from django.db.models.enums import TextChoices
from django.utils.translation import gettext_lazy as _

from billing.money import round_cents

ONE_SECOND = timedelta(seconds=1)
UTC_ZONE = ZoneInfo("UTC")
_DAY_MICROSECONDS = 86_400_000_000
# spec §10.5: no two places on earth are more than 26 hours apart.
_TIMEZONE_CHANGE_TOLERANCE = timedelta(hours=26)


class Interval(TextChoices):
    """Plan billing interval (Lago `plan.interval`)."""

    WEEKLY = "weekly", _("Weekly")
    MONTHLY = "monthly", _("Monthly")
    QUARTERLY = "quarterly", _("Quarterly")
    SEMIANNUAL = "semiannual", _("Semiannual")
    YEARLY = "yearly", _("Yearly")


class BillingTime(TextChoices):
    """Subscription billing time: calendar periods or periods anchored on `subscription_at`."""

    CALENDAR = "calendar", _("Calendar")
    ANNIVERSARY = "anniversary", _("Anniversary")


class IssuingDateAnchor(TextChoices):
    """Which end of the billed period dates a subscription invoice (billing entity setting)."""

    CURRENT_PERIOD_END = "current_period_end", _("Current period end")
    NEXT_PERIOD_START = "next_period_start", _("Next period start")


class IssuingDateAdjustment(TextChoices):
    """Whether the issuing date then moves to the finalization date (billing entity setting)."""

    ALIGN_WITH_FINALIZATION_DATE = "align_with_finalization_date", _("Align with finalization")
    KEEP_ANCHOR = "keep_anchor", _("Keep anchor")


class PlanChange(StrEnum):
    """What a plan change is (spec §9.4): upgrades apply now, downgrades at period end."""

    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"


class FeeRule(StrEnum):
    """Which computation of spec §11 prices a subscription fee, in evaluation order."""

    TERMINATED = "terminated"  # §11.1, in arrears, terminated with no next subscription
    TERMINATED_BY_UPGRADE = "terminated_by_upgrade"  # §11.1, the upgrade day is the new plan's
    FIRST_AFTER_UPGRADE = "first_after_upgrade"  # §11.2
    FULL = "full"  # §11.3
    FIRST_PERIOD = "first_period"  # §11.4, first (partial) period, also after a downgrade


# Months per period for the month-based intervals (weekly is counted in days).
_MONTHS: dict[Interval, int] = {
    Interval.MONTHLY: 1,
    Interval.QUARTERLY: 3,
    Interval.SEMIANNUAL: 6,
    Interval.YEARLY: 12,
}

# spec §9.4 (code `Plan#yearly_amount_cents`): plan amounts compared on a yearly basis.
YEARLY_FACTOR: dict[Interval, int] = {
    Interval.WEEKLY: 52,
    Interval.MONTHLY: 12,
    Interval.QUARTERLY: 4,
    Interval.SEMIANNUAL: 2,
    Interval.YEARLY: 1,
}


# --------------------------------------------------------------------------------------------
# Value objects


@dataclass(frozen=True)
class DateSpan:
    """An inclusive range of local dates: a full billing period as the customer sees it."""

    first: date
    last: date

    @property
    def days(self) -> int:
        """Number of local days in the span, both ends included."""
        return (self.last - self.first).days + 1

    def __contains__(self, day: object) -> bool:
        """Whether a local date falls inside the span."""
        return isinstance(day, date) and self.first <= day <= self.last


@dataclass(frozen=True)
class BillingCycle:
    """How a subscription is cut into periods: interval, billing time, anchor and timezone."""

    interval: Interval
    billing_time: BillingTime
    anchor: date  # local date of `subscription_at` in `timezone`
    timezone: ZoneInfo = UTC_ZONE
    bill_charges_monthly: bool = False

    def __post_init__(self) -> None:
        """Accept the wire strings ("monthly", "anniversary") as well as the enums."""
        object.__setattr__(self, "interval", Interval(self.interval))
        object.__setattr__(self, "billing_time", BillingTime(self.billing_time))

    @classmethod
    def for_subscription(
        cls,
        *,
        interval: Interval | str,
        billing_time: BillingTime | str,
        subscription_at: datetime,
        timezone: ZoneInfo,
        bill_charges_monthly: bool = False,
    ) -> BillingCycle:
        """The cycle of a subscription: anchored on the local date of `subscription_at`."""
        return cls(
            interval=Interval(interval),
            billing_time=BillingTime(billing_time),
            anchor=local_date(subscription_at, timezone),
            timezone=timezone,
            bill_charges_monthly=bill_charges_monthly,
        )


@dataclass(frozen=True)
class Period:
    """Boundaries of one billed period, as Lago's `invoice_subscriptions` row (spec §10.3).

    `from_datetime`/`to_datetime` bound the subscription fee, `charges_*` the usage window, all
    aware UTC instants; `timestamp` is the billing instant. `full_period` is the whole plan
    period the fee window belongs to (its length is the proration denominator, §10.2).
    Windows are closed and end on a whole second (local 23:59:59) unless cut at a termination:
    an event stamped within that last second (23:59:59.5) belongs to the window, so select
    usage up to the next window's start, not up to `charges_to_datetime` alone.
    """

    from_datetime: datetime
    to_datetime: datetime
    charges_from_datetime: datetime
    charges_to_datetime: datetime
    timestamp: datetime
    timezone: ZoneInfo
    full_period: DateSpan
    charges_full_period: DateSpan
    bills_subscription_fee: bool = True
    bills_charges: bool = True

    @property
    def from_date(self) -> date:
        """First local day of the fee window."""
        return local_date(self.from_datetime, self.timezone)

    @property
    def to_date(self) -> date:
        """Last local day of the fee window."""
        return local_date(self.to_datetime, self.timezone)

    @property
    def charges_from_date(self) -> date:
        """First local day of the usage window."""
        return local_date(self.charges_from_datetime, self.timezone)

    @property
    def charges_to_date(self) -> date:
        """Last local day of the usage window."""
        return local_date(self.charges_to_datetime, self.timezone)

    @property
    def duration_days(self) -> int:
        """Days of the full plan period containing the fee window (spec §10.2)."""
        return self.full_period.days

    @property
    def charges_duration_days(self) -> int:
        """Days of the full period containing the usage window (spec §10.2)."""
        return self.charges_full_period.days

    @property
    def days(self) -> int:
        """Local days touched by the fee window (spec §10.4)."""
        return date_diff_with_timezone(self.from_datetime, self.to_datetime, self.timezone)

    @property
    def charges_days(self) -> int:
        """Local days touched by the usage window (spec §10.4)."""
        return date_diff_with_timezone(
            self.charges_from_datetime, self.charges_to_datetime, self.timezone
        )


# --------------------------------------------------------------------------------------------
# Local days <-> UTC instants


def _require_aware(value: datetime, name: str) -> None:
    """Refuse naive datetimes: every instant in billing is aware."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")


def iso_utc(instant: datetime) -> str:
    """An instant as Lago writes it in payloads: ISO 8601 in UTC, whole seconds, `Z`."""
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_date(instant: datetime, tz: ZoneInfo) -> date:
    """The customer's local date of an aware instant."""
    _require_aware(instant, "instant")
    return instant.astimezone(tz).date()


def start_of_day(day: date, tz: ZoneInfo) -> datetime:
    """First instant (UTC) of a local day; a midnight skipped by DST maps to the transition."""
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


def end_of_day(day: date, tz: ZoneInfo) -> datetime:
    """Last second (UTC) of a local day: one second before the next local midnight."""
    return start_of_day(day + timedelta(days=1), tz) - ONE_SECOND


def _start_day_utc(started_at: datetime, tz: ZoneInfo) -> datetime:
    """Local midnight of the start day, in UTC."""
    return start_of_day(local_date(started_at, tz), tz)


def date_diff_with_timezone(from_datetime: datetime, to_datetime: datetime, tz: ZoneInfo) -> int:
    """Local days between two instants, both ends inclusive (code `date_diff_with_timezone`).

    days = ceil((to - from - (utc_offset(from) - utc_offset(to))) / 1 day), one second added
    to `to` when it is exactly a local midnight (spec §10.4).
    """
    _require_aware(from_datetime, "from_datetime")
    _require_aware(to_datetime, "to_datetime")
    to_local = to_datetime.astimezone(tz)
    if to_local.time() == time.min:
        # spec §10.4: a window ending at local midnight still touches that day.
        to_datetime = to_datetime + ONE_SECOND
        to_local = to_datetime.astimezone(tz)
    from_local = from_datetime.astimezone(tz)
    # Wall-clock difference = elapsed time corrected by the change of UTC offset (DST).
    wall = to_local.replace(tzinfo=None) - from_local.replace(tzinfo=None)
    microseconds = wall // timedelta(microseconds=1)
    return -(-microseconds // _DAY_MICROSECONDS)


# --------------------------------------------------------------------------------------------
# Period shapes (spec §10.1)


def _months_after(year: int, month: int, months: int, day: int) -> date:
    """The date `months` after (year, month), its day clamped to the month's length."""
    index = year * 12 + (month - 1) + months
    new_year, new_month = divmod(index, 12)
    new_month += 1
    return date(new_year, new_month, min(day, calendar.monthrange(new_year, new_month)[1]))


def _month_index(day: date) -> int:
    """Months since year 0, for month arithmetic."""
    return day.year * 12 + day.month - 1


def period_start(cycle: BillingCycle, n: int) -> date:
    """First local day of period n (period 0 holds the anchor, or starts on it for anniversary)."""
    anchor = cycle.anchor
    if cycle.interval is Interval.WEEKLY:
        if cycle.billing_time is BillingTime.CALENDAR:
            anchor = anchor - timedelta(days=anchor.weekday())  # Monday..Sunday
        return anchor + timedelta(weeks=n)
    months = _MONTHS[cycle.interval]
    if cycle.billing_time is BillingTime.CALENDAR:
        first_month = (anchor.month - 1) // months * months + 1
        return _months_after(anchor.year, first_month, n * months, 1)
    # Always from the anchor: a short month clamps one boundary, never the following ones.
    return _months_after(anchor.year, anchor.month, n * months, anchor.day)


def period_index(cycle: BillingCycle, day: date) -> int:
    """Index n of the period containing a local day (negative before the anchor's period)."""
    base = period_start(cycle, 0)
    if cycle.interval is Interval.WEEKLY:
        return (day - base).days // 7
    n = (_month_index(day) - _month_index(base)) // _MONTHS[cycle.interval]
    if period_start(cycle, n) > day:
        n -= 1
    return n


def nth_period(cycle: BillingCycle, n: int) -> DateSpan:
    """Full period n: from its start to the day before period n + 1 starts."""
    return DateSpan(period_start(cycle, n), period_start(cycle, n + 1) - timedelta(days=1))


def full_period(cycle: BillingCycle, day: date) -> DateSpan:
    """The full plan period containing a local day."""
    return nth_period(cycle, period_index(cycle, day))


def duration_days(cycle: BillingCycle, day: date) -> int:
    """Days of the full period containing a local day, even if only partly used (spec §10.2)."""
    return full_period(cycle, day).days


def charges_cycle(cycle: BillingCycle) -> BillingCycle:
    """The cycle cutting usage windows and billing days: monthly with `bill_charges_monthly`."""
    if cycle.bill_charges_monthly and cycle.interval not in (Interval.WEEKLY, Interval.MONTHLY):
        return BillingCycle(
            interval=Interval.MONTHLY,
            billing_time=cycle.billing_time,
            anchor=cycle.anchor,
            timezone=cycle.timezone,
        )
    return cycle


def single_day_price(amount_cents: int | Decimal, period_days: int) -> Decimal:
    """Precise price of one day of a period (spec §10.2)."""
    return Decimal(amount_cents) / Decimal(period_days)


def prorate(amount_cents: int | Decimal, days: int, period_days: int) -> Decimal:
    """Precise `days * amount / period_days`, multiplied first so exact halves stay exact."""
    return Decimal(days) * Decimal(amount_cents) / Decimal(period_days)


# --------------------------------------------------------------------------------------------
# Billing days (spec §10.3)


def is_billing_day(cycle: BillingCycle, day: date) -> bool:
    """Whether periodic invoices are issued on this local day (a period starts on it)."""
    cadence = charges_cycle(cycle)
    return period_start(cadence, period_index(cadence, day)) == day


def next_billing_day(cycle: BillingCycle, after: date) -> date:
    """First periodic billing day strictly after a local day."""
    cadence = charges_cycle(cycle)
    return period_start(cadence, period_index(cadence, after) + 1)


def billing_days(
    cycle: BillingCycle,
    *,
    started_at: datetime,
    until: date,
    pay_in_advance: bool,
    trial_end_at: datetime | None = None,
) -> list[date]:
    """Local days on which the subscription is invoiced, from its start up to `until` included.

    Periodic billing days follow each period (monthly with `bill_charges_monthly`); a
    pay-in-advance plan is also invoiced on its start day, or on the day its trial ends when
    it starts with a trial (spec §9.3, §11).
    """
    start_day = local_date(started_at, cycle.timezone)
    days: set[date] = set()
    day = next_billing_day(cycle, start_day)
    while day <= until:
        days.add(day)
        day = next_billing_day(cycle, day)
    if pay_in_advance:
        first = start_day
        if trial_end_at is not None and trial_end_at > started_at:
            first = local_date(trial_end_at, cycle.timezone)
        if first <= until:
            days.add(first)
    return sorted(days)


def bills_subscription_fee_on(cycle: BillingCycle, day: date) -> bool:
    """Whether a periodic invoice on this billing day carries the subscription fee.

    With `bill_charges_monthly` the fee only comes on plan-period boundaries: in advance the
    first month of the period, in arrears the day after it ends (spec §10.3).
    """
    return charges_cycle(cycle) is cycle or full_period(cycle, day).first == day


# --------------------------------------------------------------------------------------------
# Periods and invoice boundaries (spec §10.3)


def align_charges_from(charges_from: datetime, previous_charges_to: datetime) -> datetime:
    """After a timezone change, start usage one second after the previous window (spec §10.5)."""
    aligned = previous_charges_to + ONE_SECOND
    if abs(charges_from - aligned) < _TIMEZONE_CHANGE_TOLERANCE:
        return aligned
    return charges_from


def _charges_from(
    cycle: BillingCycle, first_day: date, started_at: datetime, previous: Period | None
) -> datetime:
    """Start of a usage window: aligned after a timezone change, never before the start."""
    charges_from = start_of_day(first_day, cycle.timezone)
    if previous is not None and previous.timezone.key != cycle.timezone.key:
        charges_from = align_charges_from(charges_from, previous.charges_to_datetime)
    return max(charges_from, started_at)


def billing_period(
    cycle: BillingCycle,
    *,
    billing_at: datetime,
    started_at: datetime,
    pay_in_advance: bool,
    previous: Period | None = None,
) -> Period:
    """Boundaries of the invoice issued at `billing_at` (a billing day, or the start in advance).

    In arrears the fee window is the period that just ended; in advance it is the period
    starting on the billing day. The usage window is always the period (month with
    `bill_charges_monthly`) that just ended. Windows never start before `started_at`: the fee
    from its local day, usage from the exact instant (spec §10.1). Pass the previous invoice's
    `Period` so a timezone change leaves no gap or overlap in usage (spec §10.5).
    """
    _require_aware(billing_at, "billing_at")
    _require_aware(started_at, "started_at")
    tz = cycle.timezone
    day = local_date(billing_at, tz)
    yesterday = day - timedelta(days=1)
    fee_span = full_period(cycle, day if pay_in_advance else yesterday)
    charges_span = full_period(charges_cycle(cycle), yesterday)
    starts_today = day == local_date(started_at, tz)
    bills_fee = bills_subscription_fee_on(cycle, day) or (pay_in_advance and starts_today)
    return Period(
        from_datetime=max(start_of_day(fee_span.first, tz), _start_day_utc(started_at, tz)),
        to_datetime=max(end_of_day(fee_span.last, tz), started_at),
        charges_from_datetime=_charges_from(cycle, charges_span.first, started_at, previous),
        charges_to_datetime=max(end_of_day(charges_span.last, tz), started_at),
        timestamp=billing_at,
        timezone=tz,
        full_period=fee_span,
        charges_full_period=charges_span,
        bills_subscription_fee=bills_fee,
    )


def first_period(cycle: BillingCycle, *, started_at: datetime, pay_in_advance: bool) -> Period:
    """The subscription's first invoice: at the start in advance, else on the next billing day.

    Calendar plans get a partial fee window (from the start day); anniversary plans start a
    full period on the anchor.
    """
    if pay_in_advance:
        return billing_period(
            cycle, billing_at=started_at, started_at=started_at, pay_in_advance=True
        )
    day = next_billing_day(cycle, local_date(started_at, cycle.timezone))
    return billing_period(
        cycle,
        billing_at=start_of_day(day, cycle.timezone),
        started_at=started_at,
        pay_in_advance=False,
    )


def next_period(
    cycle: BillingCycle, period: Period, *, started_at: datetime, pay_in_advance: bool
) -> Period:
    """The periodic invoice following `period`, billed at the next billing day's local midnight."""
    day = next_billing_day(cycle, local_date(period.timestamp, cycle.timezone))
    return billing_period(
        cycle,
        billing_at=start_of_day(day, cycle.timezone),
        started_at=started_at,
        pay_in_advance=pay_in_advance,
        previous=period,
    )


def period_containing(
    cycle: BillingCycle,
    day: date,
    *,
    started_at: datetime,
    terminated_at: datetime | None = None,
) -> Period:
    """The plan period containing a local day, fee and usage windows alike (current usage).

    Clamped to the subscription's life; `timestamp` is the billing day's local midnight, or
    the termination instant when the subscription ends inside the period.
    """
    tz = cycle.timezone
    fee_span = full_period(cycle, day)
    charges_span = full_period(charges_cycle(cycle), day)
    to_datetime = end_of_day(fee_span.last, tz)
    charges_to = end_of_day(charges_span.last, tz)
    timestamp = start_of_day(fee_span.last + timedelta(days=1), tz)
    if terminated_at is not None and terminated_at <= to_datetime:
        to_datetime, timestamp = terminated_at, terminated_at
        charges_to = min(charges_to, terminated_at)
    return Period(
        from_datetime=max(start_of_day(fee_span.first, tz), _start_day_utc(started_at, tz)),
        to_datetime=max(to_datetime, started_at),
        charges_from_datetime=max(start_of_day(charges_span.first, tz), started_at),
        charges_to_datetime=max(charges_to, started_at),
        timestamp=timestamp,
        timezone=tz,
        full_period=fee_span,
        charges_full_period=charges_span,
    )


def termination_period(
    cycle: BillingCycle,
    *,
    started_at: datetime,
    terminated_at: datetime,
    pay_in_advance: bool,
    previous: Period | None = None,
) -> Period:
    """Boundaries of the closing invoice: the period containing the termination, cut at it.

    In arrears it carries the prorated fee (§11.1); in advance the fee was already paid and
    the unused days go to a credit note instead (§18.6, see `remaining_days`).
    """
    _require_aware(terminated_at, "terminated_at")
    _require_aware(started_at, "started_at")
    tz = cycle.timezone
    day = local_date(terminated_at, tz)
    fee_span = full_period(cycle, day)
    charges_span = full_period(charges_cycle(cycle), day)
    return Period(
        from_datetime=max(start_of_day(fee_span.first, tz), _start_day_utc(started_at, tz)),
        to_datetime=max(min(end_of_day(fee_span.last, tz), terminated_at), started_at),
        charges_from_datetime=_charges_from(cycle, charges_span.first, started_at, previous),
        charges_to_datetime=max(min(end_of_day(charges_span.last, tz), terminated_at), started_at),
        timestamp=terminated_at,
        timezone=tz,
        full_period=fee_span,
        charges_full_period=charges_span,
        bills_subscription_fee=not pay_in_advance,
    )


# --------------------------------------------------------------------------------------------
# Trials (spec §11, §30.3)


def trial_end(initial_started_at: datetime, trial_period_days: int | Decimal) -> datetime | None:
    """Exact end of the free trial, counted from the first start of the external id (§30.3).

    On an upgrade the new plan's trial still counts from the original start, so pass the
    first `started_at` of the external subscription, not the new subscription's.
    """
    _require_aware(initial_started_at, "initial_started_at")
    if not trial_period_days:
        return None
    # Trial periods may be fractional days; microseconds keep the arithmetic exact.
    microseconds = (Decimal(trial_period_days) * _DAY_MICROSECONDS).to_integral_value(
        rounding=ROUND_HALF_UP
    )
    return initial_started_at + timedelta(microseconds=int(microseconds))


def billable_from(
    from_datetime: datetime, to_datetime: datetime, trial_end_at: datetime | None
) -> datetime | None:
    """Where the paid part of a window starts: the trial end if inside, None if all trial."""
    if trial_end_at is None:
        return from_datetime
    if trial_end_at >= to_datetime:
        return None
    return max(from_datetime, trial_end_at)


def trial_end_period(cycle: BillingCycle, *, started_at: datetime, billing_at: datetime) -> Period:
    """The pay-in-advance invoice issued when a trial ends: subscription fee only.

    Billed by the hourly job run at `billing_at` (at or after the trial end) for the period
    containing that day; usage stays with the periodic invoices (Lago `skip_charges`).
    """
    period = billing_period(
        cycle, billing_at=billing_at, started_at=started_at, pay_in_advance=True
    )
    return replace(period, bills_subscription_fee=True, bills_charges=False)


# --------------------------------------------------------------------------------------------
# Subscription fee (spec §11)


def subscription_fee_rule(
    *,
    pay_in_advance: bool,
    billing_time: BillingTime,
    terminated: bool = False,
    ended_by: PlanChange | None = None,
    created_by: PlanChange | None = None,
    first_invoice: bool = True,
    has_earlier_fee: bool = False,
    started_in_past: bool = False,
    started_before_previous_period: bool = False,
) -> FeeRule:
    """Pick the computation of spec §11, evaluated in the spec's order.

    `ended_by` is the plan change that terminated this subscription, `created_by` the one
    that created it; `first_invoice` is true while the subscription has at most one invoice.
    """
    if terminated and not pay_in_advance and ended_by is not PlanChange.DOWNGRADE:
        if ended_by is PlanChange.UPGRADE:
            return FeeRule.TERMINATED_BY_UPGRADE
        return FeeRule.TERMINATED
    if created_by is PlanChange.UPGRADE and first_invoice:
        return FeeRule.FIRST_AFTER_UPGRADE
    anniversary = BillingTime(billing_time) is BillingTime.ANNIVERSARY
    if (
        (pay_in_advance and anniversary and created_by is None)
        or has_earlier_fee
        or (started_in_past and pay_in_advance)
        or (started_in_past and started_before_previous_period)
    ):
        return FeeRule.FULL
    return FeeRule.FIRST_PERIOD


def subscription_fee_days(rule: FeeRule, period: Period, trial_end_at: datetime | None) -> int:
    """Billed days of the fee window under a rule; free trial days excluded (spec §11)."""
    start = billable_from(period.from_datetime, period.to_datetime, trial_end_at)
    if start is None:
        return 0  # the trial covers the whole window
    days = date_diff_with_timezone(start, period.to_datetime, period.timezone)
    if rule is FeeRule.TERMINATED_BY_UPGRADE:
        days -= 1  # spec §10.4: the upgrade day belongs to the new plan
    return max(days, 0)


def subscription_fee_precise_cents(
    *,
    rule: FeeRule,
    amount_cents: int,
    period: Period,
    trial_end_at: datetime | None = None,
) -> Decimal:
    """Unrounded subscription fee (`precise_amount_cents`) of one period (spec §11)."""
    if rule is FeeRule.FULL and (trial_end_at is None or trial_end_at <= period.from_datetime):
        return Decimal(amount_cents)
    days = subscription_fee_days(rule, period, trial_end_at)
    return prorate(amount_cents, days, period.duration_days)


def subscription_fee_cents(
    *,
    rule: FeeRule,
    amount_cents: int,
    period: Period,
    trial_end_at: datetime | None = None,
) -> int:
    """Subscription fee in cents: `round_cents(days * amount_cents / period_days)` (§11, §28)."""
    return round_cents(
        subscription_fee_precise_cents(
            rule=rule, amount_cents=amount_cents, period=period, trial_end_at=trial_end_at
        )
    )


def remaining_days(
    *,
    period_last_day: date,
    terminated_on: date,
    upgrade: bool,
    trial_end_on: date | None = None,
) -> int:
    """Unused days of a period paid in advance, for the termination credit note (spec §18.6).

    Days after the termination day up to the period's last day; an upgrade also gives back
    the termination day; days before the trial end were never billed.
    """
    first_unused = terminated_on if upgrade else terminated_on + timedelta(days=1)
    if trial_end_on is not None:
        first_unused = max(first_unused, trial_end_on)
    return max((period_last_day - first_unused).days + 1, 0)


# --------------------------------------------------------------------------------------------
# Upgrade vs downgrade (spec §9.4)


def yearly_amount_cents(amount_cents: int, interval: Interval | str) -> int:
    """Plan amount on a yearly basis (weekly x52, monthly x12, quarterly x4, semiannual x2)."""
    return amount_cents * YEARLY_FACTOR[Interval(interval)]


def plan_change(
    *,
    current_amount_cents: int,
    current_interval: Interval | str,
    new_amount_cents: int,
    new_interval: Interval | str,
) -> PlanChange:
    """Upgrade when the new plan costs at least as much per year, else downgrade (V101).

    Switching to the very same plan is no plan change at all; callers check that first.
    """
    current = yearly_amount_cents(current_amount_cents, current_interval)
    new = yearly_amount_cents(new_amount_cents, new_interval)
    return PlanChange.UPGRADE if new >= current else PlanChange.DOWNGRADE
