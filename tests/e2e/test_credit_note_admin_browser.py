"""A finance member issues a credit note from an invoice page with the live estimate, then
works it from the credit note page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from billing.roles import ensure_role_groups
from billing.services import membership_set
from invoicing.models import CreditNote
from tests.customers.factories import CustomerFactory
from tests.e2e.conftest import admin_login
from tests.invoicing.credit_note_builders import simple_invoice, v75_invoice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


@pytest.fixture
def finance(organization):
    ensure_role_groups()
    user = get_user_model().objects.create_user("fin", "fin@example.com", "s3cret-pass")
    membership_set(organization=organization, user=user, role="finance")
    return user


def test_finance_member_issues_a_credit_note_with_the_live_estimate(
    live_server, page, screenshot, finance, organization
):
    customer = CustomerFactory(organization=organization, name="Globex", external_id="globex")
    invoice = v75_invoice(organization, customer=customer, total_paid_amount_cents=11767)
    simple_invoice(organization, customer=customer)
    _, fee2 = invoice.fees.order_by("created_at", "id")
    admin_login(page, live_server.url, "fin", "s3cret-pass")

    page.goto(f"{live_server.url}/admin/invoicing/invoice/{invoice.pk}/change/")
    page.click("#issue-credit-note-link")
    page.wait_for_selector("#issue-credit-note")
    page.fill(f"input[name=fee_{fee2.pk}]", "262.60")
    page.wait_for_function("document.getElementById('est-total').textContent.includes('117.67')")
    assert page.inner_text("#est-coupons") == "€164.54"
    assert page.inner_text("#est-taxes") == "€19.61"
    assert page.inner_text("#est-max-refund") == "€117.67"
    assert page.input_value("#cn-credit") == "117.67"
    page.select_option("#cn-reason", "product_unsatisfactory")
    page.fill("#cn-credit", "")
    page.fill("#cn-refund", "117.67")
    screenshot("credit-note-issue")
    page.click("#cn-submit")
    page.wait_for_selector(".messagelist .success")
    note = CreditNote.objects.get()
    assert (note.refund_amount_cents, note.total_amount_cents) == (11767, 11767)
    assert note.number in page.locator(".messagelist").inner_text()
    screenshot("credit-note-page")

    page.click("#credit-note-operations button:has-text('Mark refund succeeded')")
    page.wait_for_selector(".messagelist .success")
    note.refresh_from_db()
    assert note.refund_status == "succeeded"

    page.goto(f"{live_server.url}/admin/invoicing/creditnote/?refund_status__exact=succeeded")
    assert page.locator("#result_list tbody tr").count() == 1
    screenshot("credit-note-list")


def test_customer_360_shows_available_credit(live_server, page, screenshot, finance, organization):
    from billing.actors import SYSTEM
    from invoicing.services.credit_notes import ItemInput, credit_note_create
    from tests.invoicing.billing_helpers import utc

    customer = CustomerFactory(organization=organization, name="Globex", external_id="globex")
    invoice = simple_invoice(organization, customer=customer)
    credit_note_create(
        invoice=invoice, actor=SYSTEM, now=utc(2026, 3, 5),
        items=[ItemInput(str(invoice.fees.get().pk), 2500)], credit_amount_cents=3000,
    )  # fmt: skip
    admin_login(page, live_server.url, "fin", "s3cret-pass")
    page.goto(f"{live_server.url}/admin/customers/customer/{customer.pk}/change/")
    panel = page.locator("text=Credit available (EUR)")
    assert panel.count() == 1
    assert "€30.00" in page.content()
    assert f"{invoice.number}-CN001" in page.content()
    screenshot("credit-note-customer-360")


def test_the_form_shows_why_an_amount_is_refused(live_server, page, finance, organization):
    invoice = simple_invoice(organization)  # unpaid: nothing can be refunded
    fee = invoice.fees.get()
    admin_login(page, live_server.url, "fin", "s3cret-pass")
    page.goto(f"{live_server.url}/admin/invoicing/creditnote/issue/{invoice.pk}/")
    page.fill(f"input[name=fee_{fee.pk}]", "10")
    page.wait_for_function("document.getElementById('est-total').textContent.includes('12.00')")
    page.fill("#cn-credit", "")
    page.fill("#cn-refund", "12")
    page.click("#cn-submit")
    page.wait_for_selector("#cn-error-server")
    assert "cannot refund unpaid invoice" in page.inner_text("#cn-error-server")
    assert not CreditNote.objects.exists()
