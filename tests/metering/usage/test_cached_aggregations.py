"""Cached aggregations of pay-in-advance charges (spec §7.14, §29): each billed event stores the
state of its charge, filter, group and period; the next event resumes from it instead of
re-reading the period, with the same fees as the full replay."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.actors import SYSTEM
from invoicing.models import Fee
from invoicing.services.in_advance import in_advance_fees_create
from metering.models import CachedAggregation
from metering.services.cached_aggregations import cached_aggregations_prune
from metering.store import EventInput, get_event_store
from metering.usage import EventLike, in_advance_fees
from tests.metering.usage.conftest import Billing, at, make_billing

pytestmark = pytest.mark.django_db

PROCESSED = at("2023-03-01T00:00:00")


@pytest.fixture
def billing(api, organization) -> Billing:
    """V44's subscription: created 2023-01-24, calendar monthly (February: 28 days)."""
    return make_billing(api, organization, started_at="2023-01-24")


def store(billing: Billing, code: str, timestamp: str, tx: str, **properties) -> None:
    """An event in the store, not billed yet (its task has not run)."""
    get_event_store().write_batch(
        billing.organization.id,
        [
            EventInput(
                transaction_id=tx,
                external_subscription_id="sub_1",
                code=code,
                timestamp=at(timestamp),
                properties=properties,
                subscription_id=billing.subscription.pk,
                customer_id=billing.customer.pk,
            )
        ],
        now=at(timestamp),
    )


def bill(billing: Billing, tx: str) -> list[Fee]:
    """What the in-advance task does for one stored event."""
    return in_advance_fees_create(
        organization_id=billing.organization.id,
        external_subscription_id="sub_1",
        transaction_id=tx,
        actor=SYSTEM,
        now=PROCESSED,
    )


def send(billing: Billing, code: str, timestamp: str, tx: str, **properties) -> list[Fee]:
    store(billing, code, timestamp, tx, **properties)
    return bill(billing, tx)


def billed(fees: list[Fee]) -> tuple[Decimal, int]:
    [fee] = fees
    return fee.units, fee.amount_cents


def states(charge) -> list[tuple[str, Decimal, Decimal, int]]:
    rows = CachedAggregation.objects.filter(charge=charge).order_by("event_timestamp", "event_id")
    return [
        (r.event_transaction_id, r.current_aggregation, r.max_aggregation, r.events_count)
        for r in rows
    ]


def state(tx: str, current: int, highest: int, count: int) -> tuple:
    return tx, Decimal(current), Decimal(highest), count


def test_each_billed_event_stores_the_state_after_it(billing):
    metric = billing.metric("storage", "sum_agg", "amount")
    charge = billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    send(billing, "storage", "2023-02-10T10:00:00", "tx_1", amount=10)
    send(billing, "storage", "2023-02-11T10:00:00", "tx_2", amount=-4)
    send(billing, "storage", "2023-02-12T10:00:00", "tx_3", amount=8)
    assert states(charge) == [
        state("tx_1", 10, 10, 1),
        state("tx_2", 6, 10, 2),
        state("tx_3", 14, 14, 3),
    ]
    row = CachedAggregation.objects.get(event_transaction_id="tx_3")
    assert (row.organization_id, row.subscription_id, row.charge_filter_id) == (
        billing.organization.id,
        billing.subscription.pk,
        None,
    )
    assert row.period_from == at("2023-02-01T00:00:00")


@pytest.mark.parametrize(
    ("aggregation_type", "field_name", "first", "second", "after"),
    [
        pytest.param("count_agg", None, {}, {}, 101, id="count"),
        pytest.param("sum_agg", "amount", {"amount": 1}, {"amount": 5}, 105, id="sum"),
        pytest.param(
            "unique_count_agg", "seat", {"seat": "a"}, {"seat": "b"}, 101, id="unique-count"
        ),
    ],
)
def test_next_event_resumes_from_the_cached_state(
    billing, aggregation_type, field_name, first, second, after
):
    metric = billing.metric("usage", aggregation_type, field_name)
    charge = billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    send(billing, "usage", "2023-02-10T10:00:00", "tx_1", **first)
    # a state the period's events cannot give: only a resumed aggregation can build on it
    CachedAggregation.objects.filter(event_transaction_id="tx_1").update(
        current_aggregation=100, max_aggregation=100, events_count=50
    )
    send(billing, "usage", "2023-02-11T10:00:00", "tx_2", **second)
    assert states(charge)[-1] == state("tx_2", after, after, 51)


