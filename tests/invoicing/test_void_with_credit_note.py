"""POST /invoices/{id}/void with `generate_credit_note`: the requested credit and refund in one
credit note, the rest of the creditable amount in a second one voided at once."""

from __future__ import annotations

import pytest

from invoicing.models import CreditNote
from tests.invoicing.credit_note_builders import simple_invoice

pytestmark = pytest.mark.django_db


def test_void_with_credit_and_refund(api, organization):
    invoice = simple_invoice(organization, paid=True)  # 10,000 + 2,000 tax, paid
    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/void",
        {"generate_credit_note": True, "credit_amount": 6000, "refund_amount": 3000},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["invoice"]["status"] == "voided"
    requested, rest = CreditNote.objects.order_by("sequential_id")
    assert (requested.credit_amount_cents, requested.refund_amount_cents) == (6000, 3000)
    assert (requested.credit_status, requested.refund_status) == ("available", "pending")
    assert requested.items.get().amount_cents == 7500
    assert (rest.total_amount_cents, rest.credit_status, rest.balance_amount_cents) == (
        3000,
        "voided",
        0,
    )


def test_void_with_credit_note_and_nothing_requested_voids_it_all(api, organization):
    invoice = simple_invoice(organization, paid=True)
    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/void", {"generate_credit_note": True}, format="json"
    )
    assert response.status_code == 200, response.json()
    note = CreditNote.objects.get()
    assert (note.total_amount_cents, note.credit_status) == (12000, "voided")


def test_void_asking_more_than_creditable_is_refused(api, organization):
    invoice = simple_invoice(organization, paid=True)
    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/void",
        {"generate_credit_note": True, "credit_amount": 10000, "refund_amount": 2001},
        format="json",
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == {
        "credit_refund_amount": ["total_amount_exceeds_invoice_amount"]
    }
    invoice.refresh_from_db()
    assert invoice.status == "finalized"
    assert not CreditNote.objects.exists()


def test_void_refunding_an_unpaid_invoice_is_refused(api, organization):
    invoice = simple_invoice(organization)
    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/void",
        {"generate_credit_note": True, "refund_amount": 100},
        format="json",
    )
    assert response.status_code == 422
