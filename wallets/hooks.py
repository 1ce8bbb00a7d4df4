"""Extension points through which `invoicing` (above this app) plugs into wallets.

`wallets` may not import `invoicing` (import layers), yet a paid top-up needs a credit invoice
(spec §17.3) and the ongoing balance reads draft invoices (§17.4). Each hook is a
`billing.hooks.Slot` filled by `invoicing/apps.py` `ready()`; the defaults describe a back office
without invoicing.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from uuid import UUID

from billing.errors import NotAllowed
from billing.hooks import Slot


def _no_invoicing(**kwargs: Any) -> None:
    raise NotAllowed("invoicing_not_available")


def _no_drafts(**kwargs: Any) -> list:
    return []


# (transaction=, actor=, now=) -> None: the `credit` invoice of a pending purchased transaction;
# runs in the caller's database transaction, so a failure undoes the top-up.
create_paid_credits_invoice = Slot("create_paid_credits_invoice", _no_invoicing)
# (customer_id=) -> list[DraftInvoice] of the customer's draft invoices (ongoing balance, §17.4)
draft_invoices_for_customer = Slot("draft_invoices_for_customer", _no_drafts)


class DraftFee(NamedTuple):
    """One fee of a draft invoice as the ongoing balance scopes it (wallet `applies_to`)."""

    fee_type: str  # Fee.FeeType value
    billable_metric_id: UUID | None  # charge fees
    amount_cents: int  # amount + taxes - coupons, rounded


class DraftInvoice(NamedTuple):
    """What `draft_invoices_for_customer` returns for each draft invoice."""

    currency: str
    total_amount_cents: int  # taxes included
    fees: list[DraftFee]
