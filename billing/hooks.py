"""A replaceable callable with a default, for apps that call into an app on their right."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Slot:
    """One replaceable callable with a default."""

    def __init__(self, name: str, default: Callable[..., Any]) -> None:
        self.name, self._default, self._impl = name, default, None

    def register(self, impl: Callable[..., Any]) -> Callable[..., Any]:
        self._impl = impl
        return impl

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return (self._impl or self._default)(*args, **kwargs)
