"""Writing, listing and reading events (spec §5.1-§5.3)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from django.apps import apps
from django.db import transaction

from metering.models import Event
from metering.store import EventInput

from .conftest import NOW, at

pytestmark = pytest.mark.django_db


def event(transaction_id, *, sub="sub_1", timestamp="2023-08-02T10:00:00.123456", **fields):
    return EventInput(
        transaction_id=transaction_id,
        external_subscription_id=sub,
        code=fields.pop("code", "api_calls"),
        timestamp=at(timestamp),
        properties=fields.pop("properties", {"v": 1}),
        **fields,
    )


def stored_ids(organization):
    return sorted(
        Event.objects.filter(organization=organization).values_list("transaction_id", flat=True)
    )


def test_event_is_a_model_of_the_metering_app_on_its_original_table():
    assert apps.get_model("metering", "Event") is Event
    assert Event._meta.db_table == "billing_event"


def test_batch_is_written_and_returned_in_input_order(store, organization):
    subscription_id, customer_id = uuid4(), uuid4()
    batch = [
        event("b", properties={"gb": "1.5", "nested": {"k": [1, 2]}}, value=Decimal("1.5")),
        event(
            "a",
            precise_total_amount_cents=Decimal("12.345"),
            subscription_id=subscription_id,
            customer_id=customer_id,
        ),
    ]
    result = store.write_batch(organization.id, batch, now=NOW)
    assert result.written
    assert [e.transaction_id for e in result.events] == ["b", "a"]
    assert all(e.pk and e.created_at == NOW for e in result.events)
    stored = Event.objects.get(pk=result.events[0].pk)
    assert stored.properties == {"gb": "1.5", "nested": {"k": [1, 2]}}
    assert stored.value == Decimal("1.5")
    assert stored.timestamp == at("2023-08-02T10:00:00.123456")  # microseconds kept
    other = Event.objects.get(pk=result.events[1].pk)
    assert other.precise_total_amount_cents == Decimal("12.345")
    assert (other.subscription_id, other.customer_id) == (subscription_id, customer_id)


def test_empty_batch_writes_nothing(store, organization):
    result = store.write_batch(organization.id, [], now=NOW)
    assert (result.written, result.events) == (True, [])


def test_duplicate_inside_the_batch_refuses_the_whole_batch(store, organization):
    result = store.write_batch(organization.id, [event("a"), event("b"), event("a")], now=NOW)
    assert (result.written, result.events, result.duplicate_indexes) == (False, [], (2,))
    assert stored_ids(organization) == []


def test_duplicate_of_a_stored_event_refuses_the_whole_batch(store, organization):
    store.write_batch(organization.id, [event("a")], now=NOW)
    result = store.write_batch(
        organization.id, [event("new"), event("a", properties={"v": 2}), event("x")], now=NOW
    )
    assert result.duplicate_indexes == (1,)
    assert stored_ids(organization) == ["a"]
    assert Event.objects.get(transaction_id="a").properties == {"v": 1}  # the first copy wins


def test_every_duplicate_index_is_reported(store, organization):
    store.write_batch(organization.id, [event("a"), event("b")], now=NOW)
    result = store.write_batch(
        organization.id, [event("b"), event("c"), event("a"), event("c")], now=NOW
    )
    assert result.duplicate_indexes == (0, 2, 3)


def test_transaction_id_is_unique_per_subscription_and_organization(
    store, organization, other_organization
):
    assert store.write_batch(organization.id, [event("a")], now=NOW).written
    assert store.write_batch(organization.id, [event("a", sub="sub_2")], now=NOW).written
    assert store.write_batch(other_organization.id, [event("a")], now=NOW).written
    assert Event.objects.filter(transaction_id="a").count() == 3


def test_refused_batch_leaves_the_callers_transaction_usable(store, organization):
    with transaction.atomic():
        store.write_batch(organization.id, [event("a")], now=NOW)
        assert not store.write_batch(organization.id, [event("b"), event("a")], now=NOW).written
        assert store.write_batch(organization.id, [event("c")], now=NOW).written
    assert stored_ids(organization) == ["a", "c"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        pytest.param({"timestamp": datetime(2023, 8, 2)}, "aware", id="naive-timestamp"),
        pytest.param({"transaction_id": "x" * 256}, "transaction_id", id="long-id"),
        pytest.param({"code": ""}, "code", id="empty-code"),
        pytest.param({"properties": ["v"]}, "properties", id="properties-not-a-dict"),
        pytest.param({"properties": {"v": float("nan")}}, "JSON", id="nan-property"),
        pytest.param({"properties": {"v": ["a\x00"]}}, "NUL", id="nul-character"),
        pytest.param(
            {"precise_total_amount_cents": Decimal("1e25")}, "precise_total", id="huge-amount"
        ),
    ],
)
def test_programming_errors_are_refused_before_writing(store, organization, bad, message):
    values = {
        "transaction_id": "a",
        "external_subscription_id": "sub_1",
        "code": "api_calls",
        "timestamp": at("2023-08-02"),
        "properties": {},
        **bad,
    }
    with pytest.raises(ValueError, match=message):
        store.write_batch(organization.id, [event("ok"), EventInput(**values)], now=NOW)
    assert stored_ids(organization) == []


def test_a_value_out_of_the_columns_range_is_left_to_the_property(store, organization):
    result = store.write_batch(organization.id, [event("a", value=Decimal("1e30"))], now=NOW)
    assert result.events[0].value is None
    assert Event.objects.get().value is None


def test_decimals_in_properties_are_stored_as_strings(store, organization):
    store.write_batch(organization.id, [event("a", properties={"v": Decimal("0.1")})], now=NOW)
    assert Event.objects.get().properties == {"v": "0.1"}


@pytest.mark.parametrize(
    "text",
    [
        'quote " and backslash \\',
        "tab\tnewline\n",
        "unicode é 漢 🚀",
        "line\u2028separator",
        "null",
    ],
)
def test_identifiers_and_properties_are_stored_as_sent(store, organization, text):
    store.write_batch(
        organization.id,
        [event(text, sub=f"sub {text}", code=f"code {text}", properties={text: [text, None]})],
        now=NOW,
    )
    stored = Event.objects.get()
    assert (stored.transaction_id, stored.external_subscription_id, stored.code) == (
        text,
        f"sub {text}",
        f"code {text}",
    )
    assert stored.properties == {text: [text, None]}


def test_an_integer_past_64_bits_in_properties_is_stored_exactly(store, organization):
    big = 2**70 + 1
    store.write_batch(organization.id, [event("a", properties={"n": big})], now=NOW)
    assert Event.objects.get().properties == {"n": big}


@pytest.mark.parametrize("timestamp", ["1900-01-01T00:00:00.000001", "9999-12-31T23:59:59.999999"])
def test_timestamps_far_from_now_keep_their_microseconds(store, organization, timestamp):
    store.write_batch(organization.id, [event("a", timestamp=timestamp)], now=NOW)
    assert Event.objects.get().timestamp == at(timestamp)


# --------------------------------------------------------------------------------------------
# Listing and reading


@pytest.fixture
def listed(store, organization, other_organization):
    store.write_batch(
        organization.id,
        [
            event("old", timestamp="2023-08-01"),
            event("new", timestamp="2023-08-03"),
            event("mid", timestamp="2023-08-02", sub="sub_2"),
            event("gone", timestamp="2023-08-02", code="deleted"),
        ],
        now=NOW,
    )
    store.write_batch(other_organization.id, [event("theirs")], now=NOW)
    store.discard_events(organization.id, code="deleted", now=NOW)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({}, ["new", "mid", "old"], id="all-newest-first"),
        pytest.param({"external_subscription_id": "sub_1"}, ["new", "old"], id="subscription"),
        pytest.param(
            {"code": "api_calls", "external_subscription_id": "sub_2"}, ["mid"], id="code"
        ),
        pytest.param({"timestamp_from": at("2023-08-02")}, ["new", "mid"], id="from"),
        pytest.param({"timestamp_to": at("2023-08-02")}, ["mid", "old"], id="to"),
    ],
)
def test_list_events_filters_and_orders(store, organization, listed, filters, expected):
    events = store.list_events(organization.id, **filters)
    assert [e.transaction_id for e in events] == expected
    assert events.count() == len(expected)  # a queryset: paginated by the API


def test_get_event_by_transaction_id(store, organization, other_organization, listed):
    assert store.get_event(organization.id, "new").timestamp == at("2023-08-03")
    assert store.get_event(organization.id, "new", "sub_2") is None
    assert store.get_event(organization.id, "mid", "sub_2").transaction_id == "mid"
    assert store.get_event(organization.id, "theirs") is None  # another tenant's
    assert store.get_event(organization.id, "gone") is None  # discarded


def test_discard_events_counts_the_discarded(store, organization):
    store.write_batch(organization.id, [event("a"), event("b")], now=NOW)
    assert store.discard_events(organization.id, code="api_calls", now=NOW) == 2
    assert store.discard_events(organization.id, code="api_calls", now=NOW) == 0
    assert Event.objects.filter(deleted_at=NOW).count() == 2
