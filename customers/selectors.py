"""Reads of customers and applied coupons, scoped by organization (spec §3, §15.2)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from billing.errors import NotFound
from billing.models import Organization
from plans.models import Coupon, UsageThreshold

from .models import Customer, Subscription

# Relations that give a customer its currency once they exist (spec §3.1 currency rule), by
# reverse accessor: `wallets` and `invoices` are declared by apps to the right of this one, so
# they are looked up by name and count as soon as those apps add them.
CURRENCY_BEARING_RELATIONS = ("subscriptions", "wallets", "invoices")


def customer_list(*, organization: Organization) -> QuerySet[Customer]:
    """Alive customers of the organization, newest first, ready to be rendered."""
    return (
        Customer.objects.for_organization(organization)
        .alive()
        .select_related("billing_entity", "organization")
        .prefetch_related("metadata", "taxes")
        .order_by("-created_at", "-id")
    )


def customer_get(*, organization: Organization, external_id: str) -> Customer:
    """The alive customer with this external id, else 404 `customer_not_found`."""
    customer = customer_list(organization=organization).filter(external_id=external_id).first()
    if customer is None:
        raise NotFound("customer")
    return customer


def customer_get_for_usage(*, organization: Organization, external_id: str) -> Customer:
    """`customer_get` with what usage reads only (billing entity, taxes), not the metadata
    the customer's own representation shows: one query fewer on the usage endpoints."""
    customer = (
        Customer.objects.for_organization(organization)
        .alive()
        .select_related("billing_entity", "organization")
        .prefetch_related("taxes")
        .filter(external_id=external_id)
        .first()
    )
    if customer is None:
        raise NotFound("customer")
    return customer


def customer_is_editable(*, customer: Customer) -> bool:
    """False once objects carrying a currency are attached (Lago `Customer#editable?`)."""
    if customer.pk is None or customer._state.adding:
        return True
    if customer.applied_coupons.exclude(amount_currency="").exists():  # fixed-amount coupons
        return False
    for accessor in CURRENCY_BEARING_RELATIONS:
        related = getattr(customer, accessor, None)
        if related is not None and related.exists():
            return False
    return True


def coupon_applicable_list(*, organization: Organization, now: datetime) -> QuerySet[Coupon]:
    """Coupons that can still be applied: active, not deleted, not past `expiration_at`."""
    return (
        Coupon.objects.for_organization(organization)
        .alive()
        .filter(status=Coupon.Status.ACTIVE)
        .filter(Q(expiration_at__isnull=True) | Q(expiration_at__gt=now))
        .order_by("name", "code")
    )


def customer_subscription_list(*, customer: Customer) -> QuerySet[Subscription]:
    """Every subscription of a customer (any status), newest first, with its plan."""
    return customer.subscriptions.select_related("plan").order_by("-created_at", "-id")


@dataclass(frozen=True)
class EffectiveSetting:
    """One invoicing setting as it applies to a customer, and where the value comes from."""

    label: str
    value: object
    source: str  # "customer", "billing entity", "organization" or "default"


def customer_effective_settings(*, customer: Customer) -> list[EffectiveSetting]:
    """Customer overrides, else the billing entity's values (spec §2.4 override order)."""
    entity = customer.billing_entity
    config = customer.billing_configuration or {}

    def pick(label: str, own: object, inherited: object) -> EffectiveSetting:
        if own not in (None, ""):
            return EffectiveSetting(label, own, "customer")
        return EffectiveSetting(label, inherited, "billing entity")

    if customer.timezone:
        timezone = EffectiveSetting("Timezone", customer.timezone, "customer")
    elif entity.timezone:
        timezone = EffectiveSetting("Timezone", entity.timezone, "billing entity")
    elif customer.organization.timezone:
        timezone = EffectiveSetting("Timezone", customer.organization.timezone, "organization")
    else:
        timezone = EffectiveSetting("Timezone", "UTC", "default")
    zero_amount = (
        EffectiveSetting(
            "Zero-amount invoices",
            "finalize" if entity.finalize_zero_amount_invoice else "skip",
            "billing entity",
        )
        if customer.finalize_zero_amount_invoice == Customer.ZeroAmountInvoice.INHERIT
        else EffectiveSetting(
            "Zero-amount invoices", customer.finalize_zero_amount_invoice, "customer"
        )
    )
    return [
        timezone,
        pick("Document locale", customer.document_locale, entity.document_locale),
        pick("Net payment term (days)", customer.net_payment_term, entity.net_payment_term),
        pick(
            "Invoice grace period (days)",
            customer.invoice_grace_period,
            entity.invoice_grace_period,
        ),
        zero_amount,
        pick(
            "Issuing date anchor",
            config.get("subscription_invoice_issuing_date_anchor"),
            entity.subscription_invoice_issuing_date_anchor,
        ),
        pick(
            "Issuing date adjustment",
            config.get("subscription_invoice_issuing_date_adjustment"),
            entity.subscription_invoice_issuing_date_adjustment,
        ),
    ]


def applicable_usage_thresholds(*, subscription: Subscription) -> list[UsageThreshold]:
    """The progressive billing thresholds of a subscription (spec §21.1): none when disabled
    on it; else its plan's (an overridden plan carries the subscription's own), else, for an
    overridden plan without any, the parent plan's. One-time ones by amount, then the
    recurring one."""
    if subscription.progressive_billing_disabled:
        return []
    plan = subscription.plan
    for plan_id in (plan.pk, plan.parent_id):
        if plan_id is None:
            continue
        rows = list(
            UsageThreshold.objects.alive()
            .filter(plan_id=plan_id)
            .order_by("recurring", "amount_cents")
        )
        if rows:
            return rows
    return []


def applicable_usage_thresholds_many(
    *, subscriptions: Iterable[Subscription]
) -> dict[object, list[UsageThreshold]]:
    """`applicable_usage_thresholds` of many subscriptions (their plans loaded) in one query,
    by subscription id."""
    subscriptions = list(subscriptions)
    plan_ids = {s.plan_id for s in subscriptions} | {
        s.plan.parent_id for s in subscriptions if s.plan.parent_id is not None
    }
    by_plan: dict[object, list[UsageThreshold]] = {}
    for threshold in (
        UsageThreshold.objects.alive()
        .filter(plan_id__in=plan_ids)
        .order_by("recurring", "amount_cents")
    ):
        by_plan.setdefault(threshold.plan_id, []).append(threshold)
    return {
        s.pk: []
        if s.progressive_billing_disabled
        else by_plan.get(s.plan_id) or by_plan.get(s.plan.parent_id) or []
        for s in subscriptions
    }
