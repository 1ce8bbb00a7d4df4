"""Charge models of spec §7 as pure functions, checked against spec/vectors.md (ids in test ids)."""

from decimal import Decimal

import pytest

from plans.charge_models import (
    apply_rounding,
    compute,
    dynamic_amount,
    graduated_amount,
    graduated_percentage_amount,
    in_advance_amount,
    in_advance_units,
    package_amount,
    percentage_amount,
    percentage_transaction_amounts,
    prorated_graduated_amount,
    prorated_units,
    standard_amount,
    validate_properties,
    volume_amount,
    wire_error_details,
)

D = Decimal


def ranges(key: str, *rows: tuple) -> dict:
    """`(from, to, price, flat)` rows -> Lago wire properties (price key per model)."""
    price_key = "rate" if key == "graduated_percentage_ranges" else "per_unit_amount"
    return {
        key: [
            {"from_value": f, "to_value": t, price_key: price, "flat_amount": flat}
            for f, t, price, flat in rows
        ]
    }


GRADUATED_V22 = ranges(
    "graduated_ranges", (0, 10, "10", "2"), (11, 20, "5", "3"), (21, None, "5", "3")
)
GRADUATED_V23_ADJACENT = ranges(
    "graduated_ranges", (0, 0.1, "10", "0"), (0.1, 1, "5", "0"), (1, None, "2", "0")
)
GRADUATED_V23_FREE_FIRST_TIER = ranges(
    "graduated_ranges", (0, 0.01, "0", "0"), (0.01, 10, "10", "2"), (11, None, "5", "3")
)
GRADUATED_V25 = ranges("graduated_ranges", (0, 10, "2", "100"), (11, None, "1", "50"))
GRADUATED_V49 = ranges("graduated_ranges", (0, 5, "0.02", "0.01"), (6, None, "0.01", "0.01"))
GRADUATED_V53 = ranges("graduated_ranges", (0, 5, "10", "100"), (6, None, "5", "50"))
VOLUME_V26 = ranges(
    "volume_ranges", (0, 100, "2", "10"), (101, 200, "1", "0"), (201, None, "0.5", "50")
)
VOLUME_V26_FREE_FIRST = ranges(
    "volume_ranges", (0, 1, "0", "0"), (2, 100, "2", "10"), (101, None, "0.5", "50")
)
VOLUME_V29 = ranges(
    "volume_ranges",
    (0, 10_000, "0.0010", "10"),
    (10_001, 50_000, "0.0008", "10"),
    (50_001, 100_000, "0.0006", "10"),
    (100_001, None, "0.0004", "10"),
)
GRADUATED_PERCENTAGE_V30 = ranges(
    "graduated_percentage_ranges", (0, 10, "1", "200"), (11, 20, "2", "300"), (21, None, "3", "400")
)
GRADUATED_PERCENTAGE_V32 = ranges(
    "graduated_percentage_ranges",
    (0, 1_000, "1", "200"),
    (1_001, 10_000, "2", "300"),
    (10_001, None, "3", "400"),
)
# V33: four events whose free-window running totals are [50, 150, 400], total 800.
EVENTS_V33 = [D(50), D(100), D(250), D(400)]
PERCENTAGE_V33 = {
    "rate": "1.3",
    "fixed_amount": "2.0",
    "free_units_per_events": 3,
    "free_units_per_total_aggregation": "250.0",
}
PERCENTAGE_V35 = {
    "rate": "2.99",
    "fixed_amount": "0",
    "free_units_per_total_aggregation": "0",
    "per_transaction_min_amount": "1.75",
    "per_transaction_max_amount": "12",
}
EVENTS_V35 = [D(10), D(80), D(10_000)]
PERCENTAGE_V38 = {
    "rate": "1",
    "fixed_amount": "5",
    "free_units_per_events": 3,
    "free_units_per_total_aggregation": "15",
}


# --------------------------------------------------------------------------------------------
# Standard


@pytest.mark.parametrize(
    ("amount", "units", "expected_amount", "expected_cents"),
    [
        pytest.param("10", D(5), D(50), 5_000, id="V4-max-5"),
        pytest.param("10", D(20), D(200), 20_000, id="V4-max-20"),
        pytest.param("5.12345", D(10), D("51.2345"), 5_123, id="V13-fractional-price"),
        pytest.param("12.5", D(4), D(50), 5_000, id="V14-count-metric"),
        pytest.param("10", D(2), D(20), 2_000, id="V15-group-us"),
        pytest.param("10", D(1), D(10), 1_000, id="V15-group-eu"),
        pytest.param("0.05", D(1_000), D(50), 5_000, id="V17-doc-example"),
    ],
)
def test_standard_charge_prices_every_unit_at_the_amount(
    amount, units, expected_amount, expected_cents
):
    result = standard_amount({"amount": amount}, units=units)

    assert result.amount == expected_amount
    assert result.amount_cents("EUR") == expected_cents


def test_standard_unit_amount_is_the_price():
    result = standard_amount({"amount": "5.12345"}, units=D(10))

    assert result.unit_amount == D("5.12345")  # V13


def test_standard_unit_amount_divides_by_full_units_when_prorated():
    result = standard_amount({"amount": "5.12345"}, units=D(10), full_units=D(100))

    assert result.unit_amount == D("0.512345")  # V13


def test_standard_grouped_fees_sum_to_the_charge_total():
    groups = [
        standard_amount({"amount": "10", "grouped_by": ["region"]}, units=D(u)) for u in (2, 1)
    ]

    assert sum(g.amount_cents("EUR") for g in groups) == 3_000  # V15


# --------------------------------------------------------------------------------------------
# Package