def test_resumed_sum_bills_from_the_cached_maximum(billing):
    metric = billing.metric("storage", "sum_agg", "amount")
    charge = billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    send(billing, "storage", "2023-02-10T10:00:00", "tx_1", amount=10)
    CachedAggregation.objects.filter(charge=charge).update(max_aggregation=12)
    assert billed(send(billing, "storage", "2023-02-11T10:00:00", "tx_2", amount=5)) == (
        Decimal(3),
        300,
    )


def _event_selects(queries) -> list[str]:
    return [
        q["sql"] for q in queries if 'FROM "billing_event"' in q["sql"] and "SELECT" in q["sql"]
    ]


def test_cached_path_reads_the_store_from_the_previous_event_only(billing):
    metric = billing.metric("storage", "sum_agg", "amount")
    billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    send(billing, "storage", "2023-02-10T10:00:00", "tx_1", amount=10)
    store(billing, "storage", "2023-02-11T10:00:00", "tx_2", amount=5)
    with CaptureQueriesContext(connection) as queries:
        bill(billing, "tx_2")
    reads = _event_selects(queries.captured_queries)
    assert reads  # the event itself, then the events since the cached one
    assert not any("2023-02-01" in sql for sql in reads)  # never from the period start
    assert any("2023-02-10" in sql for sql in reads)


def test_full_path_reads_the_store_from_the_period_start(billing, settings):
    settings.IN_ADVANCE_CACHED_AGGREGATIONS = False
    metric = billing.metric("storage", "sum_agg", "amount")
    charge = billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    send(billing, "storage", "2023-02-10T10:00:00", "tx_1", amount=10)
    store(billing, "storage", "2023-02-11T10:00:00", "tx_2", amount=5)
    with CaptureQueriesContext(connection) as queries:
        bill(billing, "tx_2")
    assert any("2023-02-01" in sql for sql in _event_selects(queries.captured_queries))
    assert states(charge) == []


def test_unique_count_remove_and_re_add_resume_correctly(billing):
    metric = billing.metric("seats", "unique_count_agg", "seat_id")
    charge = billing.charge(metric, properties={"amount": "5"}, pay_in_advance=True)
    events = [
        ("2023-02-10T10:00:00", "tx_1", {"seat_id": "a"}),
        ("2023-02-11T10:00:00", "tx_2", {"seat_id": "b"}),
        ("2023-02-12T10:00:00", "tx_3", {"seat_id": "a", "operation_type": "remove"}),
        ("2023-02-13T10:00:00", "tx_4", {"seat_id": "a"}),  # back to 2: counted, free (max 2)
        ("2023-02-14T10:00:00", "tx_5", {"seat_id": "b"}),  # already active: nothing
        ("2023-02-15T10:00:00", "tx_6", {"seat_id": "c"}),  # 3: above the maximum
    ]
    fees = [billed(send(billing, "seats", ts, tx, **props)) for ts, tx, props in events]
    assert fees == [
        (Decimal(1), 500),
        (Decimal(1), 500),
        (Decimal(0), 0),
        (Decimal(1), 0),
        (Decimal(0), 0),
        (Decimal(1), 500),
    ]
    assert states(charge) == [
        state("tx_1", 1, 1, 1),
        state("tx_2", 2, 2, 2),
        state("tx_3", 1, 2, 3),
        state("tx_4", 2, 2, 4),
        state("tx_5", 2, 2, 5),
        state("tx_6", 3, 3, 6),
    ]


def test_late_event_bills_on_the_period_before_it_and_resets_the_later_states(billing):
    metric = billing.metric("storage", "sum_agg", "amount")
    charge = billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    send(billing, "storage", "2023-02-10T10:00:00", "tx_1", amount=10)
    send(billing, "storage", "2023-02-14T10:00:00", "tx_3", amount=2)
    # sent late: stamped between the two billed events
    assert billed(send(billing, "storage", "2023-02-12T10:00:00", "tx_2", amount=-4)) == (
        Decimal(0),
        0,
    )
    assert states(charge) == [state("tx_1", 10, 10, 1), state("tx_2", 6, 10, 2)]
    # running total 10, 6, 8, 11: the maximum 10 is passed by 1 (a stale state said 15 - 12)
    assert billed(send(billing, "storage", "2023-02-16T10:00:00", "tx_4", amount=3)) == (
        Decimal(1),
        100,
    )
    assert states(charge)[-1] == state("tx_4", 11, 11, 4)


