"""Usage alerts: which thresholds a rise crosses, and the refresh pass recording
`alert.triggered` once per crossing with the crossed thresholds, current and previous values."""

from __future__ import annotations

from decimal import Decimal

import pytest
import time_machine

from billing.models import OutboxEvent
from metering.models import TriggeredUsageAlert, UsageAlert
from metering.services.usage_alerts import crossed_thresholds
from tests.metering.monitoring.helpers import calls_billing, refresh, send
from tests.metering.usage.conftest import at

D = Decimal


def t(value: str, code: str | None = None, recurring: bool = False) -> dict:
    return {"code": code, "value": value, "recurring": recurring}


@pytest.mark.parametrize(
    ("thresholds", "previous", "current", "expected"),
    [
        pytest.param([t("100")], "0", "99", [], id="below"),
        pytest.param([t("100")], "0", "100", [t("100.0")], id="reached-exactly"),
        pytest.param([t("100")], "100", "150", [], id="already-past"),
        pytest.param([t("100"), t("200")], "0", "250", [t("100.0"), t("200.0")], id="two-at-once"),
        pytest.param([t("100"), t("200")], "150", "250", [t("200.0")], id="only-the-new-one"),
        pytest.param([t("100")], "150", "120", [], id="a-fall-crosses-nothing"),
        pytest.param(
            [t("100"), t("50", "step", recurring=True)],
            "90",
            "260",
            [
                t("100.0"),
                t("150.0", "step", True),
                t("200.0", "step", True),
                t("250.0", "step", True),
            ],
            id="recurring-steps-above-the-largest",
        ),
        pytest.param(
            [t("100"), t("50", "step", recurring=True)],
            "150",
            "199",
            [],
            id="a-step-reached-before-does-not-fire-again",
        ),
        pytest.param(
            [t("10", "every", recurring=True)],
            "0",
            "25",
            [t("10.0", "every", True), t("20.0", "every", True)],
            id="recurring-alone-steps-from-zero",
        ),
    ],
)
def test_crossed_thresholds(thresholds, previous, current, expected):
    assert crossed_thresholds(thresholds, D(previous), D(current)) == expected


# --------------------------------------------------------------------------------------------
# Evaluation by the refresh pass


def alert(billing, alert_type="current_usage_amount", thresholds=None, **fields) -> UsageAlert:
    """An alert created through the API an hour before the events."""
    with time_machine.travel(at("2026-03-10T11:00:00"), tick=False):
        return _create(billing, alert_type, thresholds, **fields)


