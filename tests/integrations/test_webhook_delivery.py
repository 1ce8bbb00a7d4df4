"""Delivery to a real local receiver: signatures, filters, tenancy, retries, resend, SSRF."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
from datetime import timedelta

import jwt
import pytest
from django.utils import timezone

from billing import outbox
from billing.actors import SYSTEM
from billing.models import OutboxEvent
from billing.outbox import emit
from customers.services.customers import customer_create
from integrations.models import WebhookDelivery
from integrations.services import webhook_delivery
from integrations.services.webhook_delivery import (
    deliveries_purge,
    delivery_resend,
    endpoint_deliveries_send,
    outbox_drain,
    retry_wait_seconds,
)
from integrations.services.webhook_signing import hmac_signature
from integrations.tasks import deliver_webhooks_task
from tests.integrations.helpers import bodies, deliver, endpoint_for, send_at

pytestmark = pytest.mark.django_db
Status = WebhookDelivery.Status


def _customer(organization, external_id="cus_1"):
    return customer_create(
        organization=organization, values={"external_id": external_id, "name": "Ada"},
        actor=SYSTEM,
    )  # fmt: skip


def test_hmac_signature_is_base64_of_hmac_sha256_of_the_raw_body():
    body = b'{"webhook_type":"invoice.created"}'  # vector V100, key "secret"
    expected = base64.b64encode(hmac.new(b"secret", body, hashlib.sha256).digest()).decode()

    assert hmac_signature("secret", body) == expected


@pytest.mark.parametrize(
    ("failures", "jitter", "seconds"),
    [
        pytest.param(1, 0.0, 3.0, id="first-failure-no-jitter"),
        pytest.param(1, 1.0, 3.15, id="first-failure-full-jitter"),
        pytest.param(2, 0.0, 18.0, id="second-failure-no-jitter"),
        pytest.param(2, 1.0, 20.4, id="second-failure-full-jitter"),
    ],
)
def test_retry_wait_is_lagos_polynomial_backoff(failures, jitter, seconds):
    assert retry_wait_seconds(failures, jitter=jitter) == pytest.approx(seconds)


def test_an_hmac_endpoint_gets_the_event_signed_with_the_organization_key(organization, receiver):
    endpoint_for(organization, receiver.url, signature_algo="hmac")
    customer = _customer(organization)

    [delivery] = deliver()

    [request] = receiver.requests
    organization.refresh_from_db()
    expected = base64.b64encode(
        hmac.new(organization.webhook_secret.encode(), request.body, hashlib.sha256).digest()
    ).decode()
    assert request.headers["X-Lago-Signature"] == expected
    assert request.headers["X-Lago-Signature-Algorithm"] == "hmac"
    assert request.headers["X-Lago-Unique-Key"] == str(delivery.pk)
    assert request.headers["Content-Type"] == "application/json"
    body = json.loads(request.body)
    assert (body["webhook_type"], body["object_type"]) == ("customer.created", "customer")
    assert body["organization_id"] == str(organization.pk)
    assert body["customer"]["lago_id"] == str(customer.pk)
    assert delivery.status == Status.SUCCEEDED
    assert (delivery.http_status, delivery.attempts) == (200, 1)
    assert delivery.response == '{"ok":true}'


def test_a_jwt_endpoint_gets_a_token_verified_by_the_published_public_key(
    organization, api, receiver, settings
):
    endpoint_for(organization, receiver.url)  # jwt by default
    _customer(organization)

    deliver()

    [request] = receiver.requests
    published = api.get("/api/v1/webhooks/json_public_key").json()["webhook"]["public_key"]
    claims = jwt.decode(
        request.headers["X-Lago-Signature"],
        base64.b64decode(published),
        algorithms=["RS256"],
        issuer=settings.API_URL,
    )
    assert claims["data"] == request.body.decode()
    assert request.headers["X-Lago-Signature-Algorithm"] == "jwt"


def test_a_jwt_signature_does_not_verify_a_tampered_body(organization, api, receiver):
    endpoint_for(organization, receiver.url)
    _customer(organization)
    deliver()
    [request] = receiver.requests
    published = base64.b64decode(api.get("/api/v1/webhooks/public_key").content)

    claims = jwt.decode(
        request.headers["X-Lago-Signature"], published, algorithms=["RS256"],
        options={"verify_iss": False},
    )  # fmt: skip

    assert claims["data"] != request.body.decode().replace("Ada", "Eve")


def test_an_endpoint_gets_only_the_event_types_it_subscribed_to(
    organization, receiver, other_receiver
):
    endpoint_for(organization, receiver.url, event_types=["customer.updated"])
    endpoint_for(organization, other_receiver.url)  # every type
    _customer(organization)

    deliver()

    assert receiver.requests == []
    assert [b["webhook_type"] for b in bodies(other_receiver)] == ["customer.created"]
    assert WebhookDelivery.objects.count() == 1


def test_another_organizations_endpoint_never_gets_our_events(
    organization, other_organization, receiver, other_receiver
):
    endpoint_for(organization, receiver.url)
    endpoint_for(other_organization, other_receiver.url)
    _customer(organization)

    deliver()

    assert len(receiver.requests) == 1
    assert other_receiver.requests == []
    assert not WebhookDelivery.objects.filter(organization=other_organization).exists()


def test_a_receiver_failing_twice_gets_the_event_at_the_third_attempt(organization, receiver):
    receiver.statuses = [500, 503]
    endpoint = endpoint_for(organization, receiver.url)
    _customer(organization)
    start = timezone.now()

    [delivery] = deliver(at=start)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.http_status) == (Status.RETRYING, 1, 500)
    first_wait = (delivery.next_attempt_at - start).total_seconds()
    assert 3 <= first_wait <= 3.15

    send_at(endpoint, start + timedelta(seconds=2))  # not due yet
    assert len(receiver.requests) == 1

    send_at(endpoint, start + timedelta(seconds=4))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.http_status) == (Status.RETRYING, 2, 503)
    second_wait = (delivery.next_attempt_at - (start + timedelta(seconds=4))).total_seconds()
    assert 18 <= second_wait <= 20.4

    send_at(endpoint, start + timedelta(seconds=30))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.http_status) == (Status.SUCCEEDED, 3, 200)
    keys = {r.headers["X-Lago-Unique-Key"] for r in receiver.requests}
    assert keys == {str(delivery.pk)}
    assert len({r.body for r in receiver.requests}) == 1  # the same body every time


def test_after_the_last_attempt_the_delivery_is_failed(organization, receiver, settings):
    settings.WEBHOOK_ATTEMPTS = 2
    receiver.default_status = 500
    endpoint = endpoint_for(organization, receiver.url)
    _customer(organization)
    start = timezone.now()

    deliver(at=start)
    send_at(endpoint, start + timedelta(minutes=5))
    send_at(endpoint, start + timedelta(minutes=10))

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Status.FAILED, 2)
    assert delivery.next_attempt_at is None
    assert delivery.response == '{"error":"try later"}'
    assert len(receiver.requests) == 2


def test_a_sending_slot_has_its_requests_in_flight_at_once_and_no_more(
    organization, receiver, settings
):
    settings.WEBHOOK_REQUESTS_PER_SLOT = 3
    receiver.delay = 0.3
    endpoint_for(organization, receiver.url, signature_algo="hmac")
    for n in range(7):
        _customer(organization, f"cus_{n}")

    deliveries = deliver()

    assert receiver.most_in_flight == 3
    assert [d.status for d in deliveries] == [Status.SUCCEEDED] * 7
    assert len(receiver.requests) == 7


def test_a_sender_stops_between_batches_after_its_time(organization, receiver, monkeypatch):
    monkeypatch.setattr(webhook_delivery, "SEND_BATCH", 2)
    endpoint = endpoint_for(organization, receiver.url, signature_algo="hmac")
    for n in range(5):
        _customer(organization, f"cus_{n}")
    outbox_drain(now=timezone.now())

    report = endpoint_deliveries_send(endpoint_id=endpoint.pk, clock=timezone.now, max_seconds=0)

    assert (report.attempted, report.more) == (2, True)
    assert WebhookDelivery.objects.filter(status=Status.PENDING).count() == 3


def test_a_drain_reports_the_endpoints_of_each_batch_once_committed(
    organization, receiver, monkeypatch
):
    monkeypatch.setattr(webhook_delivery, "DRAIN_BATCH", 2)
    endpoint = endpoint_for(organization, receiver.url)
    for n in range(3):
        _customer(organization, f"cus_{n}")
    seen = []

    outbox_drain(
        now=timezone.now(),
        on_batch=lambda ids: seen.append((ids, WebhookDelivery.objects.count())),
    )

    assert seen == [({endpoint.pk}, 2), ({endpoint.pk}, 3)]


def test_a_receiver_that_refuses_connections_is_retried(organization):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint_for(organization, f"http://127.0.0.1:{port}/hook")
    _customer(organization)

    [delivery] = deliver()

    delivery.refresh_from_db()
    assert delivery.status == Status.RETRYING
    assert delivery.http_status is None
    assert "onnection" in delivery.response


def test_resend_attempts_a_delivered_webhook_again_with_the_same_key(organization, receiver):
    endpoint = endpoint_for(organization, receiver.url)
    _customer(organization)
    [delivery] = deliver()

    delivery_resend(delivery=delivery, actor=SYSTEM, now=timezone.now())
    send_at(endpoint, timezone.now())

    delivery.refresh_from_db()
    assert len(receiver.requests) == 2
    assert receiver.requests[0].body == receiver.requests[1].body
    assert {r.headers["X-Lago-Unique-Key"] for r in receiver.requests} == {str(delivery.pk)}
    assert (delivery.status, delivery.attempts) == (Status.SUCCEEDED, 2)


def test_a_loopback_target_is_skipped_at_delivery_when_not_allowed(
    organization, receiver, settings
):
    endpoint_for(organization, receiver.url)
    _customer(organization)
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False

    [delivery] = deliver()

    delivery.refresh_from_db()
    assert receiver.requests == []
    assert delivery.status == Status.SKIPPED
    assert "not public" in delivery.response


def test_an_unknown_event_type_is_delivered_with_the_recorded_payload(organization, receiver):
    endpoint_for(organization, receiver.url)
    emit(
        event_type="gizmo.calibrated",
        actor=SYSTEM,
        payload={"lago_id": "g1", "level": 3},
        organization_id=organization.pk,
        object_type="gizmo",
        object_id="g1",
    )

    deliver()

    assert bodies(receiver) == [
        {
            "webhook_type": "gizmo.calibrated",
            "object_type": "gizmo",
            "organization_id": str(organization.pk),
            "gizmo": {"lago_id": "g1", "level": 3},
        }
    ]


def test_an_event_whose_object_is_gone_is_delivered_with_the_recorded_payload(
    organization, receiver
):
    endpoint_for(organization, receiver.url)
    emit(
        event_type="invoice.deleted",
        actor=SYSTEM,
        payload={"lago_id": "00000000-0000-0000-0000-000000000000", "status": "deleted"},
        organization_id=organization.pk,
        object_type="invoice",
        object_id="00000000-0000-0000-0000-000000000000",
    )

    deliver()

    assert bodies(receiver)[0]["invoice"]["status"] == "deleted"


def test_draining_twice_creates_each_delivery_once(organization, receiver):
    endpoint_for(organization, receiver.url)
    _customer(organization)

    outbox_drain(now=timezone.now())
    OutboxEvent.objects.update(processed_at=None)  # as if the first drain's mark was lost
    outbox_drain(now=timezone.now())

    assert WebhookDelivery.objects.count() == 1
    assert not OutboxEvent.objects.filter(processed_at__isnull=True).exists()


def test_a_drain_meeting_an_existing_delivery_still_creates_the_others(organization, receiver):
    endpoint_for(organization, receiver.url)
    _customer(organization, "cus_1")
    outbox_drain(now=timezone.now())
    first = WebhookDelivery.objects.get()
    OutboxEvent.objects.update(processed_at=None)  # as if its drain had not marked it
    _customer(organization, "cus_2")

    report = outbox_drain(now=timezone.now())

    assert report.events == 2
    assert WebhookDelivery.objects.count() == 2
    assert WebhookDelivery.objects.filter(pk=first.pk).exists()
    assert not OutboxEvent.objects.filter(processed_at__isnull=True).exists()


def test_events_recorded_before_any_endpoint_are_marked_processed(organization):
    _customer(organization)

    report = outbox_drain(now=timezone.now())

    assert (report.events, report.deliveries) == (1, 0)
    assert not OutboxEvent.objects.filter(processed_at__isnull=True).exists()


def test_the_sweep_sends_what_no_notification_sent(organization, receiver):
    endpoint_for(organization, receiver.url)
    _customer(organization)  # recorded; its commit-time drain never ran (test transaction)

    deliver_webhooks_task.delay()

    assert [b["webhook_type"] for b in bodies(receiver)] == ["customer.created"]


def test_old_deliveries_are_purged(organization, receiver, settings):
    endpoint_for(organization, receiver.url)
    _customer(organization)
    _customer(organization, "cus_2")
    deliver()
    old = WebhookDelivery.objects.order_by("created_at").first()
    WebhookDelivery.objects.filter(pk=old.pk).update(
        updated_at=timezone.now() - timedelta(days=settings.WEBHOOK_LOG_RETENTION_DAYS + 1)
    )

    assert deliveries_purge(now=timezone.now()) == 1
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) != [old.pk]
    assert WebhookDelivery.objects.count() == 1


def test_a_committed_transaction_delivers_its_events_once_drained(
    organization, receiver, django_capture_on_commit_callbacks
):
    endpoint_for(organization, receiver.url)
    notified = []
    outbox.on_events_recorded.connect(count := lambda: notified.append(1))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            _customer(organization, "cus_a")
            _customer(organization, "cus_b")
    finally:
        outbox.on_events_recorded.disconnect(count)

    assert len(notified) == 1  # one notification for the transaction, not one per event
    assert sorted(b["customer"]["external_id"] for b in bodies(receiver)) == ["cus_a", "cus_b"]


def test_a_rolled_back_savepoint_does_not_swallow_the_notification_of_later_events(
    organization, django_capture_on_commit_callbacks
):
    from django.db import transaction

    notified = []
    outbox.on_events_recorded.connect(count := lambda: notified.append(1))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            try:
                with transaction.atomic():
                    _customer(organization, "cus_rolled_back")
                    raise RuntimeError("undo")
            except RuntimeError:
                pass
            _customer(organization, "cus_kept")
    finally:
        outbox.on_events_recorded.disconnect(count)

    assert len(notified) == 1
