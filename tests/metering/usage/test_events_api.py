"""`/events`: ingestion, validation (V105), listing and retrieval (spec §5)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import time_machine

from metering.store import get_event_store
from tests.metering.usage.conftest import at, unix

pytestmark = pytest.mark.django_db

NOW = at("2022-03-20T12:00:00")


def post(api, payload, path="/api/v1/events"):
    with time_machine.travel(NOW, tick=False):
        return api.post(path, payload, format="json")


def stored(organization):
    return list(get_event_store().list_events(organization.id))


def test_create_answers_the_stored_event(api, billing):
    billing.metric("api_calls", "count_agg")
    response = post(
        api,
        {
            "event": {
                "transaction_id": "tx_1",
                "external_subscription_id": "sub_1",
                "code": "api_calls",
                "timestamp": "1647777600.123",
                "properties": {"region": "eu"},
                "precise_total_amount_cents": "12.50",
            }
        },
    )
    assert response.status_code == 200
    body = response.json()["event"]
    [event] = stored(billing.organization)
    assert body == {
        "lago_id": str(event.id),
        "transaction_id": "tx_1",
        "lago_customer_id": str(billing.customer.pk),
        "code": "api_calls",
        "timestamp": "2022-03-20T12:00:00.123Z",
        "precise_total_amount_cents": "12.5",
        "properties": {"region": "eu"},
        "lago_subscription_id": str(billing.subscription.pk),
        "external_subscription_id": "sub_1",
        "created_at": "2022-03-20T12:00:00Z",
    }


def test_timestamp_defaults_to_reception_time(api, billing):
    response = post(
        api, {"event": {"transaction_id": "tx_1", "external_subscription_id": "s", "code": "c"}}
    )
    assert response.json()["event"]["timestamp"] == "2022-03-20T12:00:00.000Z"


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        pytest.param(1647777600, "2022-03-20T12:00:00.000Z", id="integer"),
        pytest.param(1647777600.5, "2022-03-20T12:00:00.500Z", id="float"),
        pytest.param("1647777600", "2022-03-20T12:00:00.000Z", id="integer-string"),
        pytest.param("1647777600.123", "2022-03-20T12:00:00.123Z", id="decimal-string"),
    ],
)
def test_timestamps_are_unix_seconds(api, billing, timestamp, expected):
    event = {"transaction_id": "t", "external_subscription_id": "s", "code": "c"}
    response = post(api, {"event": {**event, "timestamp": timestamp}})
    assert response.status_code == 200
    assert response.json()["event"]["timestamp"] == expected


@pytest.mark.parametrize(
    ("event", "details"),
    [
        pytest.param(
            {"external_subscription_id": "s", "code": "c"},
            {"transaction_id": ["value_is_mandatory"]},
            id="no-transaction-id",
        ),
        pytest.param(
            {"transaction_id": "t", "external_subscription_id": "s"},
            {"code": ["value_is_mandatory"]},
            id="no-code",
        ),
        pytest.param(
            {
                "transaction_id": "t",
                "external_subscription_id": "s",
                "code": "c",
                "timestamp": "abc",
            },
            {"timestamp": ["invalid_format"]},
            id="V105-timestamp-abc",
        ),
        pytest.param(
            {
                "transaction_id": "t",
                "external_subscription_id": "s",
                "code": "c",
                "timestamp": "2022-03-20",
            },
            {"timestamp": ["invalid_format"]},
            id="iso-timestamp",
        ),
        pytest.param(
            {
                "transaction_id": "t",
                "external_subscription_id": "s",
                "code": "c",
                "properties": [1],
            },
            {"properties": ["value_is_invalid"]},
            id="properties-not-an-object",
        ),
        pytest.param(
            {
                "transaction_id": "t",
                "external_subscription_id": "s",
                "code": "c",
                "precise_total_amount_cents": "ten",
            },
            {"precise_total_amount_cents": ["value_is_invalid"]},
            id="amount-not-a-decimal",
        ),
        pytest.param(
            {"transaction_id": "t" * 256, "external_subscription_id": "s", "code": "c"},
            {"transaction_id": ["value_is_invalid"]},
            id="transaction-id-too-long",
        ),
    ],
)
def test_invalid_event_is_a_422_and_stores_nothing(api, billing, event, details):
    response = post(api, {"event": event})
    assert response.status_code == 422
    assert response.json() == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": details,
    }
    assert stored(billing.organization) == []


def test_missing_root_is_a_400(api, billing):
    response = post(api, {"transaction_id": "t"})
    assert response.status_code == 400


def test_duplicate_transaction_id_is_refused_first_copy_wins(api, billing):
    event = {"transaction_id": "tx_1", "external_subscription_id": "sub_1", "code": "c"}
    assert post(api, {"event": {**event, "properties": {"a": 1}}}).status_code == 200
    response = post(api, {"event": {**event, "properties": {"a": 2}}})
    assert response.status_code == 422
    assert response.json()["error_details"] == {"transaction_id": ["value_already_exist"]}
    [kept] = stored(billing.organization)
    assert kept.properties == {"a": 1}


def test_same_transaction_id_on_two_subscriptions_is_two_events(api, billing):
    event = {"transaction_id": "tx_1", "code": "c"}
    assert post(api, {"event": {**event, "external_subscription_id": "a"}}).status_code == 200
    assert post(api, {"event": {**event, "external_subscription_id": "b"}}).status_code == 200
    assert len(stored(billing.organization)) == 2


def test_unknown_code_and_subscription_are_stored_anyway(api, billing):
    response = post(
        api, {"event": {"transaction_id": "t", "external_subscription_id": "nope", "code": "what"}}
    )
    assert response.status_code == 200
    body = response.json()["event"]
    assert body["lago_subscription_id"] is None
    assert body["lago_customer_id"] is None
    assert len(stored(billing.organization)) == 1


def test_expression_result_replaces_the_field_value(api, billing):
    billing.metric("storage", "sum_agg", "gb", expression="round(event.properties.mb / 1000, 2)")
    response = post(
        api,
        {
            "event": {
                "transaction_id": "t",
                "external_subscription_id": "sub_1",
                "code": "storage",
                "properties": {"mb": 1234},
            }
        },
    )
    assert response.status_code == 200
    assert response.json()["event"]["properties"] == {"mb": 1234, "gb": "1.23"}
    [event] = stored(billing.organization)
    assert event.value == Decimal("1.23")


def test_expression_that_cannot_be_evaluated_is_a_422(api, billing):
    billing.metric("storage", "sum_agg", "gb", expression="event.properties.mb / 1000")
    response = post(
        api,
        {"event": {"transaction_id": "t", "external_subscription_id": "sub_1", "code": "storage"}},
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == {"properties": ["expression_evaluation_failed"]}
    assert stored(billing.organization) == []


# --- batch -----------------------------------------------------------------------------------


def batch_event(i, **fields):
    return {"transaction_id": f"tx_{i}", "external_subscription_id": "sub_1", "code": "c", **fields}


def test_batch_stores_every_event_and_echoes_them_in_order(api, billing):
    response = post(api, {"events": [batch_event(i) for i in range(3)]}, "/api/v1/events/batch")
    assert response.status_code == 200
    assert [e["transaction_id"] for e in response.json()["events"]] == ["tx_0", "tx_1", "tx_2"]
    assert len(stored(billing.organization)) == 3


def test_batch_with_one_bad_event_writes_nothing(api, billing):
    events = [batch_event(0), batch_event(1, timestamp="abc"), batch_event(2)]
    response = post(api, {"events": events}, "/api/v1/events/batch")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"1": {"timestamp": ["invalid_format"]}}
    assert stored(billing.organization) == []


def test_batch_with_a_stored_duplicate_writes_nothing(api, billing):
    post(api, {"event": batch_event(1)})
    response = post(api, {"events": [batch_event(0), batch_event(1)]}, "/api/v1/events/batch")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"1": {"transaction_id": ["value_already_exist"]}}
    assert [e.transaction_id for e in stored(billing.organization)] == ["tx_1"]


def test_batch_with_a_duplicate_inside_keeps_nothing(api, billing):
    events = [batch_event(0), batch_event(1), batch_event(0)]
    response = post(api, {"events": events}, "/api/v1/events/batch")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"2": {"transaction_id": ["value_already_exist"]}}
    assert stored(billing.organization) == []


def test_batch_of_101_events_is_refused(api, billing):
    response = post(api, {"events": [batch_event(i) for i in range(101)]}, "/api/v1/events/batch")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"events": ["too_many_events"]}
    assert stored(billing.organization) == []


def test_batch_of_100_events_is_accepted(api, billing):
    response = post(api, {"events": [batch_event(i) for i in range(100)]}, "/api/v1/events/batch")
    assert response.status_code == 200
    assert len(stored(billing.organization)) == 100


def test_empty_batch_is_refused(api, billing):
    response = post(api, {"events": []}, "/api/v1/events/batch")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"events": ["no_events"]}


def test_batch_uses_one_query_per_lookup(api, billing, django_assert_max_num_queries):
    metric = billing.metric("c", "sum_agg", "value")
    billing.charge(metric)
    events = [batch_event(i, properties={"value": i}) for i in range(100)]
    # auth, throttle-free cache, request log, savepoints, metrics, subscriptions, charges, insert
    with django_assert_max_num_queries(12):
        response = post(api, {"events": events}, "/api/v1/events/batch")
    assert response.status_code == 200


# --- reads -----------------------------------------------------------------------------------


def test_list_filters_and_paginates_newest_first(api, billing):
    for i, day in enumerate(["2022-03-01", "2022-03-02", "2022-03-03"]):
        post(api, {"event": batch_event(i, timestamp=unix(day))})
    post(api, {"event": batch_event(9, code="other", timestamp=unix("2022-03-02"))})
    response = api.get(
        "/api/v1/events",
        {"code": "c", "timestamp_from": "2022-03-02T00:00:00Z", "per_page": 1},
    )
    body = response.json()
    assert [e["transaction_id"] for e in body["events"]] == ["tx_2"]
    assert body["meta"] == {
        "current_page": 1,
        "next_page": 2,
        "prev_page": None,
        "total_pages": 2,
        "total_count": 2,
    }
    by_subscription = api.get("/api/v1/events", {"external_subscription_id": "other"}).json()
    assert by_subscription["events"] == []


def test_retrieve_by_transaction_id(api, billing):
    post(api, {"event": batch_event(1)})
    response = api.get("/api/v1/events/tx_1")
    assert response.status_code == 200
    assert response.json()["event"]["transaction_id"] == "tx_1"
    missing = api.get("/api/v1/events/tx_404")
    assert missing.status_code == 404
    assert missing.json()["code"] == "event_not_found"


def test_other_tenants_events_are_invisible(api, other_api, billing):
    post(other_api, {"event": batch_event(1)})
    assert api.get("/api/v1/events/tx_1").status_code == 404
    assert api.get("/api/v1/events").json()["events"] == []
    # the same transaction id is free in this tenant
    assert post(api, {"event": batch_event(1)}).status_code == 200


def test_events_need_the_event_permission(api_key, billing):
    from billing.services import api_key_create
    from tests.conftest import client_for

    _, raw = api_key_create(
        organization=billing.organization, name="ro", permissions={"event": ["read"]}
    )
    client = client_for(raw)
    assert client.get("/api/v1/events").status_code == 200
    assert post(client, {"event": batch_event(1)}).status_code == 403
