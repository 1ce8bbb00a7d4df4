"""The hourly `events.errors` report (spec §5.2 post-validation, §27)."""

from __future__ import annotations

import pytest
import time_machine

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from metering.services.events_errors import events_errors_report
from metering.tasks import events_errors_report_task
from tests.metering.usage.conftest import at

pytestmark = pytest.mark.django_db


def test_report_lists_each_kind_of_invalid_event_once(billing):
    metric = billing.metric("transfers", "sum_agg", "amount")
    billing.metric_filter(metric, "region", ["eu", "us"])
    billing.metric("calls", "count_agg")
    with time_machine.travel(at("2022-03-10T10:15:00"), tick=False):
        billing.send("transfers", transaction_id="ok", properties={"amount": 1, "region": "eu"})
        billing.send("nope", transaction_id="bad_code")
        billing.send("transfers", transaction_id="no_amount", properties={"region": "us"})
        billing.send(
            "transfers", transaction_id="bad_region", properties={"amount": 1, "region": "mars"}
        )
        billing.send("calls", transaction_id="count_needs_no_property")
    with time_machine.travel(at("2022-03-10T11:05:00"), tick=False):
        assert events_errors_report_task.apply().result == 1
        assert events_errors_report_task.apply().result == 0  # the hour is reported once
    report = OutboxEvent.objects.get(event_type="events.errors")
    assert report.organization == billing.organization
    assert report.payload == {
        "ingested_from": "2022-03-10T10:00:00Z",
        "invalid_code": ["bad_code"],
        "missing_aggregation_property": ["no_amount"],
        "invalid_filter_values": ["bad_region"],
    }


def test_report_stays_silent_without_invalid_events(billing):
    billing.metric("calls", "count_agg")
    with time_machine.travel(at("2022-03-10T10:15:00"), tick=False):
        billing.send("calls")
    assert events_errors_report(actor=SYSTEM, now=at("2022-03-10T11:05:00")) == []


def test_report_covers_only_the_last_whole_hour(billing):
    with time_machine.travel(at("2022-03-10T09:59:00"), tick=False):
        billing.send("nope", transaction_id="too_early")
    with time_machine.travel(at("2022-03-10T11:00:00"), tick=False):
        billing.send("nope", transaction_id="too_late")
    assert events_errors_report(actor=SYSTEM, now=at("2022-03-10T11:05:00")) == []
