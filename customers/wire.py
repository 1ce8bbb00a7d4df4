"""The customer and subscription wire objects other apps send (webhooks), rendered as the API
answers them (`billing.wire_objects`)."""

from __future__ import annotations

from collections.abc import Sequence

from billing.activity import register_activity_object
from billing.wire_objects import register_wire_object
from customers.api.customer_serializers import AppliedCouponSerializer
from customers.models import AppliedCoupon, Customer, Subscription
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


def register_activity() -> None:
    """Declares how the activity log renders applied coupons: as their API answers them."""
    register_activity_object(
        "applied_coupon",
        load=lambda ids: AppliedCoupon.objects.filter(pk__in=ids).select_related(
            "coupon", "customer"
        ),
        render=lambda rows: [AppliedCouponSerializer(row).data for row in rows],
    )
