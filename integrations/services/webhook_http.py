"""The HTTP side of an attempt: one POST to a checked target, over kept-alive connections."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import urllib3

from integrations.services.webhook_targets import Target

SUCCESS_STATUSES = frozenset({200, 201, 202, 204})  # Lago's successful answers


@dataclass(frozen=True)
class Answer:
    """How a POST ended: an HTTP status and body, or a network error (status None)."""

    status: int | None
    body: str

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESS_STATUSES


class Transport:
    """Connection pools for one sender run, keyed by the address actually connected to; up to
    `connections` kept-alive connections per address, for as many threads posting at once."""

    def __init__(self, *, timeout: float, connections: int = 1) -> None:
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self.connections = max(connections, 1)
        self._pools: dict[tuple, urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()

    def _pool(self, target: Target) -> urllib3.HTTPConnectionPool:
        connect_to = target.address or target.host
        key = (target.scheme, connect_to, target.port, target.host)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                options = {
                    "timeout": self.timeout,
                    "retries": False,
                    "maxsize": self.connections,
                    "block": True,  # threads wait for a connection rather than open more
                }
                if target.scheme == "https":
                    pool = urllib3.HTTPSConnectionPool(
                        connect_to,
                        target.port,
                        server_hostname=target.host,
                        assert_hostname=target.host,
                        **options,
                    )
                else:
                    pool = urllib3.HTTPConnectionPool(connect_to, target.port, **options)
                self._pools[key] = pool
        return pool

    def post(self, target: Target, *, body: bytes, headers: dict[str, str]) -> Answer:
        port = "" if target.port in (80, 443) else f":{target.port}"
        host_header = f"[{target.host}]" if ":" in target.host else target.host
        try:
            response = self._pool(target).urlopen(
                "POST",
                target.path,
                body=body,
                headers={**headers, "Host": f"{host_header}{port}"},
                redirect=False,
                preload_content=True,
                assert_same_host=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return Answer(status=None, body=f"{type(exc).__name__}: {exc}")
        return Answer(status=response.status, body=response.data.decode("utf-8", "replace"))

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()
