"""Pay-in-advance charges (spec §7.14, vectors C): events posted to `/events` bill a fee each,
after commit, through the Celery task (eager in tests)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import OutboxEvent
from invoicing.models import Fee, FeeAppliedTax
from invoicing.tasks import in_advance_fees_create_task
from tests.metering.usage.conftest import make_billing
from tests.plans.factories import TaxFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing(api, organization):
    """V44's subscription: created 2023-01-24, calendar monthly."""
    return make_billing(api, organization, started_at="2023-01-24")


@pytest.fixture
def send(billing, django_capture_on_commit_callbacks):
    """Post one event and run what ingestion triggers after commit (the in-advance task)."""

    def post(code, timestamp, **event):
        with django_capture_on_commit_callbacks(execute=True):
            return billing.send(code, timestamp, **event)

    return post


def fees(charge):
    return [
        (fee.units, fee.amount_cents)
        for fee in Fee.objects.filter(charge=charge).order_by("properties__timestamp", "created_at")
    ]


def units(*values):
    return [(Decimal(u), c) for u, c in values]


def test_v44_in_advance_standard_on_count_bills_each_event(billing, send):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric, properties={"amount": "10"}, pay_in_advance=True)
    send("calls", "2023-02-15T10:00:00")
    send("calls", "2023-02-17T10:00:00")
    assert fees(charge) == units((1, 1000), (1, 1000))
    fee = Fee.objects.filter(charge=charge).first()
    assert fee.invoice is not None  # invoiceable: its own in_advance_charge invoice (§7.14)
    assert fee.pay_in_advance
    assert fee.invoiceable
    assert fee.subscription == billing.subscription
    assert fee.properties["charges_from_datetime"] == "2023-02-01T00:00:00Z"
    assert fee.properties["charges_to_datetime"] == "2023-02-28T23:59:59Z"


def test_v45_in_advance_sum_bills_only_above_the_period_maximum(billing, send):
    metric = billing.metric("storage", "sum_agg", "amount")
    charge = billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    send("storage", "2023-02-10T10:00:00", properties={"amount": 10})
    send("storage", "2023-02-11T10:00:00", properties={"amount": -4})
    send("storage", "2023-02-12T10:00:00", properties={"amount": 8})
    assert fees(charge) == units((10, 1000), (0, 0), (4, 400))


def test_v46_in_advance_filter_price(billing, send):
    metric = billing.metric("transfers", "sum_agg", "amount")
    billing.metric_filter(metric, "region", ["europe", "africa"])
    charge = billing.charge(metric, properties={"amount": "0"}, pay_in_advance=True)
    europe = billing.charge_filter(charge, {"region": ["europe"]}, {"amount": "20"})
    send("transfers", "2023-02-10T10:00:00", properties={"amount": 10, "region": "europe"})
    [fee] = Fee.objects.filter(charge=charge)
    assert (fee.charge_filter, fee.units, fee.amount_cents) == (europe, Decimal(10), 20000)


def test_v46_in_advance_event_matching_no_filter_uses_the_default_price(billing, send):
    metric = billing.metric("transfers", "sum_agg", "amount")
    billing.metric_filter(metric, "region", ["europe", "africa"])
    charge = billing.charge(metric, properties={"amount": "10"}, pay_in_advance=True)
    billing.charge_filter(charge, {"region": ["europe"]}, {"amount": "20"})
    send("transfers", "2023-02-10T10:00:00", properties={"amount": 10, "region": "africa"})
    [fee] = Fee.objects.filter(charge=charge)
    assert (fee.charge_filter, fee.units, fee.amount_cents) == (None, Decimal(10), 10000)


def test_v48_in_advance_package(billing, send):
    metric = billing.metric("storage", "sum_agg", "amount")
    charge = billing.charge(
        metric,
        "package",
        properties={"amount": "100", "free_units": 3, "package_size": 2},
        pay_in_advance=True,
    )
    for day, value in ((10, 3), (11, 1), (12, 2)):
        send("storage", f"2023-02-{day}T10:00:00", properties={"amount": value})
    assert fees(charge) == units((3, 0), (1, 10000), (2, 10000))


def test_v49_in_advance_graduated(billing, send):
    metric = billing.metric("storage", "sum_agg", "amount")
    charge = billing.charge(
        metric,
        "graduated",
        properties={
            "graduated_ranges": [
                {"from_value": 0, "to_value": 5, "per_unit_amount": "0.02", "flat_amount": "0.01"},
                {
                    "from_value": 6,
                    "to_value": None,
                    "per_unit_amount": "0.01",
                    "flat_amount": "0.01",
                },
            ]
        },
        pay_in_advance=True,
    )
    for day, value in ((10, 3), (11, 1), (12, 2)):
        send("storage", f"2023-02-{day}T10:00:00", properties={"amount": value})
    assert fees(charge) == units((3, 7), (1, 2), (2, 4))


def test_v50_in_advance_percentage_with_free_events(billing, send):
    metric = billing.metric("payments", "sum_agg", "amount")
    charge = billing.charge(
        metric,
        "percentage",
        properties={"rate": "5", "fixed_amount": "1", "free_units_per_events": 2},
        pay_in_advance=True,
    )
    for day, value in ((10, 8), (11, 5), (12, 3)):
        send("payments", f"2023-02-{day}T10:00:00", properties={"amount": value})
    assert [c for _, c in fees(charge)] == [0, 0, 115]


