"""`current_usage`, `projected_usage` and `past_usage` (spec §25) and the usage engine's
selection rules (spec §4.2, §5.3, §7.12, §7.15)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from customers.models import Subscription
from invoicing.models import Fee, Invoice, InvoiceSubscription
from metering.usage import charge_usage, usage_window
from tests.metering.usage.conftest import at, make_billing
from tests.plans.factories import TaxFactory

pytestmark = pytest.mark.django_db

NOW = "2022-03-31T12:00:00"


def test_whole_body_of_a_current_usage_with_filters(billing):
    metric = billing.metric("transfers", "sum_agg", "amount", name="Transfers")
    billing.metric_filter(metric, "region", ["eu", "us"])
    charge = billing.charge(metric, properties={"amount": "1"}, invoice_display_name="Xfers")
    eu = billing.charge_filter(charge, {"region": ["eu"]}, {"amount": "2"}, name="Europe")
    billing.send("transfers", "2022-03-10", properties={"amount": 10, "region": "eu"})
    billing.send("transfers", "2022-03-11", properties={"amount": 5, "region": "us"})
    billing.send("transfers", "2022-03-12", properties={"amount": 1})
    assert billing.usage(NOW) == {
        "from_datetime": "2022-03-01T00:00:00Z",
        "to_datetime": "2022-03-31T23:59:59Z",
        "issuing_date": "2022-04-01",
        "lago_invoice_id": None,
        "currency": "EUR",
        "amount_cents": 2600,
        "taxes_amount_cents": 0,
        "total_amount_cents": 2600,
        "charges_usage": [
            {
                "units": "16.0",
                "total_aggregated_units": "16.0",
                "events_count": 3,
                "amount_cents": 2600,
                "pricing_unit_details": None,
                "amount_currency": "EUR",
                "charge": {
                    "lago_id": str(charge.pk),
                    "code": charge.code,
                    "charge_model": "standard",
                    "invoice_display_name": "Xfers",
                },
                "billable_metric": {
                    "lago_id": str(metric.pk),
                    "name": "Transfers",
                    "code": "transfers",
                    "aggregation_type": "sum_agg",
                },
                "filters": [
                    {
                        "units": "10.0",
                        "total_aggregated_units": "10.0",
                        "events_count": 1,
                        "amount_cents": 2000,
                        "pricing_unit_details": None,
                        "invoice_display_name": "Europe",
                        "values": {"region": ["eu"]},
                        "presentation_breakdowns": [],
                    },
                    {
                        "units": "6.0",
                        "total_aggregated_units": "6.0",
                        "events_count": 2,
                        "amount_cents": 600,
                        "pricing_unit_details": None,
                        "invoice_display_name": None,
                        "values": None,
                        "presentation_breakdowns": [],
                    },
                ],
                "grouped_usage": [],
                "presentation_breakdowns": [],
            }
        ],
    }
    assert eu.pk  # the filter's fee is the first


def test_events_before_the_start_and_after_the_termination_are_ignored(api, organization):
    billing = make_billing(api, organization, started_at="2022-03-10T12:00:00")
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric)
    billing.send("calls", "2022-03-10T11:59:59")  # before the start instant
    billing.send("calls", "2022-03-10T12:00:00")
    billing.send("calls", "2022-03-20T00:00:00")
    billing.send("calls", "2022-03-25T00:00:00")
    assert billing.charge_usage(NOW, charge)["events_count"] == 3
    Subscription.objects.filter(pk=billing.subscription.pk).update(
        status="terminated", terminated_at=at("2022-03-21T00:00:00")
    )
    billing.subscription.refresh_from_db()
    window = usage_window(subscription=billing.subscription, at=at(NOW))
    [usage] = charge_usage(subscription=billing.subscription, charge=charge, window=window)
    assert (usage.events_count, usage.units) == (2, Decimal(2))


def test_late_events_count_in_the_period_of_their_timestamp(billing):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric)
    billing.send("calls", "2022-02-28T23:00:00")  # before the start: never counted
    billing.send("calls", "2022-03-02T00:00:00")
    with time_machine.travel(at("2022-04-05"), tick=False):
        billing.send("calls", "2022-03-31T23:59:59")  # sent in April, belongs to March
    billing.send("calls", "2022-04-01T00:00:00")
    march = usage_window(subscription=billing.subscription, at=at("2022-03-15"))
    [usage] = charge_usage(subscription=billing.subscription, charge=charge, window=march)
    assert usage.events_count == 2
    assert billing.charge_usage("2022-04-10", charge)["events_count"] == 1


def test_event_in_the_last_second_of_the_period_belongs_to_it(billing):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric)
    billing.send("calls", 1648771199.5)  # 2022-03-31T23:59:59.5Z
    assert billing.charge_usage(NOW, charge)["events_count"] == 1
    assert billing.charge_usage("2022-04-02", charge)["events_count"] == 0


def test_recurring_sum_carries_over_to_the_next_period(billing):
    metric = billing.metric("seats", "sum_agg", "seats", recurring=True)
    charge = billing.charge(metric, properties={"amount": "10"})
    billing.send("seats", "2022-03-05", properties={"seats": 3})
    billing.send("seats", "2022-04-05", properties={"seats": -1})
    usage = billing.charge_usage("2022-04-20", charge)
    assert (usage["units"], usage["events_count"], usage["amount_cents"]) == ("2.0", 1, 2000)


def test_v54_prorated_seat_in_a_31_day_month(api, organization):
    billing = make_billing(api, organization, started_at="2022-06-01")
    metric = billing.metric("seats", "sum_agg", "seats", recurring=True)
    charge = billing.charge(metric, properties={"amount": "10"}, prorated=True)
    billing.send("seats", "2022-07-10T09:00:00", properties={"seats": 1})
    usage = billing.charge_usage("2022-07-20", charge)
    # spec §7.15: 10 x 22/31 = 7.0968 -> 710; current usage shows the full units
    assert (usage["units"], usage["amount_cents"]) == ("1.0", 710)


def test_charge_without_default_price_prices_unfiltered_events_at_zero(billing):
    metric = billing.metric("transfers", "sum_agg", "amount")
    billing.metric_filter(metric, "region", ["eu"])
    charge = billing.charge(metric, properties={})
    billing.charge_filter(charge, {"region": ["eu"]}, {"amount": "2"})
    billing.send("transfers", "2022-03-10", properties={"amount": 10, "region": "eu"})
    billing.send("transfers", "2022-03-10", properties={"amount": 7})
    usage = billing.charge_usage(NOW, charge)
    assert [(f["units"], f["amount_cents"]) for f in usage["filters"]] == [
        ("10.0", 2000),
        ("7.0", 0),
    ]


def test_most_specific_filter_wins(billing):
    metric = billing.metric("calls", "count_agg")
    billing.metric_filter(metric, "region", ["eu", "us"])
    billing.metric_filter(metric, "tier", ["gold", "silver"])
    charge = billing.charge(metric, properties={"amount": "1"})
    region = billing.charge_filter(charge, {"region": ["eu"]}, {"amount": "2"})
    both = billing.charge_filter(charge, {"region": ["eu"], "tier": ["gold"]}, {"amount": "5"})
    billing.send("calls", "2022-03-10", properties={"region": "eu", "tier": "gold"})
    billing.send("calls", "2022-03-10", properties={"region": "eu", "tier": "silver"})
    usage = billing.charge_usage(NOW, charge)
    by_values = {
        str(f["values"] and sorted(f["values"].items())): f["amount_cents"]
        for f in usage["filters"]
    }
    assert by_values == {
        str(sorted(region.values.items())): 200,
        str(sorted(both.values.items())): 500,
        "None": 0,
    }


def test_apply_taxes_false_and_charge_selection(billing):
    tax = TaxFactory(organization=billing.organization, rate="10")
    billing.customer.taxes.add(tax)
    calls = billing.metric("calls", "count_agg")
    other = billing.metric("other", "count_agg")
    calls_charge = billing.charge(calls, properties={"amount": "1"})
    billing.charge(other, properties={"amount": "3"})
    billing.send("calls", "2022-03-10")
    billing.send("other", "2022-03-10")
    taxed = billing.usage(NOW)
    assert (taxed["amount_cents"], taxed["taxes_amount_cents"], taxed["total_amount_cents"]) == (
        400,
        40,
        440,
    )
    untaxed = billing.usage(NOW, apply_taxes="false")
    assert (untaxed["taxes_amount_cents"], untaxed["total_amount_cents"]) == (0, 400)
    only = billing.usage(NOW, charge_code=calls_charge.code)
    assert [c["charge"]["code"] for c in only["charges_usage"]] == [calls_charge.code]
    assert only["amount_cents"] == 100
    by_metric = billing.usage(NOW, billable_metric_code="other")
    assert by_metric["amount_cents"] == 300


def test_group_filter_narrows_grouped_usage(billing):
    metric = billing.metric("calls", "count_agg")
    billing.charge(metric, properties={"amount": "1", "pricing_group_keys": ["region"]})
    billing.send("calls", "2022-03-10", properties={"region": "eu"})
    billing.send("calls", "2022-03-10", properties={"region": "us"})
    billing.send("calls", "2022-03-10")
    usage = billing.usage(NOW, **{"group[region]": "eu"})
    assert usage["amount_cents"] == 100
    [grouped] = usage["charges_usage"][0]["grouped_usage"]
    assert grouped["grouped_by"] == {"region": "eu"}


def test_projected_usage_extrapolates_the_elapsed_share(billing):
    metric = billing.metric("calls", "count_agg")
    billing.charge(metric, properties={"amount": "1"})
    for _ in range(10):
        billing.send("calls", "2022-03-05")
    with time_machine.travel(at("2022-03-10T12:00:00"), tick=False):
        response = billing.api.get(
            "/api/v1/customers/cust_1/projected_usage", {"external_subscription_id": "sub_1"}
        )
    body = response.json()["customer_projected_usage"]
    # 10 days of 31 elapsed: 10 units -> 31 projected
    charge_usage_body = body["charges_usage"][0]
    assert (charge_usage_body["units"], charge_usage_body["projected_units"]) == ("10.0", "31.0")
    assert (body["amount_cents"], body["projected_amount_cents"]) == (1000, 3100)


def test_current_usage_needs_an_active_subscription_of_the_customer(billing, api):
    response = api.get("/api/v1/customers/cust_1/current_usage", {"external_subscription_id": "x"})
    assert response.status_code == 405
    assert response.json()["code"] == "no_active_subscription"
    missing = api.get("/api/v1/customers/nobody/current_usage", {"external_subscription_id": "x"})
    assert missing.status_code == 404
    assert missing.json()["code"] == "customer_not_found"


def test_other_tenants_usage_is_not_found(billing, other_api):
    response = other_api.get(
        "/api/v1/customers/cust_1/current_usage", {"external_subscription_id": "sub_1"}
    )
    assert response.status_code == 404


def test_usage_of_one_tenant_never_counts_another_tenants_events(
    billing, other_api, other_organization
):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric)
    other = make_billing(other_api, other_organization, customer_id="cust_1")
    other.metric("calls", "count_agg")
    other.send("calls", "2022-03-10")  # same external subscription id, other tenant
    billing.send("calls", "2022-03-10")
    assert billing.charge_usage(NOW, charge)["events_count"] == 1


def test_usage_needs_the_customer_usage_permission(billing):
    from billing.services import api_key_create
    from tests.conftest import client_for

    _, raw = api_key_create(
        organization=billing.organization, name="events only", permissions={"event": ["write"]}
    )
    response = client_for(raw).get(
        "/api/v1/customers/cust_1/current_usage", {"external_subscription_id": "sub_1"}
    )
    assert response.status_code == 403


def test_current_usage_reads_a_bounded_number_of_queries(billing, django_assert_max_num_queries):
    for i in range(5):
        metric = billing.metric(f"m{i}", "sum_agg", "v")
        billing.charge(metric)
        billing.send(f"m{i}", "2022-03-10", properties={"v": 1})
    with django_assert_max_num_queries(22):
        billing.usage(NOW)


# --- past usage ------------------------------------------------------------------------------


def test_past_usage_is_empty_before_any_invoice(billing, api):
    response = api.get("/api/v1/customers/cust_1/past_usage", {"external_subscription_id": "sub_1"})
    assert response.status_code == 200
    assert response.json() == {
        "usage_periods": [],
        "meta": {
            "current_page": 1,
            "next_page": None,
            "prev_page": None,
            "total_pages": 0,
            "total_count": 0,
        },
    }


def test_past_usage_needs_the_subscription(billing, api):
    response = api.get("/api/v1/customers/cust_1/past_usage")
    assert response.status_code == 422
    unknown = api.get("/api/v1/customers/cust_1/past_usage", {"external_subscription_id": "x"})
    assert unknown.status_code == 404


def test_past_usage_reads_the_charge_fees_of_finalized_invoices(billing, api):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric, properties={"amount": "2"})
    invoice = Invoice.objects.create(
        organization=billing.organization,
        billing_entity=billing.customer.billing_entity,
        customer=billing.customer,
        invoice_type="subscription",
        status="finalized",
        issuing_date=dt.date(2022, 4, 1),
        payment_due_date=dt.date(2022, 4, 1),
        currency="EUR",
    )
    InvoiceSubscription.objects.create(
        organization=billing.organization,
        invoice=invoice,
        subscription=billing.subscription,
        invoicing_reason="subscription_periodic",
        from_datetime=at("2022-03-01"),
        to_datetime=at("2022-03-31T23:59:59"),
        charges_from_datetime=at("2022-03-01"),
        charges_to_datetime=at("2022-03-31T23:59:59"),
        timestamp=at("2022-04-01"),
    )
    Fee.objects.create(
        organization=billing.organization,
        invoice=invoice,
        customer=billing.customer,
        subscription=billing.subscription,
        charge=charge,
        fee_type="charge",
        amount_cents=600,
        amount_currency="EUR",
        units=3,
        events_count=3,
        taxes_amount_cents=120,
    )
    body = api.get(
        "/api/v1/customers/cust_1/past_usage", {"external_subscription_id": "sub_1"}
    ).json()
    [period] = body["usage_periods"]
    assert {k: period[k] for k in ("from_datetime", "to_datetime", "issuing_date")} == {
        "from_datetime": "2022-03-01T00:00:00Z",
        "to_datetime": "2022-03-31T23:59:59Z",
        "issuing_date": "2022-04-01",
    }
    assert (period["lago_invoice_id"], period["amount_cents"], period["total_amount_cents"]) == (
        str(invoice.pk),
        600,
        720,
    )
    assert [(c["units"], c["amount_cents"]) for c in period["charges_usage"]] == [("3.0", 600)]
    assert body["meta"]["total_count"] == 1
