"""Finalizations, payment status changes, compactions and rebuilds at once, on real PostgreSQL
connections (threads): the figure deltas the database appends for them take no row lock another
writer waits on, no transaction deadlocks, and the figures equal a recomputation from the
invoices afterwards."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from django.db import transaction

from billing.actors import SYSTEM
from invoicing.models import (
    CollectionFigureDelta,
    Invoice,
    MonthlyFeeFigure,
    MonthlyInvoiceFigure,
)
from invoicing.services.analytics_figures import (
    figure_deltas_compact,
    figures_rebuild,
    figures_summed,
)
from invoicing.services.finalization import finalize_computed
from invoicing.services.payments import invoice_update
from tests.concurrency import (
    hold_one_and_run_meanwhile,
    hold_one_until_another_waits,
    run_at_once,
)
from tests.customers.factories import CustomerFactory
from tests.invoicing.analytics_helpers import recomputed
from tests.invoicing.credit_note_builders import simple_invoice

pytestmark = pytest.mark.django_db(transaction=True)

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)
ISSUING = dt.date(2026, 6, 5)
EACH = 10


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def draft(organization, customer) -> Invoice:
    return simple_invoice(organization, customer=customer, status="draft", issuing_date=ISSUING)


def finalize(invoice: Invoice) -> Callable[[], object]:
    def job() -> None:
        with transaction.atomic():
            finalize_computed(Invoice.objects.get(pk=invoice.pk), actor=SYSTEM, now=NOW)

    return job


def pay(invoice: Invoice, status: str) -> Callable[[], object]:
    return lambda: invoice_update(
        invoice=Invoice.objects.get(pk=invoice.pk), payment_status=status, actor=SYSTEM, now=NOW
    )


def finalized(organization, customer) -> Invoice:
    invoice = draft(organization, customer)
    finalize(invoice)()
    return invoice


def test_finalizations_and_payments_at_once_neither_deadlock_nor_drift(organization):
    customers = [CustomerFactory(organization=organization, currency="EUR") for _ in range(EACH)]
    drafts = [draft(organization, customer) for customer in customers]
    to_pay = [finalized(organization, customer) for customer in customers]
    jobs = [finalize(invoice) for invoice in drafts]
    jobs += [pay(invoice, "succeeded" if i % 2 else "failed") for i, invoice in enumerate(to_pay)]
    jobs.append(figure_deltas_compact)

    assert run_at_once(jobs) == []

    summed = figures_summed(organization)
    assert summed == recomputed(organization)
    collection = {
        status: count for (_, _, _, status), (count, _) in summed[CollectionFigureDelta].items()
    }
    assert collection == {"pending": EACH, "succeeded": EACH // 2, "failed": EACH // 2}


def test_payments_wait_on_no_figure_row_of_a_finalization_in_progress(organization):
    """One transaction has finalized an invoice (its figures written, not committed); another
    changes the payment statuses of invoices of the same month and currency meanwhile."""
    first, second = (CustomerFactory(organization=organization, currency="EUR") for _ in "ab")
    pending = draft(organization, first)
    paid = [finalized(organization, second) for _ in range(3)]

    errors = hold_one_and_run_meanwhile(
        finalize(pending),
        [
            pay(invoice, s)
            for invoice, s in zip(paid, ("succeeded", "failed", "succeeded"), strict=True)
        ],
    )

    assert errors == []
    assert Invoice.objects.get(pk=pending.pk).status == "finalized"
    assert figures_summed(organization) == recomputed(organization)


def test_finalizations_of_one_month_wait_on_no_figure_row_of_each_other(organization):
    """Two customers' invoices of the same month and currency: while one finalization is
    uncommitted, the other's figures (fee, invoice, usage, collection) are written meanwhile."""
    first, second = (CustomerFactory(organization=organization, currency="EUR") for _ in "ab")
    held, other = draft(organization, first), draft(organization, second)

    errors = hold_one_and_run_meanwhile(finalize(held), [finalize(other)])

    assert errors == []
    assert set(Invoice.objects.values_list("status", flat=True)) == {"finalized"}
    assert figures_summed(organization) == recomputed(organization)


def deleting_figures(sql: str) -> bool:
    """A statement deleting figure rows (a rebuild's or a compaction's)."""
    return "DELETE FROM" in sql and "figure" in sql


def rebuild(organization) -> Callable[[], object]:
    return lambda: figures_rebuild(organization=organization)


def test_an_invoice_finalized_during_a_rebuild_is_counted_once(organization):
    """The rebuild stops right after its first delete of the organization's figures; another
    connection finalizes an invoice and commits; then the rebuild reads the invoices."""
    customer = CustomerFactory(organization=organization, currency="EUR")
    finalized(organization, customer)
    late = draft(organization, customer)

    errors = hold_one_and_run_meanwhile(
        rebuild(organization), [finalize(late)], after_statement=deleting_figures
    )

    assert errors == []
    summed = figures_summed(organization)
    assert summed == recomputed(organization)
    [(invoices, _, _)] = summed[MonthlyInvoiceFigure].values()
    [(_, _, fees)] = summed[MonthlyFeeFigure].values()
    assert (invoices, fees) == (2, 2)


def test_a_rebuild_started_during_a_compaction_waits_for_it_and_rewrites_the_folded_rows(
    organization,
):
    """A compaction has folded the organization's first figure table (two rows per key, not
    committed) when the rebuild starts: the rebuild waits for the compaction to commit, then
    deletes and rewrites the folded rows without a serialization failure or a deadlock."""
    customer = CustomerFactory(organization=organization, currency="EUR")
    finalized(organization, customer)
    finalized(organization, customer)

    errors = hold_one_until_another_waits(
        figure_deltas_compact, rebuild(organization), after_statement=deleting_figures
    )

    assert errors == []
    summed = figures_summed(organization)
    assert summed == recomputed(organization)
    [(invoices, _, _)] = summed[MonthlyInvoiceFigure].values()
    assert invoices == 2
