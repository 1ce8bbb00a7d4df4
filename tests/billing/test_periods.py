"""Billing periods, boundaries and subscription fee proration (spec §9.3-§9.5, §10, §11, §28).

Vector ids (V55, V56, ...) refer to spec/vectors.md; amounts are cents.
"""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from billing.money import round_cents
from billing.periods import (
    BillingCycle,
    BillingTime,
    DateSpan,
    FeeRule,
    Interval,
    PlanChange,
    billing_days,
    billing_period,
    date_diff_with_timezone,
    duration_days,
    end_of_day,
    first_period,
    full_period,
    is_billing_day,
    next_billing_day,
    next_period,
    nth_period,
    period_containing,
    period_index,
    period_start,
    plan_change,
    prorate,
    remaining_days,
    single_day_price,
    start_of_day,
    subscription_fee_cents,
    subscription_fee_precise_cents,
    subscription_fee_rule,
    termination_period,
    trial_end,
    trial_end_period,
    yearly_amount_cents,
)

UTC_ZONE = ZoneInfo("UTC")
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")

M, Q, S, Y, W = (
    Interval.MONTHLY,
    Interval.QUARTERLY,
    Interval.SEMIANNUAL,
    Interval.YEARLY,
    Interval.WEEKLY,
)
CAL, ANN = BillingTime.CALENDAR, BillingTime.ANNIVERSARY


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def cycle(
    interval: Interval,
    billing_time: BillingTime,
    anchor: date,
    tz: ZoneInfo = UTC_ZONE,
    *,
    bill_charges_monthly: bool = False,
) -> BillingCycle:
    return BillingCycle(interval, billing_time, anchor, tz, bill_charges_monthly)


def span(first: date, last: date) -> DateSpan:
    return DateSpan(first, last)


# ---------------------------------------------------------------------------------------------
# §10.1 Period shapes


@pytest.mark.parametrize(
    ("interval", "day", "expected"),
    [
        pytest.param(W, date(2022, 6, 22), span(date(2022, 6, 20), date(2022, 6, 26)), id="weekly"),
        pytest.param(M, date(2024, 2, 10), span(date(2024, 2, 1), date(2024, 2, 29)), id="monthly"),
        pytest.param(Q, date(2022, 5, 3), span(date(2022, 4, 1), date(2022, 6, 30)), id="quarter"),
        pytest.param(S, date(2022, 8, 3), span(date(2022, 7, 1), date(2022, 12, 31)), id="half"),
        pytest.param(Y, date(2022, 3, 15), span(date(2022, 1, 1), date(2022, 12, 31)), id="year"),
    ],
)
def test_calendar_periods_follow_the_calendar(interval, day, expected):
    assert full_period(cycle(interval, CAL, date(2020, 5, 17)), day) == expected


@pytest.mark.parametrize(
    ("interval", "anchor", "day", "expected"),
    [
        pytest.param(
            W, date(2022, 6, 22), date(2022, 7, 4), span(date(2022, 6, 29), date(2022, 7, 5)),
            id="weekly-from-the-anchor-weekday",
        ),
        pytest.param(
            M, date(2022, 8, 10), date(2022, 9, 1), span(date(2022, 8, 10), date(2022, 9, 9)),
            id="V61-monthly-aug-10-to-sep-9",
        ),
        pytest.param(
            Q, date(2020, 2, 2), date(2020, 4, 30), span(date(2020, 2, 2), date(2020, 5, 1)),
            id="quarterly-three-months",
        ),
        pytest.param(
            S, date(2021, 3, 31), date(2021, 10, 1), span(date(2021, 9, 30), date(2022, 3, 30)),
            id="semiannual-clamped-then-restored",
        ),
        pytest.param(
            Y, date(2023, 7, 19), date(2023, 11, 19), span(date(2023, 7, 19), date(2024, 7, 18)),
            id="V108-yearly-from-the-anniversary",
        ),
    ],
)  # fmt: skip
def test_anniversary_periods_start_on_the_anchor(interval, anchor, day, expected):
    assert full_period(cycle(interval, ANN, anchor), day) == expected


def test_anniversary_on_the_31st_is_recomputed_from_the_anchor_each_month():
    # spec §10.1: A = Jan 31 (2023): Jan 31-Feb 27, Feb 28-Mar 30, Mar 31-Apr 29, Apr 30-May 30.
    monthly = cycle(M, ANN, date(2023, 1, 31))
    assert [nth_period(monthly, n) for n in range(4)] == [
        span(date(2023, 1, 31), date(2023, 2, 27)),
        span(date(2023, 2, 28), date(2023, 3, 30)),
        span(date(2023, 3, 31), date(2023, 4, 29)),
        span(date(2023, 4, 30), date(2023, 5, 30)),
    ]


def test_anniversary_on_the_31st_uses_feb_29_in_a_leap_year():
    assert period_start(cycle(M, ANN, date(2024, 1, 31)), 1) == date(2024, 2, 29)


def test_feb_29_yearly_anniversary_falls_on_feb_28_in_common_years():
    yearly = cycle(Y, ANN, date(2024, 2, 29))
    assert [period_start(yearly, n) for n in range(5)] == [
        date(2024, 2, 29),
        date(2025, 2, 28),
        date(2026, 2, 28),
        date(2027, 2, 28),
        date(2028, 2, 29),
    ]


