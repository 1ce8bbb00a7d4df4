"""The HTTP side of an attempt: one POST to a checked target, over kept-alive connections.

Plain `http.client`: urllib3's pool, retry and response layers cost as much CPU per request as
the request itself (a sender's threads only need a few kept-alive connections per address).
A connection goes to the address `resolve_target` checked, never to a second resolution of the
name; TLS still verifies the certificate against the URL's host name.
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
from dataclasses import dataclass

from integrations.services.webhook_targets import Target

SUCCESS_STATUSES = frozenset({200, 201, 202, 204})  # Lago's successful answers
ANSWER_READ_MAX = 64 * 1024  # bytes of an answer read; a longer one closes its connection


@dataclass(frozen=True)
class Answer:
    """How a POST ended: an HTTP status and body, or a network error (status None)."""

    status: int | None
    body: str

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCESS_STATUSES


class _CheckedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a checked address, verified against the URL's host name (not the address)."""

    def __init__(self, address: str, port: int, *, server_hostname: str, **options) -> None:
        super().__init__(address, port, **options)
        self._server_hostname = server_hostname

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._server_hostname)


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """An idle kept-alive connection the peer closed (or wrote to): not reusable. Readable
    means EOF or unexpected bytes; the check is urllib3's before reusing a pooled connection."""
    sock = connection.sock
    if sock is None:
        return True
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    try:
        return bool(poller.poll(0))
    except OSError:
        return True


class Transport:
    """Kept-alive connections for one sender run, keyed by the address actually connected to;
    up to `connections` idle ones kept per address, for as many threads posting at once."""

    def __init__(self, *, timeout: float, connections: int = 1) -> None:
        self.timeout = timeout
        self.connections = max(connections, 1)
        self._idle: dict[tuple, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls: ssl.SSLContext | None = None

    def _open(self, target: Target) -> http.client.HTTPConnection:
        connect_to = target.address or target.host
        if target.scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context()
            return _CheckedHTTPSConnection(
                connect_to,
                target.port,
                server_hostname=target.host,
                timeout=self.timeout,
                context=self._tls,
            )
        return http.client.HTTPConnection(connect_to, target.port, timeout=self.timeout)

    def _take(self, key: tuple, target: Target) -> http.client.HTTPConnection:
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                connection = idle.pop()
                if not _dropped(connection):
                    return connection
                connection.close()
        return self._open(target)

    def _give_back(self, key: tuple, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.connections:
                idle.append(connection)
                return
        connection.close()

    def post(self, target: Target, *, body: bytes, headers: dict[str, str]) -> Answer:
        key = (target.scheme, target.address or target.host, target.port, target.host)
        port = "" if target.port in (80, 443) else f":{target.port}"
        host_header = f"[{target.host}]" if ":" in target.host else target.host
        connection = self._take(key, target)
        try:  # headers and a bytes body leave in one send (no Nagle delay between them)
            connection.request(
                "POST", target.path, body=body, headers={**headers, "Host": f"{host_header}{port}"}
            )
            response = connection.getresponse()
            data = response.read(ANSWER_READ_MAX + 1)
        except (http.client.HTTPException, OSError, ValueError) as exc:
            connection.close()
            return Answer(status=None, body=f"{type(exc).__name__}: {exc}")
        if response.will_close or len(data) > ANSWER_READ_MAX or not response.isclosed():
            connection.close()
        else:
            self._give_back(key, connection)
        text = data[:ANSWER_READ_MAX].decode("utf-8", "replace")
        return Answer(status=response.status, body=text)

    def close(self) -> None:
        with self._lock:
            for idle in self._idle.values():
                for connection in idle:
                    connection.close()
            self._idle.clear()
