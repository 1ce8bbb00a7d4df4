"""Marking an invoice paid (`PUT /invoices/{id}` payment_status, the dashboard's "Mark paid")
keeps the books consistent: no Payment is recorded (as Lago), but the paid total follows the
status, so the amount due, the customer's overdue and outstanding balances and the analytics
all agree; set back to pending, only what recorded payments paid stays paid."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from billing.actors import SYSTEM
from invoicing.models import Invoice, Payment, PaymentReceipt
from invoicing.selectors import customer_outstanding_balances
from invoicing.services.credit_notes import ItemInput, credit_note_create
from invoicing.services.dunning import overdue_balances
from invoicing.services.payment_settlement import payment_create_manual
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 5, 2, 9, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_pdfs(settings):
    settings.RECEIPT_PDF_ON_CREATE = False
    settings.INVOICE_PDF_ON_FINALIZE = False


@pytest.fixture
def invoice(organization) -> Invoice:
    """10,000 overdue: 3,000 paid by a wire, 2,000 offset by a credit note; 5,000 due."""
    customer = CustomerFactory(organization=organization, external_id="acme", currency="EUR")
    invoice = build_invoice(
        organization, customer=customer, fees=[FeeSpec(amount_cents=10000)], number="ACME-0042",
        issuing_date=timezone.now().date(), net_payment_term=0,  # in the analytics' window
    )  # fmt: skip
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)
    payment_create_manual(
        payable=invoice, amount_cents=3000, reference="wire", paid_at=None, actor=SYSTEM, now=NOW
    )
    credit_note_create(
        invoice=invoice, actor=SYSTEM, now=NOW,
        items=[ItemInput(str(invoice.fees.get().pk), 2000)], offset_amount_cents=2000,
    )  # fmt: skip
    invoice.refresh_from_db()
    return invoice


def put_status(api, invoice: Invoice, status: str) -> dict:
    response = api.put(
        f"/api/v1/invoices/{invoice.pk}", {"invoice": {"payment_status": status}}, format="json"
    )
    assert response.status_code == 200, response.json()
    return response.json()["invoice"]


def overdue_balance_cents(api) -> int:
    rows = api.get("/api/v1/analytics/overdue_balance?external_customer_id=acme").json()
    return sum(row["amount_cents"] for row in rows["overdue_balances"])


def collected(api, status: str) -> int:
    rows = api.get("/api/v1/analytics/invoice_collection?currency=EUR").json()
    return sum(
        row["invoices_count"]
        for row in rows["invoice_collections"]
        if row["payment_status"] == status
    )


def test_the_fixture_owes_five_thousand(api, invoice):
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()["invoice"]
    assert body["total_due_amount_cents"] == 5000
    assert overdue_balances(invoice.customer) == {"EUR": 5000}
    assert overdue_balance_cents(api) == 5000


def test_marking_paid_pays_what_is_due_without_a_payment(api, invoice):
    body = put_status(api, invoice, "succeeded")

    assert body["total_paid_amount_cents"] == 8000  # paid + offset = total
    assert body["total_due_amount_cents"] == 0
    assert Payment.objects.filter(invoice=invoice).count() == 1  # the wire only
    assert PaymentReceipt.objects.count() == 1


def test_marking_paid_clears_the_overdue_and_outstanding_balances(api, invoice):
    put_status(api, invoice, "succeeded")

    invoice.refresh_from_db()
    assert invoice.payment_overdue is False
    assert overdue_balances(invoice.customer) == {}
    assert customer_outstanding_balances(customer=invoice.customer) == []
    assert overdue_balance_cents(api) == 0
    assert (collected(api, "succeeded"), collected(api, "pending")) == (1, 0)


def test_back_to_pending_only_recorded_payments_stay_paid(api, invoice):
    put_status(api, invoice, "succeeded")
    body = put_status(api, invoice, "pending")

    assert body["total_paid_amount_cents"] == 3000
    assert body["total_due_amount_cents"] == 5000
    [balance] = customer_outstanding_balances(customer=invoice.customer)
    assert (balance.due_cents, balance.invoices) == (5000, 1)
    assert (collected(api, "succeeded"), collected(api, "pending")) == (0, 1)


def test_a_failed_status_keeps_what_was_paid(api, invoice):
    body = put_status(api, invoice, "failed")
    assert body["total_paid_amount_cents"] == 3000
    assert body["total_due_amount_cents"] == 5000


def test_mark_paid_on_the_invoice_page_agrees_with_the_api(admin_client, api, invoice):
    response = admin_client.post(f"/admin/invoicing/invoice/{invoice.pk}/operate/mark_paid/")
    assert response.status_code == 302

    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()["invoice"]
    assert body["payment_status"] == "succeeded"
    assert (body["total_paid_amount_cents"], body["total_due_amount_cents"]) == (8000, 0)
    assert overdue_balance_cents(api) == 0
