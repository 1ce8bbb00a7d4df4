"""Each recorded event type's webhook carries the object as the API answers it."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from billing.actors import SYSTEM
from billing.outbox import emit
from integrations.models import WebhookDelivery
from integrations.services.webhook_delivery import outbox_drain
from tests.integrations.helpers import endpoint_for

pytestmark = pytest.mark.django_db

EUR_PLAN = {
    "name": "Basic", "code": "basic", "interval": "monthly", "amount_cents": 1000,
    "amount_currency": "EUR", "pay_in_advance": False,
}  # fmt: skip


@pytest.fixture(autouse=True)
def _endpoint(organization):
    endpoint_for(organization, "https://hooks.example.com/all")


def _webhook(webhook_type: str) -> dict:
    """The body of the last delivery of that type, after draining the outbox."""
    outbox_drain(now=timezone.now())
    delivery = WebhookDelivery.objects.filter(webhook_type=webhook_type).order_by("-created_at")[0]
    return json.loads(delivery.payload)


def _ok(response) -> dict:
    assert response.status_code in (200, 201), response.content
    return response.json()


def test_envelope_is_lagos(api, organization):
    _ok(api.post("/api/v1/customers", {"customer": {"external_id": "c1"}}, format="json"))

    body = _webhook("customer.created")

    assert list(body) == ["webhook_type", "object_type", "organization_id", "customer"]
    assert body["organization_id"] == str(organization.pk)


def test_customer_created_and_updated_carry_the_customer_object(api):
    _ok(api.post("/api/v1/customers", {"customer": {"external_id": "c1", "name": "A"}},
                 format="json"))  # fmt: skip
    created = _webhook("customer.created")["customer"]
    _ok(api.post("/api/v1/customers", {"customer": {"external_id": "c1", "name": "B"}},
                 format="json"))  # fmt: skip

    updated = _webhook("customer.updated")["customer"]

    assert updated == api.get("/api/v1/customers/c1").json()["customer"]
    assert (created["name"], updated["name"]) == ("A", "B")


def test_billable_metric_events_carry_the_billable_metric_object(api):
    metric = {"name": "Calls", "code": "calls", "aggregation_type": "count_agg"}
    _ok(api.post("/api/v1/billable_metrics", {"billable_metric": metric}, format="json"))
    assert (
        _webhook("billable_metric.created")["billable_metric"]
        == api.get("/api/v1/billable_metrics/calls").json()["billable_metric"]
    )

    _ok(api.put("/api/v1/billable_metrics/calls", {"billable_metric": {"name": "API calls"}},
                format="json"))  # fmt: skip
    updated = _webhook("billable_metric.updated")
    answer = _ok(api.delete("/api/v1/billable_metrics/calls"))["billable_metric"]
    deleted = _webhook("billable_metric.deleted")

    assert updated["object_type"] == "billable_metric"
    assert updated["billable_metric"]["name"] == "API calls"
    assert deleted["billable_metric"]["lago_id"] == answer["lago_id"]


def test_plan_events_carry_the_plan_object(api):
    _ok(api.post("/api/v1/plans", {"plan": EUR_PLAN}, format="json"))
    assert _webhook("plan.created")["plan"] == api.get("/api/v1/plans/basic").json()["plan"]

    _ok(api.put("/api/v1/plans/basic", {"plan": {**EUR_PLAN, "name": "Pro"}}, format="json"))
    assert _webhook("plan.updated")["plan"] == api.get("/api/v1/plans/basic").json()["plan"]

    _ok(api.delete("/api/v1/plans/basic"))
    deleted = _webhook("plan.deleted")["plan"]
    assert deleted["code"] == "basic"


def test_subscription_started_carries_the_subscription_object(api):
    _ok(api.post("/api/v1/plans", {"plan": EUR_PLAN}, format="json"))
    _ok(api.post("/api/v1/customers", {"customer": {"external_id": "c1"}}, format="json"))
    subscription = {"external_customer_id": "c1", "plan_code": "basic", "external_id": "s1"}
    _ok(api.post("/api/v1/subscriptions", {"subscription": subscription}, format="json"))

    body = _webhook("subscription.started")

    assert body["object_type"] == "subscription"
    shown = api.get("/api/v1/subscriptions/s1").json()["subscription"]
    shown.pop("applicable_usage_thresholds")  # Lago renders them on the endpoints only
    assert body["subscription"] == shown


def test_wallet_and_wallet_transaction_events_carry_their_objects(api):
    _ok(api.post("/api/v1/customers", {"customer": {"external_id": "c1", "currency": "EUR"}},
                 format="json"))  # fmt: skip
    wallet = {"external_customer_id": "c1", "rate_amount": "1", "currency": "EUR",
              "granted_credits": "10"}  # fmt: skip
    lago_id = _ok(api.post("/api/v1/wallets", {"wallet": wallet}, format="json"))["wallet"][
        "lago_id"
    ]

    wallet_body = _webhook("wallet.created")
    transaction_body = _webhook("wallet_transaction.created")

    assert wallet_body["wallet"]["lago_id"] == lago_id
    assert set(wallet_body["wallet"]) == set(api.get(f"/api/v1/wallets/{lago_id}").json()["wallet"])
    tx = transaction_body["wallet_transaction"]
    assert (
        tx == api.get(f"/api/v1/wallet_transactions/{tx['lago_id']}").json()["wallet_transaction"]
    )


def test_invoice_events_carry_the_full_invoice_object(api, organization):
    from tests.invoicing.invoice_builders import build_invoice

    invoice = build_invoice(organization)
    _ok(api.post(f"/api/v1/invoices/{invoice.pk}/void", {}, format="json"))

    body = _webhook("invoice.voided")

    assert body["object_type"] == "invoice"
    assert body["invoice"] == api.get(f"/api/v1/invoices/{invoice.pk}").json()["invoice"]
    assert body["invoice"]["fees"]  # the full object: fees, subscriptions, credits


def test_fee_created_carries_the_fee_object(api, organization):
    from tests.invoicing.invoice_builders import build_invoice

    fee = build_invoice(organization).fees.get()
    emit(event_type="fee.created", actor=SYSTEM, obj=fee, payload={"lago_id": str(fee.pk)})

    body = _webhook("fee.created")

    assert body["fee"] == api.get(f"/api/v1/fees/{fee.pk}").json()["fee"]


def test_alert_triggered_carries_lagos_triggered_alert_object(organization):
    from tests.wallets.factories import WalletFactory
    from wallets.models import TriggeredAlert, WalletAlert
    from wallets.services.alerts import triggered_alert_payload

    wallet = WalletFactory(organization=organization)
    alert = WalletAlert.objects.create(
        organization=organization, wallet=wallet, code="low", alert_type="wallet_balance_amount",
        thresholds=[{"code": "t1", "value": "5", "recurring": False}],
    )  # fmt: skip
    triggered = TriggeredAlert.objects.create(
        organization=organization, alert=alert, wallet=wallet, current_value=4,
        crossed_thresholds=[{"code": "t1", "value": "5", "recurring": False}],
        triggered_at=timezone.now(),
    )  # fmt: skip
    emit(event_type="alert.triggered", actor=SYSTEM, obj=triggered, payload={})

    body = _webhook("alert.triggered")

    assert body["object_type"] == "triggered_alert"
    assert body["triggered_alert"] == json.loads(json.dumps(triggered_alert_payload(triggered)))


def test_events_errors_carry_the_recorded_errors(organization):
    errors = {"invalid_code": ["tx_1"], "missing_aggregation_property": [],
              "invalid_filter_values": []}  # fmt: skip
    emit(
        event_type="events.errors", actor=SYSTEM, payload=errors, organization_id=organization.pk,
        object_type="events_errors", object_id="2026-12-07T01:00:00Z",
    )  # fmt: skip

    body = _webhook("events.errors")

    assert (body["object_type"], body["events_errors"]) == ("events_errors", errors)


def test_an_activity_webhook_carries_the_rendering_the_activity_log_made_without_rendering_again(
    api, organization
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.models import ActivityLog, OutboxEvent

    _ok(api.post("/api/v1/customers", {"customer": {"external_id": "c1", "name": "A"}},
                 format="json"))  # fmt: skip
    row = OutboxEvent.objects.get(event_type="customer.created")
    entry = ActivityLog.objects.get(activity_type="customer.created")

    with CaptureQueriesContext(connection) as queries:
        body = _webhook("customer.created")

    assert body["customer"] == json.loads(row.rendered) == entry.activity_object
    assert not [q for q in queries.captured_queries if "customers_customer" in q["sql"]]


def test_an_event_that_is_no_activity_is_rendered_by_the_drain_only(api, organization):
    from billing.models import OutboxEvent
    from tests.invoicing.invoice_builders import build_invoice

    fee = build_invoice(organization).fees.get()
    row = emit(event_type="fee.created", actor=SYSTEM, obj=fee, payload={"lago_id": str(fee.pk)})

    assert OutboxEvent.objects.get(pk=row.pk).rendered is None
    assert _webhook("fee.created")["fee"]["lago_id"] == str(fee.pk)
