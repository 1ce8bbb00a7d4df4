"""Ports: what an app needs from an app on its right, declared where it is needed.

Apps import only to their left, yet a few needs point right (wallets need credit invoices, the
customer page shows every app's panels). Such a need is a `Port`: a signature declared by a
`Protocol` in the app that calls it, with no default, bound once by the providing app in its
`AppConfig.ready()`. Nothing falls back silently: calling an unbound port raises
`PortNotBound`, and each owning app registers a system check (`unbound_port_errors`) that stops
`manage.py check`, `migrate` and `runserver` while one of its ports is unbound.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Generic, TypeVar

from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from billing.signals import unaccepted_keywords

F = TypeVar("F", bound=Callable[..., Any])


class PortNotBound(ImproperlyConfigured):
    """A port was called before the app that implements it bound it."""


class Port(Generic[F]):
    """A function an app calls, declared by a `Protocol`, bound once by the app providing it.

    Subclasses name the app that calls the port (`owner`) and the one that binds it
    (`provider`), for the messages."""

    owner: ClassVar[str] = "an app"
    provider: ClassVar[str] = "the providing app"

    def __init__(self, name: str, signature: type[F]) -> None:
        self.name, self.signature = name, signature
        self._impl: F | None = None

    @property
    def is_bound(self) -> bool:
        return self._impl is not None

    def bind(self, impl: F) -> F:
        """Binds `impl`, refusing one that does not accept the declared keyword arguments."""
        missing = unaccepted_keywords(inspect.signature(self.signature.__call__), impl)
        if missing:
            raise ImproperlyConfigured(
                f"{impl!r} cannot implement the port {self.name}: it does not accept "
                f"{', '.join(missing)}"
            )
        self._impl = impl
        return impl

    def __call__(self, **kwargs: Any) -> Any:
        if self._impl is None:
            raise PortNotBound(
                f"{self.owner} port {self.name} is not bound (is {self.provider} installed?)"
            )
        return self._impl(**kwargs)


def unbound_port_errors(ports: Iterable[Port[Any]], *, check_id: str) -> list[checks.Error]:
    """System check errors for the ports of `ports` that nothing bound."""
    return [
        checks.Error(
            f"The {port.owner} port {port.name} is not bound.",
            hint=f"Install the {port.provider} app: its AppConfig.ready() binds this port.",
            obj=port.signature,
            id=check_id,
        )
        for port in ports
        if not port.is_bound
    ]
