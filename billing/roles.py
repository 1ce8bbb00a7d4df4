"""Staff roles (admin, manager, finance) as Django groups with model permissions."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from billing.models import Role

DOMAIN_APPS = ("billing", "plans", "customers", "metering", "wallets", "invoicing", "integrations")

# role -> {app_label: "all" | "view"}; apps not listed get view rights.
ROLE_RIGHTS: dict[str, dict[str, str]] = {
    Role.ADMIN: dict.fromkeys((*DOMAIN_APPS, "django_celery_beat"), "all"),
    Role.MANAGER: {"plans": "all", "customers": "all", "metering": "all", "wallets": "all"},
    Role.FINANCE: {"invoicing": "all", "wallets": "all", "customers": "view"},
}


def ensure_role_groups(sender=None, **kwargs) -> None:
    """Creates or refreshes each role's group so new models get their permissions."""
    from billing.services import ROLE_GROUPS

    for role, group_name in ROLE_GROUPS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        rights = ROLE_RIGHTS[role]
        perms = []
        for perm in Permission.objects.select_related("content_type").filter(
            content_type__app_label__in=(*DOMAIN_APPS, "django_celery_beat")
        ):
            right = rights.get(perm.content_type.app_label, "view")
            if right == "all" or perm.codename.startswith("view_"):
                perms.append(perm)
        # Only admins manage API keys, memberships and organizations themselves.
        if role != Role.ADMIN:
            perms = [
                p
                for p in perms
                if p.content_type.app_label != "billing" or p.codename.startswith("view_")
            ]
        group.permissions.set(perms)
