"""Duplicates sent at the same time are stored once (spec §5.3), on real PostgreSQL threads."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from metering.models import Event
from metering.store import EventInput

from .conftest import NOW, at

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8


def send_concurrently(store, organization_id, batches):
    """Write each batch from its own thread (own connection), all released at once."""
    barrier = threading.Barrier(len(batches))

    def send(batch):
        try:
            barrier.wait(timeout=10)
            return store.write_batch(organization_id, batch, now=NOW)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        return list(pool.map(send, batches))


def batch_of(transaction_ids, *, seed):
    ids = list(transaction_ids)
    random.Random(seed).shuffle(ids)  # each thread its own order: no deadlock either way
    return [
        EventInput(
            transaction_id=txn,
            external_subscription_id="sub_1",
            code="api_calls",
            timestamp=at("2023-08-02"),
            properties={"sender": seed},
        )
        for txn in ids
    ]


@pytest.mark.parametrize("round_", range(3))
def test_same_batch_from_eight_threads_is_stored_once(store, organization, round_):
    # 500 rows in shuffled orders: long enough for the inserts to overlap (without the store's
    # key ordering, PostgreSQL detects deadlocks here)
    ids = [f"tx_{i}" for i in range(500)]
    results = send_concurrently(
        store, organization.id, [batch_of(ids, seed=t) for t in range(THREADS)]
    )
    written = [r for r in results if r.written]
    assert len(written) == 1
    assert all(r.duplicate_indexes == tuple(range(500)) for r in results if not r.written)
    stored = Event.objects.filter(organization=organization)
    assert stored.count() == 500
    # every row comes from the one accepted batch
    assert {e.properties["sender"] for e in stored} == {written[0].events[0].properties["sender"]}


def test_batches_sharing_one_id_all_but_one_refused(store, organization):
    batches = [batch_of([f"own_{t}_a", "shared", f"own_{t}_b"], seed=t) for t in range(THREADS)]
    results = send_concurrently(store, organization.id, batches)
    assert sum(r.written for r in results) == 1
    for batch, result in zip(batches, results, strict=True):
        if not result.written:
            shared = [i for i, e in enumerate(batch) if e.transaction_id == "shared"]
            assert result.duplicate_indexes == tuple(shared)
    assert Event.objects.filter(organization=organization).count() == 3
    assert Event.objects.filter(transaction_id="shared").count() == 1


def test_single_events_with_the_same_id_from_eight_threads(store, organization):
    results = send_concurrently(
        store, organization.id, [batch_of(["only"], seed=t) for t in range(THREADS)]
    )
    assert sorted(r.written for r in results) == [False] * (THREADS - 1) + [True]
    assert Event.objects.filter(transaction_id="only").count() == 1
