"""Rate limits counted in a shared Redis cache (`CACHE_REDIS_URL`, production): the count of
a window is one pipelined round trip (`billing.api.throttling._count`)."""

import os

import pytest
import time_machine
from django.core.cache import cache

from billing.api.throttling import _count

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "billing.cache.SharedClientRedisCache",  # as in production
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "test-rate-limits",
        }
    }
    # no FLUSHDB: the test Redis database may be another test's broker; keys live 2 s anyway
    cache.delete_many(["ratelimit:k:events:1", "ratelimit:k:events:2"])
    return cache


def test_the_shared_count_starts_at_one_and_goes_up(redis_cache):
    assert [_count("ratelimit:k:events:1") for _ in range(3)] == [1, 2, 3]
    assert redis_cache.get("ratelimit:k:events:1") == 3  # readable through the cache API


def test_the_shared_count_lives_two_seconds(redis_cache):
    _count("ratelimit:k:events:2")
    name = redis_cache.make_and_validate_key("ratelimit:k:events:2")
    ttl = redis_cache._cache.get_client(name).ttl(name)
    assert 0 < ttl <= 2


def test_the_shared_count_refuses_past_the_limit(redis_cache, settings, api):
    settings.API_RATE_LIMITS = {"default": 2, "events": 500, "usage": 200}
    with time_machine.travel("2026-01-01 00:00:00.1", tick=False):  # one window for all calls
        statuses = [api.get("/api/v1/organizations").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_the_cache_keeps_one_redis_client_per_pool(redis_cache):
    first = redis_cache._cache.get_client("a")
    assert redis_cache._cache.get_client("b", write=True) is first
    redis_cache.set("shared-client", {"value": 1}, timeout=5)
    assert redis_cache.get("shared-client") == {"value": 1}
