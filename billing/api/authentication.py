"""Bearer API-key authentication (spec §1.1, §1.5)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from billing.models import ApiKey, hash_api_key

# last_used_at is written at most this often per key, so reads do not turn into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>` -> request.auth is the ApiKey, request.user is None."""

    def authenticate(self, request: Request) -> tuple[None, ApiKey] | None:
        header = get_authorization_header(request).split()
        if not header:
            return None
        if header[0].lower() != b"bearer" or len(header) != 2:
            raise AuthenticationFailed()
        try:
            raw = header[1].decode()
        except UnicodeError as exc:
            raise AuthenticationFailed() from exc
        now = timezone.now()
        api_key = (
            ApiKey.objects.usable(now)
            .select_related("organization")
            .filter(key_hash=hash_api_key(raw))
            .first()
        )
        if api_key is None:
            raise AuthenticationFailed()
        request._request.api_key = api_key  # read by the request log middleware
        # spec §1.5: last_used_at is not tracked on the events endpoint, for speed.
        if not request.path.startswith("/api/v1/events") and (
            api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION
        ):
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        return None, api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiKeySchemeExtension(OpenApiAuthenticationExtension):
    """Documents the API-key scheme in the OpenAPI schema."""

    target_class = "billing.api.authentication.ApiKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "Organization API key"}