@pytest.mark.parametrize(
    ("properties", "units", "expected_amount", "expected_unit_amount"),
    [
        pytest.param(
            {"amount": "100", "package_size": 10, "free_units": 0},
            D(121),
            D(1_300),
            D("10.74"),
            id="V18-no-free-units",
        ),
        pytest.param(
            {"amount": "100", "package_size": 10, "free_units": 10},
            D(121),
            D(1_200),
            D("10.81"),
            id="V19-free-units",
        ),
        pytest.param(
            {"amount": "100", "package_size": 10, "free_units": 200},
            D(121),
            D(0),
            D(0),
            id="V19-more-free-units-than-usage",
        ),
        pytest.param(
            {"amount": "5", "package_size": 100, "free_units": 100},
            D(201),
            D(10),
            D("0.10"),
            id="V21-doc-example",
        ),
    ],
)
def test_package_charge_bills_started_packages_after_free_units(
    properties, units, expected_amount, expected_unit_amount
):
    result = package_amount(properties, units=units)

    assert result.amount == expected_amount
    assert result.unit_amount.quantize(D("0.01")) == expected_unit_amount


def test_package_amount_details_show_paid_units_and_package():
    result = package_amount({"amount": "100", "package_size": 10, "free_units": 0}, units=D(121))

    assert result.amount_details == {
        "free_units": "0.0",
        "paid_units": "121.0",
        "per_package_size": 10,
        "per_package_unit_amount": "100.0",
    }  # V18


def test_package_amount_details_never_show_negative_paid_units():
    result = package_amount({"amount": "100", "package_size": 10, "free_units": 200}, units=D(121))

    assert result.amount_details["paid_units"] == "0.0"  # V19


def test_package_charge_without_usage_costs_nothing():
    result = package_amount({"amount": "100", "package_size": 10, "free_units": 0}, units=D(0))

    assert (result.amount, result.unit_amount) == (0, 0)


# --------------------------------------------------------------------------------------------
# Graduated


@pytest.mark.parametrize(
    ("properties", "units", "expected_amount"),
    [
        pytest.param(GRADUATED_V22, D(0), D(2), id="V22-no-usage-first-tier-flat"),
        pytest.param(GRADUATED_V22, D(1), D(12), id="V22-one-unit"),
        pytest.param(GRADUATED_V22, D(10), D(102), id="V22-first-tier-full"),
        pytest.param(GRADUATED_V22, D(11), D(110), id="V22-enters-second-tier"),
        pytest.param(GRADUATED_V22, D(12), D(115), id="V22-second-tier"),
        pytest.param(GRADUATED_V22, D(21), D(163), id="V22-third-tier"),
        pytest.param(GRADUATED_V23_ADJACENT, D("0.05"), D("0.5"), id="V23-adjacent-first-tier"),
        pytest.param(GRADUATED_V23_ADJACENT, D("0.5"), D("3.0"), id="V23-adjacent-two-tiers"),
        pytest.param(GRADUATED_V23_FREE_FIRST_TIER, D(0), D(0), id="V23-first-tier-flat-zero"),
        pytest.param(GRADUATED_V25, D(0), D(100), id="V25-no-usage-bills-first-flat"),
    ],
)
def test_graduated_charge_prices_each_range_separately(properties, units, expected_amount):
    assert graduated_amount(properties, units=units).amount == expected_amount


@pytest.mark.parametrize(
    ("units", "expected_unit_amount"),
    [
        pytest.param(D(0), D(0), id="V22-no-usage"),
        pytest.param(D(10), D("10.2"), id="V22-first-tier-full"),
        pytest.param(D(12), D("9.58333"), id="V22-second-tier"),
        pytest.param(D(21), D("7.76190"), id="V22-third-tier"),
    ],
)
def test_graduated_unit_amount_is_amount_per_unit(units, expected_unit_amount):
    result = graduated_amount(GRADUATED_V22, units=units)

    assert result.unit_amount.quantize(D("0.00001")) == expected_unit_amount


def test_graduated_amount_details_show_the_first_tier_flat_fee_without_usage():
    result = graduated_amount(GRADUATED_V22, units=D(0))

    assert result.amount_details == {
        "graduated_ranges": [
            {
                "from_value": 0,
                "to_value": 10,
                "flat_unit_amount": "2.0",
                "per_unit_amount": "0.0",
                "units": "0.0",
                "per_unit_total_amount": "0.0",
                "total_with_flat_amount": "2.0",
            }
        ]
    }  # V22


def test_graduated_amount_details_list_every_reached_tier():
    details = graduated_amount(GRADUATED_V22, units=D(21)).amount_details["graduated_ranges"]

    assert [(d["units"], d["total_with_flat_amount"]) for d in details] == [
        ("10.0", "102.0"),
        ("10.0", "53.0"),
        ("1.0", "8.0"),
    ]  # V22


def test_graduated_adjacent_ranges_count_units_from_the_previous_bound():
    details = graduated_amount(GRADUATED_V23_ADJACENT, units=D("0.5")).amount_details

    assert [d["units"] for d in details["graduated_ranges"]] == ["0.1", "0.4"]  # V23


def test_graduated_fee_cents_of_the_first_tier_flat_fee():
    assert graduated_amount(GRADUATED_V25, units=D(0)).amount_cents("EUR") == 10_000  # V25


# --------------------------------------------------------------------------------------------
# Volume


@pytest.mark.parametrize(
    ("properties", "units", "expected_amount"),
    [
        pytest.param(VOLUME_V26, D(0), D(10), id="V26-no-usage-first-range-flat"),
        pytest.param(VOLUME_V26, D(1), D(12), id="V26-one-unit"),
        pytest.param(VOLUME_V26, D(100), D(210), id="V26-top-of-first-range"),
        pytest.param(VOLUME_V26, D("100.5"), D("100.5"), id="V26-fraction-goes-up"),
        pytest.param(VOLUME_V26, D(101), D(101), id="V26-bottom-of-second-range"),
        pytest.param(VOLUME_V26, D(200), D(200), id="V26-top-of-second-range"),
        pytest.param(VOLUME_V26, D(300), D(200), id="V26-last-range"),
        pytest.param(VOLUME_V26_FREE_FIRST, D(0), D(0), id="V26-first-range-flat-zero"),
        pytest.param(VOLUME_V29, D(65_000), D(49), id="V29-doc-example"),
    ],
)
def test_volume_charge_prices_all_units_at_the_reached_range(properties, units, expected_amount):
    assert volume_amount(properties, units=units).amount == expected_amount


