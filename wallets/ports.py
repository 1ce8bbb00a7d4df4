"""What wallets need from `invoicing`, the app on their right (spec §17.3, §17.4).

`wallets` may not import `invoicing` (import layers), yet a paid top-up needs a credit invoice,
the ongoing balance reads draft invoices and the wallet ledger names invoices by number. Each
need is a `billing.ports.Port`: a signature declared here as a `Protocol`, with no default, that
`invoicing/apps.py` binds in `ready()`. Nothing falls back silently: calling an unbound port
raises `PortNotBound`, and the system check `wallets.E001` (registered by `WalletsConfig`)
stops `manage.py check`, `migrate` and `runserver` while a port is unbound.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar
from uuid import UUID

from django.core import checks

from billing import ports
from billing.ports import PortNotBound  # noqa: F401  (re-exported: callers catch it from here)

if TYPE_CHECKING:
    from wallets.models import WalletTransaction

F = TypeVar("F", bound=Callable[..., Any])


class Port(ports.Port[F]):
    """A function wallets call, bound by invoicing."""

    owner, provider = "wallets", "invoicing"


# --- the ports -------------------------------------------------------------------------------


class DraftFee(NamedTuple):
    """One fee of a draft invoice as the ongoing balance scopes it (wallet `applies_to`)."""

    fee_type: str  # Fee.FeeType value
    billable_metric_id: UUID | None  # charge fees
    amount_cents: int  # amount + taxes - coupons, rounded


class DraftInvoice(NamedTuple):
    """One draft invoice of a customer as the ongoing balance reads it."""

    currency: str
    total_amount_cents: int  # taxes included
    fees: list[DraftFee]


class BilledFee(NamedTuple):
    """One fee a progressive billing invoice of the current period billed (spec §21.2): that
    usage is invoiced already, so it is no longer ongoing."""

    currency: str
    fee_type: str  # Fee.FeeType value
    billable_metric_id: UUID | None
    amount_cents: int  # amount + taxes - coupons and earlier progressive credits, rounded


class CreatePaidCreditsInvoice(Protocol):
    """The `credit` invoice of a pending purchased transaction (spec §17.3), created in the
    caller's database transaction so that a failure undoes the top-up."""

    def __call__(self, *, transaction: WalletTransaction, now: datetime) -> object: ...


class DraftInvoicesForCustomer(Protocol):
    """The customer's draft invoices, which count in the ongoing balance (spec §17.4)."""

    def __call__(self, *, customer_id: UUID) -> list[DraftInvoice]: ...


class ProgressiveBilledFees(Protocol):
    """The fees of the progressive billing invoices of the subscriptions' usage windows
    containing `at` (spec §17.4: netted out of the current usage)."""

    def __call__(self, *, subscription_ids: Collection[UUID], at: datetime) -> list[BilledFee]: ...


class InvoiceLabels(Protocol):
    """How the wallet ledger (admin) names each invoice: its number, or a draft label."""

    def __call__(self, *, invoice_ids: Collection[UUID]) -> dict[UUID, str]: ...


create_paid_credits_invoice: Port[CreatePaidCreditsInvoice] = Port(
    "create_paid_credits_invoice", CreatePaidCreditsInvoice
)
draft_invoices_for_customer: Port[DraftInvoicesForCustomer] = Port(
    "draft_invoices_for_customer", DraftInvoicesForCustomer
)
invoice_labels: Port[InvoiceLabels] = Port("invoice_labels", InvoiceLabels)
progressive_billed_fees: Port[ProgressiveBilledFees] = Port(
    "progressive_billed_fees", ProgressiveBilledFees
)

PORTS: tuple[Port[Any], ...] = (
    create_paid_credits_invoice,
    draft_invoices_for_customer,
    invoice_labels,
    progressive_billed_fees,
)


def check_ports_bound(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """System check: every port has an implementation once the apps are ready."""
    return ports.unbound_port_errors(PORTS, check_id="wallets.E001")
