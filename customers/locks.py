"""Row locks of customers, subscriptions and applied coupons, held until the caller's
transaction ends (STYLE §7).

One lock order for the whole app and the apps that bill it: the customer first, then its
subscriptions (or applied coupons) in primary-key order. The customer lock serializes every
change of one customer's subscriptions (as Lago's `customer.with_lock`). Own table only
(`of=("self",)`): rows read along (plan, billing entity, organization) are not locked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from django.db.models import Exists, OuterRef, QuerySet

from billing.errors import NotFound
from billing.locks import lock_organization
from billing.models import Organization
from billing.queries import ReusableQuery
from customers.models import AppliedCoupon, Customer, Subscription


def lock_customer(pk: uuid.UUID) -> Customer:
    """The customer row: coupons, currency, wallets and deletion change under it."""
    return Customer.objects.select_for_update(of=("self",)).get(pk=pk)


def lock_alive_customer(organization: Organization, external_id: str) -> Customer | None:
    """The organization's alive customer with this `external_id`, locked (None if absent)."""
    return (
        Customer.objects.for_organization(organization)
        .alive()
        .filter(external_id=external_id)
        .select_for_update(of=("self",))
        .first()
    )


def lock_customer_creations(organization: Organization) -> None:
    """Serializes the customer creations of one organization until the transaction ends.

    FOR NO KEY UPDATE, not FOR UPDATE: rows that reference the organization (the outbox row of
    a concurrent update, its metadata) take FOR KEY SHARE on it, which FOR UPDATE would block;
    an updater holding the customer row and waiting for that share, while the creator waits
    for the customer row, was a deadlock (5 concurrent upserts of one external_id)."""
    lock_organization(organization.pk, no_key=True)


def lock_customer_for_billing(customer_id: uuid.UUID, *, related: bool = True) -> Customer:
    """The customer, locked FOR NO KEY UPDATE (invoices referencing it still insert), with its
    billing entity and organization (`related=False`: without them, for a caller that has them
    already, e.g. a billing run's catalog); `has_active_coupons` spares the coupon read of the
    customers without any (its taxes are read only when a fee needs them)."""
    if not related:
        rows = _LOCK_FOR_BILLING(customer_id=customer_id)
        if not rows:
            raise Customer.DoesNotExist(f"customer {customer_id}")
        return rows[0]  # type: ignore[return-value]
    return _for_billing(customer_id).select_related("billing_entity", "organization").get()


def _for_billing(customer_id: uuid.UUID) -> QuerySet[Customer]:
    return (
        Customer.objects.select_for_update(of=("self",), no_key=True)
        .filter(pk=customer_id)
        .annotate(
            has_active_coupons=Exists(
                AppliedCoupon.objects.filter(
                    customer_id=OuterRef("pk"), status=AppliedCoupon.Status.ACTIVE
                )
            )
        )
    )


# the customer row alone, compiled once per process (a billing run locks one customer after
# the other: building and compiling the query cost more than running it)
_LOCK_FOR_BILLING = ReusableQuery(_for_billing, customer_id=uuid.UUID)


def lock_subscriptions(ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, Subscription]:
    """Subscriptions in pk order (so two writers never deadlock), keyed by pk; None ids and
    vanished rows are left out."""
    wanted = sorted({pk for pk in ids if pk is not None})
    rows = (
        Subscription.objects.filter(pk__in=wanted)
        .select_related("plan", "customer__billing_entity", "customer__organization")
        .order_by("pk")
        .select_for_update(of=("self",))
    )
    return {row.pk: row for row in rows}


def lock_subscription_family(
    subscription_id: uuid.UUID,
) -> tuple[Subscription, Subscription | None, Subscription | None]:
    """Locks the customer, then a subscription, its predecessor and its pending successor.

    Returns (subscription, predecessor, pending successor), re-read under the locks.
    """
    customer_id = (
        Subscription.objects.filter(pk=subscription_id)
        .values_list("customer_id", flat=True)
        .first()
    )
    if customer_id is None:
        raise NotFound("subscription")
    lock_customer(customer_id)
    # Under the customer lock nobody adds or removes a successor any more.
    previous_id = (
        Subscription.objects.filter(pk=subscription_id)
        .values_list("previous_subscription_id", flat=True)
        .first()
    )
    successor_id = (
        Subscription.objects.filter(
            previous_subscription_id=subscription_id, status=Subscription.Status.PENDING
        )
        .values_list("pk", flat=True)
        .first()
    )
    locked = lock_subscriptions([subscription_id, previous_id, successor_id])
    return locked[subscription_id], locked.get(previous_id), locked.get(successor_id)


def lock_applied_coupon(pk: uuid.UUID) -> AppliedCoupon:
    """The applied coupon row."""
    return AppliedCoupon.objects.select_for_update(of=("self",)).get(pk=pk)


def lock_applied_coupons(queryset: QuerySet[AppliedCoupon]) -> list[AppliedCoupon]:
    """The applied coupons of `queryset`, in pk order."""
    return list(queryset.order_by("pk").select_for_update(of=("self",)))