@pytest.mark.parametrize(
    ("units", "expected_unit_amount"),
    [
        pytest.param(D(0), D(0), id="V26-no-usage"),
        pytest.param(D(100), D("2.10"), id="V26-top-of-first-range"),
        pytest.param(D(300), D("0.67"), id="V26-last-range"),
    ],
)
def test_volume_unit_amount_is_amount_per_unit(units, expected_unit_amount):
    result = volume_amount(VOLUME_V26, units=units)

    assert result.unit_amount.quantize(D("0.01")) == expected_unit_amount


@pytest.mark.parametrize(
    ("units", "full_units", "expected_amount"),
    [pytest.param(D("198.6"), D(300), D("149.3"), id="V27-prorated-third-range")],
)
def test_volume_prorated_charge_picks_the_range_with_full_units(units, full_units, expected_amount):
    result = volume_amount(VOLUME_V26, units=units, full_units=full_units)

    assert result.amount == expected_amount
    assert result.amount_details == {
        "flat_unit_amount": "50.0",
        "per_unit_amount": "0.331",
        "per_unit_total_amount": "99.3",
    }


def test_volume_charge_with_negative_units_reaches_no_range():
    result = volume_amount(VOLUME_V26, units=D(-5))

    assert (result.amount, result.unit_amount) == (0, 0)


# --------------------------------------------------------------------------------------------
# Graduated percentage


@pytest.mark.parametrize(
    ("units", "expected_amount"),
    [
        pytest.param(D(0), D(200), id="V30-no-usage-first-tier-flat"),
        pytest.param(D(1), D("200.01"), id="V30-one-unit"),
        pytest.param(D(10), D("200.1"), id="V30-first-tier-full"),
        pytest.param(D(11), D("500.12"), id="V30-enters-second-tier"),
        pytest.param(D(12), D("500.14"), id="V30-second-tier"),
        pytest.param(D(21), D("900.33"), id="V30-third-tier"),
    ],
)
def test_graduated_percentage_charges_each_range_at_its_rate(units, expected_amount):
    result = graduated_percentage_amount(GRADUATED_PERCENTAGE_V30, units=units)

    assert result.amount == expected_amount


def test_graduated_percentage_amount_details_carry_rate_per_range():
    result = graduated_percentage_amount(GRADUATED_PERCENTAGE_V30, units=D(11))

    assert result.amount_details["graduated_percentage_ranges"][1] == {
        "from_value": 11,
        "to_value": 20,
        "flat_unit_amount": "300.0",
        "rate": "2.0",
        "units": "1.0",
        "per_unit_total_amount": "0.02",
        "total_with_flat_amount": "300.02",
    }  # V30


# --------------------------------------------------------------------------------------------
# Percentage


@pytest.mark.parametrize(
    ("properties", "units", "events", "expected_amount"),
    [
        pytest.param(PERCENTAGE_V33, D(800), EVENTS_V33, D("11.15"), id="V33-both-free-limits"),
        pytest.param(
            {**PERCENTAGE_V33, "free_units_per_total_aggregation": None},
            D(800),
            EVENTS_V33,
            D("7.2"),
            id="V34-free-events-only",
        ),
        pytest.param(
            {"rate": "1.3", "fixed_amount": "2.0"}, D(800), EVENTS_V33, D("18.4"), id="V34-no-free"
        ),
        pytest.param(
            {"rate": "0", "fixed_amount": "2.0"}, D(800), EVENTS_V33, D(8), id="V34-rate-zero"
        ),
        pytest.param({"rate": "2.9"}, D(4), [D(1)] * 4, D("0.116"), id="V34-small-units"),
        pytest.param(
            {"rate": "1.3", "fixed_amount": "2.0", "free_units_per_events": 5},
            D(400),
            [D(50), D(100), D(250), D(0)],
            D(0),
            id="V34-more-free-events-than-events",
        ),
        pytest.param(
            {"rate": "1", "fixed_amount": "5", "free_units_per_events": 3},
            D(30),
            [D(10)] * 3,
            D(0),
            id="V36-three-free-events",
        ),
        pytest.param(
            {"rate": "1", "fixed_amount": "5", "free_units_per_events": 3},
            D(40),
            [D(10)] * 4,
            D("5.10"),
            id="V36-fourth-event-pays",
        ),
        pytest.param(
            PERCENTAGE_V38,
            D(4),
            [D(1)] * 4,
            D("5.01"),
            id="V38a-events-of-one",
        ),
        pytest.param(
            PERCENTAGE_V38,
            D(20),
            [D(10)] * 2,
            D("5.05"),
            id="V38b-two-events-of-ten",
        ),
        pytest.param(
            PERCENTAGE_V38,
            D(30),
            [D(10)] * 3,
            D("10.15"),
            id="V38b-three-events-of-ten",
        ),
        pytest.param(
            {
                "rate": "1.2",
                "fixed_amount": "0.10",
                "free_units_per_events": 3,
                "free_units_per_total_aggregation": "500",
            },
            D(450),
            [D(200), D(100), D(100), D(50)],
            D("0.70"),
            id="V40-doc-example",
        ),
    ],
)
def test_percentage_charge_takes_rate_and_fixed_fee_after_free_allowances(
    properties, units, events, expected_amount
):
    result = percentage_amount(properties, units=units, per_event_units=events)

    assert result.amount == expected_amount


def test_percentage_cents_include_fixed_fee():
    properties = {"rate": "1", "fixed_amount": "5", "free_units_per_events": 3}

    result = percentage_amount(properties, units=D(40), per_event_units=[D(10)] * 4)

    assert result.amount_cents("EUR") == 510  # V36


def test_percentage_unit_amount_is_amount_per_unit():
    result = percentage_amount(PERCENTAGE_V33, units=D(800), per_event_units=EVENTS_V33)

    assert result.unit_amount == D("0.0139375")  # V33


