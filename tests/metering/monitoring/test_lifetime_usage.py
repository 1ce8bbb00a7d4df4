"""Lifetime usage: `GET/PUT /api/v1/subscriptions/{external_id}/lifetime_usage`, the invoiced
part following finalized invoices, and the usage thresholds' completion as Lago lists it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from metering.models import LifetimeUsage, SubscriptionActivity
from metering.services.lifetime_usages import ThresholdCompletion, thresholds_completion
from plans.models import UsageThreshold
from tests.invoicing.billing_helpers import bill, only_invoice
from tests.metering.monitoring.helpers import calls_billing, refresh, send
from tests.metering.usage.conftest import at

URL = "/api/v1/subscriptions/sub_1/lifetime_usage"
NOW = at("2026-03-20T00:00:00")
D = Decimal


@pytest.mark.parametrize(
    ("thresholds", "total", "expected"),
    [
        pytest.param(
            [(1000, False), (3000, False)],
            2000,
            [(1000, D(1), NOW), (3000, D("0.5"), None)],
            id="one-passed-one-half-way",
        ),
        pytest.param(
            [(1000, False), (3000, False), (500, True)],
            500,
            [(1000, D("0.5"), None), (3000, D(0), None), (3500, D(0), None)],
            id="recurring-after-the-largest-while-one-time-ones-remain",
        ),
        pytest.param(
            [(1000, False), (500, True)],
            2250,
            [(1000, D(1), NOW), (1500, D(1), NOW), (2000, D(1), NOW), (2500, D("0.5"), None)],
            id="recurring-steps-once-all-passed",
        ),
        pytest.param([(1000, True)], 0, [(1000, D(0), None)], id="recurring-alone"),
    ],
)
def test_thresholds_completion(thresholds, total, expected):
    rows = thresholds_completion(thresholds=thresholds, total_cents=total, now=NOW)

    assert rows == [ThresholdCompletion(*row) for row in expected]


@pytest.mark.django_db
class TestApi:
    def test_get_answers_the_three_parts_as_lago_renders_them(self, api, organization):
        billing = calls_billing(api, organization)
        send(billing, 2)
        refresh("2026-03-10T12:00:30")

        with time_machine.travel(at("2026-03-10T12:01:00"), tick=False):
            response = api.get(URL)

        assert response.status_code == 200, response.json()
        lifetime = LifetimeUsage.objects.get()
        assert response.json() == {
            "lifetime_usage": {
                "lago_id": str(lifetime.pk),
                "lago_subscription_id": str(billing.subscription.pk),
                "external_subscription_id": "sub_1",
                "external_historical_usage_amount_cents": 0,
                "invoiced_usage_amount_cents": 0,
                "current_usage_amount_cents": 2_000,
                "from_datetime": "2026-03-01T00:00:00Z",
                "to_datetime": "2026-03-10T12:01:00Z",
            }
        }

    def test_usage_thresholds_of_the_plan_are_listed_with_their_completion(self, api, organization):
        billing = calls_billing(api, organization)
        for amount, recurring in [(1_000, False), (5_000, False), (2_000, True)]:
            UsageThreshold.objects.create(
                organization=organization, plan=billing.plan, amount_cents=amount,
                recurring=recurring,
            )  # fmt: skip
        send(billing, 3)
        refresh("2026-03-10T12:00:30")

        with time_machine.travel(at("2026-03-10T12:01:00"), tick=False):
            thresholds = api.get(URL).json()["lifetime_usage"]["usage_thresholds"]

        assert thresholds == [
            {"amount_cents": 1_000, "completion_ratio": 1.0, "reached_at": "2026-03-10T12:01:00Z"},
            {"amount_cents": 5_000, "completion_ratio": 0.5, "reached_at": None},
            {"amount_cents": 7_000, "completion_ratio": 0.0, "reached_at": None},
        ]

    def test_put_sets_the_historical_usage(self, api, organization):
        calls_billing(api, organization)

        response = api.put(
            URL,
            {"lifetime_usage": {"external_historical_usage_amount_cents": 12_345}},
            format="json",
        )

        assert response.status_code == 200, response.json()
        assert response.json()["lifetime_usage"]["external_historical_usage_amount_cents"] == 12_345
        assert LifetimeUsage.objects.get().total_amount_cents == 12_345

    @pytest.mark.parametrize("value", [-1, "abc", 1.5, None, "", True, 2**63])
    def test_put_refuses_what_is_not_a_non_negative_integer(self, api, organization, value):
        calls_billing(api, organization)

        response = api.put(
            URL,
            {"lifetime_usage": {"external_historical_usage_amount_cents": value}},
            format="json",
        )

        assert response.status_code == 422, response.json()
        assert list(response.json()["error_details"]) == ["external_historical_usage_amount_cents"]

    def test_an_unknown_subscription_is_a_404(self, api, organization):
        assert api.get(URL).json()["code"] == "subscription_not_found"

    def test_another_organization_cannot_read_or_set_it(self, api, other_api, organization):
        calls_billing(api, organization)

        assert other_api.get(URL).status_code == 404
        put = other_api.put(
            URL, {"lifetime_usage": {"external_historical_usage_amount_cents": 1}}, format="json"
        )
        assert put.status_code == 404
        assert not LifetimeUsage.objects.filter(historical_usage_amount_cents=1).exists()


@pytest.mark.django_db
class TestInvoicedPart:
    def test_a_finalized_invoice_moves_the_period_usage_to_the_invoiced_part(
        self, api, organization, django_capture_on_commit_callbacks
    ):
        billing = calls_billing(api, organization)
        send(billing, 3)
        refresh("2026-03-10T12:00:30")

        with time_machine.travel(at("2026-04-01T12:00:00"), tick=False):
            invoice = only_invoice(bill(billing.customer, date(2026, 4, 1)))
        assert invoice.status == "finalized"
        lifetime = LifetimeUsage.objects.get()
        assert lifetime.recalculate_invoiced_usage
        assert SubscriptionActivity.objects.filter(subscription=billing.subscription).exists()

        refresh("2026-04-01T12:01:00")

        lifetime.refresh_from_db()
        assert (
            lifetime.invoiced_usage_amount_cents,
            lifetime.current_usage_amount_cents,
            lifetime.total_amount_cents,
        ) == (3_000, 0, 3_000)
        assert not lifetime.recalculate_invoiced_usage


@pytest.mark.django_db(transaction=True)
def test_through_the_lago_client(lago, api, organization):
    calls_billing(api, organization)

    updated = lago.subscriptions.update_lifetime_usage("sub_1", 5_000)
    fetched = lago.subscriptions.lifetime_usage("sub_1")

    assert updated.external_historical_usage_amount_cents == 5_000
    assert (fetched.external_subscription_id, fetched.current_usage_amount_cents) == ("sub_1", 0)
    assert fetched.usage_thresholds is None
