"""The final status of a computed invoice (spec §12.5, §12.6): `closed` when the zero-amount
setting skips it, else `finalized` with its number, due date, `invoice.created` outbox event, the
PDF queued after commit and the customer's wallets refreshed after commit.

Shared by the invoices built and finalized at once (`generation.create`) and the drafts
finalized later (`lifecycle`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from django.conf import settings
from django.db import transaction

from billing.actors import Actor
from customers.models import Customer, Subscription
from invoicing import calculation, hooks
from invoicing.models import Fee, Invoice
from invoicing.pdf import generate_invoice_pdf_task
from invoicing.services.analytics_figures import figures_record, invoice_is_counted
from invoicing.services.credit_notes import credit_notes_finalize_drafts
from invoicing.services.events import emit_invoice_event
from invoicing.services.numbering import invoice_assign_number
from metering.services.lifetime_usages import lifetime_usages_flag_invoiced
from wallets.tasks import queue_refresh_after_commit

Status = Invoice.Status


def _render_pdf_after_commit(invoice_id: str) -> None:
    """Queues the rendering of the invoice PDF (unless turned off by `INVOICE_PDF_ON_FINALIZE`)."""
    if getattr(settings, "INVOICE_PDF_ON_FINALIZE", True):
        generate_invoice_pdf_task.delay(invoice_id)


_FINAL_FIELDS = (
    "status",
    "finalized_at",
    "issuing_date",
    "payment_due_date",
    "error_details",
    "number",
    "sequential_id",
    "billing_entity_sequential_id",
    "updated_at",
)


# progressive billing invoices stay out of the invoiced part: the period's subscription
# invoice bills their usage again in full (and deducts them)
_USAGE_INVOICE_TYPES = frozenset({Invoice.InvoiceType.SUBSCRIPTION})


def finalize_computed(
    invoice: Invoice,
    *,
    actor: Actor,
    now: datetime,
    issuing_date: date | None = None,
    update_fields: Sequence[str] = (),
    subscriptions: Sequence[Subscription] | None = None,
    fees: Sequence[Fee] | None = None,
) -> Invoice:
    """The final status of a computed invoice, in the caller's transaction (spec §12.5, §12.6).

    An empty invoice the zero-amount setting skips is `closed` (no number, nothing sent);
    otherwise `finalized`: number, due date, `invoice.created`, PDF after commit.
    `update_fields`: fields the caller changed and leaves to this save (one UPDATE).
    `subscriptions`: the invoice's subscriptions when the caller has them loaded (else read).
    `fees`: all the invoice's fees when the caller has just created them with the invoice, in
    this transaction (else read): such an invoice has no draft credit note to finalize, and the
    figures are summed from them.
    """
    customer: Customer = invoice.customer
    entity = invoice.billing_entity
    decision = calculation.zero_amount_decision(
        invoice.fees_amount_cents,
        customer.finalize_zero_amount_invoice,
        entity.finalize_zero_amount_invoice,
    )
    if issuing_date is not None:
        invoice.issuing_date = issuing_date
    invoice.payment_due_date = calculation.payment_due_date(
        invoice.issuing_date, invoice.net_payment_term
    )
    invoice.error_details = []
    if decision == calculation.ZeroAmountDecision.CLOSE:
        invoice.status = Status.CLOSED
        invoice.save(
            update_fields=[
                *update_fields, "status", "issuing_date", "payment_due_date", "error_details",
                "updated_at",
            ]
        )  # fmt: skip
        return invoice
    invoice.status = Status.FINALIZED
    invoice.finalized_at = now
    invoice_assign_number(invoice=invoice, now=now, save=False)
    invoice.save(update_fields=[*(update_fields or ()), *_FINAL_FIELDS])
    emit_invoice_event(invoice, "invoice.created", actor=actor)
    if fees is None:  # automatic credit notes made while it was a draft take effect now
        credit_notes_finalize_drafts(invoice=invoice, actor=actor, now=now)
    hooks.on_invoice_finalized.fire_after_commit(invoice_id=invoice.pk)
    invoice_id = str(invoice.pk)
    transaction.on_commit(lambda: _render_pdf_after_commit(invoice_id), robust=True)
    # spec §17.4: drafts leave the ongoing balance, credits may have been drawn
    queue_refresh_after_commit(
        customer_id=invoice.customer_id,
        has_active_wallets=getattr(invoice.customer, "has_active_wallets", None),
    )
    if invoice.invoice_type in _USAGE_INVOICE_TYPES:
        # its charge fees join the invoiced part of the subscriptions' lifetime usage
        if subscriptions is None:
            ids = invoice.invoice_subscriptions.values_list("subscription_id", flat=True)
            lifetime_usages_flag_invoiced(subscription_ids=ids, now=now)
        else:
            lifetime_usages_flag_invoiced(subscriptions=subscriptions, now=now)
    if invoice_is_counted(invoice):
        # appended (the figure tables take no row lock); an invoice being finalized has no
        # credit note yet (nothing refunded)
        figures_record(invoice=invoice, sign=1, refunded_cents=0, fees=fees)
    return invoice
