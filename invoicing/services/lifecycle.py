"""Life of a subscription invoice after it is built: refresh and finalization of drafts,
numbering, deletion of drafts, failed invoices (spec §2.3, §12.5, §12.6, §12.7, §12.9).

Finalization (`invoice_finalize`) recomputes the draft from its boundaries (late events count),
applies and consumes the customer's coupons, decides zero-amount invoices (closed, no number),
numbers the invoice gaplessly under the lock of its `InvoiceSequence` rows, sets the issuing and
due dates and writes the `invoice.created` outbox row; the PDF task is queued after commit.

Lock order: the invoice (or, while generating, the customer), then the applied coupons in pk
order, then the sequence rows (the customer's, then the entity's), taken last so that the
counters are held only for the end of the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Q

from billing.errors import NotAllowed, NotFound
from billing.periods import local_date
from customers.models import Customer
from invoicing import calculation
from invoicing.models import Invoice, InvoiceSequence, InvoiceSubscription
from invoicing.pdf import generate_invoice_pdf_task
from invoicing.services.generation import invoice_recompute
from invoicing.services.payments import emit_invoice_event, lock_invoice
from wallets.tasks import queue_refresh_after_commit

logger = logging.getLogger(__name__)

Status = Invoice.Status
NUMBERED_STATUSES = (Status.FINALIZED, Status.VOIDED)
# No customer is more than 14 hours ahead of UTC: a superset of the locally due drafts.
_AHEAD_OF_UTC = timedelta(hours=14)


# --------------------------------------------------------------------------------------------
# Numbering (spec §2.3)


def _entity_zone(invoice: Invoice) -> ZoneInfo:
    entity = invoice.billing_entity
    return ZoneInfo(entity.timezone or invoice.organization.timezone or "UTC")


_NEXT_VALUE = """
    INSERT INTO invoicing_invoicesequence
        (organization_id, billing_entity_id, customer_id, last_value)
    VALUES (%(organization)s, %(entity)s, %(customer)s, COALESCE(({given}), 0) + 1)
    ON CONFLICT ON CONSTRAINT invoicing_invoicesequence_unique
    DO UPDATE SET last_value = invoicing_invoicesequence.last_value + 1
    RETURNING last_value
