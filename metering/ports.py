"""What metering needs from `invoicing`, the app on its right (lifetime usage).

The invoiced part of a lifetime usage is the charge fees of the subscription's invoices, which
metering may not read (import layers): a `billing.ports.Port` declared here, bound by
`invoicing/apps.py`. The system check `metering.E001` (registered by `MeteringConfig`) stops
`manage.py check`, `migrate` and `runserver` while it is unbound.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Protocol, TypeVar
from uuid import UUID

from django.core import checks

from billing import ports

F = TypeVar("F", bound=Callable[..., Any])


class Port(ports.Port[F]):
    """A function metering calls, bound by invoicing."""

    owner, provider = "metering", "invoicing"


class InvoicedUsageAmountCents(Protocol):
    """Charge fees (pre-tax cents) of the finalized subscription and progressive billing
    invoices of these subscriptions."""

    def __call__(self, *, subscription_ids: Collection[UUID]) -> int: ...


invoiced_usage_amount_cents: Port[InvoicedUsageAmountCents] = Port(
    "invoiced_usage_amount_cents", InvoicedUsageAmountCents
)


class InvoicedUsageBySubscription(Protocol):
    """The same amount per subscription, for many subscriptions in one read (those without
    such fees are left out)."""

    def __call__(self, *, subscription_ids: Collection[UUID]) -> dict[UUID, int]: ...


invoiced_usage_by_subscription: Port[InvoicedUsageBySubscription] = Port(
    "invoiced_usage_by_subscription", InvoicedUsageBySubscription
)

PORTS: tuple[Port[Any], ...] = (invoiced_usage_amount_cents, invoiced_usage_by_subscription)


def check_ports_bound(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """System check: every port has an implementation once the apps are ready."""
    return ports.unbound_port_errors(PORTS, check_id="metering.E001")
