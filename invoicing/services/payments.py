"""Payment status, metadata, lost disputes and overdue flags of invoices; payment status of
invoiceless fees (spec §12.7, §12.12, §13)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import transaction

from billing.errors import Invalid, NotAllowed
from billing.models import OutboxEvent
from invoicing.models import Fee, Invoice, InvoiceMetadata
from invoicing.selectors import overdue_candidates

INVOICE_PAYMENT_STATUSES = frozenset(Invoice.PaymentStatus.values)
FEE_PAYMENT_STATUSES = frozenset(Fee.PaymentStatus.values)
METADATA_KEY_MAX = 255
METADATA_VALUE_MAX = 1024


def lock_invoice(invoice_id: object) -> Invoice:
    """The invoice row, locked (the caller's copy may be stale)."""
    return (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=invoice_id)
    )


def emit_invoice_event(invoice: Invoice, event_type: str, **extra: object) -> OutboxEvent:
    """An outbox row for integrations (webhook `event_type`), in the current transaction."""
    return OutboxEvent.objects.create(
        organization_id=invoice.organization_id,
        event_type=event_type,
        object_type="invoice",
        object_id=str(invoice.pk),
        payload={
            "lago_id": str(invoice.pk),
            "number": invoice.number,
            "invoice_type": invoice.invoice_type,
            "status": invoice.status,
            "payment_status": invoice.payment_status,
            "payment_overdue": invoice.payment_overdue,
            "currency": invoice.currency,
            "total_amount_cents": invoice.total_amount_cents,
            "lago_customer_id": str(invoice.customer_id),
            "external_customer_id": invoice.customer.external_id,
            **extra,
        },
    )


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


def _set_payment_status(invoice: Invoice, payment_status: str) -> list[str]:
    invoice.payment_status = payment_status
    changed = ["payment_status"]
    if payment_status == Invoice.PaymentStatus.SUCCEEDED:
        # spec §12.7: a paid invoice is no longer overdue
        invoice.payment_overdue = False
        invoice.total_paid_amount_cents = invoice.total_amount_cents
        changed += ["payment_overdue", "total_paid_amount_cents"]
    return changed


@transaction.atomic
def invoice_update(
    *,
    invoice: Invoice,
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
        if payment_status != invoice.payment_status:
            changed = _set_payment_status(invoice, payment_status)
            invoice.save(update_fields=[*changed, "updated_at"])
            if invoice.invoice_type == Invoice.InvoiceType.CREDIT:
                # spec §17.3: the top-up's credits settle (or fail) with the payment
                from invoicing.services.credit_invoices import credit_invoice_payment_changed

                credit_invoice_payment_changed(invoice=invoice, now=now)
            emit_invoice_event(invoice, "invoice.payment_status_updated")
    if items is not None:
        _replace_metadata(invoice, items)
        invoice.save(update_fields=["updated_at"])
    return invoice


@transaction.atomic
def invoice_mark_paid(*, invoice: Invoice, now: datetime) -> Invoice:
    """Records a payment received outside a provider (the admin's "mark paid")."""
    return invoice_update(invoice=invoice, now=now, payment_status=Invoice.PaymentStatus.SUCCEEDED)


@transaction.atomic
def invoice_lose_dispute(*, invoice: Invoice, now: datetime) -> Invoice:
    """Marks a payment dispute lost (spec §12.7): finalized or voided invoices only, once; the
    invoice stops being overdue and the `invoice.payment_dispute_lost` webhook is recorded."""
    invoice = lock_invoice(invoice.pk)
    if invoice.status not in (Invoice.Status.FINALIZED, Invoice.Status.VOIDED):
        raise NotAllowed("not_disputable")
    if invoice.payment_dispute_lost_at is None:
        invoice.payment_dispute_lost_at = now
    invoice.payment_overdue = False
    invoice.save(update_fields=["payment_dispute_lost_at", "payment_overdue", "updated_at"])
    emit_invoice_event(invoice, "invoice.payment_dispute_lost")
    return invoice


def mark_overdue(*, now: datetime) -> int:
    """The hourly job (spec §12.7, §27 :25): flags finalized, unpaid invoices whose due date has
    passed, without a lost dispute, and records the `invoice.payment_overdue` webhook for each.

    One transaction per invoice, re-checked under its lock, so a payment recorded meanwhile wins
    and a second run flags nothing twice. Returns how many invoices were flagged.
    """
    flagged = 0
    for invoice_id in overdue_candidates(now=now).order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            invoice = (
                overdue_candidates(now=now)
                .select_for_update(of=("self",), skip_locked=True)
                .select_related("customer")
                .filter(pk=invoice_id)
                .first()
            )
            if invoice is None:
                continue  # paid, voided or flagged since the list was read
            invoice.payment_overdue = True
            invoice.save(update_fields=["payment_overdue", "updated_at"])
            emit_invoice_event(invoice, "invoice.payment_overdue")
            flagged += 1
    return flagged


@transaction.atomic
def fee_update(*, fee: Fee, payment_status: str, now: datetime) -> Fee:
    """PUT /fees/{id}: the payment status of a fee without invoice (pay-in-advance, not
    invoiceable); an invoiced fee follows its invoice (`invoiced_fee`)."""
    fee = Fee.objects.select_for_update(of=("self",)).get(pk=fee.pk)
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
    return fee


@transaction.atomic
def fee_destroy(*, fee: Fee, now: datetime) -> Fee:
    """DELETE /fees/{id}: soft-deletes a fee without invoice (`invoiced_fee` otherwise)."""
    fee = Fee.objects.select_for_update(of=("self",)).get(pk=fee.pk)
    if fee.invoice_id is not None:
        raise NotAllowed("invoiced_fee")
    if fee.deleted_at is None:
        fee.deleted_at = now
        fee.save(update_fields=["deleted_at", "updated_at"])
    return fee
