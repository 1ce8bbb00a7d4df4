"""The official lago-python-client against a live server: invoices and fees."""

from __future__ import annotations

import httpx
import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models.fee import Fee
from lago_python_client.models.invoice import (
    Invoice,
    InvoiceFee,
    InvoiceFeesList,
    InvoiceMetadata,
    InvoiceMetadataList,
    OneOffInvoice,
)

from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, apply_coupon, build_invoice, vat
from tests.invoicing.test_fees_api import invoiceless_fee
from tests.plans.factories import AddOnFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_client_creates_a_one_off_invoice_and_reads_it_back(lago, organization):
    CustomerFactory(organization=organization, external_id="globex")
    AddOnFactory(organization=organization, code="setup", amount_cents=25000)
    vat(organization)
    created = lago.invoices.create(
        OneOffInvoice(
            external_customer_id="globex",
            currency="EUR",
            fees=InvoiceFeesList(
                __root__=[
                    InvoiceFee(add_on_code="setup", units=2, tax_codes=["vat_20"]),
                    InvoiceFee(add_on_code="setup", unit_amount_cents=999, description="Extra"),
                ]
            ),
        )
    )
    assert created.invoice_type == "one_off"
    assert created.status == "finalized"
    assert created.fees_amount_cents == 50999
    assert created.fees.__root__[0].item.code == "setup"
    assert created.fees.__root__[0].applied_taxes.__root__[0].tax_code == "vat_20"
    assert created.customer.external_id == "globex"
    found = lago.invoices.find(created.lago_id)
    assert found.number == created.number
    listed = lago.invoices.find_all({"external_customer_id": "globex"})
    assert [i.lago_id for i in listed["invoices"]] == [created.lago_id]
    assert listed["meta"]["total_count"] == 1


def test_client_updates_voids_and_loses_disputes(lago, organization):
    customer = CustomerFactory(organization=organization)
    applied = apply_coupon(organization, customer)
    invoice = build_invoice(
        organization,
        customer=customer,
        invoice_type="subscription",
        fees=[
            FeeSpec(kind="subscription", amount_cents=5000),
            FeeSpec(kind="graduated", units=1500),
        ],
        applied_coupon=applied,
        coupon_amount_cents=500,
    )
    full = lago.invoices.find(str(invoice.pk))
    assert full.credits.__root__[0].item.type == "coupon"
    assert full.billing_periods.__root__[0].invoicing_reason == "subscription_periodic"
    assert full.subscriptions.__root__[0].lago_id
    assert full.fees.__root__[1].amount_details["graduated_ranges"]
    updated = lago.invoices.update(
        Invoice(
            payment_status="failed",
            metadata=InvoiceMetadataList(__root__=[InvoiceMetadata(key="po", value="PO-1")]),
        ),
        str(invoice.pk),
    )
    assert updated.payment_status == "failed"
    assert updated.metadata.__root__[0].key == "po"
    voided = lago.invoices.void(str(invoice.pk))
    assert voided.status == "voided"
    lost = lago.invoices.lose_dispute(str(invoice.pk))
    assert lost.payment_dispute_lost_at is not None
    with pytest.raises(LagoApiError) as error:
        lago.invoices.void(str(invoice.pk))
    assert error.value.status_code == 405


def test_client_downloads_the_pdf(lago, organization, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    invoice = build_invoice(organization)
    downloaded = lago.invoices.download(str(invoice.pk))
    assert downloaded.file_url
    response = httpx.get(downloaded.file_url)
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")


def test_client_reads_and_updates_fees(lago, organization):
    fee = invoiceless_fee(organization)
    found = lago.fees.find(str(fee.pk))
    assert found.item.type == "charge"
    assert found.event_transaction_id == "tr_1"
    listed = lago.fees.find_all({"fee_type": "charge"})
    assert [f.lago_id for f in listed["fees"]] == [str(fee.pk)]
    updated = lago.fees.update(Fee(payment_status="succeeded"), str(fee.pk))
    assert updated.payment_status == "succeeded"
    lago.fees.destroy(str(fee.pk))
    with pytest.raises(LagoApiError) as error:
        lago.fees.find(str(fee.pk))
    assert error.value.status_code == 404


def test_client_reads_a_commitment_fee_as_an_item_of_its_subscription(lago, organization):
    invoice = build_invoice(organization, fees=[FeeSpec(kind="subscription", amount_cents=900)])
    fee = invoice.fees.get()
    fee.fee_type = "commitment"
    fee.save(update_fields=["fee_type"])
    item = lago.fees.find(str(fee.pk)).item
    assert (item.type, item.item_type, item.code, item.lago_item_id) == (
        "commitment",
        "Subscription",
        fee.subscription.plan.code,
        str(fee.subscription_id),
    )
