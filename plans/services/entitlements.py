"""Entitlements: features with typed privileges, and the values plans give them.

Not billed: access control the application reads back. A feature's privileges are typed
(`integer`, `boolean`, `string`, `select` with its `select_options`); a plan's entitlements map
feature codes to `{privilege_code: value}`, each value checked against its privilege's type.
Deleting a feature or a privilege removes it from every plan. Features record `feature.created`,
`feature.updated` and `feature.deleted` (Lago's webhooks).
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from billing.actors import Actor
from billing.errors import Invalid, NotFound
from billing.models import Organization
from billing.outbox import emit
from plans.locks import lock_feature, lock_plan
from plans.models import Feature, Plan, PlanEntitlement, PlanEntitlementValue, Privilege

ValueType = Privilege.ValueType


# --------------------------------------------------------------------------------------------
# Values (pure)


def cast_value(value: str | None, value_type: str) -> object:
    """A stored value as the API renders it: integers as numbers, booleans as booleans."""
    if value is None:
        return None
    if value_type == ValueType.INTEGER:
        try:
            return int(value)
        except ValueError:
            return value
    if value_type == ValueType.BOOLEAN:
        return value == "true"
    return value


def clean_value(value: object, privilege: Privilege) -> str:
    """The value to store for a privilege, or `Invalid` keyed `<code>_privilege_value`."""
    key = f"{privilege.code}_privilege_value"
    if privilege.value_type == ValueType.SELECT:
        if isinstance(value, str) and value in privilege.config.get("select_options", []):
            return value
        raise Invalid({key: ["value_not_in_select_options"]})
    if privilege.value_type == ValueType.BOOLEAN and value in (True, False, "true", "false"):
        return str(value).lower()
    if privilege.value_type == ValueType.INTEGER:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, str) and value.lstrip("-").isdigit() and str(int(value)) == value:
            return value
    if privilege.value_type == ValueType.STRING and isinstance(value, str) and "\x00" not in value:
        return value
    raise Invalid({key: ["value_is_invalid"]})


# --------------------------------------------------------------------------------------------
# Payloads (the outbox events)


def feature_payload(feature: Feature) -> dict:
    """Lago `V1::Entitlement::FeatureSerializer`."""
    return {
        "code": feature.code,
        "name": feature.name or None,
        "description": feature.description or None,
        "privileges": [
            {
                "code": p.code,
                "name": p.name or None,
                "value_type": p.value_type,
                "config": p.config or {},
            }
            for p in feature.privileges.alive().order_by("created_at", "id")
        ],
        "created_at": feature.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _record(feature: Feature, event_type: str, actor: Actor) -> None:
    emit(event_type=event_type, actor=actor, obj=feature, payload=feature_payload(feature))


# --------------------------------------------------------------------------------------------
# Features


def _text(values: dict, name: str, limit: int, *, required: bool = False) -> str | None:
    raw = values.get(name)
    if raw is None or raw == "":
        if required:
            raise Invalid({name: ["value_is_mandatory"]})
        return None if raw is None else ""
    if not isinstance(raw, str) or "\x00" in raw:
        raise Invalid({name: ["value_is_invalid"]})
    if len(raw) > limit:
        raise Invalid({name: ["value_is_too_long"]})
    return raw.strip() if name == "code" else raw


def _clean_privileges(raw: object) -> list[dict]:
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise Invalid({"privileges": ["value_is_invalid"]})
    codes = [item.get("code").strip() for item in raw if isinstance(item.get("code"), str)]
    if len(codes) != len(set(codes)):
        raise Invalid({"privilege.code": ["value_is_duplicated"]})
    cleaned = []
    for item in raw:
        code = item.get("code")
        if not isinstance(code, str) or not code.strip():
            raise Invalid({"privilege.code": ["value_is_mandatory"]})
        if len(code) > 255 or "\x00" in code:
            raise Invalid({"privilege.code": ["value_is_too_long"]})
        name = item.get("name")
        if name is not None and (not isinstance(name, str) or len(name) > 255):
            raise Invalid({"privilege.name": ["value_is_invalid"]})
        privilege = {"code": code.strip(), "name": name}
        if "value_type" in item:
            if item["value_type"] not in ValueType.values:
                raise Invalid({"privilege.value_type": ["value_is_invalid"]})
            privilege["value_type"] = item["value_type"]
        if "config" in item:
            privilege["config"] = item["config"]
        cleaned.append(privilege)
    return cleaned


def _check_config(value_type: str, config: object) -> dict:
    """`select` needs `{"select_options": [text, ...]}` (not empty); the others no config."""
    if value_type == ValueType.SELECT:
        options = config.get("select_options") if isinstance(config, dict) else None
        if (
            isinstance(config, dict)
            and list(config) == ["select_options"]
            and isinstance(options, list)
            and options
            and all(isinstance(option, str) for option in options)
        ):
            return {"select_options": options}
        raise Invalid({"privilege.config": ["invalid_format"]})
    if config:
        raise Invalid({"privilege.config": ["invalid_format"]})
    return {}


def _create_privilege(feature: Feature, values: dict) -> Privilege:
    value_type = values.get("value_type") or ValueType.STRING
    return Privilege.objects.create(
        organization_id=feature.organization_id,
        feature=feature,
        code=values["code"],
        name=values.get("name") or "",
        value_type=value_type,
        config=_check_config(value_type, values.get("config")),
    )


@transaction.atomic
def feature_create(
    *, organization: Organization, values: dict, actor: Actor, now: datetime
) -> Feature:
    """A new feature and its privileges; records `feature.created`."""
    code = _text(values, "code", 255, required=True)
    name = _text(values, "name", 255) or ""
    description = _text(values, "description", 600) or ""
    privileges = _clean_privileges(values.get("privileges"))
    try:
        with transaction.atomic():
            feature = Feature.objects.create(
                organization=organization, code=code, name=name, description=description
            )
    except IntegrityError:
        raise Invalid({"code": ["value_already_exist"]}) from None
    for privilege in privileges:
        _create_privilege(feature, privilege)
    _record(feature, "feature.created", actor)
    return feature


@transaction.atomic
def feature_update(*, feature: Feature, values: dict, actor: Actor, now: datetime) -> Feature:
    """Name, description and privileges: listed ones are created or renamed (a select's options
    grow by the new ones), unlisted ones removed with their values when `privileges` is given;
    records `feature.updated`."""
    feature = lock_feature(feature.pk)
    if "name" in values:
        feature.name = _text(values, "name", 255) or ""
    if "description" in values:
        feature.description = _text(values, "description", 600) or ""
    feature.save()
    if values.get("privileges") is not None:
        privileges = _clean_privileges(values["privileges"])
        existing = {p.code: p for p in feature.privileges.alive()}
        for code in set(existing) - {p["code"] for p in privileges}:
            _delete_privilege(existing[code], now=now)
        for item in privileges:
            privilege = existing.get(item["code"])
            if privilege is None:
                _create_privilege(feature, item)
                continue
            if item.get("name") is not None:
                privilege.name = item["name"]
            options = (item.get("config") or {}).get("select_options")
            if privilege.value_type == ValueType.SELECT and isinstance(options, list):
                current = privilege.config.get("select_options", [])
                privilege.config = {
                    "select_options": current + [o for o in options if o not in current]
                }
            privilege.save()
    _record(feature, "feature.updated", actor)
    return feature


def _delete_privilege(privilege: Privilege, *, now: datetime) -> None:
    PlanEntitlementValue.objects.filter(privilege=privilege).delete()
    privilege.deleted_at = now
    privilege.save(update_fields=["deleted_at", "updated_at"])


@transaction.atomic
def feature_delete(*, feature: Feature, actor: Actor, now: datetime) -> Feature:
    """Removes the feature from every plan, then deletes it and its privileges (soft);
    records `feature.deleted`."""
    feature = lock_feature(feature.pk)
    payload = feature_payload(feature)
    PlanEntitlement.objects.filter(feature=feature).delete()  # their values cascade
    feature.privileges.alive().update(deleted_at=now)
    feature.deleted_at = now
    feature.save(update_fields=["deleted_at", "updated_at"])
    emit(event_type="feature.deleted", actor=actor, obj=feature, payload=payload)
    return feature


@transaction.atomic
def privilege_delete(*, feature: Feature, code: str, actor: Actor, now: datetime) -> Feature:
    """Removes one privilege from the feature and from every plan; records `feature.updated`."""
    privilege = feature.privileges.alive().filter(code=code).first()
    if privilege is None:
        raise NotFound("privilege")
    _delete_privilege(privilege, now=now)
    _record(feature, "feature.updated", actor)
    return feature


# --------------------------------------------------------------------------------------------
# Plan entitlements


def plan_entitlement_values(plan: Plan) -> dict | None:
    """`{feature_code: {privilege_code: value}}` of a plan, as its activity compares them."""
    return {
        entitlement.feature.code: {
            value.privilege.code: value.value
            for value in entitlement.values.all()
            if value.privilege.deleted_at is None
        }
        for entitlement in plan_entitlement_list(plan=plan)
    } or None


def _record_plan_entitlements(plan: Plan, before: dict | None, actor: Actor) -> None:
    """Webhook and activity `plan.updated` (Lago logs entitlements through their plan), the
    entitlements before and after among the changed fields."""
    emit(
        event_type="plan.updated",
        actor=actor,
        obj=plan,
        payload={"lago_id": str(plan.pk), "code": plan.code},
        changes={"entitlements": [before, plan_entitlement_values(plan)]},
    )


@transaction.atomic
def plan_entitlements_update(
    *, plan: Plan, entitlements: object, partial: bool, actor: Actor, now: datetime
) -> list[PlanEntitlement]:
    """`{feature_code: {privilege_code: value}}` onto the plan: without `partial`, features and
    privileges left out are removed (replace); with it, only what is given changes (merge).
    Every value is checked against its privilege's type; all or nothing."""
    if entitlements is None:
        entitlements = {}
    if not isinstance(entitlements, dict) or not all(
        isinstance(v, dict) or v is None for v in entitlements.values()
    ):
        raise Invalid({"entitlements": ["value_is_invalid"]})
    lock_plan(plan.pk)  # one update of a plan's entitlements at a time
    before = plan_entitlement_values(plan)
    features = {
        f.code: f
        for f in Feature.objects.alive().filter(
            organization_id=plan.organization_id, code__in=list(entitlements)
        )
    }
    if set(entitlements) - set(features):
        raise NotFound("feature")
    if not partial:
        PlanEntitlement.objects.filter(plan=plan).exclude(
            feature__code__in=list(entitlements)
        ).delete()
    for code, privilege_values in entitlements.items():
        feature = features[code]
        privilege_values = privilege_values or {}
        privileges = {p.code: p for p in feature.privileges.alive()}
        if set(privilege_values) - set(privileges):
            raise NotFound("privilege")
        entitlement, _ = PlanEntitlement.objects.get_or_create(
            plan=plan, feature=feature, defaults={"organization_id": plan.organization_id}
        )
        if not partial:
            entitlement.values.exclude(privilege__code__in=list(privilege_values)).delete()
        for privilege_code, raw in privilege_values.items():
            privilege = privileges[privilege_code]
            PlanEntitlementValue.objects.update_or_create(
                entitlement=entitlement,
                privilege=privilege,
                defaults={
                    "organization_id": plan.organization_id,
                    "value": clean_value(raw, privilege),
                },
            )
    _record_plan_entitlements(plan, before, actor)
    return plan_entitlement_list(plan=plan)


