"""Properties of billing periods (spec §10, §11): periods tile time, proration adds up."""

import calendar
from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from billing.periods import (
    BillingCycle,
    BillingTime,
    FeeRule,
    Interval,
    date_diff_with_timezone,
    end_of_day,
    first_period,
    full_period,
    next_period,
    nth_period,
    period_start,
    start_of_day,
    subscription_fee_cents,
    termination_period,
)

ZONES = [ZoneInfo(key) for key in ("America/New_York", "Asia/Kolkata", "Pacific/Auckland", "UTC")]
MONTHS = {Interval.MONTHLY: 1, Interval.QUARTERLY: 3, Interval.SEMIANNUAL: 6, Interval.YEARLY: 12}
SECOND = timedelta(seconds=1)


@st.composite
def anchors(draw: st.DrawFn) -> date:
    """Anchor dates biased to the month ends and Feb 29, where clamping happens."""
    year = draw(st.integers(min_value=2000, max_value=2030))
    month = draw(st.integers(min_value=1, max_value=12))
    last = calendar.monthrange(year, month)[1]
    day = draw(st.one_of(st.sampled_from([1, 28, 29, 30, 31]), st.integers(1, 31)))
    if draw(st.booleans()) and year % 4 == 0:
        month, day, last = 2, 29, 29  # leap day anniversaries
    return date(year, month, min(day, last))


@st.composite
def cycles(draw: st.DrawFn, *, charges_monthly: bool | None = False) -> BillingCycle:
    """Any interval x billing time x timezone x anchor."""
    interval = draw(st.sampled_from(list(Interval)))
    bill_charges_monthly = draw(st.booleans()) if charges_monthly is None else charges_monthly
    return BillingCycle(
        interval=interval,
        billing_time=draw(st.sampled_from(list(BillingTime))),
        anchor=draw(anchors()),
        timezone=draw(st.sampled_from(ZONES)),
        bill_charges_monthly=bill_charges_monthly,
    )


def instant_in_day(day: date, tz: ZoneInfo, fraction: float) -> datetime:
    """An instant inside a local day (which may last 23, 24 or 25 hours)."""
    first, last = start_of_day(day, tz), end_of_day(day, tz)
    return first + timedelta(seconds=int((last - first).total_seconds() * fraction))


def ten_years_of_invoices(cycle: BillingCycle, started_at: datetime, pay_in_advance: bool):
    """Every periodic invoice of a subscription over ten years, the first one included."""
    period = first_period(cycle, started_at=started_at, pay_in_advance=pay_in_advance)
    end = started_at + timedelta(days=3653)
    periods = [period]
    while period.timestamp < end:
        period = next_period(cycle, period, started_at=started_at, pay_in_advance=pay_in_advance)
        periods.append(period)
    return periods


@settings(max_examples=300, deadline=None)
@given(billing_cycle=cycles(), n=st.integers(min_value=-130, max_value=130))
def test_consecutive_full_periods_are_adjacent_days(billing_cycle, n):
    current, following = nth_period(billing_cycle, n), nth_period(billing_cycle, n + 1)
    assert current.first <= current.last
    assert following.first == current.last + timedelta(days=1)


@settings(max_examples=300, deadline=None)
@given(billing_cycle=cycles(), n=st.integers(min_value=-130, max_value=130))
def test_anniversary_boundaries_never_drift_from_the_anchor_day(billing_cycle, n):
    start = period_start(billing_cycle, n)
    if billing_cycle.interval is Interval.WEEKLY:
        assert (start - period_start(billing_cycle, 0)).days == 7 * n
    elif billing_cycle.billing_time is BillingTime.ANNIVERSARY:
        month_length = calendar.monthrange(start.year, start.month)[1]
        assert start.day == min(billing_cycle.anchor.day, month_length)
    else:
        assert start.day == 1
        assert (start.month - 1) % MONTHS[billing_cycle.interval] == 0


@settings(max_examples=300, deadline=None)
@given(billing_cycle=cycles(), offset=st.integers(min_value=-4000, max_value=4000))
def test_every_day_lies_in_the_full_period_found_for_it(billing_cycle, offset):
    day = billing_cycle.anchor + timedelta(days=offset)
    assert day in full_period(billing_cycle, day)


