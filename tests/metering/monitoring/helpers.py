"""Helpers of the usage monitoring tests: a subscription with a `calls` count metric priced
10.00 each (EUR), events sent through the API and refresh passes at a given instant."""

from __future__ import annotations

from io import StringIO

import time_machine
from django.core.management import call_command

from billing.actors import SYSTEM
from metering.services.refresh import RefreshReport, refresh_usage
from tests.metering.usage.conftest import Billing, at, make_billing

NOW = "2026-03-10T12:00:00"


def calls_billing(api, organization, **fields) -> Billing:
    billing = make_billing(api, organization, started_at="2026-03-01", **fields)
    billing.calls = billing.metric("calls", "count_agg")  # type: ignore[attr-defined]
    billing.charge(billing.calls, properties={"amount": "10"})  # type: ignore[attr-defined]
    return billing


def send(billing: Billing, count: int, when: str = NOW, code: str = "calls", **event) -> None:
    """`count` events through POST /events received at `when` (timestamped then)."""
    with time_machine.travel(at(when), tick=False):
        for _ in range(count):
            billing.send(code, **event)


def refresh(when: str = NOW) -> RefreshReport:
    with time_machine.travel(at(when), tick=False):
        return refresh_usage(actor=SYSTEM, now=at(when))


def jobs(*args: str, when: str = NOW) -> str:
    out = StringIO()
    with time_machine.travel(at(when), tick=False):
        call_command("jobs", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def another_subscription(billing: Billing, n: int):
    """One more customer (`cust_{n}`) subscribed to the same plan as `sub_{n}`."""
    from tests.customers.factories import CustomerFactory, SubscriptionFactory

    customer = CustomerFactory(
        organization=billing.organization, external_id=f"cust_{n}", timezone="UTC", currency="EUR"
    )
    return SubscriptionFactory(
        organization=billing.organization,
        customer=customer,
        plan=billing.plan,
        external_id=f"sub_{n}",
        billing_time="calendar",
        subscription_at=billing.subscription.subscription_at,
        started_at=billing.subscription.started_at,
    )
