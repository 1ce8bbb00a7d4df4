"""Invoice admin: list, filters, the invoice page, actions through services, CSV, 360 panels."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import pytest
import time_machine
from django.contrib.auth import get_user_model

from billing.roles import ensure_role_groups
from billing.services import membership_set
from invoicing.models import Invoice
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.invoicing.invoice_builders import FeeSpec, apply_coupon, build_invoice, vat
from tests.metering.usage.conftest import at
from tests.wallets.test_ongoing_balance import NOW, calls_billing, send, wallet_of

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/invoicing/invoice/"


def change_url(invoice: Invoice) -> str:
    return f"{CHANGELIST}{invoice.pk}/change/"


@pytest.fixture(autouse=True)
def _role_groups():
    ensure_role_groups()


@pytest.fixture
def finance_user(organization):
    user = get_user_model().objects.create_user("fin", "fin@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role="finance")
    return user


@pytest.fixture
def invoices(organization):
    customer = CustomerFactory(organization=organization, name="Globex", external_id="globex")
    return {
        "open": build_invoice(
            organization, customer=customer, number="ACM-0001", fees=[FeeSpec(amount_cents=123456)]
        ),
        "paid": build_invoice(organization, number="ACM-0002", payment_status="succeeded"),
        "draft": build_invoice(organization, status="draft", issuing_date=dt.date(2026, 2, 1)),
    }


def test_changelist_lists_money_formatted_and_right_aligned(admin_client, invoices):
    page = admin_client.get(CHANGELIST).content.decode()
    assert "ACM-0001" in page
    assert "€1,234.56" in page
    assert "td.field-total" in page  # right-aligned money column
    assert f'href="{CHANGELIST}export.csv' in page


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("q=globex", "ACM-0001", "ACM-0002"),
        ("q=ACM-0002", "ACM-0002", "ACM-0001"),
        ("status__exact=draft", "ACM-DRAFT", "ACM-0001"),
        ("payment_status__exact=succeeded", "ACM-0002", "ACM-0001"),
        ("invoice_type__exact=one_off", "ACM-0001", "ACM-DRAFT-none"),
        ("issuing_date_from=2026-03-01&issuing_date_to=2026-03-31", "ACM-0001", "ACM-DRAFT"),
    ],
)
def test_changelist_search_and_filters(admin_client, invoices, query, shown, hidden):
    page = admin_client.get(f"{CHANGELIST}?{query}").content.decode()
    assert shown in page
    assert hidden not in page


def test_overdue_filter(admin_client, invoices):
    Invoice.objects.filter(pk=invoices["open"].pk).update(payment_overdue=True)
    page = admin_client.get(f"{CHANGELIST}?overdue=yes").content.decode()
    assert "ACM-0001" in page
    assert "ACM-0002" not in page


def test_staff_see_only_their_organizations_invoices(
    client, finance_user, invoices, other_organization
):
    foreign = build_invoice(
        other_organization,
        customer=CustomerFactory(organization=other_organization, currency="USD"),
        currency="USD",
        number="GLX-0001",
    )
    client.force_login(finance_user)
    page = client.get(CHANGELIST).content.decode()
    assert "ACM-0001" in page
    assert "GLX-0001" not in page
    assert client.get(change_url(foreign)).status_code == 302


def test_invoice_page_shows_fees_taxes_credits_and_buttons(admin_client, organization):
    customer = CustomerFactory(organization=organization)
    applied = apply_coupon(organization, customer, name="Welcome")
    invoice = build_invoice(
        organization,
        customer=customer,
        invoice_type="subscription",
        fees=[
            FeeSpec(
                kind="subscription", amount_cents=99000, name="Scale", taxes=[vat(organization)]
            ),
        ],
        applied_coupon=applied,
        coupon_amount_cents=1000,
    )
    page = admin_client.get(change_url(invoice)).content.decode()
    for expected in ("Fees", "Scale", "€990.00", "Taxes by rate", "VAT", "Coupon Welcome",
                     "€10.00", "Generate and download PDF", "Void", "Mark paid"):  # fmt: skip
        assert expected in page, expected
    assert "operate/finalize/" not in page  # not a draft


def test_finance_staff_void_from_the_page_through_the_service(client, finance_user, invoices):
    client.force_login(finance_user)
    invoice = invoices["paid"]
    response = client.post(f"{CHANGELIST}{invoice.pk}/operate/void/")
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOIDED
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["1 voided."]


def test_actions_report_what_was_refused(admin_client, invoices):
    selected = [invoices["open"].pk, invoices["draft"].pk]
    response = admin_client.post(
        CHANGELIST, {"action": "mark_paid", "_selected_action": selected}, follow=True
    )
    page = response.content.decode()
    assert "1 marked paid." in page
    assert "1 refused" in page
    assert "payment_status_update_on_draft_invoice" in page
    invoices["open"].refresh_from_db()
    assert invoices["open"].payment_status == "succeeded"


def test_void_action(admin_client, invoices):
    admin_client.post(
        CHANGELIST, {"action": "void_invoices", "_selected_action": [invoices["open"].pk]}
    )
    invoices["open"].refresh_from_db()
    assert invoices["open"].status == Invoice.Status.VOIDED


def test_pdf_link_renders_and_streams_the_pdf(admin_client, invoices, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    invoice = invoices["open"]
    response = admin_client.get(f"{CHANGELIST}{invoice.pk}/pdf/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    invoice.refresh_from_db()
    assert invoice.file


def test_csv_export_follows_the_changelist_filters(admin_client, invoices):
    response = admin_client.get(f"{CHANGELIST}export.csv?payment_status__exact=pending")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["number", "lago_id", "invoice_type"]
    numbers = {row[0] for row in rows[1:]}
    assert "ACM-0001" in numbers
    assert "ACM-0002" not in numbers
    opened = next(row for row in rows if row[0] == "ACM-0001")
    assert opened[rows[0].index("total_amount")] == "1234.56"


def test_csv_export_action(admin_client, invoices):
    response = admin_client.post(
        CHANGELIST, {"action": "export_csv", "_selected_action": [invoices["paid"].pk]}
    )
    content = b"".join(response.streaming_content).decode()
    assert "ACM-0002" in content
    assert "ACM-0001" not in content


def test_customer_360_shows_invoices_and_the_upcoming_invoice(admin_client, organization):
    customer = CustomerFactory(organization=organization, name="Initech")
    build_invoice(organization, customer=customer, number="ACM-0100")
    SubscriptionFactory(organization=organization, customer=customer)
    page = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
    assert "Invoices" in page
    assert "ACM-0100" in page
    assert "Upcoming invoice (preview)" in page
    assert "All invoices" in page


def test_customer_360_shows_every_apps_panels_in_page_order(admin_client, organization):
    customer = CustomerFactory(organization=organization, name="Initech")
    SubscriptionFactory(organization=organization, customer=customer)
    response = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/")
    titles = [panel.title for panel in response.context["customer_360_panels"]]
    assert titles == [
        "Summary",
        "Subscriptions",
        "Applied coupons",
        "Taxes",
        "Current usage",
        "Wallets",
        "Invoices",
        "Payments and dunning",
        "Upcoming invoice (preview)",
    ]


@pytest.mark.parametrize(
    ("currency", "shown"),
    [
        pytest.param("JPY", "¥123,456", id="jpy-0-decimals"),
        pytest.param("KWD", "KWD123.456", id="kwd-3-decimals"),
        pytest.param("BHD", "BHD123.456", id="bhd-3-decimals"),
    ],
)
def test_invoice_page_shows_amounts_with_the_currency_minor_digits(
    admin_client, organization, currency, shown
):
    customer = CustomerFactory(organization=organization, currency=currency)
    invoice = build_invoice(
        organization, customer=customer, currency=currency, fees=[FeeSpec(amount_cents=123456)]
    )
    page = admin_client.get(change_url(invoice)).content.decode()
    listed = admin_client.get(CHANGELIST).content.decode()
    assert f'<span class="money">{shown}</span>' in page  # fee line and totals
    assert shown in listed


def test_customer_360_upcoming_invoice_lines_add_up_to_the_amount_due_with_prepaid_credits(
    client, admin_user, api, organization, django_capture_on_commit_callbacks
):
    billing, _ = calls_billing(api, organization, tax_rate="20")  # 100 EUR plan + 10 EUR a call
    apply_coupon(organization, billing.customer, name="Welcome", amount_cents=1000)
    wallet_of(billing, credits="30")
    send(billing, django_capture_on_commit_callbacks, 3)

    with time_machine.travel(at(NOW), tick=False):
        client.force_login(admin_user)
        response = client.get(f"/admin/customers/customer/{billing.customer.pk}/change/")

    panels = response.context["customer_360_panels"]
    [panel] = [p for p in panels if p.title == "Upcoming invoice (preview)"]
    totals = panel.context["totals"]
    assert [row["label"] for row in totals] == [
        "Fees", "Coupons", "Subtotal excl. tax", "Taxes", "Subtotal incl. tax",
        "Prepaid credits", "Amount due",
    ]  # fmt: skip
    cents = {row["label"]: row["cents"] for row in totals}
    assert (cents["Fees"], cents["Coupons"], cents["Prepaid credits"]) == (13_000, -1_000, -3_000)
    assert cents["Fees"] + cents["Coupons"] == cents["Subtotal excl. tax"]
    assert cents["Subtotal excl. tax"] + cents["Taxes"] == cents["Subtotal incl. tax"]
    assert cents["Subtotal incl. tax"] + cents["Prepaid credits"] == cents["Amount due"]
    assert cents["Amount due"] > 0
    page = response.content.decode()
    assert "Prepaid credits" in page
    assert "\u2212 €30.00" in page


# --- voided invoices: nothing left to pay ------------------------------------------------------


@pytest.fixture
def voided(organization, invoices):
    """A voided invoice of Globex that was never paid: Lago keeps its payment_status pending."""
    invoice = build_invoice(
        organization,
        customer=invoices["open"].customer,
        number="ACM-0009",
        status="voided",
        fees=[FeeSpec(amount_cents=50_000)],
    )
    assert invoice.payment_status == Invoice.PaymentStatus.PENDING
    return invoice


def changelist_row(page: str, number: str) -> str:
    [row] = [row for row in re.findall(r"<tr.*?</tr>", page, re.S) if number in row]
    return row


def payment_cell(row: str) -> str:
    return re.search(r'<td class="field-payment_tag[^"]*"[^>]*>(.*?)</td>', row, re.S).group(1)


def test_the_list_shows_a_voided_invoice_as_voided_not_pending_payment(admin_client, voided):
    page = admin_client.get(CHANGELIST).content.decode()
    assert "Voided" in payment_cell(changelist_row(page, "ACM-0009"))
    assert "Pending" not in payment_cell(changelist_row(page, "ACM-0009"))
    assert "Pending" in payment_cell(changelist_row(page, "ACM-0001"))


def test_the_pending_payment_filter_leaves_voided_invoices_out(admin_client, voided):
    page = admin_client.get(f"{CHANGELIST}?payment_status__exact=pending").content.decode()
    assert "ACM-0001" in page
    assert "ACM-0009" not in page


def test_the_voided_status_filter_still_finds_it(admin_client, voided):
    page = admin_client.get(f"{CHANGELIST}?status__exact=voided").content.decode()
    assert "ACM-0009" in page


def test_the_invoice_page_shows_no_pending_payment_for_a_voided_invoice(admin_client, voided):
    page = admin_client.get(change_url(voided)).content.decode()
    readonly = r">Payment</label>.*?<div class=\"readonly[^\"]*\">(.*?)</div>"
    payment = re.search(readonly, page, re.S)
    assert "Voided" in payment.group(1)
    assert "Pending" not in payment.group(1)


def test_customer_360_outstanding_amount_leaves_voided_invoices_out(admin_client, invoices, voided):
    Invoice.objects.filter(pk=invoices["open"].pk).update(payment_overdue=True)
    customer = invoices["open"].customer
    response = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/")

    [panel] = [p for p in response.context["customer_360_panels"] if p.title == "Invoices"]
    assert panel.context["outstanding"] == [
        {"currency": "EUR", "due": "€1,234.56", "overdue": "€1,234.56", "invoices": 1}
    ]
    [row] = [r for r in panel.context["rows"] if r["invoice"].pk == voided.pk]
    assert "Voided" in row["payment"]
    assert "Pending" not in row["payment"]
    page = response.content.decode()
    assert "Outstanding" in page
    assert "€1,234.56" in page
