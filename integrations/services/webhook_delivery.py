"""Delivery of recorded events to webhook endpoints: drain, attempts, retries, resend, purge.

1. `outbox_drain` turns unprocessed outbox rows into one body per event (rendered once, kept
   byte for byte, and signed once for JWT endpoints) and one delivery row per subscribed
   endpoint, and marks the rows processed, in one transaction per batch: a drain that dies
   leaves its batch for the next one.
2. `endpoint_deliveries_send` attempts an endpoint's due deliveries in batches, each batch's rows
   locked while they are attempted: a sender killed mid-batch rolls back and the rows are due
   again (at least once; the delivery id is the receiver's idempotency key). An endpoint has a
   few sending slots at most, so a slow receiver holds that many workers, never all of them;
   a slot has up to `WEBHOOK_REQUESTS_PER_SLOT` requests in flight (threads over kept-alive
   connections), the database work staying in the slot's own thread. A sender may wait a
   moment for the next deliveries (`wait_for_more`) rather than end.
3. A failed attempt is retried after Lago's backoff, n^4 + up to 15 % of it + 2 s after failure
   n, until `WEBHOOK_ATTEMPTS` attempts; then the delivery is `failed` (resend by hand).
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from django.conf import settings
from django.db import IntegrityError, connection, transaction

from billing.actors import Actor
from billing.locks import free_pending_outbox_event_exists, lock_pending_outbox_events
from billing.models import OutboxEvent
from integrations.locks import endpoint_send_slot, free_due_delivery_exists, lock_due_deliveries
from integrations.models import (
    RESPONSE_EXCERPT_MAX,
    SignatureAlgo,
    WebhookBody,
    WebhookDelivery,
    WebhookEndpoint,
)
from integrations.services.webhook_http import Answer, Transport
from integrations.services.webhook_payloads import webhook_bodies, webhook_object_type
from integrations.services.webhook_signing import (
    jwt_body_signature,
    jwt_signer,
    organization_hmac_key,
    private_key,
    signature,
)
from integrations.services.webhook_targets import UnsafeTarget, resolve_target

logger = logging.getLogger(__name__)

DRAIN_BATCH = 200  # outbox rows per drain transaction
SEND_BATCH = 50  # deliveries locked per sender transaction
SEND_BATCH_SECONDS = 5.0  # a batch stops taking new attempts after this long (slow receivers)
Status = WebhookDelivery.Status


def retry_wait_seconds(failures: int, *, jitter: float | None = None) -> float:
    """Lago's wait before the next attempt after `failures` failed ones (Rails' polynomial
    backoff): failures^4, plus up to 15 % of it, plus 2 seconds."""
    share = random.random() if jitter is None else jitter
    base = failures**4
    return base + share * base * 0.15 + 2


# --- 1. drain ---------------------------------------------------------------------------------


@dataclass
class DrainReport:
    events: int = 0
    deliveries: int = 0
    endpoint_ids: set[UUID] = field(default_factory=set)


# the columns a drain writes, in the order of its row tuples (every column of both tables)
_BODY_COLUMNS = ("id", "organization_id", "text", "jwt_signature", "jwt_signer", "created_at")
_DELIVERY_COLUMNS = (
    "id", "organization_id", "endpoint_id", "outbox_event_id", "body_id", "webhook_type",
    "object_type", "object_id", "status", "attempts", "http_status", "response", "webhook_url",
    "recorded_at", "next_attempt_at", "last_attempt_at", "delivered_at", "created_at",
    "updated_at",
)  # fmt: skip


def _copy(model: type, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Inserts row tuples by `COPY`: the bodies go as they are, where the insert of
    `bulk_create` quotes them into an array literal in Python (regex callbacks on every quote
    of the JSON), and no model instance is built (a drain's rows are plain values)."""
    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)
    table = connection.ops.quote_name(model._meta.db_table)
    with (
        connection.wrap_database_errors,  # psycopg's errors as Django's
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _create_deliveries(bodies: list[tuple], rows: list[tuple]) -> None:
    """Inserts the bodies and the deliveries, skipping those already there (one body per event,
    one delivery per endpoint and event). On PostgreSQL by `COPY`. Rows already there cannot
    come from a drain, since a drain marks its outbox rows processed in the same transaction;
    a copy that meets one anyway is undone and the batch inserted the slow way, skipping it."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        try:
            with transaction.atomic():
                _copy(WebhookBody, _BODY_COLUMNS, bodies)
                _copy(WebhookDelivery, _DELIVERY_COLUMNS, rows)
            return
        except IntegrityError:
            pass
    WebhookBody.objects.bulk_create(
        [WebhookBody(**dict(zip(_BODY_COLUMNS, row, strict=True))) for row in bodies],
        ignore_conflicts=True,
    )
    WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(**dict(zip(_DELIVERY_COLUMNS, row, strict=True))) for row in rows],
        ignore_conflicts=True,
    )


def _drain_batch(now: datetime, report: DrainReport) -> set[UUID] | None:
    """One batch drained; the endpoints of its deliveries (None: nothing left to drain)."""
    with transaction.atomic():
        events = lock_pending_outbox_events(limit=DRAIN_BATCH)
        if not events:
            return None
        endpoints: dict[UUID, list[WebhookEndpoint]] = defaultdict(list)
        for endpoint in WebhookEndpoint.objects.filter(
            organization_id__in={e.organization_id for e in events}
        ):
            endpoints[endpoint.organization_id].append(endpoint)
        targets = {
            event.pk: [
                ep
                for ep in endpoints.get(event.organization_id, ())
                if ep.subscribes_to(event.event_type)
            ]
            for event in events
        }
        texts = webhook_bodies([e for e in events if targets[e.pk]])
        signer = None
        bodies, rows = [], []
        pending = WebhookDelivery.Status.PENDING.value
        for event in events:
            if not targets[event.pk]:
                continue
            text, signed, signed_by = texts[event.pk], "", ""
            if any(ep.signature_algo == SignatureAlgo.JWT for ep in targets[event.pk]):
                signer = signer or jwt_signer()
                signed, signed_by = jwt_body_signature(text), signer
            bodies.append((event.pk, event.organization_id, text, signed, signed_by, now))
            object_type = webhook_object_type(event)
            rows.extend(
                (
                    uuid4(),
                    event.organization_id,
                    endpoint.pk,
                    event.pk,
                    event.pk,
                    event.event_type,
                    object_type,
                    event.object_id,
                    pending,
                    0,
                    None,
                    "",
                    endpoint.webhook_url,
                    event.created_at,
                    now,
                    None,
                    None,
                    now,
                    now,
                )
                for endpoint in targets[event.pk]
            )
        _create_deliveries(bodies, rows)
        OutboxEvent.objects.filter(pk__in=[e.pk for e in events]).update(processed_at=now)
    endpoint_ids = {row[2] for row in rows}
    report.events += len(events)
    report.deliveries += len(rows)
    report.endpoint_ids.update(endpoint_ids)
    return endpoint_ids


def outbox_pending() -> bool:
    """Whether an outbox row waits for a drain (rows another drain holds are its own)."""
    return free_pending_outbox_event_exists()


def outbox_drain(
    *,
    now: datetime,
    max_batches: int | None = None,
    on_batch: Callable[[set[UUID]], None] | None = None,
) -> DrainReport:
    """Creates the deliveries of every unprocessed outbox row (or of `max_batches` batches),
    until a batch finds fewer than `DRAIN_BATCH` rows: rows committed after that one notify a
    drain of their own. `on_batch` gets the endpoints of each committed batch's deliveries
    (their senders can start before the drain of a backlog ends)."""
    report, batches = DrainReport(), 0
    while max_batches is None or batches < max_batches:
        drained = report.events
        endpoint_ids = _drain_batch(now, report)
        if endpoint_ids is None:
            break
        batches += 1
        if on_batch is not None and endpoint_ids:
            on_batch(endpoint_ids)
        if report.events - drained < DRAIN_BATCH:
            break
    return report


# --- 2. attempts ------------------------------------------------------------------------------


@dataclass
class SendReport:
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    retry_at: datetime | None = None  # earliest retry scheduled by these attempts
    busy: bool = False  # every sending slot of the endpoint was taken
    more: bool = False  # stopped at `max_seconds` with deliveries possibly still due


def _headers(delivery: WebhookDelivery, endpoint: WebhookEndpoint, hmac_key: str) -> dict:
    body = delivery.body
    return {
        "Content-Type": "application/json",
        "User-Agent": "billing-backoffice-webhooks",
        "X-Lago-Signature": signature(
            endpoint.signature_algo,
            body=body.text,
            hmac_key=hmac_key,
            jwt_kept=body.jwt_signature,
            jwt_signer_name=body.jwt_signer,
        ),
        "X-Lago-Signature-Algorithm": endpoint.signature_algo,
        "X-Lago-Unique-Key": str(delivery.pk),
    }


def _record(delivery: WebhookDelivery, answer: Answer | None, reason: str, now: datetime) -> None:
    """Applies the outcome of one attempt to the row (saved by the caller)."""
    delivery.attempts += 1
    delivery.last_attempt_at = now
    if answer is None:  # not sent: the target is not a public address
        delivery.status, delivery.http_status = Status.SKIPPED, None
        delivery.response, delivery.next_attempt_at = reason[:RESPONSE_EXCERPT_MAX], None
        return
    delivery.http_status = answer.status
    delivery.response = answer.body[:RESPONSE_EXCERPT_MAX]
    if answer.succeeded:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
            Status.SUCCEEDED,
            now,
            None,
        )
    elif delivery.attempts < settings.WEBHOOK_ATTEMPTS:
        delivery.status = Status.RETRYING
        delivery.next_attempt_at = now + timedelta(seconds=retry_wait_seconds(delivery.attempts))
    else:
        delivery.status, delivery.next_attempt_at = Status.FAILED, None


# what an attempt sets besides its instants
_GROUPED = ("status", "attempts", "http_status", "response", "webhook_url", "next_attempt_at")


def attempt(
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    *,
    transport: Transport,
    hmac_key: str,
    now: datetime,
) -> None:
    """One attempt of `delivery` to the endpoint's current URL, recorded on the row."""
    delivery.webhook_url = endpoint.webhook_url
    try:
        target = resolve_target(endpoint.webhook_url)
    except UnsafeTarget as exc:
        logger.warning("webhook %s not sent to %s: %s", delivery.pk, endpoint.webhook_url, exc)
        _record(delivery, None, f"Not sent: {exc}", now)
        return
    except (OSError, UnicodeError) as exc:
        _record(delivery, Answer(status=None, body=f"{type(exc).__name__}: {exc}"), "", now)
        return
    answer = transport.post(
        target, body=delivery.body.text.encode(), headers=_headers(delivery, endpoint, hmac_key)
    )
    _record(delivery, answer, "", now)


def _save_outcomes(deliveries: list[WebhookDelivery]) -> None:
    """Saves the attempts of a batch, one UPDATE per identical outcome (most of a batch shares
    one: succeeded, same answer); instants are the latest attempt of the group, off by the
    few milliseconds the batch took at most."""
    groups: dict[tuple, list[WebhookDelivery]] = defaultdict(list)
    for delivery in deliveries:
        key = tuple(getattr(delivery, name) for name in _GROUPED)
        groups[key].append(delivery)
    for key, group in groups.items():
        latest = max(d.updated_at for d in group)
        WebhookDelivery.objects.filter(pk__in=[d.pk for d in group]).update(
            **dict(zip(_GROUPED, key, strict=True)),
            last_attempt_at=latest,
            updated_at=latest,
            delivered_at=latest if group[0].delivered_at else None,
        )


def _send_batch(
    endpoint_id: UUID,
    transport: Transport,
    clock: Callable[[], datetime],
    report: SendReport,
    threads: Executor | None,
) -> bool:
    """Attempts one batch of due deliveries; True when more may be due right now (a full
    batch, or one cut short by its time)."""
    with transaction.atomic():
        due = lock_due_deliveries(endpoint_id=endpoint_id, now=clock(), limit=SEND_BATCH)
        if not due:
            return False
        endpoint = WebhookEndpoint.objects.select_related("organization").filter(pk=endpoint_id)
        endpoint = endpoint.first()
        if endpoint is None:  # deleted meanwhile, its deliveries with it
            return False
        hmac_key = organization_hmac_key(endpoint.organization)
        if endpoint.signature_algo == SignatureAlgo.JWT:
            private_key()  # loaded (from the database at first) here, not in a sending thread
        started = time.monotonic()

        def one(delivery: WebhookDelivery) -> WebhookDelivery | None:
            if delivery is not due[0] and time.monotonic() - started > SEND_BATCH_SECONDS:
                return None  # stays due, for the next batch (or another slot)
            now = clock()
            attempt(delivery, endpoint, transport=transport, hmac_key=hmac_key, now=now)
            delivery.updated_at = now
            return delivery

        if threads is None:
            done = []
            for delivery in due:
                attempted = one(delivery)
                if attempted is None:
                    break
                done.append(attempted)
        else:
            done = [d for d in threads.map(one, due) if d is not None]
        _save_outcomes(done)
    for delivery in done:
        report.attempted += 1
        if delivery.status == Status.SUCCEEDED:
            report.succeeded += 1
        elif delivery.status in (Status.FAILED, Status.SKIPPED):
            report.failed += 1
        elif delivery.next_attempt_at and (
            report.retry_at is None or delivery.next_attempt_at < report.retry_at
        ):
            report.retry_at = delivery.next_attempt_at
    return len(due) == SEND_BATCH or len(done) < len(due)


def _has_due(endpoint_id: UUID, now: datetime) -> bool:
    return free_due_delivery_exists(endpoint_id=endpoint_id, now=now)


# `wait_for_more(has_due, timeout)`: called by a sender with nothing due; True when
# deliveries may be due now (it was woken, or `has_due()` says so), False after `timeout`
# seconds with nothing new. It must call `has_due` after it starts listening, so that rows
# committed meanwhile are not missed.
MoreWaiter = Callable[[Callable[[], bool], float], bool]


def endpoint_deliveries_send(
    *,
    endpoint_id: UUID,
    clock: Callable[[], datetime],
    slots: int | None = None,
    requests_per_slot: int | None = None,
    max_seconds: float | None = None,
    wait_for_more: MoreWaiter | None = None,
    idle_seconds: float = 0.0,
) -> SendReport:
    """Attempts the endpoint's due deliveries until none is due, in one of its sending slots;
    returns at once (`busy`) when every slot is taken, the holders then seeing these rows.
    After `max_seconds` it stops between batches (`more`), so that a worker running it can
    take other work before sending the rest. With `wait_for_more`, the sender of the first
    slot then waits up to `idle_seconds` at a time (within `max_seconds`) for deliveries
    recorded meanwhile, instead of ending and being started again for each of them."""
    slots = settings.WEBHOOK_ENDPOINT_CONCURRENCY if slots is None else slots
    if requests_per_slot is None:
        requests_per_slot = settings.WEBHOOK_REQUESTS_PER_SLOT
    requests_per_slot = max(requests_per_slot, 1)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    report = SendReport()
    transport = Transport(timeout=settings.WEBHOOK_TIMEOUT_SECONDS, connections=requests_per_slot)
    threads = None
    if requests_per_slot > 1:
        threads = ThreadPoolExecutor(requests_per_slot, thread_name_prefix="webhook-send")

    def has_due() -> bool:
        return _has_due(endpoint_id, clock())

    def wait(slot: int) -> bool:
        if wait_for_more is None or slot != 0 or idle_seconds <= 0:
            return False
        left = idle_seconds if deadline is None else deadline - time.monotonic()
        return left > 0 and wait_for_more(has_due, min(idle_seconds, left))

    try:
        while True:
            with endpoint_send_slot(endpoint_id, slots=slots) as slot:
                if slot is None:
                    report.busy = True
                    return report
                while _send_batch(endpoint_id, transport, clock, report, threads) or wait(slot):
                    if deadline is not None and time.monotonic() > deadline:
                        report.more = True
                        return report
            # rows recorded while the slot was being released found it taken: look once more
            if not has_due():
                return report
    finally:
        if threads is not None:
            threads.shutdown(wait=True)
        transport.close()


# --- 3. sweeping, resending, purging ----------------------------------------------------------


def endpoints_with_due_deliveries(*, now: datetime) -> list[UUID]:
    """Endpoints with a delivery due now (lost notifications, retries, killed senders)."""
    return list(WebhookDelivery.objects.due(now).values_list("endpoint_id", flat=True).distinct())


@transaction.atomic
def delivery_resend(*, delivery: WebhookDelivery, actor: Actor, now: datetime) -> WebhookDelivery:
    """Queues one more attempt of a delivery, whatever its status, with the same body and
    unique key; it is sent as soon as a sender takes it."""
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=Status.PENDING, next_attempt_at=now, updated_at=now
    )
    delivery.refresh_from_db()
    logger.info("webhook %s queued again by %s", delivery.pk, actor.display)
    return delivery


def deliveries_purge(*, now: datetime, batch: int = 1_000) -> int:
    """Deletes deliveries untouched for `WEBHOOK_LOG_RETENTION_DAYS` days, in batches, then the
    bodies no delivery uses any more."""
    cutoff = now - timedelta(days=settings.WEBHOOK_LOG_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(
            WebhookDelivery.objects.filter(updated_at__lt=cutoff).values_list("pk", flat=True)[
                :batch
            ]
        )
        if not ids:
            break
        deleted += WebhookDelivery.objects.filter(pk__in=ids).delete()[0]
    while True:
        ids = list(
            WebhookBody.objects.filter(created_at__lt=cutoff, deliveries__isnull=True).values_list(
                "pk", flat=True
            )[:batch]
        )
        if not ids:
            return deleted
        WebhookBody.objects.filter(pk__in=ids, deliveries__isnull=True).delete()
