"""Recurring top-up arithmetic (wallets/recurring_math.py, spec §17.6, V88): pure, no database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from wallets import recurring_math as rm

D = Decimal


@pytest.mark.parametrize(
    ("interval", "anchor", "day", "expected"),
    [
        ("weekly", date(2026, 3, 2), date(2026, 3, 9), True),  # Monday -> next Monday
        ("weekly", date(2026, 3, 2), date(2026, 3, 10), False),
        ("weekly", date(2026, 3, 2), date(2026, 2, 23), False),  # before the anchor
        ("monthly", date(2026, 1, 15), date(2026, 2, 15), True),
        ("monthly", date(2026, 1, 15), date(2026, 2, 14), False),
        ("monthly", date(2026, 1, 31), date(2026, 2, 28), True),  # month-end clamping
        ("monthly", date(2026, 1, 31), date(2026, 3, 31), True),  # from the anchor, not Feb 28
        ("monthly", date(2026, 1, 31), date(2026, 3, 28), False),
        ("monthly", date(2026, 1, 30), date(2026, 4, 30), True),
        ("monthly", date(2024, 1, 31), date(2024, 2, 29), True),  # leap year
        ("quarterly", date(2026, 1, 15), date(2026, 4, 15), True),
        ("quarterly", date(2026, 1, 15), date(2026, 3, 15), False),
        ("quarterly", date(2025, 11, 30), date(2026, 2, 28), True),
        ("semiannual", date(2026, 1, 10), date(2026, 7, 10), True),
        ("semiannual", date(2026, 1, 10), date(2026, 4, 10), False),
        ("yearly", date(2025, 6, 1), date(2026, 6, 1), True),
        ("yearly", date(2025, 6, 1), date(2026, 7, 1), False),
        ("yearly", date(2024, 2, 29), date(2025, 2, 28), True),  # no Feb 29 in 2025
        ("yearly", date(2024, 2, 29), date(2028, 2, 29), True),
        ("yearly", date(2024, 2, 29), date(2028, 2, 28), False),
    ],
)
def test_is_occurrence(interval, anchor, day, expected):
    assert rm.is_occurrence(interval, anchor, day) is expected


@pytest.mark.parametrize(
    ("interval", "anchor", "after", "expected"),
    [
        ("weekly", date(2026, 3, 2), date(2026, 3, 2), date(2026, 3, 9)),
        ("weekly", date(2026, 3, 2), date(2026, 3, 5), date(2026, 3, 9)),
        ("monthly", date(2026, 1, 31), date(2026, 1, 31), date(2026, 2, 28)),
        ("monthly", date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 31)),
        ("quarterly", date(2026, 1, 15), date(2026, 2, 1), date(2026, 4, 15)),
        ("semiannual", date(2026, 1, 15), date(2026, 1, 15), date(2026, 7, 15)),
        ("yearly", date(2026, 5, 20), date(2026, 5, 20), date(2027, 5, 20)),
        ("monthly", date(2026, 6, 10), date(2026, 5, 1), date(2026, 6, 10)),  # future anchor
    ],
)
def test_next_occurrence(interval, anchor, after, expected):
    assert rm.next_occurrence(interval, anchor, after) == expected


def test_started_on_the_creation_day_tops_up_first_on_the_next_occurrence():
    created = date(2026, 3, 15)
    assert rm.due_occurrence("monthly", anchor=created, today=created, created_on=created) is None
    nxt = date(2026, 4, 15)
    assert rm.due_occurrence("monthly", anchor=created, today=nxt, created_on=created) == nxt
    assert rm.first_top_up_on("monthly", anchor=created, created_on=created) == nxt


def test_started_later_than_the_creation_day_tops_up_on_the_start_day():
    created, start = date(2026, 3, 15), date(2026, 3, 20)
    assert rm.first_top_up_on("weekly", anchor=start, created_on=created) == start
    assert rm.due_occurrence("weekly", anchor=start, today=start, created_on=created) == start
    before = date(2026, 3, 13)
    assert rm.due_occurrence("weekly", anchor=start, today=before, created_on=created) is None


def test_started_before_the_creation_day_skips_the_creation_day():
    anchor, created = date(2026, 1, 15), date(2026, 3, 15)  # creation falls on an occurrence
    assert rm.due_occurrence("monthly", anchor=anchor, today=created, created_on=created) is None
    assert rm.first_top_up_on("monthly", anchor=anchor, created_on=created) == date(2026, 4, 15)


# --------------------------------------------------------------------------------------------
# Fixed threshold multiplier (V88)


@pytest.mark.parametrize(
    ("case", "ongoing", "pending", "granted", "max_credits", "expected"),
    [
        ("V88-negative-ongoing", "-15", "0", "0", None, "40"),  # gap 35 -> 10 x (3 + 1)
        ("V88-small-gap", "15", "0", "0", None, "10"),  # gap 5 < 10
        ("gap-equal-paid", "10", "0", "0", None, "20"),  # gap 10 >= 10 -> 10 x 2
        ("granted-reduces-gap", "-15", "0", "10", None, "30"),  # gap 25 -> 10 x 3
        ("pending-reduces-gap", "-15", "20", "0", None, "20"),  # gap 15 -> 10 x 2
        ("capped-by-max", "-15", "0", "0", "25", "25"),
        ("max-above-paid", "15", "0", "0", "25", "10"),
    ],
)
def test_fixed_threshold_paid_credits(case, ongoing, pending, granted, max_credits, expected):
    paid = rm.fixed_threshold_paid_credits(
        paid_credits=D("10"),
        granted_credits=D(granted),
        threshold=D("20"),
        ongoing=D(ongoing),
        pending=D(pending),
        max_credits=None if max_credits is None else D(max_credits),
    )
    assert paid == D(expected)


def test_fixed_threshold_without_paid_credits_is_never_multiplied():
    paid = rm.fixed_threshold_paid_credits(
        paid_credits=D(0), granted_credits=D(5), threshold=D(20), ongoing=D(-50), pending=D(0)
    )
    assert paid == 0


@pytest.mark.parametrize(
    ("ongoing", "pending", "expected"),
    [("20", "0", True), ("20.00001", "0", False), ("5", "10", True), ("5", "15.5", False)],
)
def test_threshold_reached(ongoing, pending, expected):
    assert rm.threshold_reached(threshold=D(20), ongoing=D(ongoing), pending=D(pending)) is expected


# --------------------------------------------------------------------------------------------
# Target method


@pytest.mark.parametrize(
    ("ongoing", "min_credits", "grants", "expected"),
    [
        ("30", None, False, ("70", "0")),  # paid = target - ongoing
        ("-20", None, False, ("120", "0")),
        ("100", None, False, ("0", "0")),  # already at the target
        ("150", None, False, ("0", "0")),  # above: nothing
        ("95", "10", False, ("10", "0")),  # raised to the paid minimum
        ("50", "10", False, ("50", "0")),
        ("95", "10", True, ("0", "5")),  # granted instead, no minimum
        ("33.333333", None, False, ("66.66667", "0")),  # 5-decimal credits
    ],
)
def test_target_top_up(ongoing, min_credits, grants, expected):
    top_up = rm.target_top_up(
        target=D("100"),
        ongoing=D(ongoing),
        grants_target_top_up=grants,
        min_credits=None if min_credits is None else D(min_credits),
    )
    assert (top_up.paid_credits, top_up.granted_credits) == (D(expected[0]), D(expected[1]))
    assert top_up.is_empty is (expected == ("0", "0"))
