"""The catalog one billing run reads once for all its customers: plans with their taxes, fixed
charges and minimum commitment, the plans' charges (with filters, metric and taxes), the
organizations and billing entities the customers bill through, and the billing entities'
default taxes.

Without it every customer re-reads its plan's catalog (7 statements for a plan with charges). A
`Catalog` lives as long as one chunk of a billing run (a Celery task, seconds): a plan edited
during that chunk is seen by the next chunk, as a customer billed a second before the edit would
have missed it anyway. Nothing here is written to; the model instances are shared read-only by
the customers of the chunk.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from django.db.models import Prefetch

from billing.models import BillingEntity, Organization
from customers.models import Customer, Subscription
from plans.models import Charge, FixedCharge, Plan, Tax
from plans.selectors import billing_entity_taxes


def _plans_for_billing():  # -> QuerySet[Plan]
    """Plans as `subscriptions_for_billing` loads them along with a subscription."""
    return Plan.objects.select_related("parent", "minimum_commitment").prefetch_related(
        "taxes",
        "minimum_commitment__taxes",
        Prefetch(
            "fixed_charges",
            queryset=FixedCharge.objects.alive()
            .select_related("add_on")
            .prefetch_related("taxes")
            .order_by("created_at", "id"),
            to_attr="live_fixed_charges",
        ),
    )


class Catalog:
    """Plans, charges and billing-entity taxes read once and shared by a run's customers."""

    def __init__(self) -> None:
        self._plans: dict[UUID, Plan] = {}
        self._charges: dict[UUID, list[Charge]] = {}
        self._entity_taxes: dict[UUID, list[Tax]] = {}
        self._organizations: dict[UUID, Organization] = {}
        self._entities: dict[UUID, BillingEntity] = {}

    def attach_issuers(self, customer: Customer) -> None:
        """Sets the customer's organization and billing entity to the cached ones (read once
        per chunk: the customer lock then reads the customer row alone)."""
        organization = self._organizations.get(customer.organization_id)
        if organization is None:
            organization = Organization.objects.get(pk=customer.organization_id)
            self._organizations[organization.pk] = organization
        entity = self._entities.get(customer.billing_entity_id)
        if entity is None:
            entity = BillingEntity.objects.get(pk=customer.billing_entity_id)
            self._entities[entity.pk] = entity
        customer.organization = organization
        customer.billing_entity = entity

    def attach_plans(self, subscriptions: Iterable[Subscription]) -> None:
        """Sets each subscription's plan to the cached one (reading the missing plans at once)."""
        subscriptions = list(subscriptions)
        missing = {s.plan_id for s in subscriptions if s.plan_id not in self._plans}
        if missing:
            self._plans.update(
                (plan.pk, plan) for plan in _plans_for_billing().filter(pk__in=missing)
            )
        for subscription in subscriptions:
            subscription.plan = self._plans[subscription.plan_id]

    def charges(self, subscription: Subscription) -> list[Charge]:
        """The live charges of the subscription's plan (`metering.usage.plan_charges`)."""
        if subscription.plan_id not in self._charges:
            from metering.usage import plan_charges

            self._charges[subscription.plan_id] = plan_charges(subscription)
        return self._charges[subscription.plan_id]

    def entity_taxes(self, billing_entity: BillingEntity) -> list[Tax]:
        """The billing entity's default taxes (level 8 of spec §14.1)."""
        if billing_entity.pk not in self._entity_taxes:
            self._entity_taxes[billing_entity.pk] = billing_entity_taxes(
                billing_entity=billing_entity
            )
        return self._entity_taxes[billing_entity.pk]
