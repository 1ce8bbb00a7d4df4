"""Domain errors, raised by services and rendered into Lago's envelope by `billing.api.errors`."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose."""


class NotFound(DomainError):
    """404 `<resource>_not_found`."""

    def __init__(self, resource: str) -> None:
        super().__init__(f"{resource}_not_found")
        self.resource = resource


class NotAllowed(DomainError):
    """405 with a business rule code (`not_voidable`, `plan_overlapping`, ...)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class Invalid(DomainError):
    """422 `validation_errors` with `error_details: {field: [code, ...]}`."""

    def __init__(self, details: dict[str, list[str]]) -> None:
        super().__init__(details)
        self.details = details


class Forbidden(DomainError):
    """403 with a code (`feature_unavailable`, missing API-key permission)."""

    def __init__(self, code: str = "forbidden") -> None:
        super().__init__(code)
        self.code = code


class BadRequest(DomainError):
    """400 `BadRequest: <message>` (malformed parameters)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderError(DomainError):
    """422 `provider_error` from a payment provider."""

    def __init__(self, provider: str, details: dict) -> None:
        super().__init__(provider)
        self.provider = provider
        self.details = details
