"""The collection figures (counted invoices per issuing month and payment status) stay equal to
what the invoices sum to whatever changes them (finalize, a payment, a bulk update, void, a lost
dispute, a deletion), and invoice collection read from them equals a read of every invoice."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
from django.db import transaction

from billing.actors import SYSTEM
from invoicing import analytics
from invoicing.models import Invoice, MonthlyCollectionFigure
from invoicing.services.analytics_figures import figures_rebuild
from invoicing.services.finalization import finalize_computed
from invoicing.services.payments import invoice_lose_dispute
from invoicing.services.void import invoice_void
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)


def figures(org) -> dict:
    return {
        (f.issuing_month, f.currency, f.billing_entity_id, f.payment_status):
        (f.invoices_count, f.total_amount_cents)
        for f in MonthlyCollectionFigure.objects.filter(organization=org) if f.invoices_count
    }  # fmt: skip


def reference(org) -> dict:
    """The same sums, from every invoice, in Python."""
    found: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for invoice in Invoice.objects.filter(organization=org):
        if invoice.status != "finalized" or invoice.self_billed:
            continue
        if invoice.payment_dispute_lost_at is not None:
            continue
        key = (invoice.issuing_date.replace(day=1), invoice.currency,
               invoice.billing_entity_id, invoice.payment_status)  # fmt: skip
        found[key][0] += 1
        found[key][1] += invoice.total_amount_cents
    return {key: tuple(value) for key, value in found.items()}


@pytest.fixture
def org(organization):
    type(organization).objects.filter(pk=organization.pk).update(
        created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    )
    organization.refresh_from_db()
    return organization


@pytest.fixture
def invoices(org):
    """Drafts in two currencies and three issuing months, finalized through the service."""
    made = []
    for index in range(6):
        customer = CustomerFactory(organization=org, timezone="UTC", currency="EUR")
        invoice = build_invoice(
            org, customer=customer, status="draft", currency="USD" if index == 4 else "EUR",
            issuing_date=dt.date(2026, 3 + index % 3, 1 + 5 * index),
            fees=[FeeSpec(amount_cents=1000 * (index + 1))],
        )  # fmt: skip
        with transaction.atomic():
            finalize_computed(invoice, actor=SYSTEM, now=NOW)
        invoice.refresh_from_db()
        made.append(invoice)
    return made


def test_finalizing_counts_the_invoices(org, invoices):
    assert figures(org) == reference(org)
    assert sum(count for count, _ in figures(org).values()) == 6


def test_a_payment_moves_the_invoice_to_its_new_status(org, invoices):
    invoice = invoices[0]
    invoice.payment_status = Invoice.PaymentStatus.SUCCEEDED
    invoice.save()

    assert figures(org) == reference(org)


def test_a_bulk_update_moves_the_invoices(org, invoices):
    Invoice.objects.filter(organization=org).update(payment_status=Invoice.PaymentStatus.FAILED)

    assert figures(org) == reference(org)
    assert {key[3] for key in figures(org)} == {"failed"}


def test_voiding_takes_the_invoice_out(org, invoices):
    invoice_void(invoice=invoices[1], actor=SYSTEM, now=NOW)

    assert figures(org) == reference(org)


def test_a_lost_dispute_takes_the_invoice_out(org, invoices):
    invoice_lose_dispute(invoice=invoices[2], actor=SYSTEM, now=NOW)

    assert figures(org) == reference(org)


def test_deleting_an_invoice_takes_it_out(org, invoices):
    invoices[3].fees.all().delete()
    Invoice.objects.filter(pk=invoices[3].pk).delete()

    assert figures(org) == reference(org)


def test_the_rebuild_reproduces_the_figures(org, invoices):
    Invoice.objects.filter(pk=invoices[0].pk).update(payment_status="succeeded")
    kept = figures(org)

    figures_rebuild(organization=org)

    assert figures(org) == kept


@pytest.mark.parametrize("currency", [None, "EUR", "USD"])
def test_collection_read_equals_a_read_of_every_invoice(org, invoices, currency):
    Invoice.objects.filter(pk=invoices[5].pk).update(payment_status="succeeded")
    whole = analytics.Filters(organization=org, today=NOW.date(), currency=currency)
    expected = defaultdict(lambda: [0, 0])
    for (month, cur, _entity, status), (count, total) in reference(org).items():
        if currency is None or cur == currency:
            expected[(month, cur, status)][0] += count
            expected[(month, cur, status)][1] += total
    got = {
        (row["m"], row["currency"], row["payment_status"]): [row["count"], row["amount"]]
        for row in analytics.invoice_month_rows(whole)
    }
    assert got == dict(expected)


@pytest.mark.parametrize(
    "split",
    [{"offset_amount_cents": 12000}, {"offset_amount_cents": 4800}, {"credit_amount_cents": 6000}],
    ids=["whole offset", "part offset", "credit"],
)
def test_a_credit_note_keeps_the_figures_exact(org, split):
    from decimal import Decimal

    from invoicing.services.credit_notes import ItemInput, credit_note_create
    from tests.invoicing.credit_note_builders import simple_invoice

    invoice = simple_invoice(org, customer=CustomerFactory(organization=org, timezone="UTC"))
    amount = split.get("offset_amount_cents", split.get("credit_amount_cents")) * 10 // 12
    credit_note_create(
        invoice=invoice, actor=SYSTEM, now=NOW,
        items=[ItemInput(fee_id=str(invoice.fees.get().pk), amount_cents=Decimal(amount))],
        **split,
    )  # fmt: skip

    assert figures(org) == reference(org)
    assert figures(org)  # the invoice is counted
