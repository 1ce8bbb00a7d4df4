"""How attempts are sent: kept-alive connections, one body per event, kept JWT signatures, and
senders that wait for the next deliveries instead of ending."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import jwt
import psycopg
import pytest
import redis
from django.db import connection
from django.utils import timezone

from billing.actors import SYSTEM
from customers.services.customers import customer_create
from integrations import tasks
from integrations.locks import _SLOT_NAMESPACE, _slot_key
from integrations.models import WebhookBody, WebhookDelivery
from integrations.services.webhook_delivery import (
    delivery_resend,
    endpoint_deliveries_send,
    outbox_drain,
)
from integrations.services.webhook_http import Transport
from integrations.services.webhook_signing import jwt_signature, private_key
from integrations.services.webhook_targets import resolve_target
from tests.integrations.helpers import deliver, endpoint_for, send_at
from tests.integrations.test_webhook_worker import REDIS_URL, redis_broker

pytestmark = pytest.mark.django_db
Status = WebhookDelivery.Status


def _customer(organization, external_id="cus_1"):
    return customer_create(
        organization=organization, values={"external_id": external_id}, actor=SYSTEM
    )


def _post(transport: Transport, url: str, body: bytes = b"{}"):
    return transport.post(resolve_target(url), body=body, headers={"X-Test": "1"})


def test_a_transport_sends_its_requests_over_one_kept_alive_connection(receiver):
    transport = Transport(timeout=5, connections=1)
    try:
        answers = [_post(transport, receiver.url) for _ in range(3)]
    finally:
        transport.close()

    assert [a.status for a in answers] == [200, 200, 200]
    assert len({r.peer for r in receiver.requests}) == 1


def test_a_connection_the_receiver_closed_is_replaced(receiver):
    receiver.drop_connections = True
    transport = Transport(timeout=5, connections=1)
    try:
        first = _post(transport, receiver.url)
        time.sleep(0.2)  # the receiver has closed it by now
        second = _post(transport, receiver.url)
    finally:
        transport.close()

    assert (first.status, second.status) == (200, 200)
    assert len({r.peer for r in receiver.requests}) == 2


def test_a_transport_sends_the_host_of_the_url_and_the_body_as_given(receiver):
    transport = Transport(timeout=5)
    try:
        answer = _post(transport, receiver.url, body=b'{"a":"\xc3\xa9"}')
    finally:
        transport.close()

    [request] = receiver.requests
    assert answer.body == '{"ok":true}'
    assert request.headers["Host"] == receiver.url.split("/")[2]
    assert request.body == b'{"a":"\xc3\xa9"}'
    assert request.path == "/webhooks"


def test_a_jwt_token_made_from_a_kept_signature_is_the_one_pyjwt_makes(settings):
    body = '{"customer":{"name":"Zoë"}}'

    token = jwt_signature(body)

    expected = jwt.encode({"data": body, "iss": settings.API_URL}, private_key(), "RS256")
    assert token == expected


def test_an_events_deliveries_to_several_endpoints_share_one_body(
    organization, receiver, other_receiver
):
    endpoint_for(organization, receiver.url, signature_algo="hmac")
    endpoint_for(organization, other_receiver.url, signature_algo="hmac")
    _customer(organization)

    deliveries = deliver()

    [body] = WebhookBody.objects.all()
    assert {d.body_id for d in deliveries} == {body.pk}
    assert receiver.requests[0].body == other_receiver.requests[0].body == body.text.encode()
    assert body.jwt_signature == ""  # no JWT endpoint: nothing signed


def test_a_body_is_signed_once_for_every_jwt_endpoint_and_attempt(
    organization, receiver, other_receiver, settings
):
    receiver.statuses = [500]
    endpoint = endpoint_for(organization, receiver.url)  # jwt by default
    endpoint_for(organization, other_receiver.url)
    _customer(organization)
    start = timezone.now()
    deliver(at=start)
    send_at(endpoint, start + timedelta(seconds=10))  # the retry

    body = WebhookBody.objects.get()
    tokens = [r.headers["X-Lago-Signature"] for r in receiver.requests + other_receiver.requests]
    assert len(tokens) == 3
    assert {t.rsplit(".", 1)[1] for t in tokens} == {body.jwt_signature}
    for token in tokens:
        claims = jwt.decode(
            token, private_key().public_key(), algorithms=["RS256"], issuer=settings.API_URL
        )
        assert claims["data"] == body.text


def test_a_kept_signature_of_another_issuer_is_not_used(organization, receiver, settings):
    endpoint_for(organization, receiver.url)
    _customer(organization)
    outbox_drain(now=timezone.now())
    settings.API_URL = "https://billing.example.org"

    deliver()

    [request] = receiver.requests
    claims = jwt.decode(
        request.headers["X-Lago-Signature"],
        private_key().public_key(),
        algorithms=["RS256"],
        issuer="https://billing.example.org",
    )
    assert claims["data"] == request.body.decode()


def test_a_waiting_sender_attempts_the_deliveries_recorded_while_it_waits(organization, receiver):
    endpoint = endpoint_for(organization, receiver.url, signature_algo="hmac")
    _customer(organization, "cus_1")
    outbox_drain(now=timezone.now())
    waits = []

    def wait_for_more(has_due, timeout):
        waits.append(timeout)
        if len(waits) == 1:  # a drain commits the next event's delivery meanwhile
            _customer(organization, "cus_2")
            outbox_drain(now=timezone.now())
            return True
        return has_due()

    report = endpoint_deliveries_send(
        endpoint_id=endpoint.pk,
        clock=timezone.now,
        wait_for_more=wait_for_more,
        idle_seconds=0.5,
        max_seconds=5,
    )

    assert report.attempted == 2
    assert len(receiver.requests) == 2
    assert waits == [0.5, 0.5]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}


@pytest.mark.django_db(transaction=True)
def test_the_sender_of_a_second_slot_ends_without_waiting(organization, receiver):
    endpoint = endpoint_for(organization, receiver.url, signature_algo="hmac")
    _customer(organization)  # delivered at its commit (tasks run eagerly)
    delivery_resend(delivery=WebhookDelivery.objects.get(), actor=SYSTEM, now=timezone.now())
    waits = []
    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"], port=s["PORT"], user=s["USER"], dbname=s["NAME"], autocommit=True
    ) as other:  # another sender holds the first slot
        other.execute(
            "SELECT pg_advisory_lock(%s, %s)", [_SLOT_NAMESPACE, _slot_key(endpoint.pk, 0)]
        )

        report = endpoint_deliveries_send(
            endpoint_id=endpoint.pk, clock=timezone.now, slots=2, idle_seconds=0.5,
            wait_for_more=lambda has_due, timeout: waits.append(timeout) or False,
        )  # fmt: skip

    assert report.attempted == 1
    assert waits == []


@pytest.mark.django_db(transaction=True)
def test_a_sender_does_not_wait_on_deliveries_another_sender_holds(organization, receiver):
    endpoint = endpoint_for(organization, receiver.url, signature_algo="hmac")
    _customer(organization)  # delivered at its commit (tasks run eagerly)
    delivery = WebhookDelivery.objects.get()
    delivery_resend(delivery=delivery, actor=SYSTEM, now=timezone.now())
    looks = []

    def wait_for_more(has_due, timeout):
        looks.append(has_due())
        return looks[-1]

    s = connection.settings_dict
    with psycopg.connect(
        host=s["HOST"], port=s["PORT"], user=s["USER"], dbname=s["NAME"]
    ) as other:  # another sender is attempting it
        other.execute(
            "SELECT id FROM integrations_webhookdelivery WHERE id = %s FOR UPDATE", [delivery.pk]
        )
        started = time.monotonic()

        report = endpoint_deliveries_send(
            endpoint_id=endpoint.pk, clock=timezone.now, wait_for_more=wait_for_more,
            idle_seconds=1.0, max_seconds=10,
        )  # fmt: skip

    assert report.attempted == 0
    assert looks == [False]
    assert time.monotonic() - started < 5


ENDPOINT_ID = "6f1d2c1e-0000-4000-8000-000000000001"
# what waits, and what notifies it: the drain after a commit, a sender after a drained batch
WAITERS = [
    pytest.param(tasks.DRAIN_KEYS, tasks.drain_soon, id="drain"),
    pytest.param(
        tasks._send_keys(ENDPOINT_ID), lambda: tasks._dispatch([ENDPOINT_ID]), id="sender"
    ),
]


@pytest.fixture
def broker_queue():
    """The Redis broker, its queue and the flags of these tests empty."""
    queue = redis.Redis.from_url(REDIS_URL)
    with redis_broker():
        queue.delete(*tasks.DRAIN_KEYS, *tasks._send_keys(ENDPOINT_ID))
        yield queue
        queue.delete("celery", *tasks.DRAIN_KEYS, *tasks._send_keys(ENDPOINT_ID))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("keys", "notify"), WAITERS)
def test_a_notification_wakes_the_waiting_task_instead_of_queueing_one(broker_queue, keys, notify):
    wait = tasks._waiter(*keys[:2])
    woken = []
    waiting = threading.Thread(target=lambda: woken.append(wait(lambda: False, 5.0)))
    waiting.start()
    deadline = time.monotonic() + 5
    while not broker_queue.exists(keys[0]) and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()

    notify()
    waiting.join(timeout=5)

    assert woken == [True]
    assert time.monotonic() - started < 2
    assert broker_queue.llen("celery") == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("keys", "notify"), WAITERS)
def test_without_a_waiting_task_notifications_queue_one(broker_queue, keys, notify):
    notify()
    notify()

    assert broker_queue.llen("celery") == 1


@pytest.mark.django_db(transaction=True)
def test_a_task_that_waited_in_vain_looks_once_more(broker_queue):
    keys = tasks._send_keys(ENDPOINT_ID)
    wait = tasks._waiter(*keys[:2])
    looks = []

    def has_due():
        looks.append(1)
        return len(looks) == 2  # nothing when it starts listening, rows after its wait

    assert wait(has_due, 0.2) is True
    assert len(looks) == 2
    assert not broker_queue.exists(keys[0])
