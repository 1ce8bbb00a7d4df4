"""Pay-in-advance charges (spec §7.14, vectors C): events posted to `/events` bill a fee each,
after commit, through the Celery task (eager in tests)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.models import OutboxEvent
from invoicing.models import Fee, FeeAppliedTax
from invoicing.tasks import in_advance_fees_create_task
from metering.store import EventInput, get_event_store
from tests.metering.usage.conftest import at, make_billing
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


def test_adding_a_seat_within_the_period_maximum_counts_it_free(billing, send):
    metric = billing.metric("seats", "unique_count_agg", "seat_id")
    charge = billing.charge(metric, properties={"amount": "5"}, pay_in_advance=True)
    send("seats", "2023-02-10T10:00:00", properties={"seat_id": "a"})
    send("seats", "2023-02-11T10:00:00", properties={"seat_id": "a", "operation_type": "remove"})
    send("seats", "2023-02-12T10:00:00", properties={"seat_id": "b"})
    send("seats", "2023-02-13T10:00:00", properties={"seat_id": "c"})
    assert fees(charge) == units((1, 500), (0, 0), (1, 0), (1, 500))


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "full-replay"])
def test_lago_in_advance_unique_count_scenario(billing, send, settings, cached):
    # Lago's `pay_in_advance_charges_spec.rb` "with unique_count_agg / standard": a unique id
    # removed then added again is counted (1 unit) but not billed again (0)
    settings.IN_ADVANCE_CACHED_AGGREGATIONS = cached
    metric = billing.metric("ids", "unique_count_agg", "unique_id")
    charge = billing.charge(
        metric, properties={"amount": "12"}, pay_in_advance=True, invoiceable=False
    )
    # stored beforehand and stamped later: a fee reads the period up to its own event only
    get_event_store().write_batch(
        billing.organization.id,
        [
            EventInput(
                transaction_id="tx_later",
                external_subscription_id="sub_1",
                code="ids",
                timestamp=at("2023-02-25T00:00:00"),
                properties={"unique_id": "id_1"},
                subscription_id=billing.subscription.pk,
                customer_id=billing.customer.pk,
            )
        ],
        now=at("2023-02-15T00:00:00"),
    )
    for day, unique_id, operation in (
        (15, "id_1", "add"),
        (16, "id_1", "remove"),
        (17, "id_1", "add"),  # removed on the 16th: counted again, the maximum 1 already billed
        (18, "id_2", "add"),
        (19, "id_2", "add"),  # already active
        (20, "id_3", "add"),
        (21, "id_3", "remove"),
    ):
        properties = {"unique_id": unique_id, "operation_type": operation}
        send("ids", f"2023-02-{day}T00:00:00", properties=properties)
    assert fees(charge) == units((1, 1200), (0, 0), (1, 0), (1, 1200), (0, 0), (1, 1200), (0, 0))
    assert {fee.events_count for fee in Fee.objects.filter(charge=charge)} == {1}


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


def _seats_billing(api, organization, *, prorated: bool, started_at: str):
    """Lago's `current_usage/.../unique_count_agg_spec.rb`: a plan of 0, a recurring unique
    count of `item_id`, calendar billing, UTC customer."""
    billing = make_billing(
        api, organization, started_at=started_at, plan_fields={"amount_cents": 0}
    )
    metric = billing.metric("seats", "unique_count_agg", "item_id", recurring=True)
    charge = billing.charge(
        metric, properties={"amount": "1"}, pay_in_advance=True, prorated=prorated
    )
    return billing, charge


def _shown(billing, charge, now: str) -> tuple[str, int, int]:
    usage = billing.usage(now)
    [shown] = [c for c in usage["charges_usage"] if c["charge"]["lago_id"] == str(charge.pk)]
    return shown["units"], shown["amount_cents"], usage["total_amount_cents"]


def _send_seat(billing, capture_on_commit, timestamp, **properties) -> None:
    """POST a `seats` event and run what its commit queues (the in-advance billing)."""
    with capture_on_commit(execute=True):
        billing.send("seats", timestamp, properties=properties)


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "full-replay"])
def test_current_usage_keeps_the_billed_prorated_seat_after_its_removal(
    api, organization, django_capture_on_commit_callbacks, settings, cached
):
    settings.IN_ADVANCE_CACHED_AGGREGATIONS = cached
    billing, charge = _seats_billing(
        api, organization, prorated=True, started_at="2024-02-23T01:00:00"
    )

    def send(timestamp, **properties):
        _send_seat(billing, django_capture_on_commit_callbacks, timestamp, **properties)

    send("2024-02-23T01:02:00", item_id="seat_1")
    # Feb 23..29 = 7 of 29 days: 0.24
    assert _shown(billing, charge, "2024-02-23T01:02:00") == ("1.0", 24, 24)
    send("2024-02-29T01:01:00", item_id="seat_1", operation_type="remove")
    assert _shown(billing, charge, "2024-02-29T01:01:00") == ("0.0", 24, 24)
    send("2024-02-29T01:02:00", item_id="seat_1", operation_type="remove")  # removed again
    assert _shown(billing, charge, "2024-02-29T01:02:00") == ("0.0", 24, 24)


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "full-replay"])
def test_current_usage_of_prorated_seats_is_what_their_fees_billed(
    api, organization, django_capture_on_commit_callbacks, settings, cached
):
    settings.IN_ADVANCE_CACHED_AGGREGATIONS = cached
    billing, charge = _seats_billing(
        api, organization, prorated=True, started_at="2024-02-01T00:00:00"
    )

    def send(timestamp, **properties):
        _send_seat(billing, django_capture_on_commit_callbacks, timestamp, **properties)

    send("2024-02-10T10:00:00", item_id="seat_1")  # Feb 10..29 = 20 of 29 days: 0.69
    send("2024-02-15T10:00:00", item_id="seat_1", operation_type="remove")
    # 6 days of use, but 20 days were billed in advance
    assert _shown(billing, charge, "2024-02-16T00:00:00") == ("0.0", 69, 69)
    send("2024-02-20T10:00:00", item_id="seat_1")  # back within the maximum: free
    assert _shown(billing, charge, "2024-02-21T00:00:00") == ("1.0", 69, 69)
    send("2024-02-25T10:00:00", item_id="seat_2")  # above it: Feb 25..29 = 5 days, 0.17
    assert _shown(billing, charge, "2024-02-26T00:00:00") == ("2.0", 86, 86)
    assert [c for _, c in fees(charge)] == [69, 0, 0, 17]


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "full-replay"])
def test_current_usage_keeps_the_billed_seat_after_its_removal(
    api, organization, django_capture_on_commit_callbacks, settings, cached
):
    settings.IN_ADVANCE_CACHED_AGGREGATIONS = cached
    billing, charge = _seats_billing(
        api, organization, prorated=False, started_at="2024-02-01T01:00:00"
    )

    def send(timestamp, **properties):
        _send_seat(billing, django_capture_on_commit_callbacks, timestamp, **properties)

    send("2024-02-23T01:02:00", item_id="seat_1")
    assert _shown(billing, charge, "2024-02-23T01:02:00") == ("1.0", 100, 100)
    send("2024-02-26T01:01:00", item_id="seat_1", operation_type="remove")
    assert _shown(billing, charge, "2024-02-26T01:01:00") == ("0.0", 100, 100)
    send("2024-02-26T01:01:00", item_id="seat_2")  # within the maximum already billed
    assert _shown(billing, charge, "2024-02-26T01:02:00") == ("1.0", 100, 100)


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "full-replay"])
def test_current_usage_of_grouped_prorated_seats_keeps_what_was_billed(
    api, organization, django_capture_on_commit_callbacks, settings, cached
):
    settings.IN_ADVANCE_CACHED_AGGREGATIONS = cached
    billing, charge = _seats_billing(
        api, organization, prorated=True, started_at="2024-02-01T00:00:00"
    )
    charge.properties = {"amount": "29", "pricing_group_keys": ["key_1", "key_2", "key_3"]}
    charge.save()
    group = {"key_1": "2024", "key_2": "Feb", "key_3": "06"}

    def send(timestamp, **properties):
        with django_capture_on_commit_callbacks(execute=True):
            billing.send("seats", timestamp, properties={"item_id": "001", **group, **properties})

    send("2024-02-01T01:00:00", operation_type="remove")  # never added: nothing to bill
    assert billing.usage("2024-02-01T01:00:00")["total_amount_cents"] == 0
    send("2024-02-01T01:00:10", operation_type="add")  # 29 x 29/29 days
    assert billing.usage("2024-02-01T01:00:10")["total_amount_cents"] == 2900
    send("2024-02-02T01:00:00", operation_type="add")  # already active
    assert billing.usage("2024-02-02T01:00:00")["total_amount_cents"] == 2900
    send("2024-02-03T01:00:00", operation_type="remove")
    assert billing.usage("2024-02-03T01:00:00")["total_amount_cents"] == 2900
    assert Fee.objects.filter(charge=charge).count() == 4


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
