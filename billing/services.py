"""Writes of the tenancy core: organizations, billing entities, API keys, memberships."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from billing.activity import record_activity
from billing.actors import SYSTEM, Actor
from billing.errors import Invalid, NotAllowed
from billing.locks import (
    lock_api_key,
    lock_billing_entity,
    lock_membership,
    lock_organization,
    lock_other_usable_api_keys,
)
from billing.models import (
    ActivityLog,
    ApiKey,
    ApiRequestLog,
    BillingEntity,
    DocumentLocale,
    Membership,
    Organization,
    Role,
    hash_api_key,
)
from billing.money import CURRENCIES

# Fields a billing entity and its organization share (spec §2.1: org fields mirror the default BE).
SHARED_SETTINGS = (
    "name", "default_currency", "timezone", "document_locale", "country", "address_line1",
    "address_line2", "city", "state", "zipcode", "email", "legal_name", "legal_number",
    "tax_identification_number", "net_payment_term", "invoice_grace_period", "invoice_footer",
    "document_number_prefix", "finalize_zero_amount_invoice", "email_settings",
)  # fmt: skip
EMAIL_SETTINGS = {"invoice.finalized", "credit_note.created", "payment_receipt.created"}
ANONYMOUS_API_LOG_RETENTION = timedelta(days=30)
ROTATION_DELAYS = {"now": 0, "1h": 1, "24h": 24, "48h": 48, "7d": 168}  # spec §1.5, hours


def validate_settings(values: dict) -> dict[str, list[str]]:
    """Lago's codes for the shared billing settings; empty when valid."""
    errors: dict[str, list[str]] = {}
    if "default_currency" in values and values["default_currency"] not in CURRENCIES:
        errors["default_currency"] = ["value_is_invalid"]
    if "timezone" in values:
        try:
            ZoneInfo(values["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = ["invalid_timezone"]
    if "document_locale" in values and values["document_locale"] not in DocumentLocale.values:
        errors["document_locale"] = ["invalid_value"]
    prefix = values.get("document_number_prefix")
    if prefix is not None and not 1 <= len(prefix) <= 10:
        errors["document_number_prefix"] = ["value_is_invalid"]
    for field in ("net_payment_term", "invoice_grace_period"):
        if field in values and (values[field] is None or int(values[field]) < 0):
            errors[field] = ["value_is_invalid"]
    if "email_settings" in values and not set(values["email_settings"] or []) <= EMAIL_SETTINGS:
        errors["email_settings"] = ["invalid_email_settings"]
    return errors


def _default_prefix(name: str, lago_id: str) -> str:
    # spec §2.2: first 3 letters of the name + "-" + last 4 chars of the id, upper-cased
    letters = "".join(ch for ch in name if ch.isalnum())[:3] or "INV"
    return f"{letters}-{lago_id.replace('-', '')[-4:]}".upper()


def _assign(obj: object, values: dict, fields: tuple[str, ...]) -> list[str]:
    changed = []
    for field in fields:
        if field in values and values[field] is not None:
            value = values[field]
            if field == "document_number_prefix":
                value = value.upper()
            setattr(obj, field, value)
            changed.append(field)
    return changed


@transaction.atomic
def organization_create(*, name: str, **values: object) -> Organization:
    """A tenant with its default billing entity (spec §2.2: an org has at least one)."""
    errors = validate_settings(values)
    if Organization.objects.filter(name=name).exists():
        errors["name"] = ["value_already_exist"]
    if errors:
        raise Invalid(errors)
    organization = Organization(name=name, webhook_secret=secrets.token_hex(32))
    _assign(organization, values, SHARED_SETTINGS)
    if not organization.document_number_prefix:
        organization.document_number_prefix = _default_prefix(name, str(organization.id))
    organization.save()
    billing_entity_create(
        organization=organization,
        code=str(values.get("billing_entity_code") or "default"),
        is_default=True,
        **{f: getattr(organization, f) for f in SHARED_SETTINGS},
    )
    return organization


@transaction.atomic
def organization_update(
    *, organization: Organization, values: dict, actor: Actor | None = None
) -> Organization:
    """PUT /organizations: updates the organization and mirrors it on its default entity; an
    `actor` logs the change in the activity log."""
    errors = validate_settings(values)
    numbering = values.get("document_numbering")
    if numbering is not None and numbering not in Organization.DocumentNumbering.values:
        errors["document_numbering"] = ["value_is_invalid"]
    if errors:
        raise Invalid(errors)
    organization = lock_organization(organization.pk)
    changed = _assign(
        organization, values, (*SHARED_SETTINGS, "document_numbering", "issue_receipts")
    )
    if changed:
        organization.save(update_fields=[*changed, "updated_at"])
    entity = organization.default_billing_entity()
    if entity is not None:
        mirrored = {f: values[f] for f in SHARED_SETTINGS if f in values and f != "name"}
        if numbering is not None:
            mirrored["document_numbering"] = (
                "per_billing_entity" if numbering == "per_organization" else numbering
            )
        billing_entity_update(billing_entity=entity, values=mirrored)
    if actor is not None:
        record_activity(activity_type="organization.updated", actor=actor, obj=organization)
    return organization


@transaction.atomic
def billing_entity_create(
    *,
    organization: Organization,
    code: str,
    is_default: bool | None = None,
    **values: object,
) -> BillingEntity:
    """A legal issuer of invoices; the first one of an organization is the default.

    Its default taxes belong to the catalog (`plans.services.taxes`)."""
    errors = validate_settings(values)
    if not code:
        errors["code"] = ["value_is_mandatory"]
    if not values.get("name"):
        errors["name"] = ["value_is_mandatory"]
    _validate_entity_choices(values, errors)
    if BillingEntity.objects.filter(organization=organization, code=code).exists():
        errors["code"] = ["value_already_exist"]
    if errors:
        raise Invalid(errors)
    if is_default is None:
        is_default = not organization.billing_entities.exists()
    entity = BillingEntity(organization=organization, code=code, is_default=is_default)
    for field in ("default_currency", "timezone", "document_locale"):
        setattr(entity, field, getattr(organization, field))
    _assign(entity, values, (*SHARED_SETTINGS, *_ENTITY_ONLY))
    if not entity.document_number_prefix:
        entity.document_number_prefix = _default_prefix(entity.name, str(entity.id))
    try:
        with transaction.atomic():
            entity.save()
    except IntegrityError as exc:  # a concurrent create with the same code
        raise Invalid({"code": ["value_already_exist"]}) from exc
    return entity


def _validate_entity_choices(values: dict, errors: dict) -> None:
    """The billing-entity-only settings drawn from a fixed vocabulary."""
    for field, choices in (
        ("document_numbering", BillingEntity.DocumentNumbering.values),
        ("subscription_invoice_issuing_date_anchor", BillingEntity.IssuingDateAnchor.values),
        (
            "subscription_invoice_issuing_date_adjustment",
            BillingEntity.IssuingDateAdjustment.values,
        ),
    ):
        if values.get(field) is not None and values[field] not in choices:
            errors[field] = ["value_is_invalid"]


_ENTITY_ONLY = (
    "document_numbering", "subscription_invoice_issuing_date_anchor",
    "subscription_invoice_issuing_date_adjustment", "phone", "eu_tax_management",
)  # fmt: skip


@transaction.atomic
def billing_entity_update(*, billing_entity: BillingEntity, values: dict) -> BillingEntity:
    """The settings of PUT /billing_entities/{code}; the code is immutable (spec §2.2)."""
    errors = validate_settings(values)
    _validate_entity_choices(values, errors)
    if errors:
        raise Invalid(errors)
    entity = lock_billing_entity(billing_entity.pk)
    changed = _assign(entity, values, (*SHARED_SETTINGS, *_ENTITY_ONLY))
    if changed:
        entity.save(update_fields=[*changed, "updated_at"])
    return entity


@transaction.atomic
def api_key_create(
    *,
    organization: Organization,
    name: str = "",
    permissions: dict | None = None,
    actor: Actor = SYSTEM,
) -> tuple[ApiKey, str]:
    """A new key; the raw value is returned once and only its hash is stored (the activity
    log names the key by its prefix, never its value)."""
    raw = ApiKey.generate()
    api_key = ApiKey.objects.create(
        organization=organization,
        name=name,
        key_hash=hash_api_key(raw),
        prefix=raw[:9],
        permissions=permissions,
    )
    record_activity(activity_type="api_key.created", actor=actor, obj=api_key)
    return api_key, raw


@transaction.atomic
def api_key_rotate(
    *,
    api_key: ApiKey,
    now: datetime,
    expires_in: str = "now",
    name: str | None = None,
    actor: Actor = SYSTEM,
) -> tuple[ApiKey, str]:
    """A successor key; the old one stays valid until the chosen delay passes (spec §1.5)."""
    if expires_in not in ROTATION_DELAYS:
        raise Invalid({"expires_in": ["value_is_invalid"]})
    old = lock_api_key(api_key.pk)
    if old.revoked_at is not None or (old.expires_at is not None and old.expires_at <= now):
        raise NotAllowed("api_key_not_active")
    new, raw = api_key_create(
        organization=old.organization,
        name=old.name if name is None else name,
        permissions=old.permissions,
        actor=actor,
    )
    old.expires_at = now + timedelta(hours=ROTATION_DELAYS[expires_in])
    old.rotated_to = new
    old.save(update_fields=["expires_at", "rotated_to", "updated_at"])
    record_activity(activity_type="api_key.rotated", actor=actor, obj=old)
    return new, raw


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, now: datetime, actor: Actor = SYSTEM) -> ApiKey:
    """Revokes a key at once; the last usable key of an organization cannot go (spec §1.5).
    Logged as Lago logs a key's removal, `api_key.deleted`."""
    key = lock_api_key(api_key.pk)
    if not lock_other_usable_api_keys(key, now=now):
        raise NotAllowed("last_api_key")
    key.revoked_at = now
    key.save(update_fields=["revoked_at", "updated_at"])
    record_activity(activity_type="api_key.deleted", actor=actor, obj=key)
    return key


ROLE_GROUPS = {
    Role.ADMIN: "Organization admins",
    Role.MANAGER: "Organization managers",
    Role.FINANCE: "Finance",
}


@transaction.atomic
def membership_set(
    *, organization: Organization, user, role: str, actor: Actor = SYSTEM
) -> Membership:
    """Gives a staff user a role in an organization; the role's Django group follows. Logged
    as `membership.created`, or `membership.updated` when the role changed."""
    if role not in Role.values:
        raise Invalid({"role": ["value_is_invalid"]})
    membership = lock_membership(organization=organization, user=user)
    if membership is None:
        membership = Membership.objects.create(organization=organization, user=user, role=role)
        record_activity(activity_type="membership.created", actor=actor, obj=membership)
    elif membership.role != role:
        membership.role = role
        membership.save(update_fields=["role", "updated_at"])
        record_activity(activity_type="membership.updated", actor=actor, obj=membership)
    if not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    sync_user_groups(user)
    return membership


@transaction.atomic
def staff_user_create(
    *,
    organization: Organization,
    username: str,
    role: str,
    password: str,
    email: str = "",
    actor: Actor = SYSTEM,
) -> tuple[Membership, bool]:
    """A staff account with a role in an organization; an existing account keeps its password
    and gets the role. Returns the membership and whether the account was created."""
    if role not in Role.values:
        raise Invalid({"role": ["value_is_invalid"]})
    if not username.strip():
        raise Invalid({"username": ["value_is_mandatory"]})
    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    created = user is None
    if created:
        if not password:
            raise Invalid({"password": ["value_is_mandatory"]})
        user = user_model.objects.create_user(username, email, password, is_staff=True)
    membership = membership_set(organization=organization, user=user, role=role, actor=actor)
    return membership, created


@transaction.atomic
def membership_remove(*, membership: Membership, actor: Actor = SYSTEM) -> None:
    """Takes a staff user out of an organization; their role groups follow."""
    user = membership.user
    record_activity(activity_type="membership.deleted", actor=actor, obj=membership)
    membership.delete()
    sync_user_groups(user)


def sync_user_groups(user) -> None:
    """A user's role groups are exactly those of their memberships."""
    roles = set(Membership.objects.filter(user=user).values_list("role", flat=True))
    wanted = {ROLE_GROUPS[Role(role)] for role in roles}
    managed = set(ROLE_GROUPS.values())
    for group in Group.objects.filter(name__in=managed):
        if group.name in wanted:
            user.groups.add(group)
        else:
            user.groups.remove(group)


def audit_logs_purge(*, now: datetime) -> tuple[int, int]:
    """Deletes the activity log and API log entries older than their organization's retention
    (`audit_logs_retention_days`); API calls of no organization (refused keys) keep
    `ANONYMOUS_API_LOG_RETENTION`. Returns (activity entries, API log entries) deleted."""
    activities = api_calls = 0
    retentions = Organization.objects.values_list("audit_logs_retention_days", flat=True)
    for days in sorted(set(retentions)):
        cutoff = now - timedelta(days=days)
        activities += ActivityLog.objects.filter(
            organization__audit_logs_retention_days=days, logged_at__lt=cutoff
        ).delete()[0]
        api_calls += ApiRequestLog.objects.filter(
            organization__audit_logs_retention_days=days, created_at__lt=cutoff
        ).delete()[0]
    api_calls += ApiRequestLog.objects.filter(
        organization__isnull=True, created_at__lt=now - ANONYMOUS_API_LOG_RETENTION
    ).delete()[0]
    return activities, api_calls