def test_late_event_before_every_state_takes_the_full_replay(billing):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(
        metric,
        "graduated",
        properties={
            "graduated_ranges": [
                {"from_value": 0, "to_value": 1, "per_unit_amount": "5", "flat_amount": "0"},
                {"from_value": 2, "to_value": None, "per_unit_amount": "1", "flat_amount": "0"},
            ]
        },
        pay_in_advance=True,
    )
    send(billing, "calls", "2023-02-10T10:00:00", "tx_2")  # billed as the first: 5
    # sent late, stamped before: the first of the period now (5); tx_2's state is dropped
    assert billed(send(billing, "calls", "2023-02-05T10:00:00", "tx_1")) == (Decimal(1), 500)
    assert states(charge) == [state("tx_1", 1, 1, 1)]
    # resumes from tx_1 and replays tx_2: the third event of the period
    assert billed(send(billing, "calls", "2023-02-11T10:00:00", "tx_3")) == (Decimal(1), 100)
    assert states(charge) == [state("tx_1", 1, 1, 1), state("tx_3", 3, 3, 3)]


def test_a_task_run_twice_keeps_one_state_per_event(billing):
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric, properties={"amount": "10"}, pay_in_advance=True)
    send(billing, "calls", "2023-02-10T10:00:00", "tx_1")
    send(billing, "calls", "2023-02-11T10:00:00", "tx_2")
    assert bill(billing, "tx_1") == []
    assert bill(billing, "tx_2") == []
    assert states(charge) == [state("tx_1", 1, 1, 1), state("tx_2", 2, 2, 2)]
    assert Fee.objects.filter(charge=charge).count() == 2


def test_states_are_kept_per_filter_and_group(billing):
    metric = billing.metric("transfers", "sum_agg", "amount")
    billing.metric_filter(metric, "region", ["europe", "africa"])
    charge = billing.charge(
        metric,
        properties={"amount": "1", "pricing_group_keys": ["user"]},
        pay_in_advance=True,
    )
    europe = billing.charge_filter(
        charge, {"region": ["europe"]}, {"amount": "2", "pricing_group_keys": ["user"]}
    )
    send(billing, "transfers", "2023-02-10T10:00:00", "tx_1", amount=5, region="europe", user="u")
    send(billing, "transfers", "2023-02-11T10:00:00", "tx_2", amount=7, region="africa", user="u")
    send(billing, "transfers", "2023-02-12T10:00:00", "tx_3", amount=1, region="europe", user="v")
    assert billed(
        send(
            billing, "transfers", "2023-02-13T10:00:00", "tx_4", amount=2, region="europe", user="u"
        )
    ) == (Decimal(2), 400)
    rows = CachedAggregation.objects.filter(charge=charge).order_by("event_timestamp")
    assert [(r.charge_filter_id, r.grouped_by, r.max_aggregation) for r in rows] == [
        (europe.pk, {"user": "u"}, Decimal(5)),
        (None, {"user": "u"}, Decimal(7)),
        (europe.pk, {"user": "v"}, Decimal(1)),
        (europe.pk, {"user": "u"}, Decimal(7)),
    ]


def test_a_new_period_starts_from_the_full_replay(billing):
    metric = billing.metric("seats", "unique_count_agg", "seat_id", recurring=True)
    charge = billing.charge(metric, properties={"amount": "5"}, pay_in_advance=True)
    send(billing, "seats", "2023-02-10T10:00:00", "tx_1", seat_id="a")
    # March: "a" carried over (recurring), "b" is new; the period maximum starts from 1
    assert billed(send(billing, "seats", "2023-03-02T10:00:00", "tx_2", seat_id="b")) == (
        Decimal(1),
        500,
    )
    assert billed(send(billing, "seats", "2023-03-03T10:00:00", "tx_3", seat_id="a")) == (
        Decimal(0),
        0,
    )
    assert states(charge) == [
        state("tx_1", 1, 1, 1),
        state("tx_2", 2, 2, 1),
        state("tx_3", 2, 2, 2),
    ]


def test_estimate_reads_the_cache_without_writing(billing):
    metric = billing.metric("storage", "sum_agg", "amount")
    charge = billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    send(billing, "storage", "2023-02-10T10:00:00", "tx_1", amount=10)
    CachedAggregation.objects.filter(charge=charge).update(max_aggregation=12)
    event = EventLike(
        transaction_id="tx_estimate",
        external_subscription_id="sub_1",
        code="storage",
        timestamp=at("2023-02-11T10:00:00"),
        properties={"amount": 5},
    )
    [fee] = in_advance_fees(subscription=billing.subscription, event=event, cache="read")
    assert (fee.units, fee.amount_cents) == (Decimal(3), 300)
    assert len(states(charge)) == 1