def test_percentage_amount_details_split_free_and_paid():
    result = percentage_amount(PERCENTAGE_V33, units=D(800), per_event_units=EVENTS_V33)

    assert result.amount_details == {
        "units": "800.0",
        "free_units": "250.0",
        "paid_units": "550.0",
        "free_events": 2,
        "paid_events": 2,
        "rate": "1.3",
        "per_unit_total_amount": "7.15",
        "fixed_fee_unit_amount": "2.0",
        "fixed_fee_total_amount": "4.0",
        "min_max_adjustment_total_amount": "0.0",
    }  # V33


def test_percentage_counts_events_without_their_values_when_nothing_is_free():
    result = percentage_amount({"rate": "2.9"}, units=D(4), events_count=4)

    assert result.amount == D("0.116")  # V34


def test_percentage_with_free_units_needs_the_event_values():
    with pytest.raises(ValueError, match="per_event_units"):
        percentage_amount(PERCENTAGE_V33, units=D(800), events_count=4)


@pytest.mark.parametrize(
    ("overrides", "expected_amount"),
    [
        pytest.param({}, D("16.142"), id="V35-min-and-max"),
        pytest.param({"fixed_amount": "2.0"}, D("18.691"), id="V35-with-fixed-fee"),
        pytest.param({"free_units_per_events": 2}, D(12), id="V35-free-events"),
        pytest.param({"free_units_per_total_aggregation": "30"}, D("13.794"), id="V35-free-amount"),
        pytest.param(
            {"free_units_per_events": 3, "free_units_per_total_aggregation": "10000"},
            D("2.691"),
            id="V35-free-events-and-amount",
        ),
    ],
)
def test_percentage_clamps_each_transaction_between_min_and_max(overrides, expected_amount):
    properties = {**PERCENTAGE_V35, **overrides}

    result = percentage_amount(properties, units=D(10_090), per_event_units=EVENTS_V35)

    assert result.amount == expected_amount


def test_percentage_ignores_min_and_max_without_premium():
    result = percentage_amount(
        PERCENTAGE_V35, units=D(10_090), per_event_units=EVENTS_V35, premium=False
    )

    assert result.amount == D("301.691")  # V35


def test_percentage_min_max_adjustment_is_the_difference_to_the_plain_rate():
    result = percentage_amount(PERCENTAGE_V35, units=D(10_090), per_event_units=EVENTS_V35)

    assert result.amount_details["min_max_adjustment_total_amount"] == "-285.549"  # V35


def test_percentage_transaction_amounts_mark_free_events():
    properties = {**PERCENTAGE_V35, "free_units_per_events": 2}

    amounts = percentage_transaction_amounts(properties, per_event_units=EVENTS_V35)

    assert amounts == [None, None, D(12)]  # V35


# --------------------------------------------------------------------------------------------
# Dynamic


@pytest.mark.parametrize(
    ("units", "precise_total_amount_cents", "expected_amount", "expected_unit_amount"),
    [
        pytest.param(D(20), D("40.2"), D("0.402"), D("0.0201"), id="V41-event-prices"),
        pytest.param(D(0), D("40.2"), D(0), D(0), id="V41-no-units"),
        pytest.param(D(22), D(345), D("3.45"), D("0.156818"), id="V43-doc-example"),
    ],
)
def test_dynamic_charge_sums_the_event_prices(
    units, precise_total_amount_cents, expected_amount, expected_unit_amount
):
    result = dynamic_amount(
        {}, units=units, precise_total_amount_cents=precise_total_amount_cents, currency="USD"
    )

    assert result.amount == expected_amount
    assert result.unit_amount.quantize(D("0.000001")) == expected_unit_amount


def test_dynamic_event_prices_follow_the_currency_exponent():
    result = dynamic_amount({}, units=D(1), precise_total_amount_cents=D(345), currency="JPY")

    assert result.amount == D(345)


# --------------------------------------------------------------------------------------------
# Rounding of aggregated units (spec §4.4)


@pytest.mark.parametrize(
    ("function", "precision", "expected"),
    [
        pytest.param("round", None, D(123), id="V11-round"),
        pytest.param("round", 2, D("123.46"), id="V11-round-precision-2"),
        pytest.param("round", -1, D(120), id="V11-round-precision-minus-1"),
        pytest.param("ceil", 0, D(124), id="V11-ceil"),
        pytest.param("floor", 0, D(123), id="V11-floor"),
    ],
)
def test_apply_rounding_rounds_units_to_the_metric_precision(function, precision, expected):
    assert apply_rounding(D("123.4567"), function, precision) == expected


def test_apply_rounding_without_function_keeps_units():
    assert apply_rounding(D("123.4567"), None, 2) == D("123.4567")


def test_apply_rounding_rounds_halves_up():
    assert apply_rounding(D("2.5"), "round", 0) == D(3)


def test_apply_rounding_refuses_an_unknown_function():
    with pytest.raises(ValueError, match="rounding"):
        apply_rounding(D(1), "truncate", 0)


# --------------------------------------------------------------------------------------------
# Pay in advance (spec §7.14)


@pytest.mark.parametrize(
    ("units", "event_units", "expected_cents"),
    [
        pytest.param(D(1), D(1), 1_000, id="V44-first-event"),
        pytest.param(D(2), D(1), 1_000, id="V44-second-event"),
    ],
)
def test_in_advance_standard_bills_each_event(units, event_units, expected_cents):
    result = in_advance_amount("standard", {"amount": "10"}, units=units, event_units=event_units)

    assert result.amount_cents("EUR") == expected_cents


@pytest.mark.parametrize(
    ("events", "expected_units"),
    [
        pytest.param([D(10)], [D(10)], id="V45-first-event"),
        pytest.param([D(10), D(-4)], [D(10), D(0)], id="V45-decrease-bills-nothing"),
        pytest.param([D(10), D(-4), D(8)], [D(10), D(0), D(4)], id="V45-only-above-max"),
    ],
)
def test_in_advance_units_bill_only_the_increase_of_the_period_maximum(events, expected_units):
    billed, current, maximum = [], D(0), D(0)
    for value in events:
        step = in_advance_units(value, current_aggregation=current, max_aggregation=maximum)
        billed.append(step.units)
        current, maximum = step.current_aggregation, step.max_aggregation

    assert billed == expected_units