def test_v32_in_advance_graduated_percentage_consecutive_transactions(billing, send):
    metric = billing.metric("payments", "sum_agg", "amount")
    charge = billing.charge(
        metric,
        "graduated_percentage",
        properties={
            "graduated_percentage_ranges": [
                {"from_value": 0, "to_value": 1000, "rate": "1", "flat_amount": "200"},
                {"from_value": 1001, "to_value": 10000, "rate": "2", "flat_amount": "300"},
                {"from_value": 10001, "to_value": None, "rate": "3", "flat_amount": "400"},
            ]
        },
        pay_in_advance=True,
    )
    for day, value in ((10, 500), (11, 550), (12, 4000)):
        send("payments", f"2023-02-{day}T10:00:00", properties={"amount": value})
    assert [c for _, c in fees(charge)] == [20500, 30600, 8000]


def test_v52_in_advance_prorated_seats(api, organization, django_capture_on_commit_callbacks):
    billing = make_billing(
        api, organization, started_at="2024-06-05", plan_fields={"pay_in_advance": True}
    )
    metric = billing.metric("seats", "unique_count_agg", "seat_id", recurring=True)
    charge = billing.charge(metric, properties={"amount": "30"}, pay_in_advance=True, prorated=True)
    for i in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            billing.send("seats", f"2024-06-{10 + i}T09:00:00", properties={"seat_id": f"s{i}"})
    assert [c for _, c in fees(charge)] == [2100, 2000, 1900]
    assert [u for u, _ in fees(charge)] == [Decimal(1)] * 3


def test_re_adding_a_seat_within_the_period_maximum_is_free(billing, send):
    metric = billing.metric("seats", "unique_count_agg", "seat_id")
    charge = billing.charge(metric, properties={"amount": "5"}, pay_in_advance=True)
    send("seats", "2023-02-10T10:00:00", properties={"seat_id": "a"})
    send("seats", "2023-02-11T10:00:00", properties={"seat_id": "a", "operation_type": "remove"})
    send("seats", "2023-02-12T10:00:00", properties={"seat_id": "b"})
    send("seats", "2023-02-13T10:00:00", properties={"seat_id": "c"})
    assert fees(charge) == units((1, 500), (0, 0), (0, 0), (1, 500))


def test_task_run_twice_creates_one_fee(billing, send):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric, properties={"amount": "10"}, pay_in_advance=True)
    send("calls", "2023-02-15T10:00:00", transaction_id="tx_once")
    args = (str(billing.organization.id), "sub_1", "tx_once")
    assert in_advance_fees_create_task.apply(args=args).result == 0
    assert in_advance_fees_create_task.apply(args=args).result == 0
    assert fees(charge) == units((1, 1000))


def test_fee_carries_the_charge_taxes(billing, send):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric, properties={"amount": "10"}, pay_in_advance=True)
    charge.taxes.add(TaxFactory(organization=billing.organization, code="vat", rate="20"))
    send("calls", "2023-02-15T10:00:00")
    fee = Fee.objects.get(charge=charge)
    assert (fee.taxes_amount_cents, fee.taxes_rate) == (200, Decimal(20))
    applied = FeeAppliedTax.objects.get(fee=fee)
    assert (applied.tax_code, applied.amount_cents) == ("vat", 200)


def test_non_invoiceable_fee_records_the_fee_created_webhook(billing, send):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(
        metric, properties={"amount": "10"}, pay_in_advance=True, invoiceable=False
    )
    send("calls", "2023-02-15T10:00:00")
    fee = Fee.objects.get(charge=charge)
    assert not fee.invoiceable
    outbox = OutboxEvent.objects.get(event_type="fee.created")
    assert outbox.object_id == str(fee.pk)


def test_events_outside_the_subscription_life_bill_nothing(billing, send):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric, properties={"amount": "10"}, pay_in_advance=True)
    send("calls", "2023-01-20T10:00:00")  # before the start (2023-01-24)
    assert fees(charge) == []


def test_in_arrears_charges_bill_no_fee_per_event(billing, send):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric, properties={"amount": "10"})
    send("calls", "2023-02-15T10:00:00")
    assert fees(charge) == []


def test_current_usage_shows_in_advance_charges_at_their_billed_amount(billing, send):
    metric = billing.metric("storage", "sum_agg", "amount")
    charge = billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    send("storage", "2023-02-10T10:00:00", properties={"amount": 10})
    send("storage", "2023-02-11T10:00:00", properties={"amount": -4})
    usage = billing.charge_usage("2023-02-20T00:00:00", charge)
    # units are the period's sum, the amount what the period maximum billed (spec §25)
    assert (usage["units"], usage["amount_cents"]) == ("6.0", 1000)


def test_same_timestamp_events_bill_in_id_order(billing, django_capture_on_commit_callbacks):
    metric = billing.metric("payments", "sum_agg", "amount")
    charge = billing.charge(
        metric,
        "percentage",
        properties={"rate": "5", "fixed_amount": "1", "free_units_per_events": 2},
        pay_in_advance=True,
    )
    events = [
        {
            "transaction_id": f"tx_{i}",
            "external_subscription_id": "sub_1",
            "code": "payments",
            "timestamp": 1676023200,
            "properties": {"amount": value},
        }
        for i, value in enumerate((8, 5, 3))
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = billing.api.post("/api/v1/events/batch", {"events": events}, format="json")
    assert response.status_code == 200
    by_transaction = {
        f.pay_in_advance_event_transaction_id: f.amount_cents
        for f in Fee.objects.filter(charge=charge)
    }
    assert by_transaction == {"tx_0": 0, "tx_1": 0, "tx_2": 115}
