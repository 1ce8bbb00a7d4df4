"""A subscription's entitlements: its plan's, merged with its own overrides.

Effective list = the plan's features (a plan made by `plan_overrides` shows its parent's) and
the features the subscription added, less the plan's features it removed; each privilege's
value is the subscription's override, else the plan's. Deleted features and privileges
(`plans.services.entitlements`) drop out of every subscription at once: they are read as gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from billing.actors import Actor
from billing.errors import Invalid, NotFound
from customers.locks import lock_subscriptions
from customers.models import Subscription, SubscriptionEntitlement, SubscriptionEntitlementValue
from customers.services.subscription_transitions import record_event
from plans.models import Feature, PlanEntitlement, PlanEntitlementValue, Privilege
from plans.services.entitlements import cast_value, clean_value


@dataclass
class EffectivePrivilege:
    privilege: Privilege
    plan_value: str | None = None
    override_value: str | None = None

    def payload(self) -> dict:
        kind = self.privilege.value_type
        value = self.override_value if self.override_value is not None else self.plan_value
        return {
            "code": self.privilege.code,
            "name": self.privilege.name or None,
            "value_type": kind,
            "value": cast_value(value, kind),
            "plan_value": cast_value(self.plan_value, kind),
            "override_value": cast_value(self.override_value, kind),
            "config": self.privilege.config or {},
        }


@dataclass
class EffectiveEntitlement:
    feature: Feature
    privileges: dict[int | str, EffectivePrivilege] = field(default_factory=dict)

    def payload(self) -> dict:
        """Lago `V1::Entitlement::SubscriptionEntitlementSerializer`."""
        privileges = [p.payload() for p in self.privileges.values()]
        return {
            "code": self.feature.code,
            "name": self.feature.name or None,
            "description": self.feature.description or None,
            "privileges": privileges,
            "overrides": {
                p["code"]: p["override_value"]
                for p in privileges
                if p["override_value"] is not None
            },
        }


def _entitled_plan_id(subscription: Subscription) -> object:
    plan = subscription.plan
    if plan.parent_id and not PlanEntitlement.objects.filter(plan=plan).exists():
        return plan.parent_id  # a plan made by plan_overrides: its parent's entitlements
    return plan.pk


def subscription_entitlement_list(*, subscription: Subscription) -> list[EffectiveEntitlement]:
    effective: dict[object, EffectiveEntitlement] = {}
    plan_values = (
        PlanEntitlementValue.objects.filter(
            entitlement__plan_id=_entitled_plan_id(subscription),
            entitlement__feature__deleted_at__isnull=True,
            privilege__deleted_at__isnull=True,
        )
        .select_related("entitlement__feature", "privilege")
        .order_by("entitlement__created_at", "entitlement_id", "created_at", "id")
    )
    for entitlement in (
        PlanEntitlement.objects.filter(
            plan_id=_entitled_plan_id(subscription), feature__deleted_at__isnull=True
        )
        .select_related("feature")
        .order_by("created_at", "id")
    ):
        effective[entitlement.feature_id] = EffectiveEntitlement(entitlement.feature)
    for value in plan_values:
        row = effective[value.entitlement.feature_id]
        row.privileges[value.privilege_id] = EffectivePrivilege(value.privilege, value.value)
    overrides = (
        SubscriptionEntitlement.objects.filter(
            subscription=subscription, feature__deleted_at__isnull=True
        )
        .select_related("feature")
        .prefetch_related("values__privilege")
        .order_by("created_at", "id")
    )
    for override in overrides:
        if override.removed:
            effective.pop(override.feature_id, None)
            continue
        row = effective.setdefault(override.feature_id, EffectiveEntitlement(override.feature))
        for value in override.values.all():
            if value.privilege.deleted_at is not None:
                continue
            privilege = row.privileges.setdefault(
                value.privilege_id, EffectivePrivilege(value.privilege)
            )
            privilege.override_value = value.value
    return list(effective.values())


def subscription_entitlement_values(subscription: Subscription) -> dict | None:
    """`{feature_code: {privilege_code: value}}` in effect for a subscription (its overrides
    over its plan's values), as its activity compares them."""
    return {
        row.feature.code: {
            privilege.privilege.code: (
                privilege.override_value
                if privilege.override_value is not None
                else privilege.plan_value
            )
            for privilege in row.privileges.values()
        }
        for row in subscription_entitlement_list(subscription=subscription)
    } or None


def _record_subscription_entitlements(
    subscription: Subscription, before: dict | None, actor: Actor
) -> list[EffectiveEntitlement]:
    """Webhook and activity `subscription.updated` (Lago logs a subscription's entitlements
    through it), the entitlements before and after among the changed fields; the effective
    entitlements back."""
    after = subscription_entitlement_list(subscription=subscription)
    record_event(
        subscription,
        "subscription.updated",
        actor=actor,
        changes={"entitlements": [before, subscription_entitlement_values(subscription)]},
    )
    return after


@transaction.atomic
def subscription_entitlements_update(
    *, subscription: Subscription, entitlements: object, actor: Actor, now: datetime
) -> list[EffectiveEntitlement]:
    """Overrides `{feature_code: {privilege_code: value}}` for this subscription only (merge):
    a removed plan feature comes back, a feature the plan lacks is added. Values are checked
    against their privilege's type; all or nothing."""
    if entitlements is None:
        entitlements = {}
    if not isinstance(entitlements, dict) or not all(
        isinstance(v, dict) or v is None for v in entitlements.values()
    ):
        raise Invalid({"entitlements": ["value_is_invalid"]})
    lock_subscriptions([subscription.pk])  # one update of its overrides at a time
    before = subscription_entitlement_values(subscription)
    features = {
        f.code: f
        for f in Feature.objects.alive().filter(
            organization_id=subscription.organization_id, code__in=list(entitlements)
        )
    }
    if set(entitlements) - set(features):
        raise NotFound("feature")
    for code, values in entitlements.items():
        feature = features[code]
        values = values or {}
        privileges = {p.code: p for p in feature.privileges.alive()}
        if set(values) - set(privileges):
            raise NotFound("privilege")
        override, _ = SubscriptionEntitlement.objects.update_or_create(
            subscription=subscription,
            feature=feature,
            defaults={"organization_id": subscription.organization_id, "removed": False},
        )
        for privilege_code, raw in values.items():
            privilege = privileges[privilege_code]
            SubscriptionEntitlementValue.objects.update_or_create(
                entitlement=override,
                privilege=privilege,
                defaults={
                    "organization_id": subscription.organization_id,
                    "value": clean_value(raw, privilege),
                },
            )
    return _record_subscription_entitlements(subscription, before, actor)


@transaction.atomic
def subscription_entitlement_remove(
    *, subscription: Subscription, feature_code: str, actor: Actor, now: datetime
) -> list[EffectiveEntitlement]:
    """Takes a feature away from this subscription: its overrides go, and a feature of the
    plan is marked removed for this subscription only."""
    lock_subscriptions([subscription.pk])
    before = subscription_entitlement_values(subscription)
    current = {e.feature.code: e for e in subscription_entitlement_list(subscription=subscription)}
    if feature_code not in current:
        raise NotFound("feature")
    feature = current[feature_code].feature
    in_plan = PlanEntitlement.objects.filter(
        plan_id=_entitled_plan_id(subscription), feature=feature
    ).exists()
    SubscriptionEntitlement.objects.filter(subscription=subscription, feature=feature).delete()
    if in_plan:
        SubscriptionEntitlement.objects.create(
            organization_id=subscription.organization_id,
            subscription=subscription,
            feature=feature,
            removed=True,
        )
    return _record_subscription_entitlements(subscription, before, actor)


@transaction.atomic
def subscription_entitlement_privilege_remove(
    *, subscription: Subscription, feature_code: str, privilege_code: str, actor: Actor
) -> list[EffectiveEntitlement]:
    """Drops this subscription's override of one privilege: the plan's value (if any) applies
    again. 404 `entitlement` when the subscription overrides nothing of the feature, 404
    `privilege` when it does not override that privilege."""
    lock_subscriptions([subscription.pk])
    before = subscription_entitlement_values(subscription)
    override = SubscriptionEntitlement.objects.filter(
        subscription=subscription,
        feature__code=feature_code,
        feature__deleted_at__isnull=True,
        removed=False,
    ).first()
    if override is None:
        raise NotFound("entitlement")
    value = override.values.filter(
        privilege__code=privilege_code, privilege__deleted_at__isnull=True
    ).first()
    if value is None:
        raise NotFound("privilege")
    value.delete()
    return _record_subscription_entitlements(subscription, before, actor)


@transaction.atomic
def subscription_entitlements_replace(
    *, subscription: Subscription, entitlements: object, actor: Actor, now: datetime
) -> list[EffectiveEntitlement]:
    """The subscription's entitlements become `{feature_code: {privilege_code: override}}`:
    each listed feature is entitled (a feature the plan lacks is added) with these values
    overriding the plan's (a privilege left out keeps the plan's value); a plan feature left
    out is removed for this subscription. Values checked against their type; all or nothing."""
    if not isinstance(entitlements, dict) or not all(
        isinstance(v, dict) for v in entitlements.values()
    ):
        raise Invalid({"entitlements": ["value_is_invalid"]})
    lock_subscriptions([subscription.pk])
    before = subscription_entitlement_values(subscription)
    features = {
        f.code: f
        for f in Feature.objects.alive().filter(
            organization_id=subscription.organization_id, code__in=list(entitlements)
        )
    }
    if set(entitlements) - set(features):
        raise NotFound("feature")
    rows: list[tuple[Feature, list[tuple[Privilege, str]]]] = []
    for code, values in entitlements.items():
        privileges = {p.code: p for p in features[code].privileges.alive()}
        if set(values) - set(privileges):
            raise NotFound("privilege")
        rows.append(
            (
                features[code],
                [(privileges[p], clean_value(raw, privileges[p])) for p, raw in values.items()],
            )
        )
    plan_features = set(
        PlanEntitlement.objects.filter(
            plan_id=_entitled_plan_id(subscription), feature__deleted_at__isnull=True
        ).values_list("feature_id", flat=True)
    )
    SubscriptionEntitlement.objects.filter(subscription=subscription).delete()
    wanted = {feature.pk for feature, _ in rows}
    for feature_id in plan_features - wanted:
        SubscriptionEntitlement.objects.create(
            organization_id=subscription.organization_id,
            subscription=subscription,
            feature_id=feature_id,
            removed=True,
        )
    for feature, values in rows:
        if feature.pk in plan_features and not values:
            continue  # the plan's entitlement as it is
        override = SubscriptionEntitlement.objects.create(
            organization_id=subscription.organization_id, subscription=subscription, feature=feature
        )
        SubscriptionEntitlementValue.objects.bulk_create(
            SubscriptionEntitlementValue(
                organization_id=subscription.organization_id,
                entitlement=override,
                privilege=privilege,
                value=value,
            )
            for privilege, value in values
        )
    return _record_subscription_entitlements(subscription, before, actor)
