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
