"""The refresh pass works by batches: one transaction, one lock statement, one read per charge,
one alert move and one lifetime UPDATE per batch, so a subscription adds no statement to a
pass; a batch that fails is done again one subscription at a time."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from metering.models import (
    LifetimeUsage,
    SubscriptionActivity,
    TriggeredUsageAlert,
    UsageAlert,
)
from metering.services.refresh import passes_wanted, refresh_usage
from plans.models import Charge
from tests.metering.monitoring.helpers import NOW, another_subscription, calls_billing, send
from tests.metering.usage.conftest import at
from tests.plans.factories import PlanFactory

pytestmark = pytest.mark.django_db

LATER = "2026-03-10T12:05:00"


def subscriptions_with_events(api, organization, count: int):
    """`count` subscriptions on the calls plan, each with one event and an alert at 5.00,
    refreshed once (their lifetime usage exists): the steady state."""
    billing = calls_billing(api, organization)
    subscriptions = [billing.subscription] + [
        another_subscription(billing, n) for n in range(2, count + 1)
    ]
    for subscription in subscriptions:
        UsageAlert.objects.create(
            organization=organization, external_subscription_id=subscription.external_id,
            alert_type="current_usage_amount", code="usage",
            thresholds=[{"code": None, "value": "5000.0", "recurring": False}],
        )  # fmt: skip
        send(billing, 1, sub=subscription.external_id)
    refresh_usage(actor=SYSTEM, now=at(NOW))
    return billing, subscriptions


def queries_of_a_pass(billing, subscriptions) -> int:
    for subscription in subscriptions:
        send(billing, 1, when=LATER, sub=subscription.external_id)
    with CaptureQueriesContext(connection) as captured:
        report = refresh_usage(actor=SYSTEM, now=at(LATER))
    assert report.subscriptions == len(subscriptions)
    return len(captured.captured_queries)


def test_a_steady_subscription_adds_no_query_to_a_pass(api, organization):
    billing, subscriptions = subscriptions_with_events(api, organization, 6)

    few = queries_of_a_pass(billing, subscriptions[:2])
    many = queries_of_a_pass(billing, subscriptions)

    # its aggregation is the batch's statement per charge, its alert's move the batch's lock
    # and UPDATE; the locks, the chain starts and the lifetime usages are the batch's too
    assert many == few


def watch(subscription, value: str) -> UsageAlert:
    return UsageAlert.objects.create(
        organization_id=subscription.organization_id,
        external_subscription_id=subscription.external_id,
        alert_type="current_usage_amount",
        code="usage",
        thresholds=[{"code": None, "value": value, "recurring": False}],
    )


def test_a_first_refresh_with_a_crossing_adds_no_query_to_a_pass(api, organization):
    billing = calls_billing(api, organization)
    subscriptions = [billing.subscription] + [another_subscription(billing, n) for n in range(2, 9)]
    for subscription in subscriptions:
        watch(subscription, "1000")
    counts = []
    for chosen in (subscriptions[:2], subscriptions[2:]):
        for subscription in chosen:
            send(billing, 1, sub=subscription.external_id)
        with CaptureQueriesContext(connection) as captured:
            report = refresh_usage(actor=SYSTEM, now=at(NOW))
        assert len(report.triggered) == len(chosen)
        counts.append(len(captured.captured_queries))

    # lifetime usages created and their invoiced part read, the crossings' rows and events
    # written: each once for the batch
    assert counts[0] == counts[1]


def test_the_crossings_of_a_batch_are_each_recorded_with_its_event(api, organization):
    billing = calls_billing(api, organization)
    subscriptions = [billing.subscription] + [another_subscription(billing, n) for n in range(2, 4)]
    for n, subscription in enumerate(subscriptions, start=1):
        watch(subscription, "1000")
        send(billing, n, sub=subscription.external_id)

    refresh_usage(actor=SYSTEM, now=at(NOW))

    recorded = {
        t.subscription_id: (t.previous_value, t.current_value, t.crossed_thresholds)
        for t in TriggeredUsageAlert.objects.all()
    }
    assert recorded == {
        s.pk: (
            Decimal(0),
            Decimal(1000 * n),
            [{"code": None, "value": "1000.0", "recurring": False}],
        )
        for n, s in enumerate(subscriptions, start=1)
    }
    events = OutboxEvent.objects.filter(event_type="alert.triggered")
    assert {(e.object_type, e.payload["external_subscription_id"]) for e in events} == {
        ("triggered_alert", s.external_id) for s in subscriptions
    }
    assert {e.object_id for e in events} == {str(t.pk) for t in TriggeredUsageAlert.objects.all()}


def test_the_batchs_lifetime_usages_are_stored_in_the_pass(api, organization):
    billing, subscriptions = subscriptions_with_events(api, organization, 3)
    for subscription in subscriptions:
        send(billing, 2, when=LATER, sub=subscription.external_id)

    refresh_usage(actor=SYSTEM, now=at(LATER))

    rows = LifetimeUsage.objects.filter(subscription__in=subscriptions)
    assert sorted(r.current_usage_amount_cents for r in rows) == [3_000] * 3
    assert {r.current_usage_amount_refreshed_at for r in rows} == {at(LATER)}
    assert UsageAlert.objects.filter(previous_value=3_000).count() == 3


def test_a_failing_subscription_is_flagged_again_and_the_others_refreshed(api, organization):
    billing = calls_billing(api, organization)
    broken_plan = PlanFactory(organization=organization, code="broken")
    Charge.objects.create(
        organization=organization, plan=broken_plan, billable_metric=billing.calls,
        code="calls", charge_model="standard", properties={"amount": "not a number"},
    )  # fmt: skip
    broken = another_subscription(billing, 2)
    broken.plan = broken_plan
    broken.save()
    send(billing, 1)
    send(billing, 1, sub="sub_2")

    report = refresh_usage(actor=SYSTEM, now=at(NOW))

    assert (report.subscriptions, report.failed) == (1, 1)
    assert report.subscription_ids == [billing.subscription.pk]
    lifetime = LifetimeUsage.objects.get(subscription=billing.subscription)
    assert lifetime.current_usage_amount_cents == 1_000
    assert list(SubscriptionActivity.objects.values_list("subscription_id", flat=True)) == [
        broken.pk
    ]


@pytest.mark.parametrize(
    ("flagged", "batch_size", "most", "wanted"),
    [(0, 2, 4, 1), (2, 2, 4, 1), (3, 2, 4, 2), (5, 2, 4, 3), (50, 2, 4, 4)],
)
def test_a_busy_minute_wants_a_pass_per_batch_up_to_a_limit(
    api, organization, flagged, batch_size, most, wanted
):
    billing = calls_billing(api, organization)
    subscriptions = [billing.subscription] + [
        another_subscription(billing, n) for n in range(2, flagged + 1)
    ]
    for subscription in subscriptions[:flagged]:
        send(billing, 1, sub=subscription.external_id)

    assert passes_wanted(now=at(NOW), batch_size=batch_size, most=most) == wanted
