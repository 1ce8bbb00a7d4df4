"""A finance member browses invoices, opens one, marks it paid, and sees the customer's 360."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from billing.roles import ensure_role_groups
from billing.services import billing_entity_update, membership_set
from invoicing.models import Invoice
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.e2e.conftest import admin_login
from tests.invoicing.invoice_builders import FeeSpec, apply_coupon, build_invoice, vat

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def finance(organization):
    ensure_role_groups()
    user = get_user_model().objects.create_user("fin", "fin@example.com", "s3cret-pass")
    membership_set(organization=organization, user=user, role="finance")
    return user


@pytest.fixture
def ledger(organization):
    billing_entity_update(
        billing_entity=organization.default_billing_entity(),
        values={"legal_name": "Acme Analytics SAS", "document_number_prefix": "ACM"},
    )
    customer = CustomerFactory(organization=organization, name="Globex", external_id="globex")
    tax = vat(organization)
    applied = apply_coupon(organization, customer, name="Welcome")
    subscription_invoice = build_invoice(
        organization,
        customer=customer,
        invoice_type="subscription",
        fees=[
            FeeSpec(kind="subscription", amount_cents=99000, name="Scale plan", taxes=[tax]),
            FeeSpec(kind="graduated", units=Decimal(1500), name="API calls", taxes=[tax]),
        ],
        applied_coupon=applied,
        coupon_amount_cents=5000,
        number="ACM-001-001",
    )
    SubscriptionFactory(organization=organization, customer=customer, external_id="sub_live")
    for n in range(2, 6):
        build_invoice(
            organization,
            customer=customer,
            number=f"ACM-001-00{n}",
            fees=[FeeSpec(amount_cents=10000 * n, name="Onboarding")],
            payment_status="succeeded" if n % 2 else None,
        )
    build_invoice(organization, customer=customer, status="draft")
    return subscription_invoice


def test_finance_member_works_an_invoice(live_server, page, screenshot, finance, ledger):
    admin_login(page, live_server.url, "fin", "s3cret-pass")
    page.goto(f"{live_server.url}/admin/invoicing/invoice/")
    assert page.locator("#result_list tbody tr").count() == 6
    screenshot("invoice-admin-list")
    # the total column is right-aligned money
    align = page.locator("td.field-total").first.evaluate("e => getComputedStyle(e).textAlign")
    assert align == "right"

    page.click("text=ACM-001-001")
    page.wait_for_selector(".inv-lines")
    assert "Coupon Welcome" in page.content()
    screenshot("invoice-admin-page")
    page.click("#invoice-operations button[value=mark_paid]")
    page.wait_for_selector(".messagelist .success")
    assert "1 marked paid." in page.locator(".messagelist").inner_text()
    assert Invoice.objects.get(pk=ledger.pk).payment_status == "succeeded"

    page.goto(f"{live_server.url}/admin/customers/customer/{ledger.customer_id}/change/")
    page.wait_for_selector("#c360-invoices")
    assert page.locator("#c360-invoices").count() == 1
    assert page.locator("#c360-upcoming-invoice-preview").count() == 1
    screenshot("invoice-customer-360")


def test_csv_export_button_downloads_the_filtered_list(live_server, page, finance, ledger):
    admin_login(page, live_server.url, "fin", "s3cret-pass")
    page.goto(f"{live_server.url}/admin/invoicing/invoice/?payment_status__exact=succeeded")
    with page.expect_download() as download:
        page.click("a[href*='export.csv']")
    with open(download.value.path()) as handle:
        content = handle.read()
    assert "ACM-001-003" in content
    assert "ACM-001-002" not in content
