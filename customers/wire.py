"""The customer and subscription wire objects other apps send (webhooks), rendered as the API
answers them (`billing.wire_objects`)."""

from __future__ import annotations

from collections.abc import Sequence

from billing.wire_objects import register_wire_object
from customers.models import Customer, Subscription
from customers.representations import CustomerSerializer, SubscriptionSerializer


def customers_for_wire(ids: Sequence[str]) -> list[Customer]:
    """Customers of these ids, deleted ones included, with what their rendering reads."""
    return list(
        Customer.objects.filter(pk__in=ids)
        .select_related("billing_entity", "organization")
        .prefetch_related("metadata", "taxes")
    )


def subscriptions_for_wire(ids: Sequence[str]) -> list[Subscription]:
    """Subscriptions of these ids, any status."""
    return list(
        Subscription.objects.filter(pk__in=ids).select_related(
            "plan", "customer__billing_entity", "previous_subscription__plan"
        )
    )


def register() -> None:
    """Declares the customer and subscription wire objects (called at start-up)."""
    register_wire_object(
        "customer",
        load=customers_for_wire,
        render=lambda rows: CustomerSerializer(rows, many=True).data,
    )
    register_wire_object(
        "subscription",
        load=subscriptions_for_wire,
        render=lambda rows: SubscriptionSerializer(rows, many=True).data,
    )
