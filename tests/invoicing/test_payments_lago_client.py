"""The official lago-python-client against a live server: payments, receipts, requests.

The client's customer-scoped lists (`customer_payments`, `customer_payment_requests`) send no
API key (its `FindAllChildrenCommandMixin` builds no headers), so they are tested through DRF's
client in `test_payments_api.py` only."""

from __future__ import annotations

import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models.payment import Payment
from lago_python_client.models.payment_request import PaymentRequest

from invoicing.models import Invoice
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_receipt_pdf(settings):
    settings.RECEIPT_PDF_ON_CREATE = False


def test_client_records_a_partial_payment_and_reads_payments_and_receipts(lago, organization):
    customer = CustomerFactory(organization=organization, external_id="globex")
    invoice = build_invoice(organization, customer=customer, fees=[FeeSpec(amount_cents=10000)])
    created = lago.payments.create(
        Payment(invoice_id=str(invoice.pk), amount_cents=3000, reference="wire 1", paid_at=None)
    )
    assert created.amount_cents == 3000
    assert created.payment_status == "succeeded"
    assert created.type == "manual"
    assert created.invoice_ids == [str(invoice.pk)]
    assert lago.payments.find(created.lago_id).reference == "wire 1"
    listed = lago.payments.find_all({"invoice_id": str(invoice.pk)})
    assert [p.lago_id for p in listed["payments"]] == [created.lago_id]
    receipts = lago.payment_receipts.find_all({"invoice_id": str(invoice.pk)})
    receipt = receipts["payment_receipts"][0]
    assert receipt.payment.lago_id == created.lago_id
    assert lago.payment_receipts.find(receipt.lago_id).number == receipt.number
    assert lago.invoices.find(str(invoice.pk)).payment_status == "pending"


def test_client_over_payment_is_a_422(lago, organization):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=1000)])
    with pytest.raises(LagoApiError) as refused:
        lago.payments.create(
            Payment(invoice_id=str(invoice.pk), amount_cents=1001, reference="r", paid_at=None)
        )
    assert refused.value.status_code == 422


def test_client_creates_and_reads_payment_requests(lago, organization):
    customer = CustomerFactory(organization=organization, external_id="globex")
    invoice = build_invoice(organization, customer=customer)
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)
    created = lago.payment_requests.create(
        PaymentRequest(
            email="billing@globex.test",
            external_customer_id="globex",
            lago_invoice_ids=[str(invoice.pk)],
        )
    )
    assert created.amount_cents == invoice.total_amount_cents
    assert created.email == "billing@globex.test"
    assert created.invoices.__root__[0].lago_id == str(invoice.pk)
    assert lago.payment_requests.find(created.lago_id).payment_status == "pending"
    listed = lago.payment_requests.find_all({"external_customer_id": "globex"})
    assert [r.lago_id for r in listed["payment_requests"]] == [created.lago_id]