def test_anniversary_on_the_first_behaves_like_calendar():
    day = date(2023, 5, 17)
    assert full_period(cycle(M, ANN, date(2022, 1, 1)), day) == full_period(
        cycle(M, CAL, date(2022, 1, 1)), day
    )


def test_period_index_counts_backwards_before_the_anchor():
    monthly = cycle(M, ANN, date(2023, 1, 31))
    assert period_index(monthly, date(2022, 12, 30)) == -2  # period -1 starts on Dec 31


# ---------------------------------------------------------------------------------------------
# §10.2 Period duration and daily price


@pytest.mark.parametrize(
    ("billing_cycle", "day", "days"),
    [
        pytest.param(cycle(Q, CAL, date(2022, 1, 1)), date(2022, 5, 2), 91, id="V65-q2-2022"),
        pytest.param(cycle(Q, CAL, date(2020, 1, 1)), date(2020, 5, 2), 91, id="V65-q2-2020"),
        pytest.param(cycle(Q, ANN, date(2020, 2, 2)), date(2020, 5, 1), 90, id="V65-ann-2020"),
        pytest.param(cycle(Q, ANN, date(2020, 2, 2)), date(2021, 5, 1), 89, id="V65-ann-2021"),
        pytest.param(cycle(M, CAL, date(2023, 1, 1)), date(2023, 2, 14), 28, id="V65-feb-2023"),
        pytest.param(cycle(M, CAL, date(2023, 1, 1)), date(2024, 2, 14), 29, id="V65-feb-2024"),
        pytest.param(cycle(Y, CAL, date(2022, 3, 15)), date(2022, 3, 15), 365, id="V59-year"),
        pytest.param(cycle(Y, ANN, date(2023, 6, 29)), date(2023, 9, 28), 366, id="V72-year"),
        pytest.param(cycle(W, CAL, date(2022, 6, 22)), date(2022, 6, 22), 7, id="V58-week"),
    ],
)
def test_duration_is_the_length_of_the_full_period(billing_cycle, day, days):
    assert duration_days(billing_cycle, day) == days


def test_single_day_price_divides_by_the_real_month_length():
    # V65: single_day_price(1000) in February 2023 = 1000/28.
    assert single_day_price(1000, 28) == Decimal(1000) / Decimal(28)


# ---------------------------------------------------------------------------------------------
# §10.4 Day counting


@pytest.mark.parametrize(
    ("from_dt", "to_dt", "tz", "days"),
    [
        pytest.param(utc(2022, 3, 15), utc(2022, 3, 31, 23, 59, 59), UTC_ZONE, 17, id="V102-utc"),
        pytest.param(utc(2022, 2, 28, 23), utc(2022, 3, 6, 22, 59, 59), PARIS, 6, id="V102-paris"),
        pytest.param(
            start_of_day(date(2024, 3, 1), NEW_YORK),
            end_of_day(date(2024, 3, 31), NEW_YORK),
            NEW_YORK,
            31,
            id="dst-spring-forward-month",
        ),
        pytest.param(
            start_of_day(date(2024, 11, 1), NEW_YORK),
            end_of_day(date(2024, 11, 30), NEW_YORK),
            NEW_YORK,
            30,
            id="dst-fall-back-month",
        ),
        pytest.param(utc(2022, 3, 15), utc(2022, 3, 20), UTC_ZONE, 6, id="local-midnight-end"),
        pytest.param(
            utc(2024, 3, 15, 12, 12), utc(2024, 3, 31, 23, 59, 59), UTC_ZONE, 17, id="V63-mid-day"
        ),
    ],
)
def test_day_count_is_local_days_touched_both_ends_included(from_dt, to_dt, tz, days):
    assert date_diff_with_timezone(from_dt, to_dt, tz) == days


def test_day_count_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="aware"):
        date_diff_with_timezone(datetime(2022, 3, 1), utc(2022, 3, 2), UTC_ZONE)


def test_local_days_become_utc_instants_of_their_midnights():
    assert start_of_day(date(2022, 3, 1), PARIS) == utc(2022, 2, 28, 23)
    assert end_of_day(date(2022, 3, 6), PARIS) == utc(2022, 3, 6, 22, 59, 59)


# ---------------------------------------------------------------------------------------------
# §10.3 Billing days


def test_calendar_monthly_is_billed_on_the_first():
    assert next_billing_day(cycle(M, CAL, date(2022, 3, 15)), date(2022, 3, 15)) == date(2022, 4, 1)


def test_anniversary_monthly_is_billed_on_the_anniversary_day():
    # V61: an Aug 10 subscription is billed every 10th.
    assert next_billing_day(cycle(M, ANN, date(2022, 8, 10)), date(2022, 8, 10)) == date(
        2022, 9, 10
    )


def test_yearly_plan_billing_charges_monthly_is_billed_every_month():
    yearly = cycle(Y, CAL, date(2022, 3, 15), bill_charges_monthly=True)
    assert is_billing_day(yearly, date(2022, 6, 1))


def test_yearly_plan_is_not_billed_monthly_without_the_option():
    assert not is_billing_day(cycle(Y, CAL, date(2022, 3, 15)), date(2022, 6, 1))


