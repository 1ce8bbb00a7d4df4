"""Credit note admin: the live estimate, issuing from the form, void and refund buttons, list
filters, and another organization's staff kept out."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model

from billing.roles import ensure_role_groups
from billing.services import membership_set
from invoicing.models import CreditNote
from tests.invoicing.credit_note_builders import simple_invoice, v75_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _role_groups():
    ensure_role_groups()


def _estimate(client, invoice, amounts: dict) -> dict:
    response = client.post(
        f"/admin/invoicing/creditnote/issue/{invoice.pk}/estimate/",
        json.dumps({f"fee_{fee_id}": value for fee_id, value in amounts.items()}),
        content_type="application/json",
    )
    assert response.status_code == 200
    return response.json()


def test_live_estimate_is_the_estimate_service(admin_client, organization):
    invoice = v75_invoice(organization)
    _, fee2 = invoice.fees.order_by("created_at", "id")
    data = _estimate(admin_client, invoice, {fee2.pk: "262.60"})
    assert data["ok"] is True
    assert (data["coupons_adjustment"], data["taxes"], data["total"]) == (
        "€164.54",
        "€19.61",
        "€117.67",
    )
    assert data["max_refund"] == "€12.00"  # 1,200 paid


def test_live_estimate_explains_a_refused_amount(admin_client, organization):
    invoice = simple_invoice(organization)
    fee = invoice.fees.get()
    data = _estimate(admin_client, invoice, {fee.pk: "100.01"})
    assert data == {"ok": False, "error": "amount cents: higher than remaining fee amount"}


def test_issue_form_creates_the_credit_note(admin_client, organization):
    invoice = simple_invoice(organization)
    fee = invoice.fees.get()
    page = admin_client.get(f"/admin/invoicing/invoice/{invoice.pk}/change/").content.decode()
    assert "Issue credit note" in page
    response = admin_client.post(
        f"/admin/invoicing/creditnote/issue/{invoice.pk}/",
        {f"fee_{fee.pk}": "25", "credit_amount": "30", "reason": "duplicated_charge"},
    )
    note = CreditNote.objects.get()
    assert response.status_code == 302
    assert (note.credit_amount_cents, note.reason) == (3000, "duplicated_charge")


def test_void_and_refund_buttons(admin_client, organization):
    invoice = simple_invoice(organization, paid=True)
    fee = invoice.fees.get()
    admin_client.post(
        f"/admin/invoicing/creditnote/issue/{invoice.pk}/",
        {f"fee_{fee.pk}": "50", "credit_amount": "30", "refund_amount": "30"},
    )
    note = CreditNote.objects.get()
    base = f"/admin/invoicing/creditnote/{note.pk}/operate"
    admin_client.post(f"{base}/refund_failed/")
    admin_client.post(f"{base}/void/")
    note.refresh_from_db()
    assert (note.refund_status, note.credit_status, note.balance_amount_cents) == (
        "failed",
        "voided",
        0,
    )
    listed = admin_client.get("/admin/invoicing/creditnote/?credit_status__exact=voided")
    assert note.number in listed.content.decode()


def test_staff_of_another_organization_cannot_issue(client, organization, other_organization):
    user = get_user_model().objects.create_user(
        "other", "o@example.com", "pw-123456", is_staff=True
    )
    membership_set(organization=other_organization, user=user, role="finance")
    client.force_login(user)
    invoice = simple_invoice(organization)
    assert client.get(f"/admin/invoicing/creditnote/issue/{invoice.pk}/").status_code == 404
