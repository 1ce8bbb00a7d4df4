"""Customer and subscription factories (deterministic sequences)."""

import datetime as dt

import factory

from customers.models import Customer, Subscription
from tests.plans.factories import PlanFactory


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    billing_entity = factory.LazyAttribute(lambda o: o.organization.default_billing_entity())
    external_id = factory.Sequence(lambda n: f"cust_{n:04d}")
    sequential_id = factory.Sequence(lambda n: n + 1)
    name = factory.Sequence(lambda n: f"Customer {n}")
    currency = "EUR"


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    customer = factory.SubFactory(
        CustomerFactory, organization=factory.SelfAttribute("..organization")
    )
    plan = factory.SubFactory(PlanFactory, organization=factory.SelfAttribute("..organization"))
    external_id = factory.Sequence(lambda n: f"sub_{n:04d}")
    status = "active"
    billing_time = "calendar"
    subscription_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    started_at = factory.SelfAttribute("subscription_at")
