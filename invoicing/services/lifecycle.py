"""Life of a subscription invoice after it is built: refresh and finalization of drafts,
deletion of drafts, failed invoices (spec §12.5, §12.6, §12.7, §12.9).

Finalization (`invoice_finalize`) recomputes the draft from its boundaries (late events count),
applies and consumes the customer's coupons, then gives it its final status
(`finalization.finalize_computed`: zero-amount invoices closed without number, others numbered
gaplessly by `numbering`, dated, `invoice.created` recorded, the PDF queued after commit).

Lock order: the invoice (or, while generating, the customer), then the applied coupons in pk
order, then the sequence rows (the customer's, then the entity's), taken last so that the
counters are held only for the end of the transaction.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Q

from billing.actors import Actor
from billing.errors import NotAllowed, NotFound
from billing.periods import local_date
from invoicing import calculation
from invoicing.locks import lock_invoice
from invoicing.models import Invoice, InvoiceSubscription
from invoicing.services.events import emit_invoice_event
from invoicing.services.finalization import finalize_computed
from invoicing.services.generation import invoice_recompute
from wallets.tasks import queue_refresh_after_commit

logger = logging.getLogger(__name__)

Status = Invoice.Status
# No customer is more than 14 hours ahead of UTC: a superset of the locally due drafts.
_AHEAD_OF_UTC = timedelta(hours=14)


def _finalization_issuing_date(invoice: Invoice, now: datetime) -> date:
    """Issuing date of a draft finalized now (spec §12.7): the finalization date, unless a
    recurring invoice keeps its anchor."""
    customer = invoice.customer
    config = customer.billing_configuration or {}
    adjustment = (
        config.get("subscription_invoice_issuing_date_adjustment")
        or invoice.billing_entity.subscription_invoice_issuing_date_adjustment
    )
    recurring = InvoiceSubscription.objects.filter(invoice_id=invoice.pk, recurring=True).exists()
    if recurring and adjustment == calculation.IssuingDateAdjustment.KEEP_ANCHOR:
        return invoice.issuing_date
    return local_date(now, ZoneInfo(customer.applicable_timezone))


def _locked(invoice: Invoice) -> Invoice:
    locked = lock_invoice(invoice.pk)
    if locked.status == Status.DELETED:
        raise NotFound("invoice")
    return locked


# --------------------------------------------------------------------------------------------
# Services


@transaction.atomic
def invoice_refresh(*, invoice: Invoice, actor: Actor, now: datetime) -> Invoice:
    """Recomputes a draft (late events, catalog changes; spec §12.5); coupons are not consumed.

    Any other status is returned unchanged (Lago refreshes drafts only).
    """
    invoice = _locked(invoice)
    if invoice.status != Status.DRAFT:
        return invoice
    invoice.ready_to_be_refreshed = False
    invoice.save(update_fields=["ready_to_be_refreshed", "updated_at"])
    invoice = invoice_recompute(invoice=invoice, finalizing=False, actor=actor, now=now)
    queue_refresh_after_commit(customer_id=invoice.customer_id)  # drafts count (spec §17.4)
    return invoice


@transaction.atomic
def invoice_finalize(*, invoice: Invoice, actor: Actor, now: datetime) -> Invoice:
    """Finalizes a draft (or retries a failed invoice): recompute with the coupons, then the
    final status, number and dates (spec §12.5). A finalized invoice is returned unchanged."""
    invoice = _locked(invoice)
    if invoice.status not in (Status.DRAFT, Status.FAILED):
        if invoice.status == Status.FINALIZED:
            return invoice
        raise NotAllowed("invoice_not_finalizable")
    if invoice.invoice_type != Invoice.InvoiceType.SUBSCRIPTION:
        raise NotAllowed("invoice_not_finalizable")
    invoice.ready_to_be_refreshed = False
    invoice.save(update_fields=["ready_to_be_refreshed", "updated_at"])
    invoice = invoice_recompute(invoice=invoice, finalizing=True, actor=actor, now=now)
    return finalize_computed(
        invoice, actor=actor, now=now, issuing_date=_finalization_issuing_date(invoice, now)
    )


@transaction.atomic
def invoice_retry(*, invoice: Invoice, actor: Actor, now: datetime) -> Invoice:
    """POST /invoices/{id}/retry: re-runs the finalization of a failed invoice (spec §12.9)."""
    locked = _locked(invoice)
    if locked.status != Status.FAILED:
        raise NotAllowed("invalid_status")
    return invoice_finalize(invoice=locked, actor=actor, now=now)


@transaction.atomic
def invoice_delete_draft(*, invoice: Invoice, actor: Actor, now: datetime) -> Invoice:
    """DELETE /invoices/{id}: a draft becomes `deleted` (spec §12.5). Its rows stay, so its
    periods are never billed again; no coupon was consumed."""
    invoice = _locked(invoice)
    if invoice.status != Status.DRAFT:
        raise NotAllowed("not_deletable")
    invoice.status = Status.DELETED
    invoice.save(update_fields=["status", "updated_at"])
    emit_invoice_event(invoice, "invoice.deleted", actor=actor)
    queue_refresh_after_commit(customer_id=invoice.customer_id)  # drafts count (spec §17.4)
    return invoice


@transaction.atomic
def invoice_mark_failed(
    *, invoice: Invoice, error: BaseException, actor: Actor, now: datetime
) -> Invoice:
    """Records a finalization error on a draft or failed invoice (spec §12.9)."""
    invoice = _locked(invoice)
    if invoice.status not in (Status.DRAFT, Status.FAILED):
        return invoice
    invoice.status = Status.FAILED
    invoice.error_details = [
        *invoice.error_details[-4:],
        {
            "error_code": "invoice_finalization_error",
            "details": {"error": type(error).__name__, "message": str(error)[:500]},
            "at": now.isoformat(),
        },
    ]
    invoice.save(update_fields=["status", "error_details", "updated_at"])
    return invoice


# --------------------------------------------------------------------------------------------
# Clock-driven (spec §27): one transaction per invoice, a failure never stops the others


def _attempt_finalization(invoice: Invoice, *, actor: Actor, now: datetime) -> Invoice | None:
    try:
        return invoice_finalize(invoice=invoice, actor=actor, now=now)
    except Exception as exc:
        logger.exception("invoice %s could not be finalized", invoice.pk)
        invoice_mark_failed(invoice=invoice, error=exc, actor=actor, now=now)
        return None


def finalize_due_drafts(*, actor: Actor, now: datetime) -> list[Invoice]:
    """Finalizes drafts whose grace period is over in their customer's timezone (hourly :20):
    `COALESCE(expected_finalization_date, issuing_date) <= today` (spec §12.5)."""
    horizon = (now + _AHEAD_OF_UTC).date()
    candidates = (
        Invoice.objects.filter(status=Status.DRAFT)
        .filter(
            Q(expected_finalization_date__lte=horizon)
            | Q(expected_finalization_date__isnull=True, issuing_date__lte=horizon)
        )
        .select_related("customer__billing_entity", "customer__organization")
        .order_by("pk")
    )
    finalized = []
    for invoice in candidates:
        due = invoice.expected_finalization_date or invoice.issuing_date
        if due > local_date(now, ZoneInfo(invoice.customer.applicable_timezone)):
            continue
        result = _attempt_finalization(invoice, actor=actor, now=now)
        if result is not None and result.status in (Status.FINALIZED, Status.CLOSED):
            finalized.append(result)
    return finalized


def refresh_flagged_drafts(*, actor: Actor, now: datetime) -> list[Invoice]:
    """Refreshes the drafts flagged `ready_to_be_refreshed` by late events (every 5 min)."""
    refreshed = []
    for invoice in Invoice.objects.filter(status=Status.DRAFT, ready_to_be_refreshed=True).order_by(
        "pk"
    ):
        try:
            refreshed.append(invoice_refresh(invoice=invoice, actor=actor, now=now))
        except Exception:
            logger.exception("draft %s could not be refreshed", invoice.pk)
    return refreshed


def retry_failed(*, actor: Actor, now: datetime) -> list[Invoice]:
    """Retries the finalization of failed invoices (every 15 minutes, spec §12.9)."""
    retried = []
    for invoice in Invoice.objects.filter(
        status=Status.FAILED, invoice_type=Invoice.InvoiceType.SUBSCRIPTION
    ).order_by("pk"):
        result = _attempt_finalization(invoice, actor=actor, now=now)
        if result is not None and result.status in (Status.FINALIZED, Status.CLOSED):
            retried.append(result)
    return retried
