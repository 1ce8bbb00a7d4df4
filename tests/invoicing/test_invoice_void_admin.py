"""The invoice page's "Void": void only, or void with a credit note (credit and refund amounts)
through the same service as `POST /invoices/{id}/void`."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from billing.roles import ensure_role_groups
from billing.services import membership_set
from invoicing.models import CreditNote, Invoice
from tests.invoicing.credit_note_builders import simple_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance_client(client, organization):
    ensure_role_groups()
    user = get_user_model().objects.create_user("fin", "fin@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role="finance")
    client.force_login(user)
    return client


def void_url(invoice: Invoice) -> str:
    return f"/admin/invoicing/invoice/{invoice.pk}/void/"


def test_invoice_page_links_to_the_void_form(finance_client, organization):
    invoice = simple_invoice(organization, paid=True)
    page = finance_client.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").content.decode()
    assert void_url(invoice) in page
    form = finance_client.get(void_url(invoice)).content.decode()
    assert "Void and issue a credit note" in form
    assert "€120.00" in form  # creditable and refundable: the paid total


def test_void_with_a_credit_note_credits_and_refunds(finance_client, organization):
    invoice = simple_invoice(organization, paid=True)  # 100 + 20% VAT, paid
    response = finance_client.post(
        void_url(invoice),
        {"generate_credit_note": "yes", "credit_amount": "50", "refund_amount": "70"},
    )
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOIDED
    note = CreditNote.objects.get(invoice=invoice)
    assert (note.credit_amount_cents, note.refund_amount_cents) == (5000, 7000)
    assert note.total_amount_cents == 12000


def test_void_only_issues_no_credit_note(finance_client, organization):
    invoice = simple_invoice(organization, paid=True)
    response = finance_client.post(void_url(invoice), {"generate_credit_note": "no"})
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOIDED
    assert not CreditNote.objects.filter(invoice=invoice).exists()


def test_amounts_beyond_the_invoice_are_refused_on_the_form(finance_client, organization):
    invoice = simple_invoice(organization, paid=True)
    response = finance_client.post(
        void_url(invoice),
        {"generate_credit_note": "yes", "credit_amount": "100", "refund_amount": "100"},
    )
    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.FINALIZED
    assert not CreditNote.objects.exists()


def test_another_organizations_invoice_is_not_found(finance_client, other_organization):
    invoice = simple_invoice(other_organization, paid=True)
    response = finance_client.post(void_url(invoice), {"generate_credit_note": "no"})
    assert response.status_code == 404
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.FINALIZED


# --- the list's bulk void ------------------------------------------------------------------------

CHANGELIST = "/admin/invoicing/invoice/"


def bulk(client, action: str, invoices: list[Invoice]) -> list[str]:
    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": [i.pk for i in invoices]}, follow=True
    )
    return [str(m) for m in response.context["messages"]]


def test_bulk_void_refuses_a_paid_invoice_with_a_clear_message(finance_client, organization):
    paid = simple_invoice(organization, paid=True)
    unpaid = simple_invoice(organization)

    messages = bulk(finance_client, "void_invoices", [paid, unpaid])

    paid.refresh_from_db()
    unpaid.refresh_from_db()
    assert (paid.status, unpaid.status) == ("finalized", "voided")
    assert messages[0] == "1 voided."
    assert messages[1].startswith(f"1 refused: {paid.number} (something was paid: use ")
    assert "Void selected invoices and credit what was paid" in messages[1]
    assert not CreditNote.objects.exists()


def test_bulk_void_and_credit_issues_a_credit_note_of_what_was_paid(finance_client, organization):
    paid = simple_invoice(organization, paid=True)  # 100 + 20% VAT, paid

    assert bulk(finance_client, "void_crediting_paid", [paid]) == ["1 voided with a credit note."]

    paid.refresh_from_db()
    assert paid.status == Invoice.Status.VOIDED
    note = CreditNote.objects.get(invoice=paid, status="finalized", credit_status="available")
    assert (note.credit_amount_cents, note.refund_amount_cents) == (12000, 0)
    assert note.balance_amount_cents == 12000
