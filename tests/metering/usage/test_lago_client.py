"""The official lago-python-client sends events (single and batch), reads them back and reads
the current usage with the exact amounts (spec: wire compatibility)."""

from __future__ import annotations

import pytest
import time_machine
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models.event import BatchEvent, Event

from tests.metering.usage.conftest import at, make_billing, unix

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def billing(api, organization):
    return make_billing(api, organization, started_at="2022-03-01")


def test_client_sends_events_and_reads_the_current_usage(lago, billing):
    calls = billing.metric("api_calls", "count_agg")
    storage = billing.metric("storage", "sum_agg", "gb")
    billing.charge(calls, properties={"amount": "12.5"})
    billing.charge(
        storage,
        "graduated",
        properties={
            "graduated_ranges": [
                {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "2"},
                {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "0"},
            ]
        },
    )
    created = lago.events.create(
        Event(
            transaction_id="tx_single",
            external_subscription_id="sub_1",
            code="api_calls",
            timestamp=unix("2022-03-10T10:00:00"),
            properties={},
        )
    )
    assert created.transaction_id == "tx_single"
    assert created.lago_subscription_id == str(billing.subscription.pk)
    lago.events.batch_create(
        BatchEvent(
            events=[
                Event(
                    transaction_id=f"tx_{i}",
                    external_subscription_id="sub_1",
                    code="api_calls" if i < 3 else "storage",
                    timestamp=str(unix("2022-03-11T10:00:00")),
                    properties={"gb": "6"} if i >= 3 else {},
                )
                for i in range(5)
            ]
        )
    )
    assert lago.events.find("tx_3").code == "storage"

    with time_machine.travel(at("2022-03-20T00:00:00"), tick=False):
        usage = lago.customers.current_usage("cust_1", "sub_1")
    # 4 calls x 12.5 = 50.00; 12 GB: 10 x 1 + 2 + (12 - 11 + 1) x 0.5 = 13.00
    assert (usage.amount_cents, usage.taxes_amount_cents, usage.total_amount_cents) == (
        6300,
        0,
        6300,
    )
    assert usage.currency == "EUR"
    assert usage.from_datetime == "2022-03-01T00:00:00Z"
    by_code = {c.billable_metric.code: c for c in usage.charges_usage}
    assert (by_code["api_calls"].units, by_code["api_calls"].amount_cents) == ("4.0", 5000)
    assert (by_code["storage"].units, by_code["storage"].amount_cents) == ("12.0", 1300)
    assert by_code["storage"].events_count == 2


def test_client_sees_a_duplicate_as_a_422(lago, billing):
    event = Event(
        transaction_id="tx_dup", external_subscription_id="sub_1", code="c", properties={}
    )
    lago.events.create(event)
    with pytest.raises(LagoApiError) as raised:
        lago.events.create(event)
    assert raised.value.status_code == 422


def test_client_reads_projected_and_past_usage(lago, billing):
    metric = billing.metric("api_calls", "count_agg")
    billing.charge(metric, properties={"amount": "1"})
    lago.events.create(
        Event(
            transaction_id="t1",
            external_subscription_id="sub_1",
            code="api_calls",
            timestamp=unix("2022-03-05T00:00:00"),
            properties={},
        )
    )
    with time_machine.travel(at("2022-03-10T12:00:00"), tick=False):
        projected = lago.customers.projected_usage("cust_1", "sub_1")
    assert (projected.amount_cents, projected.projected_amount_cents) == (100, 310)
    past = lago.customers.past_usage("cust_1", "sub_1")
    assert past["usage_periods"] == []


def test_client_event_on_a_pay_in_advance_charge_bills_its_fee_after_commit(lago, billing):
    from invoicing.models import Fee

    metric = billing.metric("api_calls", "count_agg")
    charge = billing.charge(metric, properties={"amount": "10"}, pay_in_advance=True)
    for transaction_id in ("t1", "t2"):
        lago.events.create(
            Event(
                transaction_id=transaction_id,
                external_subscription_id="sub_1",
                code="api_calls",
                timestamp=unix("2022-03-05T00:00:00"),
                properties={},
            )
        )
    fees = Fee.objects.filter(charge=charge).order_by("pay_in_advance_event_transaction_id")
    assert [(f.pay_in_advance_event_transaction_id, f.amount_cents) for f in fees] == [
        ("t1", 1000),
        ("t2", 1000),
    ]


