"""The credit notes of an invoice voided with `generate_credit_note`: the requested credit and
refund, and the rest of the creditable amount in a credit note voided at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from billing.actors import Actor
from billing.errors import Invalid
from invoicing.models import CreditNote, Fee, Invoice
from invoicing.services.credit_notes import (
    ItemInput,
    _amounts,
    _fee_credited_cents,
    _invoice_fees,
    credit_note_create,
    credit_note_void,
    invoice_creditable_amount_cents,
    invoice_refundable_amount_cents,
)


def void_credit_notes(
    *,
    invoice: Invoice,
    credit_amount_cents: int,
    refund_amount_cents: int,
    actor: Actor,
    now: datetime,
) -> CreditNote | None:
    """The credit notes of an invoice voided with `generate_credit_note` (in the void's
    transaction, the invoice locked): the requested credit + refund spread on the fees pro rata
    of what each can still be credited, then the remaining creditable amount in a credit note
    voided at once. Returns the requested credit note (None when nothing was asked)."""
    fees = _invoice_fees(invoice)
    creditable = invoice_creditable_amount_cents(invoice, fees)
    refundable = invoice_refundable_amount_cents(invoice, creditable)
    requested = credit_amount_cents + refund_amount_cents
    if (
        credit_amount_cents > creditable
        or refund_amount_cents > refundable
        or requested > creditable
    ):
        raise Invalid({"credit_refund_amount": ["total_amount_exceeds_invoice_amount"]})
    requested_note = None
    remaining = _remaining_items(fees)
    description = f"Credit note created due to voided invoice {invoice.pk}"
    if requested > 0 and remaining:
        base_total = _amounts(_as_pairs(fees, remaining), invoice).total_amount_cents
        if base_total > 0:
            ratio = Decimal(requested) / base_total
            items = [ItemInput(item.fee_id, item.amount_cents * ratio) for item in remaining]
            requested_note = credit_note_create(
                invoice=invoice,
                actor=actor,
                now=now,
                items=items,
                reason=CreditNote.Reason.OTHER,
                description=description,
                credit_amount_cents=credit_amount_cents,
                refund_amount_cents=refund_amount_cents,
                automatic=True,
            )
    remaining = _remaining_items(_invoice_fees(invoice))
    if remaining:
        leftover = _amounts(_as_pairs(fees, remaining), invoice).total_amount_cents
        if leftover > 0:
            to_void = credit_note_create(
                invoice=invoice,
                actor=actor,
                now=now,
                items=remaining,
                reason=CreditNote.Reason.OTHER,
                description=description,
                credit_amount_cents=leftover,
                automatic=True,
            )
            credit_note_void(credit_note=to_void, actor=actor, now=now)
    return requested_note


def _remaining_items(fees: Sequence[Fee]) -> list[ItemInput]:
    credited = _fee_credited_cents([fee.pk for fee in fees])
    return [
        ItemInput(str(fee.pk), Decimal(fee.amount_cents - credited.get(fee.pk, 0)))
        for fee in fees
        if fee.amount_cents - credited.get(fee.pk, 0) > 0
    ]


def _as_pairs(fees: Sequence[Fee], items: Sequence[ItemInput]) -> list[tuple[Fee, Decimal]]:
    by_id = {str(fee.pk): fee for fee in fees}
    return [(by_id[item.fee_id], item.amount_cents) for item in items]
