"""The invoice "Void" form in Chromium: void with a credit note, then the invoice page.

Screenshots go to $SCREENSHOT_DIR (default /tmp/billing-screenshots): invoice_void_form.png."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from billing.roles import ensure_role_groups
from billing.services import membership_set
from invoicing.models import CreditNote, Invoice
from tests.e2e.conftest import admin_login
from tests.invoicing.credit_note_builders import simple_invoice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_finance_voids_an_invoice_with_a_credit_note(live_server, browser, organization):
    ensure_role_groups()
    user = get_user_model().objects.create_user("fin", "fin@example.com", "s3cret-pass")
    membership_set(organization=organization, user=user, role="finance")
    invoice = simple_invoice(organization, paid=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    admin_login(page, live_server.url, "fin", "s3cret-pass")
    page.goto(f"{live_server.url}/admin/invoicing/invoice/{invoice.pk}/change/")
    page.click("#void-invoice")
    page.check("input[name=generate_credit_note][value=yes]")
    page.fill("input[name=credit_amount]", "50")
    page.fill("input[name=refund_amount]", "70")
    shots = Path(os.environ.get("SCREENSHOT_DIR", "/tmp/billing-screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "invoice_void_form.png"), full_page=True)
    page.click("#void-form input[type=submit]")
    page.wait_for_url(f"**/{invoice.pk}/change/")
    assert "Invoice voided with a credit note." in page.content()
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOIDED
    assert CreditNote.objects.get(invoice=invoice).refund_amount_cents == 7000