@settings(max_examples=150, deadline=None)
@given(
    billing_cycle=cycles(),
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
    pay_in_advance=st.booleans(),
)
def test_fee_windows_tile_ten_years_without_gap_or_overlap(billing_cycle, fraction, pay_in_advance):
    started_at = instant_in_day(billing_cycle.anchor, billing_cycle.timezone, fraction)
    periods = ten_years_of_invoices(billing_cycle, started_at, pay_in_advance)
    assert periods[0].from_datetime == start_of_day(billing_cycle.anchor, billing_cycle.timezone)
    for previous, period in pairwise(periods):
        assert period.from_datetime == previous.to_datetime + SECOND


@settings(max_examples=150, deadline=None)
@given(
    billing_cycle=cycles(charges_monthly=None),
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
    pay_in_advance=st.booleans(),
)
def test_usage_windows_tile_ten_years_without_gap_or_overlap(
    billing_cycle, fraction, pay_in_advance
):
    started_at = instant_in_day(billing_cycle.anchor, billing_cycle.timezone, fraction)
    periods = ten_years_of_invoices(billing_cycle, started_at, pay_in_advance)
    if pay_in_advance:
        periods = periods[1:]  # the start invoice carries the fee only (empty usage window)
    assert periods[0].charges_from_datetime == started_at
    for previous, period in pairwise(periods):
        assert period.charges_from_datetime == previous.charges_to_datetime + SECOND


@settings(max_examples=100, deadline=None)
@given(
    billing_cycle=cycles(charges_monthly=True),
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
    pay_in_advance=st.booleans(),
)
def test_subscription_fee_windows_billing_charges_monthly_tile_ten_years(
    billing_cycle, fraction, pay_in_advance
):
    started_at = instant_in_day(billing_cycle.anchor, billing_cycle.timezone, fraction)
    invoices = ten_years_of_invoices(billing_cycle, started_at, pay_in_advance)
    periods = [period for period in invoices if period.bills_subscription_fee]
    for previous, period in pairwise(periods):
        assert period.from_datetime == previous.to_datetime + SECOND


@settings(max_examples=150, deadline=None)
@given(
    billing_cycle=cycles(),
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_each_invoice_window_counts_the_local_days_of_its_period(billing_cycle, fraction):
    started_at = instant_in_day(billing_cycle.anchor, billing_cycle.timezone, fraction)
    for period in ten_years_of_invoices(billing_cycle, started_at, pay_in_advance=False)[1:]:
        assert period.days == period.duration_days


@settings(max_examples=300, deadline=None)
@given(
    billing_cycle=cycles(),
    n=st.integers(min_value=0, max_value=100),
    split=st.floats(min_value=0, max_value=1),
    fraction=st.floats(min_value=0, max_value=1, exclude_max=True),
    amount_cents=st.integers(min_value=0, max_value=10**9),
)
def test_prorated_parts_of_a_fully_used_period_add_up_to_the_full_price(
    billing_cycle, n, split, fraction, amount_cents
):
    # Upgrade on any day of the period to a plan of the same price: the old plan bills the days
    # before the upgrade day, the new one the rest (spec §10.4, §11.1-§11.2).
    tz = billing_cycle.timezone
    period_span = nth_period(billing_cycle, n)
    upgrade_day = period_span.first + timedelta(days=int((period_span.days - 1) * split))
    upgraded_at = instant_in_day(upgrade_day, tz, fraction)
    old = termination_period(
        billing_cycle,
        started_at=start_of_day(period_span.first, tz) - timedelta(days=40),
        terminated_at=upgraded_at,
        pay_in_advance=False,
    )
    new = first_period(billing_cycle, started_at=upgraded_at, pay_in_advance=False)
    old_cents = subscription_fee_cents(
        rule=FeeRule.TERMINATED_BY_UPGRADE, amount_cents=amount_cents, period=old
    )
    new_cents = subscription_fee_cents(
        rule=FeeRule.FIRST_AFTER_UPGRADE, amount_cents=amount_cents, period=new
    )
    assert abs(old_cents + new_cents - amount_cents) <= 1


@settings(max_examples=300, deadline=None)
@given(
    first=st.dates(min_value=date(2000, 1, 1), max_value=date(2035, 12, 31)),
    length=st.integers(min_value=0, max_value=800),
    tz=st.sampled_from(ZONES),
)
def test_day_count_of_whole_local_days_is_their_number_across_dst(first, length, tz):
    last = first + timedelta(days=length)
    assert date_diff_with_timezone(start_of_day(first, tz), end_of_day(last, tz), tz) == length + 1
