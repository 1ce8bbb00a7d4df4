"""Payment status, metadata, lost disputes and overdue flags of invoices; payment status of
invoiceless fees (spec §12.7, §12.12, §13)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction

from billing.activity import record_activity
from billing.actors import Actor
from billing.errors import Invalid, NotAllowed
from invoicing.locks import lock_fee, lock_invoice, lock_overdue_invoice
from invoicing.models import Fee, Invoice, InvoiceMetadata
from invoicing.selectors import overdue_candidates
from invoicing.services.analytics_figures import figures_record, invoice_is_counted
from invoicing.services.events import emit_invoice_event
from invoicing.services.payment_settlement import invoice_payment_status_set

INVOICE_PAYMENT_STATUSES = frozenset(Invoice.PaymentStatus.values)
FEE_PAYMENT_STATUSES = frozenset(Fee.PaymentStatus.values)
METADATA_KEY_MAX = 255
METADATA_VALUE_MAX = 1024


def _validate_metadata(items: Sequence[dict]) -> list[dict]:
    errors: dict[str, list[str]] = {}
    clean = []
    for item in items:
        key = item.get("key")
        value = item.get("value")
        if not key:
            errors["metadata"] = ["value_is_mandatory"]
            continue
        if len(str(key)) > METADATA_KEY_MAX or len(str(value or "")) > METADATA_VALUE_MAX:
            errors["metadata"] = ["value_is_invalid"]
            continue
        clean.append({"id": item.get("id"), "key": str(key), "value": str(value or "")})
    if errors:
        raise Invalid(errors)
    return clean


def _replace_metadata(invoice: Invoice, items: list[dict]) -> None:
    """Lago's `Invoices::Metadata::UpdateService`: an item with a known `id` updates that pair,
    another creates one, and the pairs the payload no longer lists are removed."""
    existing = {str(row.pk): row for row in invoice.metadata.all()}
    kept: set[str] = set()
    for item in items:
        row = existing.get(str(item["id"])) if item["id"] else None
        if row is not None:
            row.key, row.value = item["key"], item["value"]
            row.save(update_fields=["key", "value", "updated_at"])
        else:
            row = InvoiceMetadata.objects.create(
                organization_id=invoice.organization_id,
                invoice=invoice,
                key=item["key"],
                value=item["value"],
            )
        kept.add(str(row.pk))
    invoice.metadata.exclude(pk__in=kept).delete()


@transaction.atomic
def invoice_update(
    *,
    invoice: Invoice,
    actor: Actor,
    now: datetime,
    payment_status: str | None = None,
    metadata: Sequence[dict] | None = None,
) -> Invoice:
    """PUT /invoices/{id}: payment status and metadata (spec §12.12).

    A draft's payment status cannot change (`payment_status_update_on_draft_invoice`); a change
    of payment status records the `invoice.payment_status_updated` webhook.
    """
    if payment_status is not None and payment_status not in INVOICE_PAYMENT_STATUSES:
        raise Invalid({"payment_status": ["value_is_invalid"]})
    items = _validate_metadata(metadata) if metadata is not None else None
    invoice = lock_invoice(invoice.pk)
    if payment_status is not None:
        if invoice.status == Invoice.Status.DRAFT:
            raise NotAllowed("payment_status_update_on_draft_invoice")
        # the paid total follows the status (payment core; no Payment is recorded)
        invoice_payment_status_set(
            invoice=invoice, payment_status=payment_status, actor=actor, now=now
        )
    if items is not None:
        before = _metadata_of(invoice)
        _replace_metadata(invoice, items)
        invoice.save(update_fields=["updated_at"])
        record_activity(
            activity_type="invoice.updated",
            actor=actor,
            obj=invoice,
            extra_changes={"metadata": [before, _metadata_of(invoice)]},
        )
    return invoice


def _metadata_of(invoice: Invoice) -> dict[str, str]:
    return dict(invoice.metadata.order_by("key").values_list("key", "value"))


@transaction.atomic
def invoice_mark_paid(*, invoice: Invoice, actor: Actor, now: datetime) -> Invoice:
    """The admin's "Mark paid": the invoice's payment status becomes `succeeded` and what it
    still owed counts as paid (no `Payment` is recorded; see `invoice_payment_status_set`)."""
    return invoice_update(
        invoice=invoice, actor=actor, now=now, payment_status=Invoice.PaymentStatus.SUCCEEDED
    )


@transaction.atomic
def invoice_lose_dispute(*, invoice: Invoice, actor: Actor, now: datetime) -> Invoice:
    """Marks a payment dispute lost (spec §12.7): finalized or voided invoices only, once; the
    invoice stops being overdue and the `invoice.payment_dispute_lost` webhook is recorded."""
    invoice = lock_invoice(invoice.pk)
    if invoice.status not in (Invoice.Status.FINALIZED, Invoice.Status.VOIDED):
        raise NotAllowed("not_disputable")
    if invoice.payment_dispute_lost_at is None:
        if invoice_is_counted(invoice):
            figures_record(invoice=invoice, sign=-1)
        invoice.payment_dispute_lost_at = now
    invoice.payment_overdue = False
    invoice.save(update_fields=["payment_dispute_lost_at", "payment_overdue", "updated_at"])
    emit_invoice_event(invoice, "invoice.payment_dispute_lost", actor=actor)
    return invoice


def mark_overdue(*, actor: Actor, now: datetime) -> int:
    """The hourly job (spec §12.7, §27 :25): flags finalized, unpaid invoices whose due date has
    passed, without a lost dispute, and records the `invoice.payment_overdue` webhook for each.

    One transaction per invoice, re-checked under its lock, so a payment recorded meanwhile wins
    and a second run flags nothing twice. Returns how many invoices were flagged.
    """
    flagged = 0
    for invoice_id in overdue_candidates(now=now).order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            invoice = lock_overdue_invoice(invoice_id, now=now)
            if invoice is None:
                continue  # paid, voided or flagged since the list was read
            invoice.payment_overdue = True
            invoice.save(update_fields=["payment_overdue", "updated_at"])
            emit_invoice_event(invoice, "invoice.payment_overdue", actor=actor)
            flagged += 1
    return flagged


@transaction.atomic
def fee_update(*, fee: Fee, payment_status: str, actor: Actor, now: datetime) -> Fee:
    """PUT /fees/{id}: the payment status of a fee without invoice (pay-in-advance, not
    invoiceable); an invoiced fee follows its invoice (`invoiced_fee`)."""
    fee = lock_fee(fee.pk)
    if fee.invoice_id is not None:
        raise NotAllowed("invoiced_fee")
    if payment_status not in FEE_PAYMENT_STATUSES:
        raise Invalid({"payment_status": ["value_is_invalid"]})
    fee.payment_status = payment_status
    # only the instant of the current status is kept (a fee may go pending -> failed -> pending)
    fee.succeeded_at = now if payment_status == Fee.PaymentStatus.SUCCEEDED else None
    fee.failed_at = now if payment_status == Fee.PaymentStatus.FAILED else None
    fee.refunded_at = now if payment_status == Fee.PaymentStatus.REFUNDED else None
    fee.save(
        update_fields=["payment_status", "succeeded_at", "failed_at", "refunded_at", "updated_at"]
    )
    record_activity(activity_type="fee.updated", actor=actor, obj=fee)
    return fee


@transaction.atomic
def fee_destroy(*, fee: Fee, actor: Actor, now: datetime) -> Fee:
    """DELETE /fees/{id}: soft-deletes a fee without invoice (`invoiced_fee` otherwise)."""
    fee = lock_fee(fee.pk)
    if fee.invoice_id is not None:
        raise NotAllowed("invoiced_fee")
    if fee.deleted_at is None:
        fee.deleted_at = now
        fee.save(update_fields=["deleted_at", "updated_at"])
        record_activity(activity_type="fee.deleted", actor=actor, obj=fee)
    return fee