def test_in_advance_standard_on_sum_bills_the_units_above_the_maximum():
    result = in_advance_amount("standard", {"amount": "1"}, units=D(14), event_units=D(4))

    assert (result.units, result.amount_cents("EUR")) == (D(4), 400)  # V45


@pytest.mark.parametrize(
    ("amount", "expected_cents"),
    [
        pytest.param("20", 20_000, id="V46-filter-price"),
        pytest.param("10", 10_000, id="V46-default-price"),
    ],
)
def test_in_advance_standard_uses_the_given_price(amount, expected_cents):
    result = in_advance_amount("standard", {"amount": amount}, units=D(10), event_units=D(10))

    assert result.amount_cents("EUR") == expected_cents


@pytest.mark.parametrize(
    ("units", "event_units", "expected_cents"),
    [
        pytest.param(D(3), D(3), 0, id="V48-all-free"),
        pytest.param(D(4), D(1), 10_000, id="V48-first-package"),
        pytest.param(D(6), D(2), 10_000, id="V48-second-package"),
    ],
)
def test_in_advance_package_bills_a_package_when_it_is_started(units, event_units, expected_cents):
    properties = {"amount": "100", "free_units": 3, "package_size": 2}

    result = in_advance_amount("package", properties, units=units, event_units=event_units)

    assert result.amount_cents("EUR") == expected_cents


@pytest.mark.parametrize(
    ("units", "event_units", "expected_cents"),
    [
        pytest.param(D(3), D(3), 7, id="V49-first-event-with-flat"),
        pytest.param(D(4), D(1), 2, id="V49-flat-not-billed-again"),
        pytest.param(D(6), D(2), 4, id="V49-enters-second-tier"),
    ],
)
def test_in_advance_graduated_bills_a_tier_flat_fee_once(units, event_units, expected_cents):
    result = in_advance_amount("graduated", GRADUATED_V49, units=units, event_units=event_units)

    assert result.amount_cents("EUR") == expected_cents


@pytest.mark.parametrize(
    ("units", "event_units", "expected_amount"),
    [
        pytest.param(D(500), D(500), D(205), id="V32-first-transaction"),
        pytest.param(D(1_050), D(550), D(306), id="V32-spans-two-tiers"),
        pytest.param(D(5_050), D(4_000), D(80), id="V32-inside-second-tier"),
    ],
)
def test_in_advance_graduated_percentage_bills_each_transaction(
    units, event_units, expected_amount
):
    result = in_advance_amount(
        "graduated_percentage", GRADUATED_PERCENTAGE_V32, units=units, event_units=event_units
    )

    assert result.amount == expected_amount


@pytest.mark.parametrize(
    ("events", "expected_cents"),
    [
        pytest.param([D(8)], 0, id="V50-first-free"),
        pytest.param([D(8), D(5)], 0, id="V50-second-free"),
        pytest.param([D(8), D(5), D(3)], 115, id="V50-third-pays"),
    ],
)
def test_in_advance_percentage_consumes_free_events_in_order(events, expected_cents):
    properties = {"rate": "5", "fixed_amount": "1", "free_units_per_events": 2}

    result = in_advance_amount(
        "percentage", properties, units=sum(events), event_units=events[-1], per_event_units=events
    )

    assert result.amount_cents("EUR") == expected_cents


def test_in_advance_percentage_bills_the_fourth_transaction_of_the_doc():
    properties = {
        "rate": "1.2",
        "fixed_amount": "0.10",
        "free_units_per_events": 3,
        "free_units_per_total_aggregation": "500",
    }
    events = [D(200), D(100), D(100), D(50)]

    result = in_advance_amount(
        "percentage", properties, units=D(450), event_units=D(50), per_event_units=events
    )

    assert result.amount == D("0.70")  # V40


def test_in_advance_percentage_details_are_those_of_the_event():
    properties = {"rate": "5", "fixed_amount": "1", "free_units_per_events": 2}
    events = [D(8), D(5), D(3)]

    result = in_advance_amount(
        "percentage", properties, units=D(16), event_units=D(3), per_event_units=events
    )

    assert result.amount_details["paid_events"] == 1  # V50
    assert result.amount_details["fixed_fee_total_amount"] == "1.0"


@pytest.mark.parametrize(
    ("day", "expected_cents"),
    [
        pytest.param(10, 2_100, id="V52-seat-on-june-10"),
        pytest.param(11, 2_000, id="V52-seat-on-june-11"),
    ],
)
def test_in_advance_prorated_seat_bills_the_rest_of_the_period(day, expected_cents):
    days_left = 30 - day + 1  # June has 30 days, the event day counts
    seat = prorated_units([(D(1), days_left)], period_days=30)

    result = in_advance_amount(
        "standard", {"amount": "30"}, units=seat, event_units=seat, fee_units=D(1)
    )

    assert result.amount_cents("EUR") == expected_cents


@pytest.mark.parametrize(
    ("seats", "expected_cents"),
    [
        pytest.param(D(5), 15_000, id="V52-july-renewal"),
        pytest.param(D(7), 21_000, id="V52-august-renewal"),
    ],
)
def test_recurring_in_advance_renewal_bills_the_full_carried_units(seats, expected_cents):
    assert standard_amount({"amount": "30"}, units=seats).amount_cents("EUR") == expected_cents


def test_in_advance_dynamic_bills_the_event_price():
    result = in_advance_amount(
        "dynamic",
        {},
        units=D(12),
        event_units=D(5),
        precise_total_amount_cents=D(125),
        event_precise_total_amount_cents=D(55),
        currency="USD",
    )

    assert result.amount_cents("USD") == 55  # V43's second event


def test_in_advance_refuses_volume():
    with pytest.raises(ValueError, match="volume"):
        in_advance_amount("volume", VOLUME_V26, units=D(1), event_units=D(1))


