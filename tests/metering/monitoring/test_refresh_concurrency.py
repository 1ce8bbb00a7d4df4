"""Concurrent refresh passes on PostgreSQL with real connections: each flagged subscription is
refreshed by one pass, each crossing recorded once."""

from __future__ import annotations

from decimal import Decimal

import pytest
import time_machine

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from metering.models import SubscriptionActivity, TriggeredUsageAlert, UsageAlert
from metering.services.refresh import refresh_usage
from metering.services.usage_alerts import usage_alert_evaluate, usage_alerts_evaluate
from tests.customers.test_customers_api import run_in_threads
from tests.metering.monitoring.helpers import another_subscription, calls_billing, send
from tests.metering.usage.conftest import at

pytestmark = pytest.mark.django_db(transaction=True)
PASS_AT = at("2026-03-10T12:00:30")


def watch(subscription, value: str = "1000") -> UsageAlert:
    return UsageAlert.objects.create(
        organization_id=subscription.organization_id,
        external_subscription_id=subscription.external_id,
        alert_type="current_usage_amount",
        code="usage",
        thresholds=[{"code": None, "value": value, "recurring": False}],
    )


def test_concurrent_passes_refresh_each_subscription_once(api, organization):
    billing = calls_billing(api, organization)
    subscriptions = [billing.subscription] + [another_subscription(billing, n) for n in range(2, 9)]
    with time_machine.travel(at("2026-03-10T12:00:00"), tick=False):
        for subscription in subscriptions:
            watch(subscription)
            billing.send("calls", sub=subscription.external_id)

    reports = run_in_threads(4, lambda i: refresh_usage(actor=SYSTEM, now=PASS_AT, batch_size=2))

    assert sum(r.subscriptions for r in reports) == len(subscriptions)
    assert TriggeredUsageAlert.objects.count() == len(subscriptions)
    assert OutboxEvent.objects.filter(event_type="alert.triggered").count() == len(subscriptions)
    assert not SubscriptionActivity.objects.exists()


def test_concurrent_evaluations_record_a_crossing_once(api, organization):
    billing = calls_billing(api, organization)
    alert = watch(billing.subscription)

    results = run_in_threads(
        6,
        lambda i: usage_alert_evaluate(
            alert=alert,
            subscription=billing.subscription,
            value=Decimal(1500),
            actor=SYSTEM,
            now=PASS_AT,
        ),
    )

    assert len([r for r in results if r is not None]) == 1
    assert TriggeredUsageAlert.objects.count() == 1
    assert OutboxEvent.objects.filter(event_type="alert.triggered").count() == 1


def test_concurrent_batch_evaluations_record_each_crossing_once(api, organization):
    billing = calls_billing(api, organization)
    subscriptions = [billing.subscription] + [another_subscription(billing, n) for n in range(2, 5)]
    alerts = [watch(subscription) for subscription in subscriptions]
    # each evaluation read the alerts before any moved (previous value 0), in its own order
    readings = [
        [
            (UsageAlert.objects.get(pk=alert.pk), subscription, Decimal(1500))
            for alert, subscription in zip(alerts, subscriptions, strict=True)
        ][:: 1 if i % 2 else -1]
        for i in range(6)
    ]

    results = run_in_threads(
        6,
        lambda i: usage_alerts_evaluate(evaluations=readings[i], actor=SYSTEM, now=PASS_AT),
    )

    assert sum(len(r) for r in results) == 4  # each crossing returned by one evaluation
    assert TriggeredUsageAlert.objects.count() == 4
    assert OutboxEvent.objects.filter(event_type="alert.triggered").count() == 4
    assert set(UsageAlert.objects.values_list("previous_value", flat=True)) == {Decimal(1500)}


def test_events_ingested_during_passes_stay_flagged_or_are_refreshed(api, organization):
    billing = calls_billing(api, organization)
    watch(billing.subscription, "5000")

    def work(index: int) -> object:
        if index == 0:
            for _ in range(6):
                send(billing, 1, when="2026-03-10T12:00:00")
            return None
        return refresh_usage(actor=SYSTEM, now=PASS_AT)

    run_in_threads(3, work)
    refresh_usage(actor=SYSTEM, now=PASS_AT)  # whatever was flagged last

    # the crossing is recorded once, by whichever pass first saw 5 or 6 events; the last
    # event is not lost: the alert's value after the last pass counts all six
    [triggered] = TriggeredUsageAlert.objects.all()
    assert triggered.current_value in (Decimal(5000), Decimal(6000))
    assert UsageAlert.objects.get().previous_value == Decimal(6000)
