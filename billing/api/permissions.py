"""Per-resource read/write permissions of API keys (spec §1.5): missing -> 403."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import SAFE_METHODS, BasePermission

from billing.models import ApiKey

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class HasApiKeyPermission(BasePermission):
    """The key must exist, and allow `view.permission_resource` in read (GET) or write mode."""

    message = "Forbidden"
    code = "missing_permission"

    def has_permission(self, request: Request, view: APIView) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return False
        resource = getattr(view, "permission_resource", None)
        if resource is None:
            return True
        mode = getattr(view, "permission_mode", None) or (
            "read" if request.method in SAFE_METHODS else "write"
        )
        return api_key.allows(resource, mode)
