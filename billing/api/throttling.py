"""Per-organization rate limits with `X-RateLimit-*` headers (spec §1.4).

A fixed one-second window per organization and bucket (events, usage, default), counted in the
cache (Redis in production, so every worker shares the count).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import BaseThrottle

from billing.models import ApiKey

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView


class OrganizationRateThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: APIView) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return True
        bucket = getattr(view, "rate_limit_bucket", "default")
        limit = settings.API_RATE_LIMITS.get(bucket, settings.API_RATE_LIMITS["default"])
        now = time.time()
        window = int(now)
        count = _count(f"ratelimit:{api_key.organization_id}:{bucket}:{window}")
        self.wait_seconds = max(0.0, window + 1 - now)
        request._request.rate_limit_headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - count)),
            "X-RateLimit-Reset": str(window + 1),
        }
        return count <= limit

    def wait(self) -> float:
        return self.wait_seconds


def _count(key: str) -> int:
    """Counts one more request in a window's key (it lives 2 s); returns the count."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        # one round trip instead of add + incr (two on every request but the window's first):
        # the count is created at 0 unless it exists, then incremented, in one pipeline
        name = backend.make_and_validate_key(key)
        with backend._cache.get_client(name, write=True).pipeline(transaction=False) as pipe:
            pipe.set(name, 0, ex=2, nx=True)
            pipe.incr(name)
            return int(pipe.execute()[1])
    if cache.add(key, 1, timeout=2):
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=2)
        return 1
