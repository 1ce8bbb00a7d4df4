"""`POST /events/estimate_instant_fees` and `POST /events/batch_estimate_instant_fees` (spec §5,
Appendix A; Lago's `Fees::EstimateInstant`): what one event alone costs on the pay-in-advance
standard and percentage charges of its metric, at reception time, nothing stored. Expected
values from getlago/lago-api:spec/requests/api/v1/events_controller_spec.rb ("LAGO-REQ")."""

from __future__ import annotations

import pytest
import time_machine

from invoicing.models import Fee, Invoice
from metering.store import get_event_store
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.metering.usage.conftest import at, make_billing

pytestmark = pytest.mark.django_db

NOW = "2022-03-15T10:00:00"
SINGLE = "/api/v1/events/estimate_instant_fees"
BATCH = "/api/v1/events/batch_estimate_instant_fees"


def post(api, path: str, body: dict):
    with time_machine.travel(at(NOW), tick=False):
        return api.post(path, body, format="json")


def estimate(api, **event):
    event.setdefault("external_subscription_id", "sub_1")
    return post(api, SINGLE, {"event": event})


def batch(api, events: list[dict]):
    return post(api, BATCH, {"events": events})


def _advance() -> dict:
    return {"pay_in_advance": True}


def only_fee(response) -> dict:
    assert response.status_code == 200, response.json()
    [fee] = response.json()["fees"]
    return fee


@pytest.fixture
def payments(billing):
    """LAGO-REQ's setup: sum metric, pay-in-advance percentage charge rate 0.1 %, fixed 0."""
    metric = billing.metric("payments", "sum_agg", "amount", name="Payments")
    return billing.charge(
        metric,
        "percentage",
        properties={"rate": "0.1", "fixed_amount": "0"},
        pay_in_advance=True,
    )


# --- single event -------------------------------------------------------------------------


def test_lago_req_percentage_of_one_event(api, billing, payments):
    fee = only_fee(
        estimate(api, code="payments", transaction_id="tx_1", properties={"amount": 400})
    )
    assert fee["lago_id"] is None
    assert (fee["item"]["type"], fee["item"]["code"], fee["item"]["name"]) == (
        "charge",
        "payments",
        "Payments",
    )
    assert (fee["amount_cents"], fee["amount_currency"]) == ("40.0", "EUR")
    assert (fee["units"], fee["events_count"]) == ("400.0", 1)
    assert fee["event_transaction_id"] == "tx_1"


def test_fee_has_lagos_estimate_shape(api, billing):
    metric = billing.metric("storage", "sum_agg", "gb", name="Storage", description="GB stored")
    charge = billing.charge(
        metric, properties={"amount": "1.5"}, pay_in_advance=True, invoiceable=False
    )
    fee = only_fee(estimate(api, code="storage", transaction_id="tx_shape", properties={"gb": "3"}))
    assert fee == {
        "lago_id": None,
        "lago_charge_id": str(charge.pk),
        "lago_charge_filter_id": None,
        "lago_invoice_id": None,
        "lago_true_up_fee_id": None,
        "lago_true_up_parent_fee_id": None,
        "lago_subscription_id": str(billing.subscription.pk),
        "external_subscription_id": "sub_1",
        "lago_customer_id": str(billing.customer.pk),
        "external_customer_id": "cust_1",
        "item": {
            "type": "charge",
            "code": "storage",
            "name": "Storage",
            "description": "GB stored",
            "invoice_display_name": "Storage",
            "filters": None,
            "filter_invoice_display_name": None,
            "lago_item_id": str(metric.pk),
            "item_type": "BillableMetric",
            "grouped_by": {},
        },
        "pay_in_advance": True,
        "invoiceable": False,
        "amount_cents": "450.0",
        "amount_currency": "EUR",
        "precise_amount": "4.5",
        "precise_total_amount": "4.5",
        "taxes_amount_cents": 0,
        "taxes_precise_amount": 0,
        "taxes_rate": 0,
        "total_amount_cents": "450.0",
        "total_amount_currency": "EUR",
        "units": "3.0",
        "description": None,
        "precise_unit_amount": "150.0",
        "precise_coupons_amount_cents": "0.0",
        "events_count": 1,
        "payment_status": "pending",
        "created_at": None,
        "succeeded_at": None,
        "failed_at": None,
        "refunded_at": None,
        "amount_details": None,
        "event_transaction_id": "tx_shape",
    }


