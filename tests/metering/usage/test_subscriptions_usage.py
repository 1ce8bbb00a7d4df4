"""`subscriptions_usage`: the usage of many subscriptions at once (the refresh pass) is each
one's `subscription_usage`, with each charge bucket's aggregation read for all of them in one
statement."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.services.subscription_reads import initial_started_at_many
from metering.usage import plan_charges, subscription_usage, subscriptions_usage, usage_window
from tests.customers.factories import CustomerFactory, SubscriptionFactory

from .conftest import at

pytestmark = pytest.mark.django_db

NOW = at("2022-03-20T12:00:00")
REGION = [{"value": "region"}]


@pytest.fixture
def priced(billing):
    """A plan with a filtered count, a grouped sum shown by region, a percentage (priced on
    each event's value), a unique count and a pay-in-advance sum."""
    calls = billing.metric("calls", "count_agg")
    billing.metric_filter(calls, "tier", ["gold", "silver"])
    count = billing.charge(calls, properties={"amount": "1"})
    billing.charge_filter(count, {"tier": ["gold"]}, {"amount": "5"}, name="Gold")
    storage = billing.metric("storage", "sum_agg", "gb")
    billing.charge(
        storage,
        properties={
            "amount": "2",
            "pricing_group_keys": ["cloud"],
            "presentation_group_keys": REGION,
        },
    )
    payments = billing.metric("payments", "sum_agg", "total")
    billing.charge(payments, "percentage", properties={"rate": "1.5"})
    users = billing.metric("users", "unique_count_agg", "user_id")
    billing.charge(users, properties={"amount": "3"})
    uploads = billing.metric("uploads", "sum_agg", "mb")
    billing.charge(uploads, properties={"amount": "1"}, pay_in_advance=True)
    return billing


def subscribe(billing, n: int, started_at: str = "2022-03-01", billing_time: str = "calendar"):
    customer = CustomerFactory(
        organization=billing.organization, external_id=f"cust_{n}", timezone="UTC", currency="EUR"
    )
    return SubscriptionFactory(
        organization=billing.organization,
        customer=customer,
        plan=billing.plan,
        external_id=f"sub_{n}",
        billing_time=billing_time,
        subscription_at=at(started_at),
        started_at=at(started_at),
    )


def use(billing, sub: str, n: int) -> None:
    """Usage growing with `n`: some of every metric."""
    for i in range(n):
        billing.send("calls", "2022-03-05", sub=sub, properties={"tier": ["gold", "silver"][i % 2]})
        billing.send(
            "storage",
            "2022-03-06",
            sub=sub,
            properties={"gb": i + 1, "cloud": ["aws", "gcp"][i % 2], "region": "eu"},
        )
        billing.send("payments", "2022-03-07", sub=sub, properties={"total": 100 * (i + 1)})
        billing.send("users", "2022-03-08", sub=sub, properties={"user_id": f"u{i % 2}"})
        billing.send("uploads", "2022-03-09", sub=sub, properties={"mb": 4})


def batch_usage(subscriptions):
    charges = {s.plan_id: plan_charges(s) for s in subscriptions}
    return subscriptions_usage(
        subscriptions=subscriptions,
        windows={s.pk: usage_window(subscription=s, at=NOW) for s in subscriptions},
        charges=charges,
        chain_started_at=initial_started_at_many(subscriptions),
        include_pay_in_advance=True,
    )


def test_each_subscription_gets_its_own_usage(priced):
    subscriptions = [
        priced.subscription,
        subscribe(priced, 2),
        subscribe(priced, 3, started_at="2022-02-03", billing_time="anniversary"),
        subscribe(priced, 4),  # no usage
    ]
    for n, subscription in enumerate(subscriptions[:3], start=1):
        use(priced, subscription.external_id, n)

    usages = batch_usage(subscriptions)

    for subscription in subscriptions:
        alone = subscription_usage(
            subscription=subscription,
            window=usage_window(subscription=subscription, at=NOW),
            include_pay_in_advance=True,
        )
        assert usages[subscription.pk] == alone
    amounts = [sum(u.amount_cents for u in usages[s.pk]) for s in subscriptions]
    assert amounts[0] < amounts[1] < amounts[2]
    assert amounts[3] == 0


def test_the_statements_do_not_grow_with_the_subscriptions(priced):
    subscriptions = [priced.subscription] + [subscribe(priced, n) for n in range(2, 9)]
    for subscription in subscriptions:
        use(priced, subscription.external_id, 2)
    few, many = subscriptions[:2], subscriptions
    counts = []
    for chosen in (few, many):
        charges = {s.plan_id: plan_charges(s) for s in chosen}
        windows = {s.pk: usage_window(subscription=s, at=NOW) for s in chosen}
        starts = initial_started_at_many(chosen)
        with CaptureQueriesContext(connection) as captured:
            subscriptions_usage(
                subscriptions=chosen,
                windows=windows,
                charges=charges,
                chain_started_at=starts,
                include_pay_in_advance=True,
            )
        counts.append(len(captured.captured_queries))

    assert counts[0] == counts[1]