def test_client_estimates_the_fees_of_an_event(lago, billing):
    metric = billing.metric("api_calls", "count_agg")
    charge = billing.charge(metric, properties={"amount": "10"}, pay_in_advance=True)
    with time_machine.travel(at("2022-03-05T00:00:00"), tick=False):
        estimate = lago.events.estimate_fees(
            Event(
                transaction_id="t_estimate",
                external_subscription_id="sub_1",
                code="api_calls",
                properties={},
            )
        )
    [fee] = estimate["fees"]
    assert (fee.lago_charge_id, fee.amount_cents, fee.units) == (str(charge.pk), 1000, "1.0")


def test_client_reads_presentation_breakdowns_and_filters_them(lago, billing):
    metric = billing.metric("users", "unique_count_agg", "user")
    billing.charge(
        metric,
        properties={
            "amount": "1",
            "presentation_group_keys": [{"value": "region"}, {"value": "cloud"}],
        },
    )
    lago.events.batch_create(
        BatchEvent(
            events=[
                Event(
                    transaction_id=f"u{i}",
                    external_subscription_id="sub_1",
                    code="users",
                    timestamp=unix("2022-03-05T00:00:00"),
                    properties=properties,
                )
                for i, properties in enumerate(
                    [
                        {"user": "ann", "region": "eu", "cloud": "aws"},
                        {"user": "ann", "region": "eu", "cloud": "gcp"},
                        {"user": "bob", "region": "us", "cloud": "aws"},
                    ]
                )
            ]
        )
    )

    with time_machine.travel(at("2022-03-20T00:00:00"), tick=False):
        full = lago.customers.current_usage("cust_1", "sub_1")
        # the client sends a list as a JSON array: filter_by_presentation=["region"]
        by_region = lago.customers.current_usage(
            "cust_1", "sub_1", filter_by_presentation=["region"]
        )

    [charge] = full.charges_usage
    assert charge.units == "2.0"
    assert sorted(
        (tuple(sorted(b.presentation_by.items())), b.units)
        for b in charge.presentation_breakdowns.__root__
    ) == [
        ((("cloud", "aws"), ("region", "eu")), "1.0"),
        ((("cloud", "aws"), ("region", "us")), "1.0"),
        ((("cloud", "gcp"), ("region", "eu")), "1.0"),
    ]
    [charge] = by_region.charges_usage
    assert [(b.presentation_by, b.units) for b in charge.presentation_breakdowns.__root__] == [
        ({"region": "eu"}, "1.0"),
        ({"region": "us"}, "1.0"),
    ]


def test_client_deprecated_filter_by_group_narrows_the_groups(lago, billing):
    metric = billing.metric("calls", "count_agg")
    billing.charge(metric, properties={"amount": "1", "pricing_group_keys": ["team"]})
    lago.events.batch_create(
        BatchEvent(
            events=[
                Event(
                    transaction_id=f"c{i}",
                    external_subscription_id="sub_1",
                    code="calls",
                    timestamp=unix("2022-03-05T00:00:00"),
                    properties={"team": team},
                )
                for i, team in enumerate(["a", "a", "b"])
            ]
        )
    )
    with (
        time_machine.travel(at("2022-03-20T00:00:00"), tick=False),
        pytest.warns(DeprecationWarning, match="filter_by_group"),
    ):
        usage = lago.customers.current_usage("cust_1", "sub_1", filter_by_group={"team": "a"})
    [charge] = usage.charges_usage
    assert [(g.grouped_by, g.units) for g in charge.grouped_usage] == [({"team": "a"}, "2.0")]
    assert usage.amount_cents == 200


def test_malformed_filter_by_group_is_a_422(api, billing):
    response = api.get(
        "/api/v1/customers/cust_1/current_usage",
        {"external_subscription_id": "sub_1", "filter_by_group": "team=a"},
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == {"filter_by_group": ["invalid_format"]}
