"""Progressive billing on the wire: subscription `usage_thresholds` and
`progressive_billing_disabled`, invoice `applied_usage_thresholds`, lifetime usage reached
dates (DRF client and lago-python-client)."""

from __future__ import annotations

import json
from datetime import date

import pytest
import time_machine
from lago_python_client.models.plan import PlanOverrides
from lago_python_client.models.subscription import Subscription as LagoSubscription
from lago_python_client.models.usage_threshold import (
    UsageThresholdOverrides,
    UsageThresholdsOverrides,
)

from customers.models import Subscription
from invoicing.models import Invoice
from plans.models import UsageThreshold
from tests.customers.factories import CustomerFactory
from tests.invoicing.billing_helpers import bill, only_invoice
from tests.invoicing.progressive_builders import progressive_invoices, usage, v92_billing
from tests.metering.usage.conftest import at
from tests.plans.factories import PlanFactory


def _thresholds(subscription: Subscription) -> list[tuple[int, bool]]:
    return list(
        UsageThreshold.objects.alive()
        .filter(plan_id=subscription.plan_id)
        .order_by("amount_cents")
        .values_list("amount_cents", "recurring")
    )


@pytest.mark.django_db
def test_subscription_usage_thresholds_override_the_plans(api, organization):
    CustomerFactory(organization=organization, external_id="cust")
    plan = PlanFactory(organization=organization, code="startup")
    UsageThreshold.objects.create(organization=organization, plan=plan, amount_cents=5_000)

    response = api.post(
        "/api/v1/subscriptions",
        {
            "subscription": {
                "external_customer_id": "cust",
                "plan_code": "startup",
                "external_id": "sub",
                "usage_thresholds": [
                    {"amount_cents": 10_000, "threshold_display_name": "First"},
                    {"amount_cents": 2_500, "recurring": True},
                ],
            }
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()["subscription"]
    assert body["plan_code"] == "startup"
    assert body["progressive_billing_disabled"] is False
    subscription = Subscription.objects.get(external_id="sub")
    assert subscription.plan.parent_id == plan.pk
    assert _thresholds(subscription) == [(2_500, True), (10_000, False)]
    assert list(UsageThreshold.objects.alive().filter(plan=plan).values_list("amount_cents")) == [
        (5_000,)
    ]


@pytest.mark.django_db
def test_subscription_update_disables_progressive_billing_and_replaces_thresholds(
    api, organization
):
    customer = CustomerFactory(organization=organization, external_id="cust")
    plan = PlanFactory(organization=organization, code="startup")
    UsageThreshold.objects.create(organization=organization, plan=plan, amount_cents=5_000)
    from tests.customers.factories import SubscriptionFactory

    SubscriptionFactory(
        organization=organization,
        customer=customer,
        plan=plan,
        external_id="sub",
        status="active",
        started_at=at("2026-01-01T00:00:00"),
        subscription_at=at("2026-01-01T00:00:00"),
    )

    response = api.put(
        "/api/v1/subscriptions/sub",
        {
            "subscription": {
                "progressive_billing_disabled": True,
                "usage_thresholds": [{"amount_cents": 7_000}],
            }
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["subscription"]["progressive_billing_disabled"] is True
    subscription = Subscription.objects.get(external_id="sub")
    assert subscription.progressive_billing_disabled
    assert _thresholds(subscription) == [(7_000, False)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("thresholds", "field"),
    [
        pytest.param([{"amount_cents": "many"}], "usage_thresholds", id="not-a-number"),
        pytest.param([{"amount_cents": 0}], "amount_cents", id="zero"),
        pytest.param(
            [{"amount_cents": 10, "recurring": True}, {"amount_cents": 20, "recurring": True}],
            "recurring",
            id="two-recurring",
        ),
    ],
)
def test_invalid_subscription_usage_thresholds_are_refused(api, organization, thresholds, field):
    CustomerFactory(organization=organization, external_id="cust")
    PlanFactory(organization=organization, code="startup")

    response = api.post(
        "/api/v1/subscriptions",
        {
            "subscription": {
                "external_customer_id": "cust",
                "plan_code": "startup",
                "external_id": "sub",
                "usage_thresholds": thresholds,
            }
        },
        format="json",
    )

    assert response.status_code == 422
    assert any(field in key for key in response.json()["error_details"])
    assert not Subscription.objects.exists()


@pytest.mark.django_db
def test_progressive_invoice_lists_its_applied_usage_thresholds(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    [invoice] = progressive_invoices(billing)
    threshold = UsageThreshold.objects.get(plan=billing.plan)

    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()["invoice"]

    assert body["invoice_type"] == "progressive_billing"
    assert body["status"] == "finalized"
    assert body["fees_amount_cents"] == 20_000
    assert body["applied_usage_thresholds"] == [
        {
            "lifetime_usage_amount_cents": 20_000,
            "created_at": body["applied_usage_thresholds"][0]["created_at"],
            "usage_threshold": {
                "lago_id": str(threshold.pk),
                "threshold_display_name": None,
                "amount_cents": 20_000,
                "recurring": False,
                "created_at": body["applied_usage_thresholds"][0]["usage_threshold"]["created_at"],
                "updated_at": body["applied_usage_thresholds"][0]["usage_threshold"]["updated_at"],
            },
        }
    ]
    listed = api.get("/api/v1/invoices", {"invoice_type": "progressive_billing"}).json()
    [row] = [i for i in listed["invoices"] if i["lago_id"] == str(invoice.pk)]
    assert row["applied_usage_thresholds"][0]["usage_threshold"]["amount_cents"] == 20_000


@pytest.mark.django_db
def test_lifetime_usage_dates_a_reached_threshold_by_its_progressive_invoice(api, organization):
    billing = v92_billing(api, organization, [(20_000, False), (50_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    [invoice] = progressive_invoices(billing)

    with time_machine.travel(at("2022-12-07T09:00:00"), tick=False):
        body = api.get("/api/v1/subscriptions/sub_1/lifetime_usage").json()["lifetime_usage"]

    first, second = body["usage_thresholds"]
    assert (first["amount_cents"], first["completion_ratio"]) == (20_000, 1.0)
    assert first["reached_at"] == invoice.created_at.isoformat().replace("+00:00", "Z")
    assert (second["amount_cents"], second["reached_at"]) == (50_000, None)


@pytest.mark.django_db
def test_lifetime_usage_lists_no_thresholds_when_progressive_billing_is_disabled(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    Subscription.objects.filter(pk=billing.subscription.pk).update(
        progressive_billing_disabled=True
    )
    usage(billing, "2022-12-06T10:00:00")

    body = api.get("/api/v1/subscriptions/sub_1/lifetime_usage").json()["lifetime_usage"]

    assert "usage_thresholds" not in body


@pytest.mark.django_db(transaction=True)
def test_client_subscribes_with_thresholds_and_reads_the_progressive_invoices(
    lago, api, organization
):
    billing = v92_billing(api, organization, [])
    billing.subscription.delete()
    with time_machine.travel(at("2022-12-01T00:00:00"), tick=False):
        created = lago.subscriptions.create(
            LagoSubscription(
                external_customer_id=billing.customer.external_id,
                plan_code=billing.plan.code,
                external_id="sub_1",
                plan_overrides=PlanOverrides(
                    usage_thresholds=UsageThresholdsOverrides(
                        __root__=[UsageThresholdOverrides(amount_cents=20_000, recurring=False)]
                    )
                ),
            )
        )
    assert created.external_id == "sub_1"
    billing.subscription = Subscription.objects.get(external_id="sub_1")
    usage(billing, "2022-12-06T10:00:00")
    usage(billing, "2022-12-16T10:00:00")
    [progressive] = progressive_invoices(billing)

    found = lago.invoices.find(str(progressive.pk))
    assert found.invoice_type == "progressive_billing"
    applied = found.applied_usage_thresholds.__root__[0]
    assert (applied.lifetime_usage_amount_cents, applied.usage_threshold.amount_cents) == (
        20_000,
        20_000,
    )
    periodic = only_invoice(bill(billing.customer, date(2023, 1, 1)))
    assert periodic.invoice_type == Invoice.InvoiceType.SUBSCRIPTION
    read = lago.invoices.find(str(periodic.pk))
    assert read.progressive_billing_credit_amount_cents == 20_000
    assert read.total_amount_cents == 23_100
    assert any(credit.item.type == "invoice" for credit in read.credits.__root__)


@pytest.mark.django_db
def test_usage_threshold_reached_webhook_carries_the_subscription_and_its_threshold(
    api, organization
):
    from django.utils import timezone

    from integrations.models import WebhookDelivery
    from integrations.services.webhook_delivery import outbox_drain
    from tests.integrations.helpers import endpoint_for

    endpoint_for(organization, "https://hooks.example.com/all")
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")

    outbox_drain(now=timezone.now())
    delivery = WebhookDelivery.objects.get(webhook_type="subscription.usage_threshold_reached")
    body = json.loads(delivery.payload)

    assert body["object_type"] == "subscription"
    subscription = body["subscription"]
    assert subscription["external_id"] == "sub_1"
    assert subscription["progressive_billing_disabled"] is False
    assert subscription["usage_threshold"]["amount_cents"] == 20_000
    assert subscription["usage_threshold"]["recurring"] is False
