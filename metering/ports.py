"""What metering needs from `invoicing`, the app on its right (lifetime usage, progressive
billing).

The invoiced part of a lifetime usage is the charge fees of the subscription's invoices, the
dates its usage thresholds were reached are those of its progressive billing invoices, which
metering may not read (import layers): `billing.ports.Port`s declared here, bound by
`invoicing/apps.py`. The system check `metering.E001` (registered by `MeteringConfig`) stops
`manage.py check`, `migrate` and `runserver` while it is unbound.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Any, NamedTuple, Protocol, TypeVar
from uuid import UUID

from django.core import checks

from billing import ports

F = TypeVar("F", bound=Callable[..., Any])


class Port(ports.Port[F]):
    """A function metering calls, bound by invoicing."""

    owner, provider = "metering", "invoicing"


class InvoicedUsageAmountCents(Protocol):
    """Charge fees (pre-tax cents) of the finalized and draft subscription invoices of these
    subscriptions."""

    def __call__(self, *, subscription_ids: Collection[UUID]) -> int: ...


invoiced_usage_amount_cents: Port[InvoicedUsageAmountCents] = Port(
    "invoiced_usage_amount_cents", InvoicedUsageAmountCents
)


class UsageThresholdsReachedAt(Protocol):
    """When each usage threshold was reached by these subscriptions: by `(amount_cents,
    recurring)`, the creation instants of the progressive billing invoices that applied it,
    oldest first (one per step of a recurring threshold)."""

    def __call__(
        self, *, subscription_ids: Collection[UUID]
    ) -> dict[tuple[int, bool], list[datetime]]: ...


usage_thresholds_reached_at: Port[UsageThresholdsReachedAt] = Port(
    "usage_thresholds_reached_at", UsageThresholdsReachedAt
)


class ProgressiveInvoiceRow(NamedTuple):
    """A progressive billing invoice as the subscription page lists it."""

    number: str
    url: str | None
    issuing_date: date
    status: str
    currency: str
    fees_amount_cents: int
    progressive_billing_credit_amount_cents: int
    total_amount_cents: int
    thresholds: tuple[int, ...]  # amounts of the thresholds it applied


class ProgressiveInvoices(Protocol):
    """The progressive billing invoices of the subscription's period containing `at`."""

    def __call__(self, *, subscription_id: UUID, at: datetime) -> list[ProgressiveInvoiceRow]: ...


progressive_invoices: Port[ProgressiveInvoices] = Port("progressive_invoices", ProgressiveInvoices)

PORTS: tuple[Port[Any], ...] = (
    invoiced_usage_amount_cents,
    usage_thresholds_reached_at,
    progressive_invoices,
)


def check_ports_bound(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """System check: every port has an implementation once the apps are ready."""
    return ports.unbound_port_errors(PORTS, check_id="metering.E001")