# --------------------------------------------------------------------------------------------
# Same fees as the full replay, whatever the order the events are billed in

MODELS = {
    "standard": {"amount": "1.5"},
    "package": {"amount": "10", "free_units": 2, "package_size": 3},
    "graduated": {
        "graduated_ranges": [
            {"from_value": 0, "to_value": 4, "per_unit_amount": "2", "flat_amount": "1"},
            {"from_value": 5, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "3"},
        ]
    },
    "graduated_percentage": {
        "graduated_percentage_ranges": [
            {"from_value": 0, "to_value": 10, "rate": "2", "flat_amount": "1"},
            {"from_value": 11, "to_value": None, "rate": "1", "flat_amount": "2"},
        ]
    },
    "percentage": {"rate": "3", "fixed_amount": "0.5"},
    "dynamic": {},
}


def _random_events(rng: random.Random, kind: str, n: int) -> list[tuple[str, dict, Decimal]]:
    start = at("2023-02-01T00:00:00")
    events = []
    for i in range(n):
        # a few share their timestamp: the store orders them by id
        seconds = rng.choice([i * 3000, i * 3000, (i - 1) * 3000 if i else 0])
        props = {"region": rng.choice(["eu", "us", "asia"]), "user": rng.choice(["u", "v"])}
        if kind == "sum_agg":
            props["amount"] = str(Decimal(rng.randint(-30, 60)) / 4)
        elif kind == "unique_count_agg":
            props["seat"] = rng.choice(["a", "b", "c", "d", 7, 2.5])  # 2.5: full replay
            if rng.random() < 0.3:
                props["operation_type"] = "remove"
        ptac = Decimal(rng.randint(0, 500)) / 10
        events.append((str(start + timedelta(seconds=seconds)), props, ptac))
    return events


@pytest.mark.parametrize("kind", ["count_agg", "sum_agg", "unique_count_agg"])
@pytest.mark.parametrize("order", ["in-order", "shuffled"])
@pytest.mark.parametrize("charge_model", sorted(MODELS))
def test_cached_fees_equal_the_full_replay(billing, kind, order, charge_model):
    if charge_model in ("percentage", "dynamic") and kind == "unique_count_agg":
        pytest.skip("percentage and dynamic are not offered on unique counts")
    rng = random.Random(f"{kind}-{order}-{charge_model}")
    field_name = {"sum_agg": "amount", "unique_count_agg": "seat"}.get(kind)
    metric = billing.metric("usage", kind, field_name)
    billing.metric_filter(metric, "region", ["eu", "us", "asia"])
    properties = {**MODELS[charge_model], "pricing_group_keys": ["user"]}
    charge = billing.charge(metric, charge_model, properties=properties, pay_in_advance=True)
    billing.charge_filter(charge, {"region": ["eu"]}, properties)
    events = _random_events(rng, kind, 40)
    get_event_store().write_batch(
        billing.organization.id,
        [
            EventInput(
                transaction_id=f"tx_{i}",
                external_subscription_id="sub_1",
                code="usage",
                timestamp=at(ts),
                properties=props,
                precise_total_amount_cents=ptac,
            )
            for i, (ts, props, ptac) in enumerate(events)
        ],
        now=PROCESSED,
    )
    stored = list(get_event_store().list_events(billing.organization.id))
    if order == "shuffled":
        rng.shuffle(stored)
    else:
        stored.reverse()
    for row in stored:
        event = EventLike(
            transaction_id=row.transaction_id,
            external_subscription_id=row.external_subscription_id,
            code=row.code,
            timestamp=row.timestamp,
            properties=row.properties,
            precise_total_amount_cents=row.precise_total_amount_cents,
            value=row.value,
            id=row.id,
        )
        full = in_advance_fees(subscription=billing.subscription, event=event, cache="off")
        with transaction.atomic():
            cached = in_advance_fees(subscription=billing.subscription, event=event, cache="write")
        assert [(f.units, f.precise_amount_cents, f.amount_details) for f in cached] == [
            (f.units, f.precise_amount_cents, f.amount_details) for f in full
        ], row.transaction_id
    assert CachedAggregation.objects.filter(charge=charge).exists()


# --------------------------------------------------------------------------------------------
# Concurrency


