"""Which usage thresholds a lifetime usage passes (spec §21.2, Lago
`LifetimeUsages::UsageThresholds::CheckService`): the pure rule, and the V92 / V94 steps."""

from __future__ import annotations

import pytest

from invoicing.calculation import ThresholdCrossing, passed_usage_thresholds

ONCE_20K = [(20_000, False)]
TWO = [(20_000, False), (50_000, False)]
WITH_RECURRING = [(20_000, False), (30_000, True)]


@pytest.mark.parametrize(
    ("thresholds", "billed", "current", "progressive", "expected"),
    [
        # V92: threshold 20,000
        pytest.param(ONCE_20K, 0, 20_000, 0, [(20_000, False, 0)], id="v92-12-06-passes"),
        pytest.param(ONCE_20K, 0, 40_000, 20_000, [], id="v92-12-16-already-billed"),
        pytest.param(ONCE_20K, 20_000, 40_000, 0, [], id="v92-january-once-in-a-life"),
        pytest.param(ONCE_20K, 0, 19_999, 0, [], id="just-below"),
        # V94: thresholds 20,000 and 50,000
        pytest.param(TWO, 0, 20_000, 0, [(20_000, False, 0)], id="v94-12-16"),
        pytest.param(TWO, 0, 40_000, 20_000, [], id="v94-12-21"),
        pytest.param(TWO, 0, 60_000, 20_000, [(50_000, False, 0)], id="v94-12-26"),
        pytest.param(
            TWO, 0, 60_000, 0, [(20_000, False, 0), (50_000, False, 0)], id="both-in-one-pass"
        ),
        # recurring 30,000 above a one-time 20,000
        pytest.param(
            WITH_RECURRING,
            0,
            50_000,
            0,
            [(20_000, False, 0), (30_000, True, 1)],
            id="one-time-and-recurring-in-one-pass",
        ),
        pytest.param(WITH_RECURRING, 0, 40_000, 20_000, [(30_000, True, 1)], id="recurring-step"),
        pytest.param(WITH_RECURRING, 60_000, 20_000, 0, [], id="recurring-not-yet"),
        pytest.param(WITH_RECURRING, 60_000, 30_000, 0, [(30_000, True, 3)], id="recurring-next"),
        # usage lowered since the last progressive invoice: nothing passes
        pytest.param(TWO, 0, 15_000, 20_000, [], id="usage-below-billed"),
        # no one-time threshold: the recurring one alone, from 0
        pytest.param([(10_000, True)], 0, 25_000, 0, [(10_000, True, 2)], id="recurring-alone"),
    ],
)
def test_passed_usage_thresholds(thresholds, billed, current, progressive, expected):
    passed = passed_usage_thresholds(
        thresholds,
        historical_cents=0,
        invoiced_cents=billed,
        current_cents=current,
        progressive_billed_cents=progressive,
    )
    assert passed == [ThresholdCrossing(*row) for row in expected]


def test_historical_usage_counts_as_billed():
    passed = passed_usage_thresholds(
        ONCE_20K,
        historical_cents=25_000,
        invoiced_cents=0,
        current_cents=5_000,
        progressive_billed_cents=0,
    )
    assert passed == []
