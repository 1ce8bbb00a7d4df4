"""What customers need from the apps on their right, bound by invoicing in its `ready()`.

- `customer_360_panels`: the customer 360 page shows every app's panel (usage, wallets,
  invoices) in one order; only the rightmost app the page needs (`invoicing`) can see them all,
  so it declares the list (`invoicing/customer_360.py`).
- `coupon_credits`: the applied coupon objects of the API show what invoices drew from each
  coupon (spec §15.2, §15.3), which only invoicing knows.

The system check `customers.E001` stops start-up while a port is unbound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar
from uuid import UUID

from django.core import checks

from billing import ports
from billing.admin_base import PanelProvider

F = TypeVar("F", bound=Callable[..., Any])


class Port(ports.Port[F]):
    """A function customers call, bound by invoicing."""

    owner, provider = "customers", "invoicing"


class Customer360Panels(Protocol):
    """The panel providers of the whole customer 360 page, in page order."""

    def __call__(self) -> tuple[PanelProvider, ...]: ...


class CouponCredit(NamedTuple):
    """One invoice credit drawn from an applied coupon (Lago's credit of type coupon)."""

    lago_id: UUID
    amount_cents: int
    amount_currency: str
    before_taxes: bool
    invoice_id: UUID
    invoice_payment_status: str
    consumes: bool  # still counts against the coupon (its invoice was not voided, spec §12.8)


class CouponCredits(Protocol):
    """{applied coupon id: its credits, oldest first}; ids without credits may be left out."""

    def __call__(self, *, applied_coupon_ids: Sequence[UUID]) -> dict[UUID, list[CouponCredit]]: ...


class MeteringPort(ports.Port[F]):
    """A function customers call, bound by metering."""

    owner, provider = "customers", "metering"


class SubscriptionPanels(Protocol):
    """The panel providers shown under a subscription's admin page, in page order."""

    def __call__(self) -> tuple[PanelProvider, ...]: ...


customer_360_panels: Port[Customer360Panels] = Port("customer_360_panels", Customer360Panels)
coupon_credits: Port[CouponCredits] = Port("coupon_credits", CouponCredits)
# the subscription page shows its usage monitoring (lifetime usage, usage alerts)
subscription_panels: MeteringPort[SubscriptionPanels] = MeteringPort(
    "subscription_panels", SubscriptionPanels
)

PORTS: tuple[ports.Port[Any], ...] = (customer_360_panels, coupon_credits, subscription_panels)


def check_ports_bound(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """System check: every port has an implementation once the apps are ready."""
    return ports.unbound_port_errors(PORTS, check_id="customers.E001")
