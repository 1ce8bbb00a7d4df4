"""The official lago-python-client against a live server: the whole credit note flow."""

from __future__ import annotations

import httpx
import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models.credit_note import (
    CreditNote,
    CreditNoteEstimate,
    CreditNoteUpdate,
    Item,
    Items,
)

from tests.invoicing.credit_note_builders import simple_invoice, v75_invoice

pytestmark = pytest.mark.django_db(transaction=True)


def test_client_estimates_creates_finds_lists_updates_voids_and_downloads(lago, organization):
    invoice = simple_invoice(organization, paid=True)  # 10,000 + 20% tax, paid
    fee = invoice.fees.get()
    items = Items(__root__=[Item(fee_id=str(fee.pk), amount_cents=5000)])

    estimate = lago.credit_notes.estimate(
        CreditNoteEstimate(invoice_id=str(invoice.pk), items=items)
    )
    assert estimate.max_creditable_amount_cents == 6000
    assert estimate.max_refundable_amount_cents == 6000
    assert estimate.taxes_amount_cents == 1000

    created = lago.credit_notes.create(
        CreditNote(
            invoice_id=str(invoice.pk),
            reason="product_unsatisfactory",
            description="Broken",
            credit_amount_cents=4000,
            refund_amount_cents=2000,
            items=items,
            metadata={"ticket": "T-9"},
        )
    )
    assert created.number == f"{invoice.number}-CN001"
    assert (created.credit_amount_cents, created.refund_amount_cents) == (4000, 2000)
    assert (created.credit_status, created.refund_status) == ("available", "pending")
    assert created.metadata == {"ticket": "T-9"}

    found = lago.credit_notes.find(created.lago_id)
    assert found.total_amount_cents == 6000
    assert found.items.__root__[0].fee.lago_id == str(fee.pk)
    listed = lago.credit_notes.find_all({"reason[]": "product_unsatisfactory"})
    assert [note.lago_id for note in listed["credit_notes"]] == [created.lago_id]

    updated = lago.credit_notes.update(CreditNoteUpdate(refund_status="succeeded"), created.lago_id)
    assert updated.refund_status == "succeeded"

    downloaded = lago.credit_notes.download(created.lago_id)
    assert downloaded.file_url
    assert httpx.get(downloaded.file_url).content.startswith(b"%PDF")

    voided = lago.credit_notes.void(created.lago_id)
    assert (voided.credit_status, voided.balance_amount_cents) == ("voided", 0)
    assert lago.credit_notes.replace_metadata(created.lago_id, {"a": "1"}) == {"a": "1"}


def test_client_reads_the_v75_estimate(lago, organization):
    invoice = v75_invoice(organization)
    fee1, fee2 = invoice.fees.order_by("created_at", "id")
    estimate = lago.credit_notes.estimate(
        CreditNoteEstimate(
            invoice_id=str(invoice.pk),
            items=Items(
                __root__=[
                    Item(fee_id=str(fee1.pk), amount_cents=17900),
                    Item(fee_id=str(fee2.pk), amount_cents=39900),
                ]
            ),
        )
    )
    assert (estimate.max_creditable_amount_cents, estimate.max_refundable_amount_cents) == (
        37570,
        1200,
    )
    assert estimate.coupons_adjustment_amount_cents == 25000


def test_client_sees_a_validation_error(lago, organization):
    invoice = simple_invoice(organization)
    fee = invoice.fees.get()
    with pytest.raises(LagoApiError) as error:
        lago.credit_notes.create(
            CreditNote(
                invoice_id=str(invoice.pk),
                refund_amount_cents=1200,
                items=Items(__root__=[Item(fee_id=str(fee.pk), amount_cents=1000)]),
            )
        )
    assert error.value.status_code == 422