# --------------------------------------------------------------------------------------------
# Prorated charges (spec §7.15)


@pytest.mark.parametrize(
    ("units", "full", "prorated", "expected_amount", "expected_unit_amount"),
    [
        pytest.param(
            D("5.96667"),
            [D(5), D(5), D(10), D(-6)],
            [D("3.5"), D("2.66667"), D(2), D("-2.2")],
            D("197.33"),
            D("14.10"),
            id="V53-events-fill-tiers",
        ),
        pytest.param(
            D("3.86667"),
            [D(2), D(5), D(10), D(-6)],
            [D("1.4"), D("2.66667"), D(2), D("-2.2")],
            D("184.33"),
            D("16.76"),
            id="V53-event-overflows-first-tier",
        ),
        pytest.param(D(0), [], [], D(100), D(0), id="V53-no-events-first-tier-flat"),
    ],
)
def test_prorated_graduated_prices_prorated_units_in_tiers_filled_by_full_units(
    units, full, prorated, expected_amount, expected_unit_amount
):
    result = prorated_graduated_amount(
        GRADUATED_V53, units=units, per_event_units=full, per_event_prorated_units=prorated
    )

    assert result.amount.quantize(D("0.01")) == expected_amount
    assert result.unit_amount.quantize(D("0.01")) == expected_unit_amount


@pytest.mark.parametrize(
    ("units", "full", "prorated", "expected_amount"),
    [
        pytest.param(D("2.5"), [D(5), D(-2)], [D("3.5"), D(-1)], D(125), id="back-to-first-tier"),
        pytest.param(
            D("3.2"), [D(4), D(2), D(-3)], [D("2.8"), D(1), D("-0.6")], D("180.5"), id="down-across"
        ),
        pytest.param(
            D("4.9"),
            [D(5), D(2), D(-4), D(10)],
            [D("3.5"), D(1), D("-1.6"), D(2)],
            D(190),
            id="up-and-down",
        ),
        pytest.param(D("-31.33"), [D(5), D(-100)], [D(2), D("-33.33")], D(0), id="below-zero"),
    ],
)
def test_prorated_graduated_splits_a_decrease_across_the_tiers_it_leaves(
    units, full, prorated, expected_amount
):
    result = prorated_graduated_amount(
        GRADUATED_V53, units=units, per_event_units=full, per_event_prorated_units=prorated
    )

    assert result.amount == expected_amount


@pytest.mark.parametrize(
    ("properties", "expected_cents"),
    [pytest.param(GRADUATED_V25, 10_000, id="V25-prorated-no-usage")],
)
def test_prorated_graduated_without_usage_still_bills_first_tier_flat(properties, expected_cents):
    result = compute(
        "graduated",
        properties,
        units=D(0),
        per_event_units=[],
        per_event_prorated_units=[],
        prorated=True,
    )

    assert result.amount_cents("EUR") == expected_cents


def test_prorated_units_weight_each_event_by_its_days_left():
    seat = prorated_units([(D(1), 22)], period_days=31)

    assert seat == D("0.70968")  # V54: July 10 to 31 of a 31-day July


@pytest.mark.parametrize(
    ("days_left", "period_days", "expected_cents"),
    [
        pytest.param(22, 31, 710, id="V54-code-real-month-length"),  # not the doc's 733 (/30)
        pytest.param(31, 31, 1_000, id="V54-full-month"),
    ],
)
def test_prorated_seat_costs_its_share_of_the_real_month(days_left, period_days, expected_cents):
    seat = prorated_units([(D(1), days_left)], period_days=period_days)

    result = standard_amount({"amount": "10"}, units=seat, full_units=D(1))

    assert result.amount_cents("USD") == expected_cents


def test_prorated_units_keep_carried_units_for_the_existing_share():
    units = prorated_units([(D(2), 15)], period_days=30, carried_over=D(3), ratio_existing=D(1))

    assert units == D(4)


# --------------------------------------------------------------------------------------------
# Dispatch, money and projections


def test_compute_dispatches_on_the_charge_model():
    result = compute("graduated", GRADUATED_V22, units=D(21))

    assert result == graduated_amount(GRADUATED_V22, units=D(21))


def test_compute_refuses_an_unknown_charge_model():
    with pytest.raises(ValueError, match="unknown charge model"):
        compute("custom", {}, units=D(1))


def test_compute_passes_weighted_sum_total_through():
    result = compute("standard", {"amount": "1"}, units=D(2), total_aggregated_units=D(7))

    assert result.total_aggregated_units == D(7)


def test_amounts_are_exact_decimal_sums_not_floats():
    units = D("0.1") + D("0.2")  # 0.30000000000000004 as floats

    result = standard_amount({"amount": "3.35"}, units=units)

    assert result.amount == D("1.005")
    assert result.amount_cents("EUR") == 101  # half away from zero; a float gives 100


def test_precise_amount_cents_stays_unrounded():
    result = standard_amount({"amount": "5.12345"}, units=D(10))

    assert result.precise_amount_cents("EUR") == D("5123.45")  # V13


@pytest.mark.parametrize(
    ("currency", "expected_cents"),
    [
        pytest.param("JPY", 51, id="exponent-0"),
        pytest.param("EUR", 5_123, id="exponent-2"),
        pytest.param("KWD", 51_235, id="exponent-3"),
    ],
)
def test_fee_cents_follow_the_currency_exponent(currency, expected_cents):
    result = standard_amount({"amount": "5.12345"}, units=D(10))

    assert result.amount_cents(currency) == expected_cents


def test_float_properties_are_read_from_their_decimal_text():
    result = graduated_amount(
        ranges("graduated_ranges", (0, 0.1, "10", "0"), (0.1, None, "5", "0")), units=D("0.3")
    )

    assert result.amount == D("2.0")


def test_projection_of_standard_prices_projected_units():
    result = compute("standard", {"amount": "2"}, units=D(10), period_ratio=D("0.25"))

    assert (result.projected_units, result.projected_amount) == (D(40), D(80))


