"""`POST /events/estimate_fees` (spec §5.2, §7.14, V105): what an event would bill, nothing
stored."""

from __future__ import annotations

import uuid

import pytest
import time_machine

from invoicing.models import Fee
from metering.store import get_event_store
from tests.metering.usage.conftest import at, make_billing
from tests.plans.factories import TaxFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing(api, organization):
    return make_billing(api, organization, started_at="2023-01-24")


def estimate(api, **event):
    payload = {"transaction_id": "tx_new", "external_subscription_id": "sub_1", **event}
    with time_machine.travel(at("2023-02-15T10:00:00"), tick=False):
        return api.post("/api/v1/events/estimate_fees", {"event": payload}, format="json")


def test_estimate_answers_the_fee_and_stores_nothing(api, billing):
    metric = billing.metric("storage", "sum_agg", "gb")
    charge = billing.charge(metric, properties={"amount": "10"}, pay_in_advance=True)
    charge.taxes.add(TaxFactory(organization=billing.organization, rate="20"))
    billing.send("storage", "2023-02-10T00:00:00", properties={"gb": 2})
    response = estimate(api, code="storage", properties={"gb": 3})
    assert response.status_code == 200
    [fee] = response.json()["fees"]
    assert fee["lago_id"] is None
    assert fee["lago_charge_id"] == str(charge.pk)
    assert (fee["units"], fee["amount_cents"], fee["taxes_amount_cents"]) == ("3.0", 3000, 600)
    assert fee["total_amount_cents"] == 3600
    assert fee["event_transaction_id"] != "tx_new"  # Lago generates its own (see below)
    assert fee["item"]["code"] == "storage"
    assert fee["external_customer_id"] == "cust_1"
    assert Fee.objects.count() == 0
    assert get_event_store().get_event(billing.organization.id, "tx_new") is None


def test_estimate_of_a_metric_without_pay_in_advance_charge_is_empty(api, billing):
    billing.charge(billing.metric("calls", "count_agg"))
    response = estimate(api, code="calls")
    assert response.json() == {"fees": []}


@pytest.mark.parametrize(
    ("event", "status", "body"),
    [
        pytest.param(
            {"code": "storage", "external_subscription_id": "nope"},
            404,
            {"status": 404, "error": "Not Found", "code": "subscription_not_found"},
            id="V105-unknown-subscription",
        ),
        pytest.param(
            {"code": "unknown"},
            404,
            {"status": 404, "error": "Not Found", "code": "billable_metric_not_found"},
            id="V105-unknown-code",
        ),
        pytest.param(
            {"code": "storage", "properties": {"gb": "ten"}},
            422,
            {
                "status": 422,
                "error": "Unprocessable Entity",
                "code": "validation_errors",
                "error_details": {"properties": ["value_is_not_valid_number"]},
            },
            id="V105-not-a-number",
        ),
    ],
)
def test_estimate_validates_fully(api, billing, event, status, body):
    metric = billing.metric("storage", "sum_agg", "gb")
    billing.charge(metric, pay_in_advance=True)
    response = estimate(api, **event)
    assert response.status_code == status
    assert response.json() == body


def test_estimate_accepts_lagos_documented_example_without_transaction_id(api, billing):
    # `EventEstimateFeesInput` documents only code, external_subscription_id and properties.
    billing.charge(billing.metric("storage", "sum_agg", "gb"), pay_in_advance=True)
    payload = {"code": "storage", "external_subscription_id": "sub_1", "properties": {"gb": 2}}
    with time_machine.travel(at("2023-02-15T10:00:00"), tick=False):
        response = api.post("/api/v1/events/estimate_fees", {"event": payload}, format="json")
    assert response.status_code == 200, response.json()
    [fee] = response.json()["fees"]
    assert fee["units"] == "2.0"
    assert uuid.UUID(fee["event_transaction_id"])  # generated, as Lago does


@pytest.mark.parametrize("transaction_id", ["", "tx_new"], ids=["blank", "already-stored"])
def test_estimate_ignores_the_transaction_id_sent(api, billing, transaction_id):
    # Lago's Fees::EstimatePayInAdvanceService replaces it with a fresh UUID before validating.
    billing.charge(billing.metric("storage", "sum_agg", "gb"), pay_in_advance=True)
    billing.send("storage", "2023-02-10T00:00:00", transaction_id="tx_new", properties={"gb": 1})
    response = estimate(api, code="storage", transaction_id=transaction_id, properties={"gb": 1})
    assert response.status_code == 200, response.json()
    [fee] = response.json()["fees"]
    assert fee["event_transaction_id"] not in ("", "tx_new")
