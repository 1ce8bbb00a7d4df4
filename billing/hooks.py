"""Extension points through which apps to the right plug into the core.

`billing` may not import the apps built on it (DESIGN: dependencies point one way), yet a few of
its objects carry data those apps own — a billing entity's default taxes live in the catalog.
Each hook is a single slot filled by the owning app's `AppConfig.ready()`; an empty slot means
the feature is not installed and the core behaves as if it had no such data.
"""

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


def _no_taxes(**kwargs: Any) -> list:
    return []


def _refuse_tax_codes(*, billing_entity: Any, tax_codes: list[str]) -> None:
    if tax_codes:
        from billing.errors import Invalid

        raise Invalid({"tax_codes": ["tax_not_found"]})


# (billing_entity=, tax_codes=) -> None, inside the caller's transaction
set_billing_entity_taxes = Slot("set_billing_entity_taxes", _refuse_tax_codes)
# (billing_entity=) -> list of Lago tax objects (dicts)
render_billing_entity_taxes = Slot("render_billing_entity_taxes", _no_taxes)