def test_pay_in_advance_is_also_billed_on_the_start_day():
    days = billing_days(
        cycle(M, CAL, date(2022, 3, 15)),
        started_at=utc(2022, 3, 15, 10),
        until=date(2022, 5, 1),
        pay_in_advance=True,
    )
    assert days == [date(2022, 3, 15), date(2022, 4, 1), date(2022, 5, 1)]


def test_pay_in_arrears_is_billed_only_after_each_period():
    days = billing_days(
        cycle(M, CAL, date(2022, 3, 15)),
        started_at=utc(2022, 3, 15, 10),
        until=date(2022, 5, 1),
        pay_in_advance=False,
    )
    assert days == [date(2022, 4, 1), date(2022, 5, 1)]


def test_pay_in_advance_with_trial_is_billed_when_the_trial_ends_not_at_start():
    # V63: no invoice at creation (03-05) nor on 03-10; one on 03-15 after the trial end.
    started_at = utc(2024, 3, 5, 12, 12)
    days = billing_days(
        cycle(M, CAL, date(2024, 3, 5)),
        started_at=started_at,
        until=date(2024, 3, 31),
        pay_in_advance=True,
        trial_end_at=trial_end(started_at, 10),
    )
    assert days == [date(2024, 3, 15)]


# ---------------------------------------------------------------------------------------------
# §10.3 Boundaries of periodic invoices


def test_first_pay_in_arrears_period_is_partial_for_calendar():
    period = first_period(
        cycle(M, CAL, date(2022, 3, 15)), started_at=utc(2022, 3, 15, 9), pay_in_advance=False
    )
    assert (period.from_datetime, period.to_datetime, period.timestamp) == (
        utc(2022, 3, 15),
        utc(2022, 3, 31, 23, 59, 59),
        utc(2022, 4, 1),
    )


def test_first_pay_in_arrears_usage_starts_at_the_exact_start_instant():
    period = first_period(
        cycle(M, CAL, date(2022, 3, 15)), started_at=utc(2022, 3, 15, 9), pay_in_advance=False
    )
    assert period.charges_from_datetime == utc(2022, 3, 15, 9)


def test_first_pay_in_advance_anniversary_period_is_a_full_period():
    # V67: sub 2023-06-29 12:12 -> first invoice for 2023-06-29..2023-07-28.
    period = first_period(
        cycle(M, ANN, date(2023, 6, 29)), started_at=utc(2023, 6, 29, 12, 12), pay_in_advance=True
    )
    assert (period.from_date, period.to_date, period.duration_days) == (
        date(2023, 6, 29),
        date(2023, 7, 28),
        30,
    )


def test_pay_in_advance_invoice_bills_the_coming_period_and_the_past_usage():
    # V67: invoice of 2023-07-29: fee 07-29..08-28, charges 06-29 12:12:00 .. 07-28 23:59:59.
    monthly = cycle(M, ANN, date(2023, 6, 29))
    started_at = utc(2023, 6, 29, 12, 12)
    first = first_period(monthly, started_at=started_at, pay_in_advance=True)
    period = next_period(monthly, first, started_at=started_at, pay_in_advance=True)
    assert (
        period.from_datetime,
        period.to_datetime,
        period.charges_from_datetime,
        period.charges_to_datetime,
    ) == (
        utc(2023, 7, 29),
        utc(2023, 8, 28, 23, 59, 59),
        utc(2023, 6, 29, 12, 12),
        utc(2023, 7, 28, 23, 59, 59),
    )


@pytest.mark.parametrize(
    ("billing_cycle", "billing_at", "pay_in_advance", "fee", "charges"),
    [
        pytest.param(
            cycle(Y, CAL, date(2020, 2, 2)), utc(2023, 1, 1), False,
            span(date(2022, 1, 1), date(2022, 12, 31)), span(date(2022, 1, 1), date(2022, 12, 31)),
            id="V104-calendar-arrears-whole-year",
        ),
        pytest.param(
            cycle(Y, CAL, date(2020, 2, 2), bill_charges_monthly=True), utc(2023, 1, 1), False,
            span(date(2022, 1, 1), date(2022, 12, 31)), span(date(2022, 12, 1), date(2022, 12, 31)),
            id="V104-calendar-arrears-charges-monthly",
        ),
        pytest.param(
            cycle(Y, CAL, date(2020, 2, 2)), utc(2023, 1, 1), True,
            span(date(2023, 1, 1), date(2023, 12, 31)), span(date(2022, 1, 1), date(2022, 12, 31)),
            id="V104-calendar-advance-fee-2023-charges-2022",
        ),
        pytest.param(
            cycle(Y, ANN, date(2020, 2, 2)), utc(2022, 2, 2), True,
            span(date(2022, 2, 2), date(2023, 2, 1)), span(date(2021, 2, 2), date(2022, 2, 1)),
            id="V104-anniversary-advance",
        ),
    ],
)  # fmt: skip
def test_yearly_invoice_windows(billing_cycle, billing_at, pay_in_advance, fee, charges):
    period = billing_period(
        billing_cycle,
        billing_at=billing_at,
        started_at=utc(2020, 2, 2),
        pay_in_advance=pay_in_advance,
    )
    assert (period.from_date, period.to_date) == (fee.first, fee.last)
    assert (period.charges_from_date, period.charges_to_date) == (charges.first, charges.last)


