"""The Redis cache backend of production (`CACHE_REDIS_URL`): Django's, with one client kept
per connection pool.

Django's `RedisCacheClient.get_client` builds a new `redis.Redis` for every cache operation,
and building one fills its table of ~170 response callbacks (about 0.3 ms of CPU). Every API
call makes two operations (the API key lookup and the rate-limit count), so this was ~15 % of
the CPU of a one-event `POST /events`. A `redis.Redis` is safe to share between threads: each
command takes a connection from the pool and gives it back.
"""

from __future__ import annotations

from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient


class _SharedClients(RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client


class SharedClientRedisCache(RedisCache):
    """`django.core.cache.backends.redis.RedisCache` reusing its `redis.Redis` clients."""

    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = _SharedClients