def plan_entitlement_list(*, plan: Plan) -> list[PlanEntitlement]:
    return list(
        PlanEntitlement.objects.filter(plan=plan, feature__deleted_at__isnull=True)
        .select_related("feature")
        .prefetch_related("values__privilege")
        .order_by("created_at", "id")
    )


def plan_entitlement_get(*, plan: Plan, feature_code: str) -> PlanEntitlement:
    for entitlement in plan_entitlement_list(plan=plan):
        if entitlement.feature.code == feature_code:
            return entitlement
    raise NotFound("entitlement")


@transaction.atomic
def plan_entitlement_delete(*, plan: Plan, feature_code: str, actor: Actor) -> PlanEntitlement:
    lock_plan(plan.pk)
    before = plan_entitlement_values(plan)
    entitlement = plan_entitlement_get(plan=plan, feature_code=feature_code)
    entitlement.values_snapshot = list(entitlement.values.all())  # for the response
    PlanEntitlement.objects.filter(pk=entitlement.pk).delete()
    _record_plan_entitlements(plan, before, actor)
    return entitlement


@transaction.atomic
def plan_entitlement_privilege_remove(
    *, plan: Plan, feature_code: str, privilege_code: str, actor: Actor
) -> PlanEntitlement:
    """Takes one privilege's value out of the plan's entitlement to a feature (the feature stays
    entitled); 404 `entitlement` or `privilege` when the plan has no such value."""
    lock_plan(plan.pk)
    before = plan_entitlement_values(plan)
    entitlement = plan_entitlement_get(plan=plan, feature_code=feature_code)
    value = entitlement.values.filter(
        privilege__code=privilege_code, privilege__deleted_at__isnull=True
    ).first()
    if value is None:
        raise NotFound("privilege")
    value.delete()
    _record_plan_entitlements(plan, before, actor)
    return plan_entitlement_get(plan=plan, feature_code=feature_code)


def plan_entitlement_payload(entitlement: PlanEntitlement, values: list | None = None) -> dict:
    """Lago `V1::Entitlement::PlanEntitlementSerializer`."""
    feature = entitlement.feature
    values = values if values is not None else list(entitlement.values.all())
    return {
        "code": feature.code,
        "name": feature.name or None,
        "description": feature.description or None,
        "privileges": [
            {
                "code": v.privilege.code,
                "name": v.privilege.name or None,
                "value_type": v.privilege.value_type,
                "value": cast_value(v.value, v.privilege.value_type),
                "config": v.privilege.config or {},
            }
            for v in sorted(values, key=lambda v: (v.created_at, v.pk))
            if v.privilege.deleted_at is None
        ],
    }