@pytest.mark.django_db(transaction=True)
def test_parallel_workers_bill_like_one(api, organization):
    billing = make_billing(api, organization, started_at="2023-01-24")
    metric = billing.metric("storage", "sum_agg", "amount")
    charge = billing.charge(
        metric,
        "graduated",
        properties={
            "graduated_ranges": [
                {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
                {"from_value": 11, "to_value": None, "per_unit_amount": "2", "flat_amount": "0"},
            ]
        },
        pay_in_advance=True,
        invoiceable=False,
    )
    ids = [f"tx_{i}" for i in range(12)]
    for i, tx in enumerate(ids):
        store(billing, "storage", f"2023-02-{10 + i}T10:00:00", tx, amount=2)
    random.Random(3).shuffle(ids)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(share: list[str]) -> None:
        barrier.wait()
        try:
            for tx in share:
                bill(billing, tx)
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(ids[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    # 24 units in all: 10 x 1 + 14 x 2, whichever order the events were billed in
    amounts = Fee.objects.filter(charge=charge).values_list("amount_cents", flat=True)
    assert (len(amounts), sum(amounts)) == (12, 3800)
    # the states left (the later ones are dropped by an earlier event billed after them) are
    # those of the period up to their event: tx_k is the (k+1)th event of 2 units
    rows = states(charge)
    assert rows
    assert all(
        (current, highest, count) == (2 * count, 2 * count, int(tx.removeprefix("tx_")) + 1)
        for tx, current, highest, count in rows
    )


@pytest.mark.parametrize("cached", [True, False], ids=["cached", "full-replay"])
@pytest.mark.parametrize(
    ("kind", "field_name", "first", "second", "expected"),
    [
        ("sum_agg", "amount", {"amount": 10}, {"amount": 5}, (Decimal(5), 500)),
        ("unique_count_agg", "seat", {"seat": "a"}, {"seat": "b"}, (Decimal(1), 100)),
    ],
)
def test_recurring_next_period_bills_only_above_the_carried_over_total(
    billing, settings, cached, kind, field_name, first, second, expected
):
    # the renewal bills the carried-over units at the period start (§7.14): an event of the
    # new period must not bill them again
    settings.IN_ADVANCE_CACHED_AGGREGATIONS = cached
    metric = billing.metric("storage", kind, field_name, recurring=True)
    billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True, invoiceable=False)

    assert billed(send(billing, "storage", "2023-02-10T10:00:00", "tx1", **first))[1] > 0
    assert billed(send(billing, "storage", "2023-03-05T10:00:00", "tx2", **second)) == expected


# --------------------------------------------------------------------------------------------
# Pruning


def test_prune_keeps_the_latest_state_of_each_key_and_the_recent_ones(billing):
    metric = billing.metric("storage", "sum_agg", "amount")
    charge = billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    for day, tx in ((10, "tx1"), (11, "tx2"), (12, "tx3")):
        send(billing, "storage", f"2023-02-{day}T10:00:00", tx, amount=2)
    # tx1 and tx2 were stored long ago; tx3 is the latest of its key
    CachedAggregation.objects.filter(event_transaction_id__in=["tx1", "tx2", "tx3"]).update(
        created_at=at("2023-01-01T00:00:00")
    )

    deleted = cached_aggregations_prune(now=at("2023-03-01T00:00:00"))

    assert deleted == 2
    assert [row[0] for row in states(charge)] == ["tx3"]
    # the next event resumes from the kept state, with the same fee as ever
    assert billed(send(billing, "storage", "2023-02-13T10:00:00", "tx4", amount=2)) == (
        Decimal(2),
        200,
    )
    assert states(charge)[-1] == state("tx4", 8, 8, 4)


def test_prune_spares_states_younger_than_the_retention(billing):
    metric = billing.metric("storage", "sum_agg", "amount")
    charge = billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    for day, tx in ((10, "tx1"), (11, "tx2")):
        send(billing, "storage", f"2023-02-{day}T10:00:00", tx, amount=2)

    assert cached_aggregations_prune(now=timezone.now()) == 0
    assert len(states(charge)) == 2


def test_a_late_event_after_pruning_bills_from_the_full_replay(billing):
    metric = billing.metric("storage", "sum_agg", "amount")
    charge = billing.charge(metric, properties={"amount": "1"}, pay_in_advance=True)
    for day, tx in ((10, "tx1"), (12, "tx3")):
        send(billing, "storage", f"2023-02-{day}T10:00:00", tx, amount=2)
    CachedAggregation.objects.update(created_at=at("2023-01-01T00:00:00"))
    cached_aggregations_prune(now=at("2023-03-01T00:00:00"))

    # an event between the two: no state before it is left, the period is replayed
    assert billed(send(billing, "storage", "2023-02-11T10:00:00", "tx2", amount=2)) == (
        Decimal(2),
        200,
    )
    assert Fee.objects.filter(charge=charge).count() == 3
