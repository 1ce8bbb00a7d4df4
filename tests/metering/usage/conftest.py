"""Helpers of the usage tests: a customer on a plan, metrics and charges, events sent through
the API, the current usage read back through the API (spec §5, §25)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import time_machine

from customers.models import Customer, Subscription
from plans.models import BillableMetric, BillableMetricFilter, Charge, ChargeFilter, Plan
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.plans.factories import PlanFactory


def at(text: str) -> datetime:
    """An aware UTC instant from ISO text."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def unix(text: str) -> int:
    return int(at(text).timestamp())


@dataclass
class Billing:
    """One customer with one subscription of one plan, and helpers to price its usage."""

    api: object
    organization: object
    customer: Customer
    plan: Plan
    subscription: Subscription

    _ids = itertools.count(1)

    def metric(self, code: str, aggregation_type: str, field_name: str | None = None, **fields):
        return BillableMetric.objects.create(
            organization=self.organization,
            name=fields.pop("name", code.replace("_", " ").title()),
            code=code,
            aggregation_type=aggregation_type,
            field_name=field_name,
            **fields,
        )

    def metric_filter(self, metric: BillableMetric, key: str, values: list[str]):
        return BillableMetricFilter.objects.create(
            organization=self.organization, billable_metric=metric, key=key, values=values
        )

    def charge(self, metric: BillableMetric, charge_model: str = "standard", **fields) -> Charge:
        fields.setdefault("properties", {"amount": "1"})
        return Charge.objects.create(
            organization=self.organization,
            plan=self.plan,
            billable_metric=metric,
            code=fields.pop("code", f"{metric.code}_{next(self._ids)}"),
            charge_model=charge_model,
            **fields,
        )

    def charge_filter(self, charge: Charge, values: dict, properties: dict, name: str = ""):
        return ChargeFilter.objects.create(
            organization=self.organization,
            charge=charge,
            values=values,
            properties=properties,
            invoice_display_name=name,
        )

    def send(self, code: str, timestamp: str | int | None = None, sub: str | None = None, **event):
        """POST /events; returns the response (asserting 200)."""
        payload = {
            "transaction_id": event.pop("transaction_id", f"tx_{next(self._ids)}"),
            "external_subscription_id": sub or self.subscription.external_id,
            "code": code,
            **event,
        }
        if timestamp is not None:
            payload["timestamp"] = unix(timestamp) if isinstance(timestamp, str) else timestamp
        response = self.api.post("/api/v1/events", {"event": payload}, format="json")
        assert response.status_code == 200, response.json()
        return response

    def send_many(self, code: str, events: list[tuple[str, dict]]) -> None:
        for timestamp, properties in events:
            self.send(code, timestamp, properties=properties)

    def usage(self, now: str, **params) -> dict:
        """GET current_usage at `now`; the `customer_usage` body."""
        query = {"external_subscription_id": self.subscription.external_id, **params}
        with time_machine.travel(at(now), tick=False):
            response = self.api.get(
                f"/api/v1/customers/{self.customer.external_id}/current_usage", query
            )
        assert response.status_code == 200, response.json()
        return response.json()["customer_usage"]

    def charge_usage(self, now: str, charge: Charge) -> dict:
        [found] = [
            c for c in self.usage(now)["charges_usage"] if c["charge"]["lago_id"] == str(charge.pk)
        ]
        return found


def make_billing(
    api,
    organization,
    *,
    started_at: str = "2022-03-01",
    billing_time: str = "calendar",
    interval: str = "monthly",
    external_id: str = "sub_1",
    customer_id: str = "cust_1",
    plan_fields: dict | None = None,
) -> Billing:
    customer = CustomerFactory(
        organization=organization, external_id=customer_id, timezone="UTC", currency="EUR"
    )
    plan = PlanFactory(organization=organization, interval=interval, **(plan_fields or {}))
    subscription = SubscriptionFactory(
        organization=organization,
        customer=customer,
        plan=plan,
        external_id=external_id,
        billing_time=billing_time,
        subscription_at=at(started_at),
        started_at=at(started_at),
    )
    return Billing(api, organization, customer, plan, subscription)


@pytest.fixture
def billing(api, organization) -> Billing:
    """A UTC customer on a calendar monthly EUR plan since 2022-03-01."""
    return make_billing(api, organization)
