"""After-commit hooks: how an app tells the apps on its right that something happened.

Apps import only to their left (DESIGN), so `customers` cannot call `invoicing` when a
subscription starts. The app that owns the event declares a `Hook` with a keyword-only
prototype whose signature and docstring are the contract:

    # customers/hooks.py
    @hook
    def on_subscription_started(*, subscription_id: UUID, started_at: datetime) -> None:
        \"\"\"A subscription became active ...\"\"\"

an app on the right connects a receiver in its `AppConfig.ready()`:

    customers.hooks.on_subscription_started.connect(tasks.on_subscription_started)

and the owner's service fires it inside its transaction:

    hooks.on_subscription_started.fire_after_commit(subscription_id=..., started_at=...)

Receivers run once the transaction commits (`transaction.on_commit`; at once outside one), so a
rollback runs none. Each runs on its own: one that raises is logged (`billing.signals`) and the
next still runs, and the committed change is never undone. Receivers must be quick and
idempotent (enqueue a task that re-checks state); the durable record of a change is its outbox
row written in the same transaction.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any, Generic, ParamSpec

from django.db import transaction

logger = logging.getLogger(__name__)

P = ParamSpec("P")


def unaccepted_keywords(declared: inspect.Signature, impl: Callable[..., Any]) -> list[str]:
    """The keyword-only parameters of `declared` that `impl` cannot be called with."""
    wanted = [
        name
        for name, parameter in declared.parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    parameters = inspect.signature(impl).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return []
    accepted = {p.name for p in parameters if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    return [name for name in wanted if name not in accepted]


def _name(receiver: Callable[..., Any]) -> str:
    module = getattr(receiver, "__module__", None)
    qualname = getattr(receiver, "__qualname__", None)
    return f"{module}.{qualname}" if module and qualname else repr(receiver)


class Hook(Generic[P]):
    """One after-commit notification, declared by its keyword-only prototype."""

    def __init__(self, prototype: Callable[P, object]) -> None:
        self.name = f"{prototype.__module__}.{prototype.__qualname__}"
        self.signature = inspect.signature(prototype)
        self.__doc__ = prototype.__doc__
        self._receivers: list[Callable[P, object]] = []

    def __repr__(self) -> str:
        return f"<Hook {self.name}{self.signature}>"

    @property
    def receivers(self) -> tuple[Callable[P, object], ...]:
        return tuple(self._receivers)

    def connect(self, receiver: Callable[P, object]) -> Callable[P, object]:
        """Adds `receiver` (once), refusing one that does not accept the declared keywords."""
        missing = unaccepted_keywords(self.signature, receiver)
        if missing:
            raise TypeError(
                f"{_name(receiver)} cannot receive {self.name}: it does not accept "
                f"{', '.join(missing)}"
            )
        if receiver not in self._receivers:
            self._receivers.append(receiver)
        return receiver

    def disconnect(self, receiver: Callable[P, object]) -> None:
        """Removes `receiver` if connected."""
        if receiver in self._receivers:
            self._receivers.remove(receiver)

    def fire_after_commit(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Calls every receiver with `kwargs` once the current transaction commits."""
        # a keyword the prototype does not declare is a bug of the caller: fail here, not later
        self.signature.bind(*args, **kwargs)
        receivers = self.receivers  # connected now: a later connect does not see this change
        if receivers:
            transaction.on_commit(lambda: self._run(receivers, kwargs))

    def _run(self, receivers: tuple[Callable[P, object], ...], kwargs: dict[str, Any]) -> None:
        for receiver in receivers:
            try:
                receiver(**kwargs)
            except Exception:
                logger.exception("receiver %s of %s failed", _name(receiver), self.name)


def hook(prototype: Callable[P, object]) -> Hook[P]:
    """Declares a `Hook` whose receivers are called like `prototype` (keyword arguments)."""
    return Hook(prototype)
