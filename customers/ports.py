"""What customers need from the apps on their right: the composition of the customer 360 page.

The page shows every app's panel (usage, wallets, invoices) in one order; only the rightmost
app the page needs (`invoicing`) can see them all, so it declares the list
(`invoicing/customer_360.py`) and binds it here in its `AppConfig.ready()`. The system check
`customers.E001` stops start-up while the port is unbound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

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


customer_360_panels: Port[Customer360Panels] = Port("customer_360_panels", Customer360Panels)

PORTS: tuple[Port[Any], ...] = (customer_360_panels,)


def check_ports_bound(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """System check: every port has an implementation once the apps are ready."""
    return ports.unbound_port_errors(PORTS, check_id="customers.E001")
