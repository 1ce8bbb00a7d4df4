"""The collection, customer and receivable figure deltas, appended by the database whenever an
invoice changes, equal a recomputation from the invoices after finalization, payments, the
overdue flag, credit notes, void and a lost dispute; folding them changes no sum; the reads
built on them (invoice collection, top customers, receivables) equal the reads of every
invoice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction

from billing.actors import SYSTEM
from invoicing import analytics
from invoicing.models import CollectionFigureDelta, Invoice, ReceivableFigureDelta
from invoicing.services.analytics_figures import (
    figure_deltas_compact,
    figures_summed,
)
from invoicing.services.credit_notes import ItemInput, credit_note_create
from invoicing.services.finalization import finalize_computed
from invoicing.services.payments import invoice_lose_dispute, invoice_update
from invoicing.services.void import invoice_void
from tests.customers.factories import CustomerFactory
from tests.invoicing.analytics_helpers import recomputed
from tests.invoicing.credit_note_builders import simple_invoice

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)
MARCH = dt.date(2026, 3, 1)


@pytest.fixture
def org(organization):
    type(organization).objects.filter(pk=organization.pk).update(
        created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    )
    organization.refresh_from_db()
    return organization


@pytest.fixture
def cust(org):
    return CustomerFactory(organization=org, timezone="UTC", currency="EUR", external_id="only")


def finalized(org, cust, *, amount_cents=10000, issuing=dt.date(2026, 3, 5)) -> Invoice:
    invoice = simple_invoice(
        org, customer=cust, status="draft", amount_cents=amount_cents, issuing_date=issuing
    )
    with transaction.atomic():
        finalize_computed(invoice, actor=SYSTEM, now=NOW)
    invoice.refresh_from_db()
    return invoice


def collection(org) -> dict:
    return figures_summed(org)[CollectionFigureDelta]


def receivable(org) -> dict:
    return figures_summed(org)[ReceivableFigureDelta]


def test_a_finalized_invoice_enters_collection_and_receivables(org, cust):
    invoice = finalized(org, cust)
    entity = invoice.billing_entity_id

    assert collection(org) == {(entity, "EUR", MARCH, "pending"): (1, 12000)}
    assert receivable(org) == {(entity, "EUR", "pending", False): (1, 12000)}
    assert figures_summed(org) == recomputed(org)


def test_a_draft_counts_nowhere(org, cust):
    simple_invoice(org, customer=cust, status="draft", issuing_date=dt.date(2026, 3, 5))

    assert figures_summed(org) == recomputed(org) == {model: {} for model in figures_summed(org)}


def test_a_payment_moves_the_invoice_between_statuses_and_out_of_receivables(org, cust):
    invoice = finalized(org, cust)

    invoice_update(invoice=invoice, payment_status="succeeded", actor=SYSTEM, now=NOW)

    entity = invoice.billing_entity_id
    assert collection(org) == {(entity, "EUR", MARCH, "succeeded"): (1, 12000)}
    assert receivable(org) == {}
    assert figures_summed(org) == recomputed(org)


def test_the_overdue_flag_and_a_partial_payment_move_receivables(org, cust):
    invoice = finalized(org, cust)

    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)
    Invoice.objects.filter(pk=invoice.pk).update(total_paid_amount_cents=2000)

    entity = invoice.billing_entity_id
    assert receivable(org) == {(entity, "EUR", "pending", True): (1, 10000)}
    assert figures_summed(org) == recomputed(org)


def test_an_offsetting_credit_note_lowers_what_is_owed(org, cust):
    invoice = finalized(org, cust)
    fee = invoice.fees.get()

    credit_note_create(
        invoice=invoice, actor=SYSTEM, now=NOW, offset_amount_cents=2400,
        items=[ItemInput(fee_id=str(fee.pk), amount_cents=Decimal(2000))],
    )  # fmt: skip

    assert receivable(org) == {(invoice.billing_entity_id, "EUR", "pending", False): (1, 9600)}
    assert figures_summed(org) == recomputed(org)


def test_void_takes_the_invoice_out_of_every_figure(org, cust):
    invoice = finalized(org, cust)

    invoice_void(invoice=invoice, actor=SYSTEM, now=NOW)

    assert figures_summed(org) == recomputed(org) == {model: {} for model in figures_summed(org)}


def test_a_lost_dispute_takes_the_invoice_out(org, cust):
    invoice = finalized(org, cust)
    invoice_update(invoice=invoice, payment_status="succeeded", actor=SYSTEM, now=NOW)
    invoice.refresh_from_db()

    invoice_lose_dispute(invoice=invoice, actor=SYSTEM, now=NOW)

    assert collection(org) == {}
    assert figures_summed(org) == recomputed(org)


def test_folding_leaves_one_row_per_key_and_the_same_sums(org, cust):
    invoices = [finalized(org, cust, amount_cents=1000 * n) for n in range(1, 5)]
    for invoice in invoices[:2]:
        invoice_update(invoice=invoice, payment_status="succeeded", actor=SYSTEM, now=NOW)
    before = figures_summed(org)
    rows = CollectionFigureDelta.objects.filter(organization=org)
    assert rows.count() > 2

    removed = figure_deltas_compact()

    assert figures_summed(org) == before == recomputed(org)
    assert sorted(rows.values_list("payment_status", flat=True)) == ["pending", "succeeded"]
    assert removed > 0


def test_folding_drops_keys_that_sum_to_nothing(org, cust):
    invoice_void(invoice=finalized(org, cust), actor=SYSTEM, now=NOW)

    figure_deltas_compact()

    assert not CollectionFigureDelta.objects.filter(organization=org).exists()


def test_the_rebuild_command_finds_the_deltas_unchanged(org, cust, capsys):
    invoice = finalized(org, cust)
    invoice_update(invoice=invoice, payment_status="failed", actor=SYSTEM, now=NOW)
    finalized(org, cust, amount_cents=5000, issuing=dt.date(2026, 4, 2))

    call_command("analytics_figures_rebuild", "--organization", org.name, "--dry-run")

    assert "(unchanged)" in capsys.readouterr().out


def test_the_rebuild_command_notices_deltas_that_differ(org, cust, capsys):
    invoice = finalized(org, cust)
    CollectionFigureDelta.objects.create(
        organization=org, billing_entity_id=invoice.billing_entity_id, currency="EUR",
        issuing_month=MARCH, payment_status="pending", invoices_count=1, total_amount_cents=1,
    )  # fmt: skip

    call_command("analytics_figures_rebuild", "--organization", org.name, "--dry-run")

    assert "(they differed)" in capsys.readouterr().out


@pytest.fixture
def history(org, cust):
    """Invoices in three months and statuses, two customers, one overdue, one voided."""
    other = CustomerFactory(organization=org, timezone="UTC", currency="EUR", external_id="two")
    paid = finalized(org, cust, amount_cents=7000, issuing=dt.date(2026, 4, 2))
    invoice_update(invoice=paid, payment_status="succeeded", actor=SYSTEM, now=NOW)
    late = finalized(org, cust, amount_cents=3000, issuing=dt.date(2026, 5, 9))
    Invoice.objects.filter(pk=late.pk).update(payment_overdue=True)
    failed = finalized(org, cust, amount_cents=4000)
    invoice_update(invoice=failed, payment_status="failed", actor=SYSTEM, now=NOW)
    invoice_void(invoice=finalized(org, cust, amount_cents=9000), actor=SYSTEM, now=NOW)
    finalized(org, other, amount_cents=2000, issuing=dt.date(2026, 6, 1))
    return cust, other


def test_collection_from_the_deltas_equals_the_read_of_every_invoice(org, history):
    from_deltas = analytics.Filters(organization=org, today=NOW.date())
    from_invoices = analytics.Filters(
        organization=org, today=NOW.date(), external_customer_id="only"
    )
    only = [
        r
        for r in analytics.invoice_collections(from_deltas)
        if r["month"] != "2026-06-01T00:00:00Z"
    ]

    assert only == [
        r for r in analytics.invoice_collections(from_invoices)
        if r["month"] != "2026-06-01T00:00:00Z"
    ]  # fmt: skip
    assert any(r["payment_status"] == "failed" for r in only)


def test_top_customers_from_the_deltas_are_those_of_the_invoices(org, history):
    cust, other = history
    window = analytics.Filters(organization=org, today=NOW.date(), months=12)

    top = analytics.top_customers(window)

    assert [(r["customer_id"], r["amount_cents"], r["invoices_count"]) for r in top] == [
        (cust.pk, 8400 + 3600 + 4800, 3),
        (other.pk, 2400, 1),
    ]


def test_receivables_from_the_deltas_are_those_of_the_invoices(org, history):
    scope = analytics.Filters(organization=org, today=NOW.date())

    [eur] = analytics.receivables(scope).values()

    # the overdue 36.00 and the failed 48.00 are owed, the 24.00 of the other customer too
    assert eur == analytics.Receivables(
        outstanding_cents=3600 + 4800 + 2400, outstanding_count=3, overdue_cents=3600,
        overdue_count=1, failed_cents=4800, failed_count=1,
    )  # fmt: skip
