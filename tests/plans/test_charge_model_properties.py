"""Properties every charge model keeps whatever the prices and usage (hypothesis)."""

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from plans.charge_models import (
    graduated_amount,
    in_advance_amount,
    package_amount,
    percentage_amount,
    percentage_transaction_amounts,
    standard_amount,
    volume_amount,
)

D = Decimal

prices = st.decimals(min_value=0, max_value=1_000, places=4).map(str)
positive_prices = st.decimals(min_value=D("0.0001"), max_value=1_000, places=4).map(str)
units = st.decimals(min_value=0, max_value=100_000, places=3)
event_values = st.lists(st.decimals(min_value=0, max_value=10_000, places=2), max_size=12)


@st.composite
def graduated_properties(draw: st.DrawFn) -> dict:
    """Valid graduated ranges, in integer (0-10, 11-20) or adjacent (0-10, 10-20) style."""
    tops = sorted(draw(st.sets(st.integers(min_value=1, max_value=5_000), min_size=0, max_size=4)))
    adjacent = draw(st.booleans())
    rows, from_value = [], 0
    for top in [*tops, None]:
        rows.append(
            {
                "from_value": from_value,
                "to_value": top,
                "per_unit_amount": draw(prices),
                "flat_amount": draw(prices),
            }
        )
        if top is not None:
            from_value = top if adjacent else top + 1
    return {"graduated_ranges": rows}


@given(graduated_properties(), units, units)
def test_graduated_amount_never_decreases_when_units_grow(properties, first, second):
    low, high = sorted((first, second))

    assert (
        graduated_amount(properties, units=low).amount
        <= graduated_amount(properties, units=high).amount
    )


@given(graduated_properties(), st.lists(st.integers(min_value=1, max_value=3_000), max_size=8))
def test_graduated_in_advance_fees_add_up_to_the_arrears_amount(properties, events):
    total, billed = D(0), D(0)
    for event in events:
        total += event
        billed += in_advance_amount(
            "graduated", properties, units=total, event_units=D(event)
        ).amount

    expected = graduated_amount(properties, units=total).amount if events else D(0)
    assert billed == expected


@given(prices, units)
def test_volume_with_a_single_range_is_standard(price, usage):
    volume = {
        "volume_ranges": [
            {"from_value": 0, "to_value": None, "per_unit_amount": price, "flat_amount": "0"}
        ]
    }

    assert (
        volume_amount(volume, units=usage).amount
        == standard_amount({"amount": price}, units=usage).amount
    )


@given(
    positive_prices,
    st.integers(min_value=1, max_value=1_000),
    st.integers(min_value=0, max_value=1_000),
    units,
)
def test_package_bills_whole_packages_rounded_up_after_free_units(price, size, free, usage):
    properties = {"amount": price, "package_size": size, "free_units": free}

    packages = package_amount(properties, units=usage).amount / D(price)

    paid = usage - free
    assert packages == packages.to_integral_value()
    if paid <= 0:
        assert packages == 0
    else:
        assert (packages - 1) * size < paid <= packages * size


@st.composite
def percentage_with_min_max(draw: st.DrawFn) -> dict:
    minimum = draw(st.decimals(min_value=0, max_value=50, places=2))
    maximum = minimum + draw(st.decimals(min_value=0, max_value=50, places=2))
    properties = {
        "rate": draw(st.decimals(min_value=0, max_value=100, places=3).map(str)),
        "per_transaction_min_amount": str(minimum),
        "per_transaction_max_amount": str(maximum),
    }
    if draw(st.booleans()):
        properties["fixed_amount"] = draw(prices)
    if draw(st.booleans()):
        properties["free_units_per_events"] = draw(st.integers(min_value=1, max_value=5))
    if draw(st.booleans()):
        properties["free_units_per_total_aggregation"] = str(
            draw(st.decimals(min_value=0, max_value=20_000, places=2))
        )
    return properties


@given(percentage_with_min_max(), event_values)
def test_percentage_transaction_amounts_stay_between_min_and_max(properties, values):
    minimum = D(properties["per_transaction_min_amount"])
    maximum = D(properties["per_transaction_max_amount"])

    charged = percentage_transaction_amounts(properties, per_event_units=values)

    assert all(minimum <= amount <= maximum for amount in charged if amount is not None)


@given(percentage_with_min_max(), event_values)
def test_percentage_with_min_max_bills_the_sum_of_its_transactions(properties, values):
    charged = percentage_transaction_amounts(properties, per_event_units=values)

    result = percentage_amount(properties, units=sum(values, D(0)), per_event_units=values)

    assert result.amount == sum((a for a in charged if a is not None), D(0))
