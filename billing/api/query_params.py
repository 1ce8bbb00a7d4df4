"""Query-string parameters read and checked in one place: a malformed value is Lago's 422
`{name: [code]}`, an absent or empty one is None."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from billing.errors import Invalid
from billing.money import CURRENCIES

_BOOLEANS = {"true": True, "false": False}


class QueryParams:
    """Typed reads of a request's query parameters (`request.query_params`)."""

    def __init__(self, params: Mapping[str, str]) -> None:
        self.params = params

    def text(self, name: str, *, upper: bool = False) -> str | None:
        """The value as given (upper-cased if asked), None when absent or empty."""
        value = self.params.get(name) or None
        return value.upper() if value and upper else value

    def choice(
        self, name: str, choices: Iterable[str], *, default: str | None = None
    ) -> str | None:
        """One of `choices` (`value_is_invalid` otherwise), else `default`."""
        value = self.text(name)
        if value is None:
            return default
        if value not in choices:
            raise Invalid({name: ["value_is_invalid"]})
        return value

    def currency(self, name: str = "currency") -> str | None:
        """An ISO 4217 code we know, any case, upper-cased (`value_is_invalid` otherwise)."""
        value = self.text(name, upper=True)
        if value is not None and value not in CURRENCIES:
            raise Invalid({name: ["value_is_invalid"]})
        return value

    def integer(self, name: str, *, minimum: int, maximum: int) -> int | None:
        """A whole number within bounds (`value_is_invalid` otherwise)."""
        value = self.text(name)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            raise Invalid({name: ["value_is_invalid"]}) from None
        if not minimum <= number <= maximum:
            raise Invalid({name: ["value_is_invalid"]})
        return number

    def date(self, name: str) -> date | None:
        """An ISO date (a datetime's date part is taken; `invalid_date` otherwise)."""
        value = self.text(name)
        if value is None:
            return None
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            raise Invalid({name: ["invalid_date"]}) from None

    def boolean(self, name: str) -> bool | None:
        """`true` or `false`, any case (`value_is_invalid` otherwise)."""
        value = self.text(name)
        if value is None:
            return None
        if value.lower() not in _BOOLEANS:
            raise Invalid({name: ["value_is_invalid"]})
        return _BOOLEANS[value.lower()]
