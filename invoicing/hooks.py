"""After-commit hooks invoicing fires for the apps on its right (`billing.signals`)."""

from __future__ import annotations

from uuid import UUID

from billing.signals import hook


@hook
def on_credit_note_refund_requested(*, credit_note_id: UUID) -> None:
    """A finalized credit note asks to refund `refund_amount_cents` of its invoice's payment.

    A payment provider connected to the customer refunds it and reports the outcome with
    `invoicing.services.credit_notes.credit_note_refund_settle`. Without a receiver the refund
    stays `pending` and the user records its outcome (PUT /credit_notes/{id} `refund_status`).
    """


@hook
def on_invoice_finalized(*, invoice_id: UUID) -> None:
    """An invoice was finalized (it has its number and records `invoice.created`).

    A payment provider connected to the customer collects what it still owes; receivers must
    be idempotent (the same invoice may be announced again)."""


@hook
def on_payment_request_created(*, payment_request_id: UUID) -> None:
    """A payment request was created (by hand, the API or a dunning campaign).

    A payment provider connected to the customer collects its amount through
    `invoicing.services.payment_settlement.payment_provider_create(payable=request, ...)`;
    receivers must be idempotent."""


@hook
def on_credit_invoice_created(*, invoice_id: UUID) -> None:
    """The invoice of a wallet top-up with paid credits was created (finalized, or `open`
    until its payment succeeds) and asks to be paid.

    A payment provider connected to the customer collects it; the credits settle (or fail)
    with the payment. Receivers must be idempotent."""