def test_projection_of_graduated_walks_the_tiers_again():
    result = compute("graduated", GRADUATED_V22, units=D(5), period_ratio=D("0.25"))

    assert result.projected_units == D(20)
    assert result.projected_amount == D(155)  # 20 units: 10 x 10 + 2, then 10 x 5 + 3


def test_projection_of_percentage_scales_the_amount():
    result = compute(
        "percentage", {"rate": "1"}, units=D(100), events_count=1, period_ratio=D("0.5")
    )

    assert result.projected_amount_cents("EUR") == 200


def test_no_projection_without_a_period_ratio():
    assert compute("standard", {"amount": "2"}, units=D(10)).projected_amount is None


# --------------------------------------------------------------------------------------------
# Validation (spec §7.2, §7.3)

VALID_GRADUATED = ranges("graduated_ranges", (0, 10, "1", "0"), (11, None, "2", "100"))


@pytest.mark.parametrize(
    ("charge_model", "properties"),
    [
        pytest.param("standard", {"amount": "0.05"}, id="standard"),
        pytest.param("package", {"amount": "5", "package_size": 10, "free_units": 0}, id="package"),
        pytest.param("graduated", VALID_GRADUATED, id="graduated-integer-ranges"),
        pytest.param("graduated", GRADUATED_V23_ADJACENT, id="graduated-adjacent-ranges"),
        pytest.param("graduated", GRADUATED_V23_FREE_FIRST_TIER, id="V23-mixed-ranges"),
        pytest.param("volume", VOLUME_V26, id="volume"),
        pytest.param("graduated_percentage", GRADUATED_PERCENTAGE_V30, id="graduated-percentage"),
        pytest.param(
            "percentage",
            {
                **PERCENTAGE_V33,
                "per_transaction_min_amount": "1",
                "per_transaction_max_amount": "10",
            },
            id="percentage",
        ),
        pytest.param("dynamic", {}, id="dynamic"),
    ],
)
def test_valid_properties_have_no_errors(charge_model, properties):
    assert validate_properties(charge_model, properties) == {}


def test_unknown_charge_model_is_invalid():
    assert validate_properties("custom", {}) == {"charge_model": ["value_is_invalid"]}


@pytest.mark.parametrize(
    "amount",
    [
        pytest.param(None, id="missing"),
        pytest.param("abc", id="not-a-number"),
        pytest.param("-1", id="negative"),
        pytest.param(0.05, id="float-not-string"),
        pytest.param("NaN", id="not-finite"),
    ],
)
def test_standard_amount_must_be_a_non_negative_decimal_string(amount):
    assert validate_properties("standard", {"amount": amount}) == {"amount": ["invalid_amount"]}


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        pytest.param(
            {"amount": "5", "package_size": 0, "free_units": 0},
            {"package_size": ["invalid_package_size"]},
            id="package-size-zero",
        ),
        pytest.param(
            {"amount": "5", "package_size": "10", "free_units": 0},
            {"package_size": ["invalid_package_size"]},
            id="package-size-not-integer",
        ),
        pytest.param(
            {"amount": "5", "package_size": 10, "free_units": -1},
            {"free_units": ["invalid_free_units"]},
            id="free-units-negative",
        ),
        pytest.param(
            {"amount": "5", "package_size": 10},
            {"free_units": ["invalid_free_units"]},
            id="free-units-missing",
        ),
        pytest.param(
            {"amount": "x", "package_size": 10, "free_units": 0},
            {"amount": ["invalid_amount"]},
            id="amount-invalid",
        ),
    ],
)
def test_package_properties_are_validated(properties, expected):
    assert validate_properties("package", properties) == expected


@pytest.mark.parametrize(
    ("charge_model", "key"),
    [
        pytest.param("graduated", "graduated_ranges", id="graduated"),
        pytest.param("volume", "volume_ranges", id="volume"),
        pytest.param("graduated_percentage", "graduated_percentage_ranges", id="graduated-pct"),
    ],
)
def test_ranges_are_mandatory(charge_model, key):
    assert validate_properties(charge_model, {key: []}) == {key: [f"missing_{key}"]}


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param([(1, None, "1", "0")], id="does-not-start-at-zero"),
        pytest.param([(0, 100, "1", "0")], id="does-not-end-at-infinity"),
        pytest.param([(0, 100, "1", "0"), (120, None, "1", "0")], id="hole"),
        pytest.param([(0, 100, "1", "0"), (50, None, "1", "0")], id="overlap"),
        pytest.param([(0, None, "1", "0"), (1, None, "1", "0")], id="infinity-not-last"),
        pytest.param(
            [(0, 10, "1", "0"), (11, 5, "1", "0"), (6, None, "1", "0")], id="to-below-from"
        ),
    ],
)
def test_range_bounds_must_chain_from_zero_to_infinity(rows):
    properties = ranges("graduated_ranges", *rows)

    assert validate_properties("graduated", properties) == {
        "graduated_ranges": ["invalid_graduated_ranges"]
    }


def test_volume_range_bounds_use_the_volume_code():
    properties = ranges("volume_ranges", (0, 100, "1", "0"))

    assert validate_properties("volume", properties) == {"volume_ranges": ["invalid_volume_ranges"]}


def test_range_amounts_must_be_non_negative_decimal_strings():
    properties = ranges("graduated_ranges", (0, 10, "-1", "0"), (11, None, "1", 5))

    assert validate_properties("graduated", properties) == {
        "per_unit_amount": ["invalid_amount"],
        "flat_amount": ["invalid_amount"],
    }


