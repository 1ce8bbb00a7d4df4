"""The body of each webhook: Lago's `{webhook_type, object_type, organization_id, <object>}`.

`WEBHOOK_OBJECT_TYPES` is the registry: one line per webhook type, naming the object it carries.
When that object is the one the outbox row was recorded for (an invoice for `invoice.created`),
it is the object as the API renders it (`billing.wire_objects`), rendered once: by the activity
log when the event was recorded (kept on the row, `OutboxEvent.rendered`), or here for an event
that is no activity. Otherwise, and for a type missing from the registry or an object gone
before it was rendered, the row's own payload is the object (a generic payload: an unknown type
is delivered, never dropped)."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable

from rest_framework.utils.encoders import JSONEncoder

from billing.models import OutboxEvent
from billing.wire_objects import wire_object

logger = logging.getLogger(__name__)

# webhook_type -> object_type (Lago's webhook event types)
WEBHOOK_OBJECT_TYPES: dict[str, str] = {
    "alert.triggered": "triggered_alert",
    "billable_metric.created": "billable_metric",
    "billable_metric.updated": "billable_metric",
    "billable_metric.deleted": "billable_metric",
    "credit_note.created": "credit_note",
    "credit_note.generated": "credit_note",
    "credit_note.provider_refund_failure": "credit_note_payment_provider_refund_error",
    "customer.created": "customer",
    "customer.updated": "customer",
    "customer.vies_check": "customer",
    "customer.payment_provider_created": "customer",
    "customer.payment_provider_error": "payment_provider_customer_error",
    "customer.checkout_url_generated": "payment_provider_customer_checkout_url",
    "customer.accounting_provider_created": "customer",
    "customer.accounting_provider_error": "accounting_provider_customer_error",
    "customer.crm_provider_created": "customer",
    "customer.crm_provider_error": "crm_provider_customer_error",
    "customer.tax_provider_error": "tax_provider_customer_error",
    "dunning_campaign.finished": "dunning_campaign",
    "event.error": "event_error",
    "events.errors": "events_errors",
    "feature.created": "feature",
    "feature.updated": "feature",
    "feature.deleted": "feature",
    "fee.created": "fee",
    "fee.tax_provider_error": "tax_provider_fee_error",
    "integration.provider_error": "provider_error",
    "invoice.created": "invoice",
    "invoice.drafted": "invoice",
    "invoice.generated": "invoice",
    "invoice.one_off_created": "invoice",
    "invoice.paid_credit_added": "invoice",
    "invoice.voided": "invoice",
    "invoice.deleted": "invoice",
    "invoice.payment_status_updated": "invoice",
    "invoice.payment_overdue": "invoice",
    "invoice.resynced": "invoice",
    "invoice.ready_to_finalize": "invoice",
    "invoice.payment_failure": "payment_provider_invoice_payment_error",
    "invoice.payment_dispute_lost": "payment_dispute_lost",
    "payment.succeeded": "payment",
    "payment.requires_action": "payment",
    "payment_provider.error": "payment_provider_error",
    "payment_receipt.created": "payment_receipt",
    "payment_receipt.generated": "payment_receipt",
    "payment_request.created": "payment_request",
    "payment_request.payment_status_updated": "payment_request",
    "payment_request.payment_failure": "payment_provider_payment_request_payment_error",
    "plan.created": "plan",
    "plan.updated": "plan",
    "plan.deleted": "plan",
    "subscription.started": "subscription",
    "subscription.terminated": "subscription",
    "subscription.canceled": "subscription",
    "subscription.updated": "subscription",
    "subscription.incomplete": "subscription",
    "subscription.trial_ended": "subscription",
    "subscription.termination_alert": "subscription",
    "subscription.usage_threshold_reached": "subscription",
    "wallet.created": "wallet",
    "wallet.updated": "wallet",
    "wallet.terminated": "wallet",
    "wallet.depleted_ongoing_balance": "wallet",
    "wallet_transaction.created": "wallet_transaction",
    "wallet_transaction.updated": "wallet_transaction",
    "wallet_transaction.payment_failure": "payment_provider_wallet_transaction_payment_error",
}

WEBHOOK_TYPES = frozenset(WEBHOOK_OBJECT_TYPES)

# recorded keys a webhook adds to its rendered object (Lago's serializer `includes`): the
# threshold a `subscription.usage_threshold_reached` is about
RECORDED_EXTRAS: dict[str, tuple[str, ...]] = {
    "subscription.usage_threshold_reached": ("usage_threshold",),
}


def webhook_object_type(event: OutboxEvent) -> str:
    """Lago's object type of the webhook recorded by `event`."""
    return WEBHOOK_OBJECT_TYPES.get(event.event_type, event.object_type)


def body_json(payload: dict) -> str:
    """The JSON text sent, compact as the API renders it."""
    return json.dumps(payload, cls=JSONEncoder, separators=(",", ":"), ensure_ascii=False)


def _rendered_objects(events: Iterable[OutboxEvent]) -> dict[int, dict]:
    """The object of each event whose webhook carries the recorded object: as the activity log
    rendered it when the event was recorded (kept on the row), else rendered now."""
    wanted: dict[str, list[OutboxEvent]] = defaultdict(list)
    rendered: dict[int, dict] = {}
    for event in events:
        if webhook_object_type(event) != event.object_type or not wire_object(event.object_type):
            continue
        if event.rendered is not None:
            rendered[event.pk] = json.loads(event.rendered)
        else:
            wanted[event.object_type].append(event)
    for object_type, group in wanted.items():
        wire = wire_object(object_type)
        assert wire is not None
        try:
            rows = {str(row.pk): row for row in wire.load([e.object_id for e in group])}
        except Exception:
            logger.exception("loading %s objects for webhooks failed", object_type)
            continue
        ordered = list(rows.values())
        try:
            objects = dict(zip(rows, wire.render(ordered), strict=True))
        except Exception:  # one bad row: render the others one by one
            logger.exception("rendering %s objects for webhooks failed", object_type)
            objects = {}
            for object_id, row in rows.items():
                try:
                    objects[object_id] = wire.render([row])[0]
                except Exception:
                    logger.exception("rendering %s %s for a webhook failed", object_type, row.pk)
        for event in group:
            if event.object_id in objects:  # else gone since: the recorded payload stands in
                rendered[event.pk] = objects[event.object_id]
    return rendered


def webhook_bodies(events: list[OutboxEvent]) -> dict[int, str]:
    """The JSON body of each event's webhook, by outbox row id."""
    rendered = _rendered_objects(events)
    bodies = {}
    for event in events:
        object_type = webhook_object_type(event)
        obj = rendered.get(event.pk, event.payload)
        extras = {
            key: event.payload[key]
            for key in RECORDED_EXTRAS.get(event.event_type, ())
            if key in (event.payload or {})
        }
        if extras:
            obj = {**obj, **extras}
        bodies[event.pk] = body_json(
            {
                "webhook_type": event.event_type,
                "object_type": object_type,
                "organization_id": str(event.organization_id),
                object_type: obj,
            }
        )
    return bodies
