"""Duplicates sent at once by several clients are stored once (spec §5.3, STYLE §7/§13)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from metering.store import get_event_store
from tests.conftest import client_for
from tests.metering.usage.conftest import make_billing

pytestmark = pytest.mark.django_db(transaction=True)


def test_eight_concurrent_copies_of_an_event_are_counted_once(api, api_key, organization):
    billing = make_billing(api, organization)
    metric = billing.metric("calls", "count_agg")
    charge = billing.charge(metric, properties={"amount": "1"})
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def send() -> None:
        client = client_for(api_key[1])
        payload = {
            "event": {
                "transaction_id": "tx_same",
                "external_subscription_id": "sub_1",
                "code": "calls",
                "timestamp": 1647000000,
            }
        }
        barrier.wait()
        try:
            status = client.post("/api/v1/events", payload, format="json").status_code
        finally:
            connection.close()
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200] + [422] * 7
    assert len(list(get_event_store().list_events(organization.id))) == 1
    assert billing.charge_usage("2022-03-31T12:00:00", charge)["events_count"] == 1


def test_concurrent_batches_sharing_events_store_each_event_once(api, api_key, organization):
    make_billing(api, organization)
    barrier = threading.Barrier(8)
    statuses: list[int] = []
    lock = threading.Lock()

    def send(worker: int) -> None:
        client = client_for(api_key[1])
        # every batch shares tx_shared; the rest are the worker's own
        events = [
            {"transaction_id": f"w{worker}_{i}", "external_subscription_id": "sub_1", "code": "c"}
            for i in range(20)
        ] + [{"transaction_id": "tx_shared", "external_subscription_id": "sub_1", "code": "c"}]
        barrier.wait()
        try:
            status = client.post("/api/v1/events/batch", {"events": events}, format="json")
        finally:
            connection.close()
        with lock:
            statuses.append(status.status_code)

    threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200] + [422] * 7
    assert len(list(get_event_store().list_events(organization.id))) == 21