def test_nothing_is_stored_and_the_period_so_far_is_not_read(api, billing, payments):
    payments.properties = {"rate": "1", "free_units_per_events": 2}
    payments.save(update_fields=["properties"])
    billing.send("payments", "2022-03-10T10:00:00", properties={"amount": 50})
    # spec §7.14 would make this event free (2nd of 2 free events); the instant estimate
    # prices the event alone: 1 % of 300
    fee = only_fee(estimate(api, code="payments", properties={"amount": 300}))
    assert fee["amount_cents"] == "300.0"
    assert Fee.objects.count() == 0
    assert Invoice.objects.count() == 0
    assert len(get_event_store().list_events(billing.organization.id)) == 1


@pytest.mark.parametrize(
    ("properties", "units", "amount_cents"),
    [
        pytest.param({"rate": "1", "fixed_amount": "0.5"}, 100, "150.0", id="rate-plus-fixed"),
        pytest.param(
            {"rate": "1", "per_transaction_min_amount": "2"}, 100, "200.0", id="per-tx-min"
        ),
        pytest.param(
            {"rate": "10", "per_transaction_max_amount": "3"}, 100, "300.0", id="per-tx-max"
        ),
        pytest.param({"rate": "1", "fixed_amount": "0.5"}, -100, "0.0", id="negative-is-free"),
        pytest.param({"rate": "2.5"}, "0.2", "1.0", id="rounded-half-up"),  # 0.005 -> 0.01
    ],
)
def test_percentage_of_one_transaction(api, billing, payments, properties, units, amount_cents):
    payments.properties = properties
    payments.save(update_fields=["properties"])
    fee = only_fee(estimate(api, code="payments", properties={"amount": units}))
    assert fee["amount_cents"] == amount_cents


def test_standard_on_a_count_metric_is_one_unit(api, billing):
    billing.charge(billing.metric("calls", "count_agg"), properties={"amount": "0.2"}, **_advance())
    fee = only_fee(estimate(api, code="calls"))
    assert (fee["units"], fee["amount_cents"], fee["precise_unit_amount"]) == (
        "1.0",
        "20.0",
        "20.0",
    )


def test_unique_count_adds_one_unit_and_a_removal_none(api, billing):
    metric = billing.metric("seats", "unique_count_agg", "seat_id")
    billing.charge(metric, properties={"amount": "5"}, **_advance())
    added = only_fee(estimate(api, code="seats", properties={"seat_id": "s1"}))
    removed = only_fee(
        estimate(api, code="seats", properties={"seat_id": "s1", "operation_type": "remove"})
    )
    assert (added["units"], added["amount_cents"]) == ("1.0", "500.0")
    assert (removed["units"], removed["amount_cents"]) == ("0.0", "0.0")


def test_the_metric_expression_and_rounding_apply(api, billing):
    metric = billing.metric(
        "storage",
        "sum_agg",
        "gb",
        expression="event.properties.mb / 1000",
        rounding_function="ceil",
        rounding_precision=0,
    )
    billing.charge(metric, properties={"amount": "1"}, **_advance())
    fee = only_fee(estimate(api, code="storage", properties={"mb": 2500}))
    assert (fee["units"], fee["amount_cents"]) == ("3.0", "300.0")


def test_a_missing_field_is_zero_units(api, billing, payments):
    fee = only_fee(estimate(api, code="payments", properties={}))
    assert (fee["units"], fee["amount_cents"]) == ("0.0", "0.0")


def test_the_matching_filter_prices_the_event(api, billing):
    metric = billing.metric("transfers", "sum_agg", "amount")
    billing.metric_filter(metric, "region", ["europe", "africa"])
    charge = billing.charge(metric, properties={"amount": "1"}, **_advance())
    europe = billing.charge_filter(charge, {"region": ["europe"]}, {"amount": "2"})
    fee = only_fee(estimate(api, code="transfers", properties={"amount": 10, "region": "europe"}))
    assert (fee["lago_charge_filter_id"], fee["amount_cents"]) == (str(europe.pk), "2000.0")
    assert fee["item"]["filters"] == {"region": ["europe"]}
    assert fee["item"]["filter_invoice_display_name"] == "europe"
    default = only_fee(
        estimate(api, code="transfers", properties={"amount": 10, "region": "africa"})
    )
    assert (default["lago_charge_filter_id"], default["amount_cents"]) == (None, "1000.0")


def test_every_instant_charge_of_the_metric_gets_a_fee(api, billing, payments):
    billing.charge(payments.billable_metric, properties={"amount": "0.01"}, **_advance())
    response = estimate(api, code="payments", properties={"amount": 400})
    assert [f["amount_cents"] for f in response.json()["fees"]] == ["40.0", "400.0"]


def test_a_missing_transaction_id_is_generated(api, billing, payments):
    fee = only_fee(estimate(api, code="payments", properties={"amount": 1}))
    assert isinstance(fee["event_transaction_id"], str)
    assert len(fee["event_transaction_id"]) == 36  # a UUID