def test_charges_monthly_window_lasts_the_month():
    period = billing_period(
        cycle(Y, CAL, date(2021, 6, 1), bill_charges_monthly=True),
        billing_at=utc(2023, 1, 1),
        started_at=utc(2021, 6, 1),
        pay_in_advance=False,
    )
    assert period.charges_duration_days == 31


def test_charges_monthly_fee_comes_only_on_the_first_month_in_advance():
    yearly = cycle(Y, ANN, date(2022, 3, 10), bill_charges_monthly=True)
    fees = [
        billing_period(
            yearly,
            billing_at=utc(2023, month, 10),
            started_at=utc(2022, 3, 10),
            pay_in_advance=True,
        ).bills_subscription_fee
        for month in (2, 3, 4)
    ]
    assert fees == [False, True, False]


def test_charges_monthly_fee_comes_only_after_the_period_end_in_arrears():
    half = cycle(S, CAL, date(2022, 1, 1), bill_charges_monthly=True)
    fees = [
        billing_period(
            half, billing_at=utc(2022, month, 1), started_at=utc(2022, 1, 1), pay_in_advance=False
        ).bills_subscription_fee
        for month in (6, 7, 8)
    ]
    assert fees == [False, True, False]


def test_windows_are_customer_local_days_in_utc():
    period = period_containing(
        cycle(M, CAL, date(2022, 1, 1), PARIS), date(2022, 3, 10), started_at=utc(2022, 1, 1)
    )
    assert (period.from_datetime, period.to_datetime) == (
        utc(2022, 2, 28, 23),
        utc(2022, 3, 31, 21, 59, 59),  # Paris switched to summer time on Mar 27
    )


def test_period_containing_a_day_is_billed_the_day_after_it_ends():
    period = period_containing(
        cycle(M, ANN, date(2022, 8, 10)), date(2022, 9, 1), started_at=utc(2022, 8, 10)
    )
    assert period.timestamp == utc(2022, 9, 10)


def test_period_containing_the_termination_ends_at_it():
    period = period_containing(
        cycle(M, CAL, date(2022, 1, 1)),
        date(2022, 3, 10),
        started_at=utc(2022, 1, 1),
        terminated_at=utc(2022, 3, 20, 8),
    )
    assert (period.to_datetime, period.charges_to_datetime, period.timestamp) == (
        utc(2022, 3, 20, 8),
        utc(2022, 3, 20, 8),
        utc(2022, 3, 20, 8),
    )


# ---------------------------------------------------------------------------------------------
# §10.5 Timezone change


def test_timezone_change_starts_usage_one_second_after_the_previous_window():
    started_at = utc(2022, 1, 1)
    before = billing_period(
        cycle(M, CAL, date(2022, 1, 1)),
        billing_at=utc(2022, 3, 1),
        started_at=started_at,
        pay_in_advance=False,
    )
    after = billing_period(
        cycle(M, CAL, date(2022, 1, 1), PARIS),
        billing_at=utc(2022, 3, 31, 22),
        started_at=started_at,
        pay_in_advance=False,
        previous=before,
    )
    assert after.charges_from_datetime == utc(2022, 3, 1)  # not Feb 28 23:00 (overlap)


def test_timezone_change_ignores_a_previous_window_too_far_away():
    started_at = utc(2022, 1, 1)
    old = billing_period(
        cycle(M, CAL, date(2022, 1, 1)),
        billing_at=utc(2022, 2, 1),
        started_at=started_at,
        pay_in_advance=False,
    )
    period = billing_period(
        cycle(M, CAL, date(2022, 1, 1), PARIS),
        billing_at=utc(2022, 3, 31, 22),
        started_at=started_at,
        pay_in_advance=False,
        previous=old,
    )
    assert period.charges_from_datetime == utc(2022, 2, 28, 23)


def test_same_timezone_keeps_the_computed_usage_window():
    monthly = cycle(M, CAL, date(2022, 1, 1), PARIS)
    started_at = utc(2021, 12, 31, 23)
    first = billing_period(
        monthly, billing_at=utc(2022, 2, 28, 23), started_at=started_at, pay_in_advance=False
    )
    period = next_period(monthly, first, started_at=started_at, pay_in_advance=False)
    assert period.charges_from_datetime == first.charges_to_datetime + timedelta(seconds=1)


# ---------------------------------------------------------------------------------------------
# §11 Subscription fee: full and first periods


def fee(rule, amount, period, trial_end_at=None):
    return subscription_fee_cents(
        rule=rule, amount_cents=amount, period=period, trial_end_at=trial_end_at
    )


def test_full_period_bills_the_plan_amount():
    # V55: started 2022-01-01, billed for 2022-03-01..2022-03-31 (already billed before).
    monthly = cycle(M, CAL, date(2022, 1, 1))
    period = billing_period(
        monthly, billing_at=utc(2022, 4, 1), started_at=utc(2022, 1, 1), pay_in_advance=False
    )
    assert fee(FeeRule.FULL, 100, period) == 100


def test_full_period_with_a_trial_ending_inside_bills_from_the_trial_end():
    # Lago fees/subscription_service_spec "full period, trial 3 days": 28/31 x 100 = 90.32.
    monthly = cycle(M, CAL, date(2022, 3, 1))
    started_at = utc(2022, 3, 1)
    period = billing_period(
        monthly, billing_at=utc(2022, 4, 1), started_at=started_at, pay_in_advance=False
    )
    assert fee(FeeRule.FULL, 100, period, trial_end(started_at, 3)) == 90


