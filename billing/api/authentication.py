"""Bearer API-key authentication (spec §1.1, §1.5).

A key found usable is kept in the cache (with its organization) for `API_KEY_CACHE_SECONDS`,
as Lago's `ApiKeys::CacheService` does: the lookup would otherwise be a query on every call,
the hottest path being `POST /events`. The cache is keyed by the key's hash (the raw key is
never stored, there either); revocation and expiry are checked on every call against the
cached dates, and any save or delete of a key or of its organization drops the entries
(`forget_api_keys`), so a revoked or rotated key stops at once in every process sharing the
cache.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from billing.models import ApiKey, Organization, hash_api_key

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
        api_key = usable_api_key(raw, now=now)
        if api_key is None:
            raise AuthenticationFailed()
        request._request.api_key = api_key  # read by the request log middleware
        # spec §1.5: last_used_at is not tracked on the events endpoint, for speed.
        if not request.path.startswith("/api/v1/events") and (
            api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION
        ):
            ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
            forget_api_keys([api_key.key_hash])  # the cached copy holds the previous date
        return None, api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


def _cache_key(key_hash: str) -> str:
    return f"api-key:v1:{key_hash}"


def usable_api_key(raw: str, *, now: datetime) -> ApiKey | None:
    """The usable key of a raw value, its organization loaded; None for an unknown, revoked or
    expired one. From the cache when it holds the key (module docstring)."""
    key_hash = hash_api_key(raw)
    ttl = settings.API_KEY_CACHE_SECONDS
    api_key = cache.get(_cache_key(key_hash)) if ttl else None
    if api_key is None:
        api_key = (
            ApiKey.objects.usable(now)
            .select_related("organization")
            .filter(key_hash=key_hash)
            .first()
        )
        if api_key is None:
            return None  # unknown keys are not cached: anyone can send any number of them
        if ttl:
            cache.set(_cache_key(key_hash), api_key, timeout=ttl)
    # the cached copy may have expired since (a rotated key's grace period ends)
    if api_key.revoked_at is not None or (
        api_key.expires_at is not None and api_key.expires_at <= now
    ):
        return None
    return api_key


def forget_api_keys(key_hashes: list[str]) -> None:
    """Drops cached keys now and again once the current transaction commits (a call reading
    the key before the commit may have cached the old row meanwhile)."""
    if not settings.API_KEY_CACHE_SECONDS or not key_hashes:
        return
    names = [_cache_key(key_hash) for key_hash in key_hashes]
    cache.delete_many(names)
    transaction.on_commit(lambda: cache.delete_many(names))


def forget_saved_api_key(sender: type, instance: ApiKey, **kwargs: object) -> None:
    """`post_save` / `post_delete` of an API key: its cached copy goes."""
    forget_api_keys([instance.key_hash])


def forget_organization_api_keys(sender: type, instance: Organization, **kwargs: object) -> None:
    """`post_save` of an organization: the cached keys carry a copy of it."""
    if settings.API_KEY_CACHE_SECONDS:
        keys = ApiKey.objects.filter(organization_id=instance.pk)
        forget_api_keys(list(keys.values_list("key_hash", flat=True)))


class ApiKeySchemeExtension(OpenApiAuthenticationExtension):
    """Documents the API-key scheme in the OpenAPI schema."""

    target_class = "billing.api.authentication.ApiKeyAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: object) -> dict:
        return {"type": "http", "scheme": "bearer", "description": "Organization API key"}