def test_a_transaction_id_already_stored_is_estimated_anyway(api, billing, payments):
    billing.send("payments", "2022-03-10T10:00:00", transaction_id="tx_seen")
    fee = only_fee(estimate(api, code="payments", transaction_id="tx_seen"))
    assert fee["event_transaction_id"] == "tx_seen"


def test_the_event_timestamp_is_not_read(api, billing, payments):
    # a timestamp before the subscription started: Lago estimates at reception time anyway
    fee = only_fee(estimate(api, code="payments", timestamp=946684800, properties={"amount": 1}))
    assert fee["amount_cents"] == "0.0"  # 1 % of 1 unit = 0.001 EUR -> 0 cents


def test_the_plan_currency_is_the_fee_currency(api, organization):
    billing = make_billing(api, organization, plan_fields={"amount_currency": "USD"})
    billing.charge(billing.metric("calls", "count_agg"), properties={"amount": "1"}, **_advance())
    assert only_fee(estimate(api, code="calls"))["amount_currency"] == "USD"


# --- single event: errors ------------------------------------------------------------------

NO_INSTANT_CHARGE = {
    "status": 422,
    "error": "Unprocessable Entity",
    "code": "validation_errors",
    "error_details": {"code": ["does_not_match_an_instant_charge"]},
}
SUBSCRIPTION_NOT_FOUND = {"status": 404, "error": "Not Found", "code": "subscription_not_found"}


@pytest.mark.parametrize(
    ("charge_fields", "code"),
    [
        pytest.param({"pay_in_advance": False}, "payments", id="in-arrears-charge"),
        pytest.param(
            {
                "pay_in_advance": True,
                "charge_model": "graduated_percentage",
                "properties": {
                    "graduated_percentage_ranges": [
                        {"from_value": 0, "to_value": None, "rate": "1", "flat_amount": "0"}
                    ]
                },
            },
            "payments",
            id="other-charge-model",
        ),
        pytest.param({"pay_in_advance": True}, "unknown", id="unknown-code"),
    ],
)
def test_a_metric_without_instant_charge_is_refused(api, billing, charge_fields, code):
    metric = billing.metric("payments", "sum_agg", "amount")
    charge_model = charge_fields.pop("charge_model", "standard")
    billing.charge(metric, charge_model, **charge_fields)
    response = estimate(api, code=code, properties={"amount": 1})
    assert (response.status_code, response.json()) == (422, NO_INSTANT_CHARGE)


@pytest.mark.parametrize(
    "external_subscription_id",
    [
        pytest.param("unknown", id="unknown"),
        pytest.param(None, id="missing"),
        pytest.param(["sub_1"], id="not-a-string"),
        pytest.param("sub_other_tenant", id="other-organization"),
        pytest.param("sub_pending", id="not-started"),
    ],
)
def test_an_unknown_subscription_is_not_found(
    api, billing, payments, other_organization, external_subscription_id
):
    SubscriptionFactory(organization=other_organization, external_id="sub_other_tenant")
    SubscriptionFactory(
        organization=billing.organization,
        customer=billing.customer,
        plan=billing.plan,
        external_id="sub_pending",
        status="pending",
        started_at=None,
    )
    response = estimate(api, code="payments", external_subscription_id=external_subscription_id)
    assert (response.status_code, response.json()) == (404, SUBSCRIPTION_NOT_FOUND)


def test_a_field_that_is_not_a_number_is_refused(api, billing, payments):
    response = estimate(api, code="payments", properties={"amount": "ten"})
    assert response.status_code == 422
    assert response.json()["error_details"] == {"properties": ["value_is_not_valid_number"]}


def test_a_number_the_store_cannot_hold_is_refused(api, billing, payments):
    response = estimate(api, code="payments", properties={"amount": "1e30"})
    assert response.status_code == 422
    assert response.json()["error_details"] == {"properties": ["value_is_out_of_range"]}


def test_estimate_fees_refuses_it_too(api, billing, payments):
    event = {"transaction_id": "t", "code": "payments", "external_subscription_id": "sub_1"}
    body = {"event": {**event, "properties": {"amount": "1e30"}}}
    response = post(api, "/api/v1/events/estimate_fees", body)
    assert response.status_code == 422
    assert response.json()["error_details"] == {"properties": ["value_is_out_of_range"]}


def test_a_huge_amount_is_still_priced(api, billing):
    metric = billing.metric("storage", "sum_agg", "gb")
    billing.charge(metric, properties={"amount": "1e20"}, **_advance())
    fee = only_fee(estimate(api, code="storage", properties={"gb": "1e10"}))
    assert fee["amount_cents"] == "1" + "0" * 32 + ".0"