@pytest.mark.parametrize(
    ("billing_cycle", "started_at", "pay_in_advance", "amount", "expected"),
    [
        pytest.param(cycle(M, CAL, date(2022, 3, 15)), utc(2022, 3, 15), False, 100, 55,
                     id="V56-calendar-monthly-first-partial-arrears"),
        pytest.param(cycle(M, CAL, date(2022, 3, 15)), utc(2022, 3, 15), True, 100, 55,
                     id="V56-calendar-monthly-first-partial-advance"),
        pytest.param(cycle(W, CAL, date(2022, 6, 20)), utc(2022, 6, 20, 0, 1), False, 100, 100,
                     id="V58-weekly-started-monday-full-week"),
        pytest.param(cycle(W, CAL, date(2022, 6, 22)), utc(2022, 6, 22), False, 100, 71,
                     id="V58-weekly-started-wednesday"),
        pytest.param(cycle(Y, CAL, date(2022, 3, 15)), utc(2022, 3, 15), False, 100, 80,
                     id="V59-yearly-calendar-arrears"),
        pytest.param(cycle(Y, CAL, date(2022, 3, 15)), utc(2022, 3, 15), True, 100, 80,
                     id="V59-yearly-calendar-advance"),
        pytest.param(cycle(M, CAL, date(2022, 8, 10)), utc(2022, 8, 10), True, 5000, 3548,
                     id="V61-doc-50-dollars-aug-10"),
        pytest.param(cycle(M, CAL, date(2022, 4, 15)), utc(2022, 4, 15), True, 1000, 533,
                     id="V62-doc-10-euros-april-15"),
        pytest.param(cycle(M, CAL, date(2024, 2, 28)), utc(2024, 2, 28, 10), False, 10000, 690,
                     id="V90-feb-28-29-of-29-days"),
    ],
)  # fmt: skip
def test_first_period_bills_the_days_from_the_start(
    billing_cycle, started_at, pay_in_advance, amount, expected
):
    period = first_period(billing_cycle, started_at=started_at, pay_in_advance=pay_in_advance)
    assert fee(FeeRule.FIRST_PERIOD, amount, period) == expected


@pytest.mark.parametrize(
    ("started_at", "trial_days", "expected"),
    [
        pytest.param(utc(2022, 6, 20, 0, 1), 3, 57, id="V58-monday-trial-3"),
        pytest.param(utc(2022, 6, 20, 0, 1), 10, 0, id="V58-monday-trial-10"),
        pytest.param(utc(2022, 6, 22), 3, 29, id="V58-wednesday-trial-3"),
        pytest.param(utc(2022, 6, 22), 10, 0, id="V58-wednesday-trial-10"),
    ],
)
def test_first_weekly_period_excludes_the_trial_days(started_at, trial_days, expected):
    weekly = cycle(W, CAL, started_at.date())
    period = first_period(weekly, started_at=started_at, pay_in_advance=False)
    assert fee(FeeRule.FIRST_PERIOD, 100, period, trial_end(started_at, trial_days)) == expected


def test_pay_in_advance_trial_is_billed_at_trial_end_for_the_remaining_days():
    # V63: 5,000,000 monthly in advance, trial 10 days from 2024-03-05 12:12, billed 03-15 13:02:
    # (31 - 4 - 10)/31 x 5,000,000 = 17 days -> 2,741,935.
    started_at = utc(2024, 3, 5, 12, 12)
    period = trial_end_period(
        cycle(M, CAL, date(2024, 3, 5)), started_at=started_at, billing_at=utc(2024, 3, 15, 13, 2)
    )
    assert fee(FeeRule.FIRST_PERIOD, 5_000_000, period, trial_end(started_at, 10)) == 2_741_935


def test_trial_end_invoice_carries_no_usage():
    started_at = utc(2024, 3, 5, 12, 12)
    period = trial_end_period(
        cycle(M, CAL, date(2024, 3, 5)), started_at=started_at, billing_at=utc(2024, 3, 15, 13, 2)
    )
    assert not period.bills_charges


def test_first_anniversary_period_in_advance_is_full():
    # V67: monthly 1000 in advance, anniversary, sub 2023-06-29 12:12 -> first invoice 1000.
    monthly = cycle(M, ANN, date(2023, 6, 29))
    started_at = utc(2023, 6, 29, 12, 12)
    rule = subscription_fee_rule(pay_in_advance=True, billing_time=ANN)
    period = first_period(monthly, started_at=started_at, pay_in_advance=True)
    assert fee(rule, 1000, period) == 1000


def test_anniversary_invoices_bill_the_full_plan_amount():
    # V75: monthly anniversary subs since 2022-12-19, invoice of 2023-10-19 = full fees.
    monthly = cycle(M, ANN, date(2022, 12, 19))
    period = billing_period(
        monthly, billing_at=utc(2023, 10, 19), started_at=utc(2022, 12, 19), pay_in_advance=True
    )
    assert (period.from_date, period.to_date) == (date(2023, 10, 19), date(2023, 11, 18))
    assert [fee(FeeRule.FULL, amount, period) for amount in (17_900, 39_900)] == [17_900, 39_900]


