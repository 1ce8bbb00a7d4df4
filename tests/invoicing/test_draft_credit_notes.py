"""Automatic credit notes made on a draft invoice stay drafts until the invoice is finalized
(Lago's `CreditNotes::CreateService` takes the invoice's status; `RefreshDraftAndFinalize`
finalizes them): numbered then, hidden from the API and never consumed before."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction

from billing.actors import SYSTEM
from billing.errors import NotAllowed
from billing.models import OutboxEvent
from invoicing.credit_note_models import CreditNote
from invoicing.services.credit_note_consumption import available_credit_notes
from invoicing.services.credit_notes import ItemInput, credit_note_create
from invoicing.services.finalization import finalize_computed
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_pdfs(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


@pytest.fixture
def draft(organization):
    customer = CustomerFactory(organization=organization, currency="EUR")
    return build_invoice(
        organization, customer=customer, fees=[FeeSpec(amount_cents=10000)], status="draft"
    )


def automatic_note(invoice, **amounts) -> CreditNote:
    return credit_note_create(
        invoice=invoice, actor=SYSTEM, now=NOW, automatic=True,
        items=[ItemInput(str(invoice.fees.get().pk), 2000)], **amounts,
    )  # fmt: skip


def finalize(invoice) -> None:
    with transaction.atomic():
        finalize_computed(invoice, actor=SYSTEM, now=NOW)


def test_an_automatic_note_on_a_draft_is_a_draft_without_a_number(draft):
    note = automatic_note(draft, credit_amount_cents=2000)
    assert (note.status, note.number) == ("draft", "")
    assert not OutboxEvent.objects.filter(event_type="credit_note.created").exists()


def test_a_draft_note_is_never_consumed(draft):
    automatic_note(draft, credit_amount_cents=2000)
    credits = available_credit_notes(customer_id=draft.customer_id, currency="EUR", lock=False)
    assert credits.notes == []


def test_a_draft_note_is_hidden_from_the_api(api, draft):
    note = automatic_note(draft, credit_amount_cents=2000)
    assert api.get("/api/v1/credit_notes").json()["credit_notes"] == []
    assert api.get(f"/api/v1/credit_notes/{note.pk}").status_code == 404


def test_finalizing_the_invoice_numbers_and_finalizes_its_draft_notes(api, draft):
    first = automatic_note(draft, credit_amount_cents=2000)
    second = automatic_note(draft, credit_amount_cents=2000)

    finalize(draft)

    draft.refresh_from_db()
    first.refresh_from_db()
    second.refresh_from_db()
    assert draft.status == "finalized"
    assert (first.status, first.number) == ("finalized", f"{draft.number}-CN001")
    assert (second.status, second.number) == ("finalized", f"{draft.number}-CN002")
    assert OutboxEvent.objects.filter(event_type="credit_note.created").count() == 2
    listed = api.get("/api/v1/credit_notes").json()["credit_notes"]
    assert sorted(n["number"] for n in listed) == [first.number, second.number]


def test_a_finalized_draft_note_is_consumed_by_the_next_invoices(draft):
    note = automatic_note(draft, credit_amount_cents=2000)
    finalize(draft)
    credits = available_credit_notes(customer_id=draft.customer_id, currency="EUR", lock=False)
    assert [n.pk for n in credits.notes] == [note.pk]


def test_a_draft_offset_lowers_what_is_due_only_once_finalized(draft):
    automatic_note(draft, offset_amount_cents=2000)
    draft.refresh_from_db()
    assert draft.total_offsetted_credit_note_amount_cents == 0

    finalize(draft)

    draft.refresh_from_db()
    assert draft.total_offsetted_credit_note_amount_cents == 2000


def test_a_manual_credit_note_on_a_draft_is_refused(draft):
    with pytest.raises(NotAllowed) as refused:
        credit_note_create(
            invoice=draft, actor=SYSTEM, now=NOW,
            items=[ItemInput(str(draft.fees.get().pk), 2000)], credit_amount_cents=2000,
        )  # fmt: skip
    assert refused.value.code == "invalid_type_or_status"