def test_properties_that_are_not_an_object_are_refused(api, billing, payments):
    response = estimate(api, code="payments", properties=["amount"])
    assert response.status_code == 422
    assert response.json()["error_details"] == {"properties": ["value_is_invalid"]}


@pytest.mark.parametrize(
    "body", [pytest.param({}, id="no-event"), pytest.param({"event": "x"}, id="not-an-object")]
)
def test_a_body_without_event_is_a_bad_request(api, billing, body):
    response = post(api, SINGLE, body)
    assert response.status_code == 400
    assert response.json()["error"] == "BadRequest: param is missing or the value is empty: event"


def test_the_key_needs_the_event_write_permission(api_key, billing, payments):
    from billing.services import api_key_create
    from tests.conftest import client_for

    _, raw = api_key_create(
        organization=billing.organization, name="reader", permissions={"event": ["read"]}
    )
    response = estimate(client_for(raw), code="payments")
    assert response.status_code == 403


# --- batch -----------------------------------------------------------------------------------


def test_lago_req_batch_answers_every_event(api, billing, payments):
    events = [
        {"code": "payments", "external_subscription_id": "sub_1", "transaction_id": tx, **extra}
        for tx, extra in (
            ("tx_a", {"properties": {"amount": 400}}),
            ("tx_b", {"properties": {"amount": 300}}),
        )
    ]
    response = batch(api, events)
    assert response.status_code == 200
    fees = response.json()["fees"]
    assert [(f["event_transaction_id"], f["amount_cents"], f["units"]) for f in fees] == [
        ("tx_a", "40.0", "400.0"),
        ("tx_b", "30.0", "300.0"),
    ]
    assert {f["lago_id"] for f in fees} == {None}


def test_batch_groups_by_subscription_and_skips_events_of_other_metrics(api, billing, payments):
    customer = CustomerFactory(organization=billing.organization, external_id="cust_2")
    SubscriptionFactory(
        organization=billing.organization,
        customer=customer,
        plan=billing.plan,
        external_id="sub_2",
        subscription_at=at("2022-03-01T00:00:00"),
    )
    billing.metric("calls", "count_agg")
    events = [
        {"code": "payments", "external_subscription_id": "sub_1", "transaction_id": "a1",
         "properties": {"amount": 100}},
        {"code": "payments", "external_subscription_id": "sub_2", "transaction_id": "b1",
         "properties": {"amount": 200}},
        {"code": "calls", "external_subscription_id": "sub_1", "transaction_id": "a2"},
        {"code": "payments", "external_subscription_id": "sub_1", "transaction_id": "a3",
         "properties": {"amount": 300}},
    ]  # fmt: skip
    fees = batch(api, events).json()["fees"]
    assert [(f["external_subscription_id"], f["event_transaction_id"]) for f in fees] == [
        ("sub_1", "a1"),
        ("sub_1", "a3"),
        ("sub_2", "b1"),
    ]
    assert fees[2]["external_customer_id"] == "cust_2"


def test_batch_of_no_event_answers_no_fee(api, billing, payments):
    response = batch(api, [])
    assert (response.status_code, response.json()) == (200, {"fees": []})


def test_batch_with_an_unknown_subscription_is_not_found(api, billing, payments):
    events = [
        {"code": "payments", "external_subscription_id": "sub_1"},
        {"code": "payments", "external_subscription_id": "nope"},
    ]
    response = batch(api, events)
    assert (response.status_code, response.json()) == (404, SUBSCRIPTION_NOT_FOUND)


def test_batch_of_a_subscription_without_instant_charge_is_refused(api, organization):
    billing = make_billing(api, organization, plan_fields={"code": "plain"})
    billing.charge(billing.metric("calls", "count_agg"), properties={"amount": "1"})
    response = batch(api, [{"code": "calls", "external_subscription_id": "sub_1"}])
    assert (response.status_code, response.json()) == (422, NO_INSTANT_CHARGE)


def test_batch_reports_an_invalid_event_under_its_index(api, billing, payments):
    events = [
        {"code": "payments", "external_subscription_id": "sub_1", "properties": {"amount": 1}},
        {"code": "payments", "external_subscription_id": "sub_1", "properties": {"amount": "x"}},
    ]
    response = batch(api, events)
    assert response.status_code == 422
    assert response.json()["error_details"] == {"1": {"properties": ["value_is_not_valid_number"]}}


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({}, 400, id="no-events"),
        pytest.param({"events": "x"}, 422, id="not-a-list"),
        pytest.param({"events": ["x"]}, 422, id="not-an-object"),
    ],
)
def test_batch_body_errors(api, billing, payments, body, status):
    response = post(api, BATCH, body)
    assert response.status_code == status