def test_fee_is_rounded_half_away_from_zero():
    # 15 days of a 30-day month at 1 cent = 0.5 -> 1 (banker's rounding would give 0).
    monthly = cycle(M, CAL, date(2022, 4, 16))
    period = first_period(monthly, started_at=utc(2022, 4, 16), pay_in_advance=False)
    assert fee(FeeRule.FIRST_PERIOD, 1, period) == 1


def test_precise_fee_keeps_the_decimals():
    monthly = cycle(M, CAL, date(2022, 3, 15))
    period = first_period(monthly, started_at=utc(2022, 3, 15), pay_in_advance=False)
    assert subscription_fee_precise_cents(
        rule=FeeRule.FIRST_PERIOD, amount_cents=100, period=period
    ) == Decimal(1700) / Decimal(31)


# ---------------------------------------------------------------------------------------------
# §11.1 Terminated in arrears (V68, V70, V102) and §11.2 first period after an upgrade


LONG_AGO = utc(2022, 1, 1)


def terminated(billing_cycle, terminated_at, started_at=LONG_AGO):
    return termination_period(
        billing_cycle, started_at=started_at, terminated_at=terminated_at, pay_in_advance=False
    )


@pytest.mark.parametrize(
    ("billing_cycle", "terminated_at", "rule", "trial_end_at", "expected"),
    [
        pytest.param(cycle(M, CAL, date(2022, 1, 1)), utc(2022, 3, 20, 10), FeeRule.TERMINATED,
                     None, 65, id="V68-monthly-terminated-20-days"),
        pytest.param(cycle(M, CAL, date(2022, 1, 1), PARIS), utc(2022, 3, 20, 10),
                     FeeRule.TERMINATED, None, 65, id="V68-V102-paris-terminated-20-days"),
        pytest.param(cycle(W, CAL, date(2022, 1, 1)), utc(2022, 3, 16, 10), FeeRule.TERMINATED,
                     None, 43, id="V68-weekly-terminated-wednesday"),
        pytest.param(cycle(M, CAL, date(2022, 1, 1)), utc(2022, 3, 20, 10),
                     FeeRule.TERMINATED_BY_UPGRADE, None, 61, id="V68-upgrade-19-days"),
        pytest.param(cycle(M, CAL, date(2022, 1, 1)), utc(2022, 3, 20, 10),
                     FeeRule.TERMINATED_BY_UPGRADE, utc(2022, 3, 18), 6,
                     id="V68-upgrade-trial-3-two-days"),
        pytest.param(cycle(M, CAL, date(2022, 1, 1)), utc(2022, 3, 20, 10),
                     FeeRule.TERMINATED_BY_UPGRADE, utc(2022, 4, 29), 0,
                     id="V68-upgrade-trial-45-nothing"),
    ],
)  # fmt: skip
def test_terminated_in_arrears_bills_the_used_days(
    billing_cycle, terminated_at, rule, trial_end_at, expected
):
    period = terminated(billing_cycle, terminated_at)
    assert fee(rule, 100, period, trial_end_at) == expected


def test_termination_window_starts_at_the_period_start():
    # V68/V102: boundaries 03-01..03-20 (Europe/Paris: from 2022-02-28T23:00Z).
    period = terminated(cycle(M, CAL, date(2022, 1, 1), PARIS), utc(2022, 3, 20, 10))
    assert (period.from_datetime, period.to_datetime) == (
        utc(2022, 2, 28, 23),
        utc(2022, 3, 20, 10),
    )


def test_upgrade_in_arrears_splits_the_month_between_the_two_plans():
    # V70: A 100 EUR arrears from Jan 1, upgraded to B 200 EUR on Jan 15:
    # A bills 14/31 x 100 = 45.16 EUR; B bills 17/31 x 200 = 109.68 EUR at period end.
    monthly = cycle(M, CAL, date(2022, 1, 1))
    upgraded_at = utc(2022, 1, 15, 9)
    old = terminated(monthly, upgraded_at)
    new = first_period(monthly, started_at=upgraded_at, pay_in_advance=False)
    assert fee(FeeRule.TERMINATED_BY_UPGRADE, 10_000, old) == 4516
    assert fee(FeeRule.FIRST_AFTER_UPGRADE, 20_000, new) == 10_968


def test_first_period_after_an_upgrade_bills_from_the_upgrade_day():
    # V69: new plan 100 started 2022-03-15 by an upgrade: 17 x 100/31 = 54.84 -> 55.
    period = first_period(
        cycle(M, CAL, date(2022, 1, 1)), started_at=utc(2022, 3, 15), pay_in_advance=False
    )
    assert fee(FeeRule.FIRST_AFTER_UPGRADE, 100, period) == 55


def test_upgrade_to_yearly_in_advance_bills_until_the_kept_anniversary():
    # V72: yearly 12,000 in advance keeps the anniversary 06-29; billed from 2023-09-28 05:00:
    # 275 days x 12,000/366 = 9016.39 -> 9016.
    yearly = cycle(Y, ANN, date(2023, 6, 29))
    period = first_period(yearly, started_at=utc(2023, 9, 28, 5), pay_in_advance=True)
    assert (period.days, period.duration_days) == (275, 366)
    assert fee(FeeRule.FIRST_AFTER_UPGRADE, 12_000, period) == 9016


