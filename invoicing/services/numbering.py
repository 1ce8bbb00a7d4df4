"""Gapless invoice numbers (spec §2.3): the customer's and the billing entity's counters.

Counters are `InvoiceSequence` rows, incremented under their row lock in the finalizing
transaction (STYLE §7: never `MAX()+1`); the customer's is always taken before the entity's so
that two finalizations never wait on each other in opposite orders, and a rolled-back
finalization gives its number back.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import F, Max

from billing.periods import local_date
from invoicing import calculation
from invoicing.locks import lock_invoice_sequence
from invoicing.models import Invoice, InvoiceSequence

Status = Invoice.Status
NUMBERED_STATUSES = (Status.FINALIZED, Status.VOIDED)


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
    sequence = lock_invoice_sequence(
        billing_entity_id=invoice.billing_entity_id, customer_id=customer_id
    )
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
    InvoiceSequence.objects.filter(pk=sequence.pk).update(last_value=F("last_value") + 1)
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
