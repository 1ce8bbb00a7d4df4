"""Presentation group keys (spec §7.13, vector V8): the units of each fee split by up to two event
properties, without changing the price; in `current_usage` (charge, filter and group levels),
on the invoice's fees and on pay-in-advance fees."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
import time_machine

from invoicing.models import Fee
from invoicing.pdf import render_invoice_pdf
from metering.presentation import (
    PresentationBreakdown,
    breakdowns_payload,
    displayed_on_invoice,
    merge,
    presentation_keys,
)
from tests.invoicing.billing_helpers import bill, only_invoice
from tests.invoicing.test_pdf import pdf_text
from tests.metering.usage.conftest import at, make_billing

ROUND_5 = {"rounding_function": "round", "rounding_precision": 5}
REGION = [{"value": "region"}]


def _by(rows: list[dict]) -> dict[tuple, str]:
    return {tuple(sorted(r["presentation_by"].items())): r["units"] for r in rows}


# --------------------------------------------------------------------------------------------
# Pure helpers


def test_presentation_keys_prefer_the_filter_properties_then_the_charge():
    charge = {"presentation_group_keys": [{"value": "cloud"}]}
    assert presentation_keys({}, charge) == ("cloud",)
    assert presentation_keys({"presentation_group_keys": [{"value": "zone"}]}, charge) == ("zone",)
    assert presentation_keys(None, {}) == ()


@pytest.mark.parametrize(
    ("keys", "shown"),
    [
        ([{"value": "cloud"}], True),
        ([{"value": "cloud", "options": {"display_in_invoice": False}}], False),
        (
            [
                {"value": "cloud", "options": {"display_in_invoice": False}},
                {"value": "zone", "options": {"display_in_invoice": True}},
            ],
            True,
        ),
        ([], False),
    ],
)
def test_display_in_invoice_option(keys, shown):
    assert displayed_on_invoice({"presentation_group_keys": keys}) is shown


def test_merge_adds_units_per_values_and_puts_missing_values_last():
    rows = [
        PresentationBreakdown({"cloud": None}, Decimal("1")),
        PresentationBreakdown({"cloud": "gcp"}, Decimal("0.5")),
        PresentationBreakdown({"cloud": "aws"}, Decimal("1.2")),
        PresentationBreakdown({"cloud": "aws"}, Decimal("0.3")),
    ]
    assert breakdowns_payload(merge(rows)) == [
        {"presentation_by": {"cloud": "aws"}, "units": "1.5"},
        {"presentation_by": {"cloud": "gcp"}, "units": "0.5"},
        {"presentation_by": {"cloud": None}, "units": "1.0"},
    ]


# --------------------------------------------------------------------------------------------
# current_usage


@pytest.mark.django_db
def test_v8_weighted_sum_breakdown_per_region(billing):
    metric = billing.metric(
        "gb", "weighted_sum_agg", "value", weighted_interval="seconds", **ROUND_5
    )
    charge = billing.charge(metric, properties={"amount": "100", "presentation_group_keys": REGION})
    billing.send_many(
        "gb",
        [
            ("2023-08-01T00:00:00", {"value": 2, "region": "eu"}),
            ("2023-08-01T01:00:00", {"value": 3, "region": "us"}),
            ("2023-08-01T02:00:00", {"value": -1, "region": "eu"}),
        ],
    )
    billing.subscription.started_at = billing.subscription.subscription_at = at("2023-08-01")
    billing.subscription.save(update_fields=["started_at", "subscription_at"])

    usage = billing.charge_usage("2023-08-31T12:00:00", charge)

    assert _by(usage["presentation_breakdowns"]) == {
        (("region", "eu"),): "1.00269",
        (("region", "us"),): "2.99597",
    }
    # pricing is unchanged: the whole charge, not a fee per region
    assert usage["grouped_usage"] == []
    assert usage["units"] == "3.99866"


@pytest.mark.django_db
def test_sum_breakdowns_add_up_to_the_units(billing):
    metric = billing.metric("storage", "sum_agg", "gb")
    charge = billing.charge(metric, properties={"amount": "2", "presentation_group_keys": REGION})
    billing.send_many(
        "storage",
        [
            ("2022-03-02", {"gb": 4, "region": "eu"}),
            ("2022-03-03", {"gb": 6, "region": "us"}),
            ("2022-03-04", {"gb": 1.5, "region": "eu"}),
            ("2022-03-05", {"gb": 2}),
        ],
    )

    usage = billing.charge_usage("2022-03-20T00:00:00", charge)

    assert (usage["units"], usage["amount_cents"]) == ("13.5", 2700)
    assert usage["presentation_breakdowns"] == [
        {"presentation_by": {"region": "eu"}, "units": "5.5"},
        {"presentation_by": {"region": "us"}, "units": "6.0"},
        {"presentation_by": {"region": None}, "units": "2.0"},
    ]


@pytest.mark.django_db
def test_each_pricing_group_has_its_own_breakdowns_and_the_charge_adds_them(billing):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(
        metric,
        properties={
            "amount": "1",
            "pricing_group_keys": ["team"],
            "presentation_group_keys": [{"value": "region"}, {"value": "cloud"}],
        },
    )
    billing.send_many(
        "calls",
        [
            ("2022-03-02", {"team": "a", "region": "eu", "cloud": "aws"}),
            ("2022-03-03", {"team": "a", "region": "eu", "cloud": "aws"}),
            ("2022-03-04", {"team": "a", "region": "us", "cloud": "gcp"}),
            ("2022-03-05", {"team": "b", "region": "eu", "cloud": "aws"}),
        ],
    )

    usage = billing.charge_usage("2022-03-20T00:00:00", charge)

    groups = {
        g["grouped_by"]["team"]: _by(g["presentation_breakdowns"]) for g in usage["grouped_usage"]
    }
    assert groups == {
        "a": {
            (("cloud", "aws"), ("region", "eu")): "2.0",
            (("cloud", "gcp"), ("region", "us")): "1.0",
        },
        "b": {(("cloud", "aws"), ("region", "eu")): "1.0"},
    }
    assert _by(usage["presentation_breakdowns"]) == {
        (("cloud", "aws"), ("region", "eu")): "3.0",
        (("cloud", "gcp"), ("region", "us")): "1.0",
    }


@pytest.mark.django_db
def test_charge_filters_carry_their_breakdowns(billing):
    metric = billing.metric("calls", "count_agg")
    billing.metric_filter(metric, "method", ["get", "post"])
    charge = billing.charge(metric, properties={"amount": "1", "presentation_group_keys": REGION})
    billing.charge_filter(charge, {"method": ["post"]}, {"amount": "5"})
    billing.send_many(
        "calls",
        [
            ("2022-03-02", {"method": "post", "region": "eu"}),
            ("2022-03-03", {"method": "post", "region": "us"}),
            ("2022-03-04", {"method": "get", "region": "eu"}),
        ],
    )

    usage = billing.charge_usage("2022-03-20T00:00:00", charge)

    filters = {
        (f["values"] or {}).get("method", ("default",))[0]: _by(f["presentation_breakdowns"])
        for f in usage["filters"]
    }
    assert filters == {
        "post": {(("region", "eu"),): "1.0", (("region", "us"),): "1.0"},
        "default": {(("region", "eu"),): "1.0"},
    }
    assert (usage["amount_cents"], _by(usage["presentation_breakdowns"])) == (
        1100,
        {(("region", "eu"),): "2.0", (("region", "us"),): "1.0"},
    )


@pytest.mark.django_db
def test_charges_without_presentation_keys_have_no_breakdowns(billing):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric)
    billing.send("calls", "2022-03-02", properties={"region": "eu"})

    assert billing.charge_usage("2022-03-20T00:00:00", charge)["presentation_breakdowns"] == []


# --------------------------------------------------------------------------------------------
# Fees


@pytest.mark.django_db
def test_invoice_fees_carry_the_breakdowns(api, organization, settings):
    settings.INVOICE_PDF_ON_FINALIZE = False
    billing = make_billing(api, organization)
    metric = billing.metric("storage", "sum_agg", "gb")
    charge = billing.charge(metric, properties={"amount": "2", "presentation_group_keys": REGION})
    billing.send_many(
        "storage",
        [("2022-03-02", {"gb": 4, "region": "eu"}), ("2022-03-03", {"gb": 6, "region": "us"})],
    )

    with time_machine.travel(at("2022-04-01T12:00:00"), tick=False):
        invoice = only_invoice(bill(billing.customer, date(2022, 4, 1)))
    fee = Fee.objects.get(invoice=invoice, charge=charge)
    assert fee.presentation_breakdowns == [
        {"presentation_by": {"region": "eu"}, "units": "4.0"},
        {"presentation_by": {"region": "us"}, "units": "6.0"},
    ]

    body = api.get(f"/api/v1/fees/{fee.pk}").json()["fee"]
    assert body["presentation_breakdowns"] == fee.presentation_breakdowns


def _in_advance_storage(api, organization, capture, *events: tuple[str, dict]):
    """A pay-in-advance sum charge presenting its units per region; `events` sent and billed
    (the in-advance task runs after commit, eagerly)."""
    billing = make_billing(api, organization, started_at="2023-01-24")
    metric = billing.metric("storage", "sum_agg", "gb")
    charge = billing.charge(
        metric,
        properties={"amount": "1", "presentation_group_keys": REGION},
        pay_in_advance=True,
    )
    with time_machine.travel(at("2023-02-15T10:00:00"), tick=False), capture(execute=True):
        for timestamp, properties in events:
            billing.send("storage", timestamp, properties=properties)
    return charge


@pytest.mark.django_db
def test_pay_in_advance_fee_carries_the_event_presentation_values(
    api, organization, django_capture_on_commit_callbacks, settings
):
    settings.INVOICE_PDF_ON_FINALIZE = False
    charge = _in_advance_storage(
        api,
        organization,
        django_capture_on_commit_callbacks,
        ("2023-02-15T10:00:00", {"gb": 3, "region": "eu"}),
    )

    fee = Fee.objects.get(charge=charge)
    assert fee.presentation_breakdowns == [{"presentation_by": {"region": "eu"}, "units": "3.0"}]


@pytest.mark.django_db
def test_pay_in_advance_breakdown_is_the_event_value_not_the_billed_increase(
    api, organization, django_capture_on_commit_callbacks, settings
):
    # Lago: pay_in_advance_breakdowns carry the event's value; a sum going back under its
    # period maximum bills 0 but still shows the event's -2
    settings.INVOICE_PDF_ON_FINALIZE = False
    charge = _in_advance_storage(
        api,
        organization,
        django_capture_on_commit_callbacks,
        ("2023-02-15T10:00:00", {"gb": 3, "region": "eu"}),
        ("2023-02-15T11:00:00", {"gb": -2, "region": "us"}),
    )

    fee = Fee.objects.get(charge=charge, amount_cents=0)
    assert fee.presentation_breakdowns == [{"presentation_by": {"region": "us"}, "units": "-2.0"}]


def _bill_storage(api, organization, presentation_keys: list[dict]):
    billing = make_billing(api, organization)
    metric = billing.metric("storage", "sum_agg", "gb")
    billing.charge(metric, properties={"amount": "2", "presentation_group_keys": presentation_keys})
    billing.send_many(
        "storage",
        [("2022-03-02", {"gb": 4, "region": "eu"}), ("2022-03-03", {"gb": 6, "region": "us"})],
    )
    with time_machine.travel(at("2022-04-01T12:00:00"), tick=False):
        return only_invoice(bill(billing.customer, date(2022, 4, 1)))


@pytest.mark.django_db
def test_pdf_lists_the_breakdowns_under_the_fee(api, organization, settings):
    settings.INVOICE_PDF_ON_FINALIZE = False
    invoice = _bill_storage(api, organization, REGION)

    text, pages = pdf_text(render_invoice_pdf(invoice))

    assert pages == 1
    assert re.search(r"eu · Qty 4\b", text)
    assert re.search(r"us · Qty 6\b", text)


@pytest.mark.django_db
def test_pdf_hides_the_breakdowns_when_not_displayed_in_invoice(api, organization, settings):
    settings.INVOICE_PDF_ON_FINALIZE = False
    hidden = [{"value": "region", "options": {"display_in_invoice": False}}]
    invoice = _bill_storage(api, organization, hidden)

    text, _ = pdf_text(render_invoice_pdf(invoice))

    assert "Qty 4" not in text
    # the API still returns them
    [fee] = Fee.objects.filter(invoice=invoice, fee_type="charge")
    assert len(fee.presentation_breakdowns) == 2


@pytest.mark.django_db
def test_filter_by_presentation_keeps_the_named_keys_and_recounts_unique_values(billing):
    # a user seen in two clouds of one region is one user of that region, not two
    metric = billing.metric("users", "unique_count_agg", "user")
    charge = billing.charge(
        metric,
        properties={
            "amount": "1",
            "presentation_group_keys": [{"value": "region"}, {"value": "cloud"}],
        },
    )
    billing.send_many(
        "users",
        [
            ("2022-03-02", {"user": "ann", "region": "eu", "cloud": "aws"}),
            ("2022-03-03", {"user": "ann", "region": "eu", "cloud": "gcp"}),
            ("2022-03-04", {"user": "bob", "region": "us", "cloud": "aws"}),
        ],
    )

    usage = billing.usage("2022-03-20T00:00:00", **{"filter_by_presentation[]": "region"})
    [found] = [c for c in usage["charges_usage"] if c["charge"]["lago_id"] == str(charge.pk)]

    assert found["presentation_breakdowns"] == [
        {"presentation_by": {"region": "eu"}, "units": "1.0"},
        {"presentation_by": {"region": "us"}, "units": "1.0"},
    ]
    both = billing.charge_usage("2022-03-20T00:00:00", charge)["presentation_breakdowns"]
    assert len(both) == 3


@pytest.mark.django_db
def test_invoice_admin_page_lists_the_breakdowns_under_the_fee(
    api, organization, settings, admin_client
):
    settings.INVOICE_PDF_ON_FINALIZE = False
    invoice = _bill_storage(api, organization, REGION)

    page = admin_client.get(f"/admin/invoicing/invoice/{invoice.pk}/change/")

    assert page.status_code == 200
    assert "eu: 4.0 · us: 6.0" in page.content.decode()
