"""How the activity log renders billing's own objects that no API answers (staff memberships,
API keys): their safe fields only. An API key is named by its prefix, never by its value or
hash."""

from __future__ import annotations

from billing.activity import register_activity_object
from billing.models import ApiKey, Membership


def _membership(row: Membership) -> dict:
    return {
        "lago_id": str(row.pk),
        "organization_id": str(row.organization_id),
        "user_id": str(row.user_id),
        "username": row.user.get_username(),
        "email": row.user.email or None,
        "role": row.role,
        "created_at": row.created_at,
    }


def _api_key(row: ApiKey) -> dict:
    return {
        "lago_id": str(row.pk),
        "organization_id": str(row.organization_id),
        "name": row.name or None,
        "prefix": row.prefix,
        "permissions": row.permissions,
        "expires_at": row.expires_at,
        "revoked_at": row.revoked_at,
        "rotated_to_id": str(row.rotated_to_id) if row.rotated_to_id else None,
        "created_at": row.created_at,
    }


def register_activity() -> None:
    """Declares the activity log's rendering of memberships and API keys."""
    register_activity_object(
        "membership",
        load=lambda ids: Membership.objects.filter(pk__in=ids).select_related("user"),
        render=lambda rows: [_membership(row) for row in rows],
    )
    register_activity_object(
        "api_key",
        load=lambda ids: ApiKey.objects.filter(pk__in=ids),
        render=lambda rows: [_api_key(row) for row in rows],
    )
