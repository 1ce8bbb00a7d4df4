"""Events whose aggregated value the store cannot use: refused at ingestion, and when one is
already stored (written before the rule, or bypassing ingestion) it is skipped by usage reads,
billing runs and in-advance fees, and reported by the hourly `events.errors` report."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
import time_machine

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from invoicing.models import Fee
from invoicing.services.billing_run import bill_customer
from metering import store as event_store
from metering.models import Event
from metering.services.events_errors import events_errors_report
from metering.store import PortableEventStore
from tests.metering.usage.conftest import at

pytestmark = pytest.mark.django_db

# values that look like numbers but that the store cannot aggregate
TOO_MANY_DIGITS = "9" * 140_000  # beyond PostgreSQL numeric's 131072 integer digits
TOO_LARGE = "1e30"  # beyond numeric(40, 15), the store's range
POISON = {
    "too_many_digits": TOO_MANY_DIGITS,
    "too_large": TOO_LARGE,
    "text": "lots",
}


@pytest.fixture(params=["sql", "portable"])
def store_kind(request, monkeypatch):
    """Each read runs on PostgreSQL's SQL aggregation and on the portable store."""
    if request.param == "portable":
        monkeypatch.setattr(event_store, "_STORES", {})
        assert isinstance(event_store.get_event_store(), PortableEventStore)
    return request.param


def _poison_rows(billing, code: str, field: str) -> None:
    """Rows written straight into the events table, as an older version or a script would."""
    for transaction_id, value in POISON.items():
        Event.objects.create(
            organization=billing.organization,
            transaction_id=transaction_id,
            external_subscription_id=billing.subscription.external_id,
            subscription_id=billing.subscription.pk,
            customer_id=billing.customer.pk,
            code=code,
            timestamp=at("2022-03-05T10:00:00"),
            properties={field: value},
            created_at=at("2022-03-05T10:00:00"),
        )


@pytest.mark.parametrize("aggregation_type", ["sum_agg", "max_agg", "latest_agg"])
def test_current_usage_skips_a_stored_poison_event(billing, store_kind, aggregation_type):
    metric = billing.metric("storage", aggregation_type, "gb")
    charge = billing.charge(metric, properties={"amount": "1"})
    billing.send("storage", "2022-03-02T10:00:00", properties={"gb": 3})
    _poison_rows(billing, "storage", "gb")

    usage = billing.charge_usage("2022-03-10T12:00:00", charge)

    assert (Decimal(usage["units"]), usage["amount_cents"]) == (Decimal(3), 300)


def test_weighted_sum_usage_skips_a_stored_poison_event(billing, store_kind):
    metric = billing.metric("seats", "weighted_sum_agg", "seats")
    charge = billing.charge(metric, properties={"amount": "31"})
    billing.send("seats", "2022-03-01T00:00:00", properties={"seats": 1})
    _poison_rows(billing, "seats", "seats")

    usage = billing.charge_usage("2022-03-10T12:00:00", charge)

    assert Decimal(usage["units"]) == Decimal(1)


def test_projected_usage_skips_a_stored_poison_event(billing, store_kind):
    metric = billing.metric("storage", "sum_agg", "gb")
    billing.charge(metric, properties={"amount": "1"})
    billing.send("storage", "2022-03-02T10:00:00", properties={"gb": 3})
    _poison_rows(billing, "storage", "gb")

    with time_machine.travel(at("2022-03-10T12:00:00"), tick=False):
        response = billing.api.get(
            f"/api/v1/customers/{billing.customer.external_id}/projected_usage",
            {"external_subscription_id": billing.subscription.external_id},
        )

    assert response.status_code == 200, response.json()