def _create(billing, alert_type, thresholds, **fields) -> UsageAlert:
    response = billing.api.post(
        f"/api/v1/subscriptions/{billing.subscription.external_id}/alerts",
        {
            "alert": {
                "alert_type": alert_type,
                "code": fields.pop("code", alert_type),
                "thresholds": thresholds or [{"code": "warn", "value": "2500"}],
                **fields,
            }
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    return UsageAlert.objects.get(pk=response.json()["alert"]["lago_id"])


@pytest.mark.django_db
class TestEvaluation:
    def test_a_crossing_records_alert_triggered_with_its_values(self, api, organization):
        billing = calls_billing(api, organization)
        watched = alert(billing)
        send(billing, 3)

        refresh("2026-03-10T12:00:30")

        [triggered] = TriggeredUsageAlert.objects.all()
        [event] = OutboxEvent.objects.filter(event_type="alert.triggered")
        assert event.object_type == "triggered_alert"
        assert event.payload == {
            "lago_id": str(triggered.pk),
            "lago_organization_id": str(organization.pk),
            "lago_alert_id": str(watched.pk),
            "lago_subscription_id": str(billing.subscription.pk),
            "external_subscription_id": "sub_1",
            "lago_wallet_id": None,
            "external_customer_id": "cust_1",
            "billable_metric_code": None,
            "alert_name": None,
            "alert_code": "current_usage_amount",
            "alert_type": "current_usage_amount",
            "current_value": "3000.0",
            "previous_value": "0.0",
            "crossed_thresholds": [{"code": "warn", "value": "2500.0", "recurring": False}],
            "triggered_at": "2026-03-10T12:00:30Z",
            "subscription_external_id": "sub_1",
            "customer_external_id": "cust_1",
        }
        watched.refresh_from_db()
        assert watched.previous_value == D(3000)

    def test_a_crossing_fires_once(self, api, organization):
        billing = calls_billing(api, organization)
        alert(billing)
        send(billing, 3)
        refresh("2026-03-10T12:00:30")

        send(billing, 1, when="2026-03-10T12:00:40")
        refresh("2026-03-10T12:01:00")

        assert TriggeredUsageAlert.objects.count() == 1
        assert OutboxEvent.objects.filter(event_type="alert.triggered").count() == 1

    def test_below_every_threshold_nothing_is_recorded_but_the_value_is_kept(
        self, api, organization
    ):
        billing = calls_billing(api, organization)
        watched = alert(billing)
        send(billing, 2)

        refresh("2026-03-10T12:00:30")

        assert not TriggeredUsageAlert.objects.exists()
        watched.refresh_from_db()
        assert (watched.previous_value, watched.last_processed_at) == (
            D(2000),
            watched.last_processed_at,
        )
        assert watched.last_processed_at is not None

    def test_metric_units_alert_watches_the_units(self, api, organization):
        billing = calls_billing(api, organization)
        alert(
            billing,
            "billable_metric_current_usage_units",
            [{"value": "2"}],
            billable_metric_code="calls",
        )
        send(billing, 2)

        refresh("2026-03-10T12:00:30")

        [triggered] = TriggeredUsageAlert.objects.all()
        assert triggered.current_value == D(2)
        event = OutboxEvent.objects.get(event_type="alert.triggered")
        assert event.payload["billable_metric_code"] == "calls"

    def test_metric_amount_alert_watches_the_amount(self, api, organization):
        billing = calls_billing(api, organization)
        alert(
            billing,
            "billable_metric_current_usage_amount",
            [{"value": "1500"}],
            billable_metric_code="calls",
        )
        send(billing, 2)

        refresh("2026-03-10T12:00:30")

        assert TriggeredUsageAlert.objects.get().current_value == D(2000)

    def test_lifetime_alert_counts_the_historical_usage(self, api, organization):
        billing = calls_billing(api, organization)
        alert(billing, "lifetime_usage_amount", [{"value": "10000"}])
        api.put(
            "/api/v1/subscriptions/sub_1/lifetime_usage",
            {"lifetime_usage": {"external_historical_usage_amount_cents": 9_000}},
            format="json",
        )
        send(billing, 1)

        refresh("2026-03-10T12:00:30")

        assert TriggeredUsageAlert.objects.get().current_value == D(10_000)

    def test_recurring_threshold_fires_at_each_step(self, api, organization):
        billing = calls_billing(api, organization)
        alert(billing, thresholds=[{"value": "1000"}, {"value": "2000", "recurring": True}])
        send(billing, 1)
        refresh("2026-03-10T12:00:30")
        send(billing, 4, when="2026-03-10T12:00:40")
        refresh("2026-03-10T12:01:00")

        crossings = [
            [c["value"] for c in row.crossed_thresholds]
            for row in TriggeredUsageAlert.objects.order_by("triggered_at")
        ]
        assert crossings == [["1000.0"], ["3000.0", "5000.0"]]

    def test_a_new_period_crosses_the_thresholds_again(self, api, organization):
        billing = calls_billing(api, organization)
        alert(billing)
        send(billing, 3)
        refresh("2026-03-10T12:00:30")
        refresh_april = "2026-04-02T12:00:30"
        send(billing, 1, when="2026-04-02T12:00:00")
        refresh(refresh_april)  # the new period's usage (1,000) is below: kept as the value
        send(billing, 2, when="2026-04-02T12:01:00")

        refresh("2026-04-02T12:01:30")

        assert TriggeredUsageAlert.objects.count() == 2

    def test_an_alert_on_a_metric_the_plan_does_not_price_is_not_evaluated(self, api, organization):
        billing = calls_billing(api, organization)
        billing.metric("storage", "sum_agg", field_name="gb")
        watched = alert(
            billing,
            "billable_metric_current_usage_units",
            [{"value": "1"}],
            billable_metric_code="storage",
        )
        send(billing, 2)

        refresh("2026-03-10T12:00:30")

        watched.refresh_from_db()
        assert watched.last_processed_at is None