def test_upgrade_closing_window_runs_from_period_start_to_the_upgrade_instant():
    # V72: current period 08-29..09-28; closing charges window 08-29 00:00 .. 09-28 05:00.
    period = termination_period(
        cycle(M, ANN, date(2023, 6, 29)),
        started_at=utc(2023, 6, 29, 12, 12),
        terminated_at=utc(2023, 9, 28, 5),
        pay_in_advance=True,
    )
    assert (period.charges_from_datetime, period.charges_to_datetime, period.duration_days) == (
        utc(2023, 8, 29),
        utc(2023, 9, 28, 5),
        31,
    )


def test_terminated_pay_in_advance_bills_no_fee():
    period = termination_period(
        cycle(M, ANN, date(2023, 6, 29)),
        started_at=utc(2023, 6, 29, 12, 12),
        terminated_at=utc(2023, 9, 28, 5),
        pay_in_advance=True,
    )
    assert not period.bills_subscription_fee


def test_downgrade_first_period_is_prorated_up_to_the_original_anniversary():
    # V108: yearly 118,800 in advance activated 2023-11-19 with anniversary 07-19:
    # 2023-11-19..2024-07-18, 243 days x 118,800/366 = 78,874.75 -> 78,875.
    yearly = BillingCycle.for_subscription(
        interval="yearly",
        billing_time="anniversary",
        subscription_at=utc(2023, 7, 19, 12, 12),
        timezone=UTC_ZONE,
    )
    period = first_period(yearly, started_at=utc(2023, 11, 19, 0, 5), pay_in_advance=True)
    rule = subscription_fee_rule(
        pay_in_advance=True, billing_time=ANN, created_by=PlanChange.DOWNGRADE
    )
    assert (period.from_date, period.to_date, period.days) == (
        date(2023, 11, 19),
        date(2024, 7, 18),
        243,
    )
    assert fee(rule, 118_800, period) == 78_875


def test_spending_minimum_is_prorated_on_the_terminated_usage_window():
    # V78: min 10,000, terminated 2023-02-25 in a 28-day February, usage 7,000:
    # 10,000 x 25/28 - 7,000 = 1,928.57 -> 1,929.
    period = terminated(cycle(M, CAL, date(2023, 1, 1)), utc(2023, 2, 25, 12))
    prorated_minimum = prorate(10_000, period.charges_days, period.charges_duration_days)
    assert round_cents(prorated_minimum - 7_000) == 1929


def test_commitment_is_prorated_on_a_partial_first_period():
    # V90: minimum commitment 1,000,000 for Feb 28-29 of 29 days -> 68,966.
    period = first_period(
        cycle(M, CAL, date(2024, 2, 28)), started_at=utc(2024, 2, 28, 10), pay_in_advance=False
    )
    assert round_cents(prorate(1_000_000, period.days, period.duration_days)) == 68_966


# ---------------------------------------------------------------------------------------------
# §11 rule order


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"terminated": True}, FeeRule.TERMINATED, id="terminated-arrears"),
        pytest.param({"terminated": True, "ended_by": PlanChange.UPGRADE},
                     FeeRule.TERMINATED_BY_UPGRADE, id="terminated-by-upgrade"),
        pytest.param({"terminated": True, "ended_by": PlanChange.DOWNGRADE,
                      "has_earlier_fee": True},
                     FeeRule.FULL, id="downgraded-pays-its-last-full-period"),
        pytest.param({"created_by": PlanChange.UPGRADE}, FeeRule.FIRST_AFTER_UPGRADE,
                     id="first-after-upgrade"),
        pytest.param({"created_by": PlanChange.UPGRADE, "first_invoice": False,
                      "has_earlier_fee": True}, FeeRule.FULL, id="later-after-upgrade"),
        pytest.param({"has_earlier_fee": True}, FeeRule.FULL, id="already-billed-once"),
        pytest.param({"started_in_past": True, "started_before_previous_period": True},
                     FeeRule.FULL, id="started-long-ago"),
        pytest.param({"started_in_past": True}, FeeRule.FIRST_PERIOD, id="started-last-period"),
        pytest.param({}, FeeRule.FIRST_PERIOD, id="first-period"),
    ],
)  # fmt: skip
def test_fee_rule_in_arrears_calendar(kwargs, expected):
    assert subscription_fee_rule(pay_in_advance=False, billing_time=CAL, **kwargs) == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"billing_time": ANN}, FeeRule.FULL, id="anniversary-first-period-is-full"),
        pytest.param({"billing_time": ANN, "created_by": PlanChange.DOWNGRADE},
                     FeeRule.FIRST_PERIOD, id="V108-downgrade-is-prorated"),
        pytest.param({"billing_time": CAL, "started_in_past": True}, FeeRule.FULL,
                     id="started-in-past-already-paid"),
        pytest.param({"billing_time": CAL}, FeeRule.FIRST_PERIOD, id="calendar-first-partial"),
        pytest.param({"billing_time": CAL, "terminated": True}, FeeRule.FIRST_PERIOD,
                     id="terminated-in-advance-is-not-the-terminated-rule"),
    ],
)  # fmt: skip
def test_fee_rule_in_advance(kwargs, expected):
    assert subscription_fee_rule(pay_in_advance=True, **kwargs) == expected