def test_a_billing_run_invoices_the_subscription_despite_a_poison_event(billing, store_kind):
    metric = billing.metric("storage", "sum_agg", "gb")
    charge = billing.charge(metric, properties={"amount": "1"})
    billing.send("storage", "2022-03-02T10:00:00", properties={"gb": 3})
    _poison_rows(billing, "storage", "gb")

    result = bill_customer(
        customer=billing.customer,
        billing_date=date(2022, 4, 1),
        actor=SYSTEM,
        now=at("2022-04-01T01:00:00"),
    )

    [invoice] = result.invoices
    fee = Fee.objects.get(invoice=invoice, charge=charge)
    assert (fee.units, fee.amount_cents) == (Decimal(3), 300)


def test_an_in_advance_fee_is_billed_despite_a_stored_poison_event(
    billing, store_kind, django_capture_on_commit_callbacks
):
    metric = billing.metric("storage", "sum_agg", "gb")
    charge = billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    _poison_rows(billing, "storage", "gb")

    with django_capture_on_commit_callbacks(execute=True):
        billing.send("storage", "2022-03-06T10:00:00", properties={"gb": 3})

    assert [(f.units, f.amount_cents) for f in Fee.objects.filter(charge=charge)] == [
        (Decimal(3), 300)
    ]


@pytest.mark.parametrize("vendor", ["postgresql", "portable"])
def test_stored_poison_events_are_reported_as_unusable_aggregation_properties(
    billing, monkeypatch, vendor
):
    if vendor == "portable":  # the report reads the values in Python off PostgreSQL
        monkeypatch.setattr(
            "metering.services.events_errors.connection", SimpleNamespace(vendor="sqlite")
        )
    billing.metric("storage", "sum_agg", "gb")
    billing.metric("users", "unique_count_agg", "user")  # any text is a unique value
    _poison_rows(billing, "storage", "gb")
    with time_machine.travel(at("2022-03-05T10:15:00"), tick=False):
        billing.send("storage", transaction_id="fine", properties={"gb": "2.5"})
        billing.send("users", transaction_id="any_text", properties={"user": "lots"})

    [report] = events_errors_report(actor=SYSTEM, now=at("2022-03-05T11:05:00"))

    assert report.payload["missing_aggregation_property"] == sorted(POISON)
    assert OutboxEvent.objects.filter(event_type="events.errors").count() == 1


@pytest.mark.parametrize(
    "value", [TOO_LARGE, "-1e25", "1" + "0" * 30, TOO_MANY_DIGITS[:2000], 10**30]
)
def test_ingestion_refuses_a_number_the_store_cannot_aggregate(billing, value):
    billing.metric("storage", "sum_agg", "gb")
    event = {
        "transaction_id": "t1",
        "external_subscription_id": billing.subscription.external_id,
        "code": "storage",
        "properties": {"gb": value},
    }

    response = billing.api.post("/api/v1/events", {"event": event}, format="json")

    assert response.status_code == 422
    assert response.json()["error_details"] == {"properties": ["value_is_out_of_range"]}
    assert not Event.objects.exists()


def test_a_batch_with_one_unaggregatable_number_is_refused_whole(billing):
    billing.metric("storage", "sum_agg", "gb")
    events = [
        {
            "transaction_id": f"t{index}",
            "external_subscription_id": billing.subscription.external_id,
            "code": "storage",
            "properties": {"gb": value},
        }
        for index, value in enumerate(["1", TOO_LARGE, "2"])
    ]

    response = billing.api.post("/api/v1/events/batch", {"events": events}, format="json")

    assert response.status_code == 422
    assert response.json()["error_details"] == {"1": {"properties": ["value_is_out_of_range"]}}
    assert not Event.objects.exists()


@pytest.mark.parametrize("value", ["lots", "9.99e24", "-9.99e24", "0.000000000000000000001"])
def test_ingestion_keeps_accepting_text_and_numbers_in_range(billing, value):
    billing.metric("storage", "sum_agg", "gb")
    billing.send("storage", properties={"gb": value})
    assert Event.objects.count() == 1


def test_a_count_metric_accepts_any_property(billing):
    billing.metric("calls", "count_agg")
    billing.send("calls", properties={"gb": TOO_LARGE})
    assert Event.objects.count() == 1
