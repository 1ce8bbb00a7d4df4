"""Staff roles (admin, manager, finance) as in Lago: one table says what each role may do in each
area of the finance admin; Django groups carry it at model level and `RoleBackend` per object.

A staff member's role is per organization (`Membership`). The groups give a user the union of the
rights of all their roles (what a page may show at all); `RoleBackend.has_perm(user, perm, obj)`
answers for one object with the role the user holds in that object's organization, so an admin of
one organization who is finance in another cannot edit the other's catalog.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from billing.models import Role

DOMAIN_APPS = ("billing", "plans", "customers", "metering", "wallets", "invoicing", "integrations")
MANAGED_APPS = (*DOMAIN_APPS, "django_celery_beat", "auth")

# The admin's areas, also its sidebar sections.
CUSTOMERS, CATALOG, INVOICES, WALLETS, EVENTS, DEVELOPERS, SETTINGS = (
    "customers", "catalog", "invoices", "wallets", "events", "developers", "settings",
)  # fmt: skip
DUNNING, ALERTS = "dunning", "alerts"

# app label -> area; a model listed in _MODEL_AREAS overrides its app's area.
_APP_AREAS = {
    "billing": SETTINGS,
    "auth": SETTINGS,
    "django_celery_beat": SETTINGS,
    "plans": CATALOG,
    "customers": CUSTOMERS,
    "metering": EVENTS,
    "wallets": WALLETS,
    "invoicing": INVOICES,
    "integrations": DEVELOPERS,
}
_MODEL_AREAS = {
    "billing.apikey": DEVELOPERS,
    "billing.apirequestlog": DEVELOPERS,
    "billing.activitylog": DEVELOPERS,
    "billing.outboxevent": DEVELOPERS,
    "billing.idempotencyrecord": DEVELOPERS,
    # credit notes, payments, payment requests and receipts are the app's (invoices); dunning
    # campaigns, their thresholds and customer assignments are set up by managers
    "invoicing.dunningcampaign": DUNNING,
    "invoicing.dunningcampaignthreshold": DUNNING,
    "invoicing.billingentitydunningcampaign": DUNNING,
    "invoicing.customerdunning": DUNNING,
    # payment provider connections hold secret keys: an organization setting (admins only);
    # webhook endpoints and deliveries stay with the app's area (developers)
    "integrations.paymentprovider": SETTINGS,
    "integrations.providerevent": SETTINGS,
    # usage alerts: set up by managers, read by finance
    "metering.usagealert": ALERTS,
    "metering.triggeredusagealert": ALERTS,
}

ALL, VIEW = "all", "view"

# role -> {area: ALL | VIEW}; an area not listed is invisible to the role.
ROLE_RIGHTS: dict[str, dict[str, str]] = {
    Role.ADMIN: dict.fromkeys(
        (CUSTOMERS, CATALOG, INVOICES, WALLETS, EVENTS, DUNNING, ALERTS, DEVELOPERS, SETTINGS), ALL
    ),
    Role.MANAGER: {
        **dict.fromkeys((CUSTOMERS, CATALOG, WALLETS, DUNNING, ALERTS), ALL),
        **dict.fromkeys((INVOICES, EVENTS), VIEW),
    },
    Role.FINANCE: {INVOICES: ALL, WALLETS: ALL, CUSTOMERS: VIEW, CATALOG: VIEW, ALERTS: VIEW},
}

# Users and groups are global rows: only superusers edit them (memberships give roles).
_SUPERUSER_ONLY_APPS = ("auth",)


def area_of(app_label: str, model_name: str) -> str | None:
    """The admin area of a model ("invoicing", "invoice" -> "invoices"), None when unmanaged."""
    return _MODEL_AREAS.get(f"{app_label}.{model_name}", _APP_AREAS.get(app_label))


def role_allows(role: str, app_label: str, model_name: str, action: str) -> bool:
    """Whether a role may `action` ("view", "add", "change", "delete") rows of a model."""
    if app_label in _SUPERUSER_ONLY_APPS:
        return False
    area = area_of(app_label, model_name)
    right = ROLE_RIGHTS.get(role, {}).get(area) if area else None
    return right == ALL or (right == VIEW and action == "view")


def ensure_role_groups(sender=None, **kwargs) -> None:
    """Creates or refreshes each role's group so new models get their permissions."""
    from billing.services import ROLE_GROUPS

    permissions = list(
        Permission.objects.select_related("content_type").filter(
            content_type__app_label__in=MANAGED_APPS
        )
    )
    for role, group_name in ROLE_GROUPS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        group.permissions.set(
            [
                perm
                for perm in permissions
                if role_allows(
                    role,
                    perm.content_type.app_label,
                    perm.content_type.model,
                    perm.codename.split("_", 1)[0],
                )
            ]
        )


def organization_id_of(obj: object) -> int | None:
    """The organization a row belongs to (itself for an organization), or None."""
    from billing.models import Organization

    if isinstance(obj, Organization):
        return obj.pk
    return getattr(obj, "organization_id", None)


def user_roles(user) -> dict:
    """{organization id: role} of a staff member (read once per user object, so once per
    request)."""
    from billing.models import Membership

    roles = getattr(user, "_organization_roles", None)
    if roles is None:
        roles = dict(Membership.objects.filter(user=user).values_list("organization_id", "role"))
        user._organization_roles = roles
    return roles


def user_role(user, organization_id: int) -> str | None:
    """The role a staff member holds in one organization, None without a membership."""
    return user_roles(user).get(organization_id)


class RoleBackend:
    """Object permissions from the role a staff member holds in the object's organization.

    Model-level questions (obj None) are left to the groups (ModelBackend); a row without an
    organization may be read with the model-level right, never changed (guardian's rows may
    still grant more). Inlines ask about their
    own model with the parent row as obj: the parent's organization decides.
    """

    def authenticate(self, request, **credentials):
        return None

    def has_perm(self, user_obj, perm: str, obj: object = None) -> bool:
        if obj is None or not user_obj.is_active:
            return False
        if user_obj.is_superuser:
            return True
        organization_id = organization_id_of(obj)
        if organization_id is None:
            # a row of no organization (the beat schedule) is every tenant's: staff whose role
            # opens its list may read it; changing it stays with superusers
            return perm.split(".", 1)[1].startswith("view_") and user_obj.has_perm(perm)
        role = user_role(user_obj, organization_id)
        if role is None:
            return False
        app_label, codename = perm.split(".", 1)
        action, model_name = codename.split("_", 1)
        return role_allows(role, app_label, model_name, action)