# ---------------------------------------------------------------------------------------------
# Trials (§11, §30.3)


def test_trial_counts_from_the_first_start_of_the_external_subscription():
    # spec §11/§30.3 (V64): started Mar 5, upgraded Mar 10 to a 13-day trial -> ends Mar 18.
    assert trial_end(utc(2024, 3, 5), 13) == utc(2024, 3, 18)


def test_no_trial_has_no_end():
    assert trial_end(utc(2024, 3, 5), 0) is None


def test_fractional_trial_days_are_exact():
    assert trial_end(utc(2024, 3, 5), Decimal("0.5")) == utc(2024, 3, 5, 12)


def test_upgraded_plan_trial_still_running_discounts_the_new_subscription():
    # Trial from the first start (Mar 5, 13 days -> Mar 18) applies to the plan started Mar 10.
    initial_start = utc(2024, 3, 5)
    period = first_period(
        cycle(M, CAL, date(2024, 3, 5)), started_at=utc(2024, 3, 10), pay_in_advance=False
    )
    amount = fee(FeeRule.FIRST_AFTER_UPGRADE, 3100, period, trial_end(initial_start, 13))
    assert amount == 1400  # Mar 18..31 = 14 days of 31


# ---------------------------------------------------------------------------------------------
# §18.6 Unused days credited on termination of a pay-in-advance plan


@pytest.mark.parametrize(
    ("last_day", "terminated_on", "upgrade", "trial_end_on", "days"),
    [
        pytest.param(date(2023, 9, 28), date(2023, 9, 28), True, None, 1,
                     id="V72-upgrade-day-credited"),
        pytest.param(date(2023, 2, 28), date(2023, 2, 8), False, None, 20,
                     id="V73-terminated-first-day"),
        pytest.param(date(2023, 2, 28), date(2023, 2, 7), False, None, 21,
                     id="V73-utc-minus-still-feb-7"),
        pytest.param(date(2023, 2, 28), date(2023, 2, 8), False, date(2023, 2, 20), 9,
                     id="trial-days-never-billed"),
        pytest.param(date(2023, 2, 28), date(2023, 2, 28), False, None, 0,
                     id="terminated-on-last-day"),
    ],
)  # fmt: skip
def test_remaining_days_of_a_period_paid_in_advance(
    last_day, terminated_on, upgrade, trial_end_on, days
):
    assert (
        remaining_days(
            period_last_day=last_day,
            terminated_on=terminated_on,
            upgrade=upgrade,
            trial_end_on=trial_end_on,
        )
        == days
    )


def test_upgrade_credit_note_returns_one_day_of_a_31_day_period():
    # V72: 1000/31 = 32.26 -> 32.
    assert round_cents(prorate(1000, 1, 31)) == 32


def test_termination_credit_note_returns_the_unused_days():
    # V73: 5000 x 20/28 = 3571.43 -> 3571.
    assert round_cents(prorate(5000, 20, 28)) == 3571


def test_first_day_in_advance_in_february_bills_21_days():
    # V73: sub 2023-02-08, 5000 in advance -> 21 x 5000/28 = 3750.
    period = first_period(
        cycle(M, CAL, date(2023, 2, 8)), started_at=utc(2023, 2, 8, 10), pay_in_advance=True
    )
    assert fee(FeeRule.FIRST_PERIOD, 5000, period) == 3750


def test_customer_behind_utc_still_on_the_previous_day_bills_22_days():
    # V73: customer in a UTC- timezone, still Feb 7 locally -> 22 days = 3929 (4715 with tax).
    started_at = utc(2023, 2, 8, 2)
    monthly = BillingCycle.for_subscription(
        interval=M, billing_time=CAL, subscription_at=started_at, timezone=NEW_YORK
    )
    period = first_period(monthly, started_at=started_at, pay_in_advance=True)
    assert (period.from_date, period.days) == (date(2023, 2, 7), 22)
    assert fee(FeeRule.FIRST_PERIOD, 5000, period) == 3929


# ---------------------------------------------------------------------------------------------
# §9.4 Upgrade vs downgrade (V101)


@pytest.mark.parametrize(
    ("new_amount", "new_interval", "expected"),
    [
        pytest.param(12_000, Y, PlanChange.UPGRADE, id="V101-yearly-equal-is-upgrade"),
        pytest.param(2_900, Q, PlanChange.DOWNGRADE, id="V101-quarterly-cheaper-is-downgrade"),
        pytest.param(250, W, PlanChange.UPGRADE, id="V101-weekly-dearer-is-upgrade"),
        pytest.param(118_800, Y, PlanChange.DOWNGRADE, id="V108-yearly-118800-is-downgrade"),
    ],
)
def test_plan_change_compares_yearly_amounts(new_amount, new_interval, expected):
    current = 12_900 if new_amount == 118_800 else 1_000
    assert (
        plan_change(
            current_amount_cents=current,
            current_interval=M,
            new_amount_cents=new_amount,
            new_interval=new_interval,
        )
        == expected
    )


def test_yearly_amount_of_a_semiannual_plan_is_twice_its_amount():
    assert yearly_amount_cents(5_000, "semiannual") == 10_000