def test_graduated_percentage_range_rate_must_be_valid():
    properties = ranges("graduated_percentage_ranges", (0, None, "x", "0"))

    assert validate_properties("graduated_percentage", properties) == {"rate": ["invalid_rate"]}


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        pytest.param({"rate": "-1"}, {"rate": ["invalid_rate"]}, id="rate"),
        pytest.param(
            {"rate": "1", "fixed_amount": "x"},
            {"fixed_amount": ["invalid_fixed_amount"]},
            id="fixed-amount",
        ),
        pytest.param(
            {"rate": "1", "free_units_per_events": 0},
            {"free_units_per_events": ["invalid_free_units_per_events"]},
            id="free-units-per-events-not-positive",
        ),
        pytest.param(
            {"rate": "1", "free_units_per_total_aggregation": "-5"},
            {"free_units_per_total_aggregation": ["invalid_free_units_per_total_aggregation"]},
            id="free-units-per-total-aggregation",
        ),
        pytest.param(
            {"rate": "1", "per_transaction_min_amount": "x"},
            {"per_transaction_min_amount": ["invalid_amount"]},
            id="min-amount",
        ),
        pytest.param(
            {"rate": "1", "per_transaction_min_amount": "10", "per_transaction_max_amount": "1"},
            {"per_transaction_max_amount": ["per_transaction_max_lower_than_per_transaction_min"]},
            id="max-below-min",
        ),
    ],
)
def test_percentage_properties_are_validated(properties, expected):
    assert validate_properties("percentage", properties) == expected


def test_percentage_refuses_a_latest_aggregation():
    errors = validate_properties(
        "percentage", {"rate": "1"}, billable_metric_aggregation="latest_agg"
    )

    assert errors == {"billable_metric": ["invalid_value"]}


@pytest.mark.parametrize("aggregation", ["count_agg", "max_agg", "unique_count_agg"])
def test_dynamic_requires_a_sum_aggregation(aggregation):
    errors = validate_properties("dynamic", {}, billable_metric_aggregation=aggregation)

    assert errors == {"charge_model": ["invalid_aggregation_type_or_charge_model"]}


@pytest.mark.parametrize(
    ("charge_model", "properties", "aggregation"),
    [
        pytest.param("volume", VOLUME_V26, "sum_agg", id="volume"),
        pytest.param("standard", {"amount": "1"}, "max_agg", id="max-agg"),
        pytest.param("standard", {"amount": "1"}, "latest_agg", id="latest-agg"),
        pytest.param("standard", {"amount": "1"}, "weighted_sum_agg", id="weighted-sum-agg"),
    ],
)
def test_pay_in_advance_refuses_volume_and_non_additive_aggregations(
    charge_model, properties, aggregation
):
    errors = validate_properties(
        charge_model, properties, billable_metric_aggregation=aggregation, pay_in_advance=True
    )

    assert errors == {"pay_in_advance": ["invalid_aggregation_type_or_charge_model"]}


def test_non_invoiceable_requires_pay_in_advance():
    errors = validate_properties("standard", {"amount": "1"}, invoiceable=False)

    assert errors == {"invoiceable": ["must_be_true_unless_pay_in_advance"]}


def test_regroup_paid_fees_requires_pay_in_advance_and_non_invoiceable():
    errors = validate_properties(
        "standard", {"amount": "1"}, pay_in_advance=True, regroup_paid_fees="invoice"
    )

    assert errors == {
        "regroup_paid_fees": ["only_compatible_with_pay_in_advance_and_non_invoiceable"]
    }


def test_spending_minimum_is_refused_on_pay_in_advance():
    errors = validate_properties(
        "standard", {"amount": "1"}, pay_in_advance=True, min_amount_cents=100
    )

    assert errors == {"min_amount_cents": ["not_compatible_with_pay_in_advance"]}


@pytest.mark.parametrize(
    ("charge_model", "properties", "pay_in_advance", "recurring", "aggregation"),
    [
        pytest.param("standard", {"amount": "1"}, False, False, "sum_agg", id="metered-metric"),
        pytest.param(
            "package",
            {"amount": "1", "package_size": 1, "free_units": 0},
            False,
            True,
            "sum_agg",
            id="package-in-arrears",
        ),
        pytest.param(
            "graduated", VALID_GRADUATED, True, True, "sum_agg", id="graduated-in-advance"
        ),
        pytest.param(
            "standard", {"amount": "1"}, False, True, "weighted_sum_agg", id="weighted-sum"
        ),
    ],
)
def test_prorated_requires_a_recurring_metric_and_a_compatible_model(
    charge_model, properties, pay_in_advance, recurring, aggregation
):
    errors = validate_properties(
        charge_model,
        properties,
        billable_metric_aggregation=aggregation,
        billable_metric_recurring=recurring,
        pay_in_advance=pay_in_advance,
        prorated=True,
    )

    assert errors == {"prorated": ["invalid_billable_metric_or_charge_model"]}


@pytest.mark.parametrize(
    ("charge_model", "properties", "pay_in_advance"),
    [
        pytest.param("graduated", VALID_GRADUATED, False, id="graduated-in-arrears"),
        pytest.param("volume", VOLUME_V26, False, id="volume-in-arrears"),
        pytest.param("standard", {"amount": "1"}, True, id="standard-in-advance"),
    ],
)
def test_prorated_is_accepted_on_a_recurring_metric(charge_model, properties, pay_in_advance):
    errors = validate_properties(
        charge_model,
        properties,
        billable_metric_aggregation="unique_count_agg",
        billable_metric_recurring=True,
        pay_in_advance=pay_in_advance,
        prorated=True,
    )

    assert errors == {}


def test_pricing_group_keys_must_be_strings():
    errors = validate_properties("standard", {"amount": "1", "pricing_group_keys": ["a", 1]})

    assert errors == {"pricing_group_keys": ["invalid_type"]}


def test_presentation_group_keys_are_at_most_two():
    keys = [{"value": k} for k in ("a", "b", "c")]

    errors = validate_properties("standard", {"amount": "1", "presentation_group_keys": keys})

    assert errors == {
        "presentation_group_keys": ["presentation_group_keys have a maximum of 2 elements"]
    }


def test_wire_error_details_report_property_codes_under_properties():
    errors = validate_properties(
        "package", {"amount": "x", "package_size": 0, "free_units": 0}, invoiceable=False
    )

    assert wire_error_details(errors) == {
        "properties": ["invalid_amount", "invalid_package_size"],
        "invoiceable": ["must_be_true_unless_pay_in_advance"],
    }
