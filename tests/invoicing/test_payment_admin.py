"""The payments dashboard: "Record payment", the payments list and its totals, payment
requests, the dunning campaign editor and the customer page's payments panel."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from billing.actors import SYSTEM
from billing.roles import ensure_role_groups
from billing.services import membership_set
from invoicing.models import (
    BillingEntityDunningCampaign,
    CustomerDunning,
    DunningCampaign,
    Invoice,
    Payment,
)
from invoicing.services.dunning import dunning_campaign_create
from invoicing.services.payment_requests import payment_request_create
from invoicing.services.payment_settlement import payment_create_manual
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 4, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.RECEIPT_PDF_ON_CREATE = False
    ensure_role_groups()


@pytest.fixture
def finance(client, organization):
    user = get_user_model().objects.create_user(
        "fin", "fin@example.com", "pw-123456", is_staff=True
    )
    membership_set(organization=organization, user=user, role="finance")
    client.force_login(user)
    return client


@pytest.fixture
def manager(organization):
    """A second browser logged in as a manager (dunning campaigns are the managers')."""
    from django.test import Client

    user = get_user_model().objects.create_user(
        "mgr", "mgr@example.com", "pw-123456", is_staff=True
    )
    membership_set(organization=organization, user=user, role="manager")
    browser = Client()
    browser.force_login(user)
    return browser


def record(finance, invoice, amount, reference="wire 1"):
    return finance.post(
        f"/admin/invoicing/invoice/{invoice.pk}/record_payment/",
        {"amount": amount, "paid_on": "2026-03-20", "reference": reference},
    )


def test_the_invoice_page_offers_record_payment_and_lists_payments(finance, organization):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)], number="ACM-0009")
    page = finance.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").content.decode()
    assert "Record payment" in page
    response = record(finance, invoice, "40.00")
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.total_paid_amount_cents == 4000
    assert invoice.payment_status == "pending"
    payment = Payment.objects.get()
    assert payment.reference == "wire 1"
    assert payment.created_at.date() == dt.date(2026, 3, 20)
    page = finance.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").content.decode()
    assert "wire 1" in page
    assert "RCPT" in page


def test_record_payment_shows_refusals_on_the_form(finance, organization):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)])
    response = record(finance, invoice, "100.01")
    assert response.status_code == 200
    assert "out of range" in response.content.decode()
    response = record(finance, invoice, "1.005")
    assert "at most 2 decimals" in response.content.decode()
    assert Payment.objects.count() == 0


def test_a_paid_invoice_offers_no_record_payment(finance, organization):
    invoice = build_invoice(organization, payment_status="succeeded")
    page = finance.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").content.decode()
    assert 'id="record-payment"' not in page


def test_payments_list_totals_the_filtered_rows_per_currency(finance, organization):
    for currency, cents in (("EUR", 1500), ("EUR", 2500), ("USD", 700)):
        invoice = build_invoice(organization, currency=currency)
        payment_create_manual(
            payable=invoice, amount_cents=cents, reference="r", paid_at=None, actor=SYSTEM, now=NOW
        )
    page = finance.get("/admin/invoicing/payment/").content.decode()
    assert "€40.00" in page
    assert "$7.00" in page
    filtered = finance.get("/admin/invoicing/payment/?amount_currency__exact=USD").content.decode()
    assert "$7.00" in filtered
    assert "€40.00" not in filtered


def test_a_payment_request_page_records_its_payment_and_pays_every_invoice(finance, organization):
    customer = CustomerFactory(organization=organization, external_id="globex")
    invoices = [build_invoice(organization, customer=customer) for _ in range(2)]
    Invoice.objects.filter(pk__in=[i.pk for i in invoices]).update(payment_overdue=True)
    request = payment_request_create(
        organization=organization,
        external_customer_id="globex",
        lago_invoice_ids=[str(i.pk) for i in invoices],
        actor=SYSTEM,
        now=NOW,
    )
    page = finance.get(f"/admin/invoicing/paymentrequest/{request.pk}/change/").content.decode()
    assert "Record payment" in page
    response = finance.post(
        f"/admin/invoicing/paymentrequest/{request.pk}/record_payment/",
        {"amount": "200.00", "paid_on": "2026-03-20", "reference": "batch"},
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.payment_status == "succeeded"
    assert set(Invoice.objects.values_list("payment_status", flat=True)) == {"succeeded"}


def test_the_campaign_editor_saves_thresholds_bcc_and_the_entity_default(manager, organization):
    entity = organization.default_billing_entity()
    response = manager.post(
        "/admin/invoicing/dunningcampaign/add/",
        {
            "organization": organization.pk,
            "name": "Gentle",
            "code": "gentle",
            "description": "",
            "max_attempts": 3,
            "days_between_attempts": 5,
            "bcc_emails_text": "ar@acme.test, boss@acme.test",
            "default_for": [entity.pk],
            "thresholds-TOTAL_FORMS": 2,
            "thresholds-INITIAL_FORMS": 0,
            "thresholds-0-currency": "EUR",
            "thresholds-0-amount_cents": 10000,
            "thresholds-1-currency": "USD",
            "thresholds-1-amount_cents": 12000,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = DunningCampaign.objects.get()
    assert campaign.bcc_emails == ["ar@acme.test", "boss@acme.test"]
    assert sorted(campaign.thresholds.values_list("currency", "amount_cents")) == [
        ("EUR", 10000),
        ("USD", 12000),
    ]
    assert BillingEntityDunningCampaign.objects.get(billing_entity=entity).dunning_campaign == (
        campaign
    )
    listing = manager.get("/admin/invoicing/dunningcampaign/").content.decode()
    assert "Gentle" in listing
    assert "€100.00" in listing


def test_the_customer_page_shows_payments_overdue_balance_and_dunning(
    finance, manager, organization
):
    customer = CustomerFactory(organization=organization, name="Globex")
    invoice = build_invoice(organization, customer=customer, fees=[FeeSpec(amount_cents=10000)])
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)
    payment_create_manual(
        payable=invoice, amount_cents=2500, reference="wire 5", paid_at=None, actor=SYSTEM, now=NOW
    )
    campaign = dunning_campaign_create(
        organization=organization,
        name="Firm",
        code="firm",
        thresholds=[{"currency": "EUR", "amount_cents": 100}],
        actor=SYSTEM,
        now=NOW,
    )
    settings_url = f"/admin/invoicing/customerdunning/for-customer/{customer.pk}/"
    state_url = manager.get(settings_url)["Location"]
    state = CustomerDunning.objects.get(customer=customer)
    response = manager.post(
        state_url, {"applied_dunning_campaign": campaign.pk, "exclude_from_dunning_campaign": ""}
    )
    assert response.status_code == 302
    state.refresh_from_db()
    assert state.applied_dunning_campaign == campaign
    page = finance.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
    assert "Payments and dunning" in page
    assert "wire 5" in page
    assert "€75.00" in page  # overdue balance: 100.00 - 25.00 paid
    assert "Firm" in page