"""
_GIVEN_BY_CUSTOMER = (
    "SELECT MAX(sequential_id) FROM invoicing_invoice "
    "WHERE billing_entity_id = %(entity)s AND customer_id = %(customer)s"
)
_GIVEN_BY_ENTITY = (
    "SELECT MAX(billing_entity_sequential_id) FROM invoicing_invoice "
    "WHERE billing_entity_id = %(entity)s"
)


def _next_value(invoice: Invoice, *, customer_id: UUID | None) -> int:
    """Increments one counter row and returns its new value, the row locked until commit.

    One statement: the row is created on first use (starting after the numbers already given,
    `ON CONFLICT` when two first invoices race) or incremented under its row lock, so a
    concurrent finalization waits and a rolled-back one gives its number back (no gaps).
    """
    if connection.vendor != "postgresql":
        return _next_value_portable(invoice, customer_id=customer_id)
    sql = _NEXT_VALUE.format(given=_GIVEN_BY_ENTITY if customer_id is None else _GIVEN_BY_CUSTOMER)
    params = {
        "organization": invoice.organization_id,
        "entity": invoice.billing_entity_id,
        "customer": customer_id,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def _next_value_portable(invoice: Invoice, *, customer_id: UUID | None) -> int:
    """The same counter through the ORM, for the SQLite trial setup (SQLite serializes writers,
    so the read-then-increment cannot race there; PostgreSQL uses the single statement)."""
    rows = InvoiceSequence.objects.select_for_update().filter(
        billing_entity_id=invoice.billing_entity_id, customer_id=customer_id
    )
    sequence = rows.first()
    if sequence is None:
        given = Invoice.objects.filter(billing_entity_id=invoice.billing_entity_id)
        if customer_id is None:
            start = given.aggregate(m=Max("billing_entity_sequential_id"))["m"]
        else:
            start = given.filter(customer_id=customer_id).aggregate(m=Max("sequential_id"))["m"]
        sequence = InvoiceSequence.objects.create(
            organization_id=invoice.organization_id,
            billing_entity_id=invoice.billing_entity_id,
            customer_id=customer_id,
            last_value=start or 0,
        )
    rows.filter(pk=sequence.pk).update(last_value=F("last_value") + 1)
    sequence.refresh_from_db(fields=["last_value"])
    return sequence.last_value


def _switched_from_customer_numbering(invoice: Invoice) -> bool:
    """Lago `switched_from_customer_numbering?`: the entity's last numbered invoice had no
    entity sequence, so the entity counter restarts from the count of numbered invoices."""
    last = (
        Invoice.objects.filter(
            billing_entity_id=invoice.billing_entity_id,
            status__in=NUMBERED_STATUSES,
            self_billed=False,
        )
        .exclude(pk=invoice.pk)
        .order_by("-finalized_at", "-created_at")
        .values_list("billing_entity_sequential_id", flat=True)
        .first()
    )
    return last is None and _entity_numbered_count(invoice) > 0


def _entity_numbered_count(invoice: Invoice) -> int:
    return (
        Invoice.objects.filter(
            billing_entity_id=invoice.billing_entity_id,
            status__in=NUMBERED_STATUSES,
            self_billed=False,
        )
        .exclude(pk=invoice.pk)
        .count()
    )


def invoice_assign_number(*, invoice: Invoice, now: datetime, save: bool = True) -> Invoice:
    """Numbers an invoice being finalized, in the caller's transaction (spec §2.3).

    `sequential_id` counts the finalized invoices of the customer with the billing entity
    (`<prefix>-<customer seq>-<seq>`); with `per_billing_entity` numbering the entity's counter
    gives `<prefix>-<YYYYMM>-<seq>` (finalization month in the entity's timezone). Counters are
    locked rows (STYLE §7), always the customer's before the entity's so that two
    finalizations never wait on each other in opposite orders; a rolled-back finalization gives
    its number back, so numbers have no gaps.
    """
    entity = invoice.billing_entity
    per_entity = (
        entity.document_numbering == entity.DocumentNumbering.PER_BILLING_ENTITY
        and not invoice.self_billed  # spec §2.3: self-billed invoices are numbered per customer
    )
    invoice.sequential_id = _next_value(invoice, customer_id=invoice.customer_id)
    prefix = entity.document_number_prefix or invoice.organization.document_number_prefix
    if per_entity:
        value = _next_value(invoice, customer_id=None)
        if _switched_from_customer_numbering(invoice):
            # spec §2.3: the counter continues from the invoices the entity already numbered
            value = _entity_numbered_count(invoice) + 1
            InvoiceSequence.objects.filter(
                billing_entity_id=invoice.billing_entity_id, customer__isnull=True
            ).update(last_value=value)
        invoice.billing_entity_sequential_id = value
        month = local_date(now, _entity_zone(invoice)).strftime("%Y%m")
        invoice.number = calculation.per_entity_number(prefix, month, value)
    else:
        invoice.number = calculation.per_customer_number(
            prefix, invoice.customer.sequential_id, invoice.sequential_id
        )
    if save:
        invoice.save(
            update_fields=["number", "sequential_id", "billing_entity_sequential_id", "updated_at"]
        )
    return invoice


# --------------------------------------------------------------------------------------------
# Final status


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


def finalize_computed(
    invoice: Invoice,
    *,
    now: datetime,
    issuing_date: date | None = None,
    update_fields: Sequence[str] = (),
) -> Invoice:
    """The final status of a computed invoice, in the caller's transaction (spec §12.5, §12.6).

    An empty invoice the zero-amount setting skips is `closed` (no number, no webhook);
    otherwise `finalized`: number, due date, `invoice.created`, PDF after commit.
    `update_fields`: fields the caller changed and leaves to this save (one UPDATE).
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
    emit_invoice_event(invoice, "invoice.created")
    invoice_id = str(invoice.pk)
    transaction.on_commit(lambda: _render_pdf_after_commit(invoice_id), robust=True)
    # spec §17.4: drafts leave the ongoing balance, credits may have been drawn
    queue_refresh_after_commit(customer_id=invoice.customer_id)
    return invoice


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
def invoice_refresh(*, invoice: Invoice, now: datetime) -> Invoice:
    """Recomputes a draft (late events, catalog changes; spec §12.5); coupons are not consumed.

    Any other status is returned unchanged (Lago refreshes drafts only).
    """
    invoice = _locked(invoice)
    if invoice.status != Status.DRAFT:
        return invoice
    invoice.ready_to_be_refreshed = False
    invoice.save(update_fields=["ready_to_be_refreshed", "updated_at"])
    invoice = invoice_recompute(invoice=invoice, finalizing=False, now=now)
    queue_refresh_after_commit(customer_id=invoice.customer_id)  # drafts count (spec §17.4)
    return invoice


@transaction.atomic
def invoice_finalize(*, invoice: Invoice, now: datetime) -> Invoice:
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
    invoice = invoice_recompute(invoice=invoice, finalizing=True, now=now)
    return finalize_computed(
        invoice, now=now, issuing_date=_finalization_issuing_date(invoice, now)
    )


@transaction.atomic
def invoice_retry(*, invoice: Invoice, now: datetime) -> Invoice:
    """POST /invoices/{id}/retry: re-runs the finalization of a failed invoice (spec §12.9)."""
    locked = _locked(invoice)
    if locked.status != Status.FAILED:
        raise NotAllowed("invalid_status")
    return invoice_finalize(invoice=locked, now=now)


@transaction.atomic
def invoice_delete_draft(*, invoice: Invoice, now: datetime) -> Invoice:
    """DELETE /invoices/{id}: a draft becomes `deleted` (spec §12.5). Its rows stay, so its
    periods are never billed again; no coupon was consumed."""
    invoice = _locked(invoice)
    if invoice.status != Status.DRAFT:
        raise NotAllowed("not_deletable")
    invoice.status = Status.DELETED
    invoice.save(update_fields=["status", "updated_at"])
    emit_invoice_event(invoice, "invoice.deleted")
    queue_refresh_after_commit(customer_id=invoice.customer_id)  # drafts count (spec §17.4)
    return invoice


@transaction.atomic
def invoice_mark_failed(*, invoice: Invoice, error: BaseException, now: datetime) -> Invoice:
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


def _attempt_finalization(invoice: Invoice, now: datetime) -> Invoice | None:
    try:
        return invoice_finalize(invoice=invoice, now=now)
    except Exception as exc:
        logger.exception("invoice %s could not be finalized", invoice.pk)
        invoice_mark_failed(invoice=invoice, error=exc, now=now)
        return None


def finalize_due_drafts(*, now: datetime) -> list[Invoice]:
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
        result = _attempt_finalization(invoice, now)
        if result is not None and result.status in (Status.FINALIZED, Status.CLOSED):
            finalized.append(result)
    return finalized


def refresh_flagged_drafts(*, now: datetime) -> list[Invoice]:
    """Refreshes the drafts flagged `ready_to_be_refreshed` by late events (every 5 min)."""
    refreshed = []
    for invoice in Invoice.objects.filter(status=Status.DRAFT, ready_to_be_refreshed=True).order_by(
        "pk"
    ):
        try:
            refreshed.append(invoice_refresh(invoice=invoice, now=now))
        except Exception:
            logger.exception("draft %s could not be refreshed", invoice.pk)
    return refreshed


def retry_failed(*, now: datetime) -> list[Invoice]:
    """Retries the finalization of failed invoices (every 15 minutes, spec §12.9)."""
    retried = []
    for invoice in Invoice.objects.filter(
        status=Status.FAILED, invoice_type=Invoice.InvoiceType.SUBSCRIPTION
    ).order_by("pk"):
        result = _attempt_finalization(invoice, now)
        if result is not None and result.status in (Status.FINALIZED, Status.CLOSED):
            retried.append(result)
    return retried
