"""A finance member records a partial payment in Chromium, reads the payments list and its
totals, a payment request and the customer's payments panel; a manager opens the campaign editor."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from billing.actors import SYSTEM
from billing.roles import ensure_role_groups
from billing.services import membership_set
from invoicing.models import Invoice
from invoicing.services.dunning import (
    billing_entity_dunning_campaign_set,
    dunning_campaign_create,
)
from invoicing.services.payment_requests import payment_request_create
from tests.customers.factories import CustomerFactory
from tests.e2e.conftest import admin_login
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
NOW = dt.datetime(2026, 4, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_receipt_pdf(settings):
    settings.RECEIPT_PDF_ON_CREATE = False


@pytest.fixture
def finance(organization):
    ensure_role_groups()
    user = get_user_model().objects.create_user(
        "fin", "fin@example.com", "s3cret-pass", is_staff=True
    )
    membership_set(organization=organization, user=user, role="finance")
    return user


def test_finance_records_a_partial_payment_and_follows_it(
    live_server, page, screenshot, organization, finance
):
    customer = CustomerFactory(
        organization=organization, name="Globex", external_id="globex", email="ap@globex.test"
    )
    invoice = build_invoice(
        organization, customer=customer, fees=[FeeSpec(amount_cents=120000)], number="ACM-0042"
    )
    late = build_invoice(
        organization, customer=customer, fees=[FeeSpec(amount_cents=30000)], number="ACM-0043"
    )
    Invoice.objects.filter(pk__in=[invoice.pk, late.pk]).update(payment_overdue=True)
    campaign = dunning_campaign_create(
        organization=organization,
        name="Standard reminders",
        code="standard",
        thresholds=[
            {"currency": "EUR", "amount_cents": 10000},
            {"currency": "USD", "amount_cents": 12000},
        ],
        max_attempts=3,
        days_between_attempts=7,
        bcc_emails=["ar@acme.test"],
        actor=SYSTEM,
        now=NOW,
    )
    billing_entity_dunning_campaign_set(
        billing_entity=organization.default_billing_entity(),
        campaign=campaign,
        actor=SYSTEM,
        now=NOW,
    )
    request = payment_request_create(
        organization=organization,
        external_customer_id="globex",
        lago_invoice_ids=[str(late.pk)],
        dunning_campaign=campaign,
        actor=SYSTEM,
        now=NOW,
    )
    admin_login(page, live_server.url, "fin", "s3cret-pass")

    page.goto(f"{live_server.url}/admin/invoicing/invoice/{invoice.pk}/change/")
    page.click("#record-payment")
    assert "€1,200.00" in page.inner_text("#amount-due")
    page.fill("#id_amount", "500")
    page.fill("#id_reference", "VIR-2026-03-118")
    screenshot("payment-record-form")
    page.click("#record-payment-form input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/invoicing/invoice/{invoice.pk}/change/")
    assert "recorded" in page.inner_text(".messagelist")
    assert "VIR-2026-03-118" in page.content()
    screenshot("payment-invoice-page")

    page.goto(f"{live_server.url}/admin/invoicing/payment/")
    assert "€500.00" in page.inner_text("#payment-totals")
    screenshot("payment-list")

    page.goto(f"{live_server.url}/admin/invoicing/paymentrequest/{request.pk}/change/")
    assert "ACM-0043" in page.content()
    screenshot("payment-request")

    # dunning campaigns are the managers': finance is refused the editor
    response = page.goto(f"{live_server.url}/admin/invoicing/dunningcampaign/{campaign.pk}/change/")
    assert response.status == 403

    page.goto(f"{live_server.url}/admin/customers/customer/{customer.pk}/change/")
    panel = page.inner_text("#overdue-balance")
    assert "€1,000.00" in panel  # 1,200 + 300 overdue, 500 paid
    assert "Standard reminders" in panel
    screenshot("customer-payments-panel")

    page.goto(
        f"{live_server.url}/admin/invoicing/invoice/?overdue=yes&payment_status__exact=pending"
    )
    assert "ACM-0042" in page.content()
    assert "ACM-0043" in page.content()

    page.context.clear_cookies()
    manager = get_user_model().objects.create_user(
        "mgr", "mgr@example.com", "s3cret-pass", is_staff=True
    )
    membership_set(organization=organization, user=manager, role="manager")
    admin_login(page, live_server.url, "mgr", "s3cret-pass")
    page.goto(f"{live_server.url}/admin/invoicing/dunningcampaign/{campaign.pk}/change/")
    assert page.input_value("#id_bcc_emails_text") == "ar@acme.test"
    screenshot("dunning-campaign-editor")
