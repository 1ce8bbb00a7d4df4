"""Where a webhook may be sent: URL shape, and refusal of addresses that are not public.

An endpoint URL is resolved and every address it resolves to must be a public (global unicast)
one, unless `WEBHOOKS_ALLOW_PRIVATE_URLS` is on: otherwise anyone holding an API key could make
the server call its own loopback, private network or the cloud metadata address. The check runs
when the endpoint is saved and again before each attempt (DNS answers change), and the attempt
then connects to the address that was checked, not to a second resolution of the name.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

URL_MAX_LENGTH = 1024


class UnsafeTarget(Exception):
    """The URL's host is, or resolves to, an address that is not public."""


@dataclass(frozen=True)
class Target:
    """Where one attempt connects: the URL's parts and the address checked for it."""

    scheme: str
    host: str  # as written in the URL (Host header, TLS server name)
    port: int
    path: str  # path and query
    address: str | None  # the checked address to connect to; None: connect by name


def url_errors(url: object) -> list[str]:
    """Lago's error codes for a malformed endpoint URL (empty when it is fine)."""
    if not isinstance(url, str) or not url.strip():
        return ["value_is_mandatory"]
    if len(url) > URL_MAX_LENGTH:
        return ["value_is_too_long"]
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return ["url_invalid"]
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(char.isspace() for char in url)
    ):
        return ["url_invalid"]
    return []


def _not_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:  # ::ffff:127.0.0.1 is loopback too
        address = mapped
    return not address.is_global or address.is_multicast


def _addresses(host: str, port: int) -> list[str]:
    try:
        return [ipaddress.ip_address(host.strip("[]")).compressed]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def resolve_target(url: str, *, allow_private: bool | None = None) -> Target:
    """The target of `url`. Raises `UnsafeTarget` if an address of its host is not public
    (unless private targets are allowed), `OSError` if the name does not resolve."""
    if allow_private is None:
        allow_private = settings.WEBHOOKS_ALLOW_PRIVATE_URLS
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    if allow_private:
        return Target(parts.scheme, host, port, path, address=None)
    addresses = _addresses(host, port)
    unsafe = [a for a in addresses if _not_public(ipaddress.ip_address(a.split("%")[0]))]
    if unsafe or not addresses:
        raise UnsafeTarget(f"{host} resolves to an address that is not public ({unsafe[0]})")
    return Target(parts.scheme, host, port, path, address=addresses[0])


def target_errors(url: str) -> list[str]:
    """`url_not_public` when the URL's host is, or resolves to, a non-public address (and
    those are not allowed). A name that does not resolve now passes: it is checked again
    before every attempt."""
    try:
        resolve_target(url)
    except UnsafeTarget:
        return ["url_not_public"]
    except (OSError, UnicodeError):
        return []
    return []
