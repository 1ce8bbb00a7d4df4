"""Exports of the finance lists (CSV parsed, XLSX opened), the totals of the filtered rows and
the date-range filters: each follows the list's filters and the staff member's organization."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth import get_user_model

from billing.actors import SYSTEM
from billing.money import format_money
from billing.roles import ensure_role_groups
from billing.services import membership_set
from invoicing.models import Invoice
from invoicing.services.credit_notes import ItemInput, credit_note_create
from invoicing.services.payment_settlement import payment_create_manual
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.invoicing.credit_note_builders import simple_invoice
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 4, 1, 12, 0, tzinfo=dt.UTC)
INVOICES = "/admin/invoicing/invoice/"


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.RECEIPT_PDF_ON_CREATE = False
    ensure_role_groups()


@pytest.fixture
def finance(client, organization):
    user = get_user_model().objects.create_user("fin", "f@example.com", "pw-1", is_staff=True)
    membership_set(organization=organization, user=user, role="finance")
    client.force_login(user)
    return client


@pytest.fixture
def books(organization, other_organization):
    """Three invoices of ours over two months and two currencies, one of another organization."""
    acme = CustomerFactory(organization=organization, name="Acme", external_id="acme")
    return {
        "march": build_invoice(organization, customer=acme, number="ACM-0001",
                               fees=[FeeSpec(amount_cents=123456)],
                               issuing_date=dt.date(2026, 3, 5)),
        "april": build_invoice(organization, customer=acme, number="ACM-0002",
                               fees=[FeeSpec(amount_cents=5000)],
                               issuing_date=dt.date(2026, 4, 2)),
        "usd": build_invoice(organization, number="ACM-0003", currency="USD",
                             fees=[FeeSpec(amount_cents=700)], issuing_date=dt.date(2026, 3, 20)),
        "theirs": build_invoice(other_organization, number="OTH-0001",
                                fees=[FeeSpec(amount_cents=999)],
                                issuing_date=dt.date(2026, 3, 10)),
    }  # fmt: skip


def csv_rows(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.streaming  # written while rows are read, not built first
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def xlsx_rows(response) -> list[dict[str, object]]:
    assert response.status_code == 200
    assert "spreadsheetml" in response["Content-Type"]
    book = openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)))
    values = list(book.active.iter_rows(values_only=True))
    return [dict(zip(values[0], row, strict=True)) for row in values[1:]]


MARCH = "issuing_date_from=2026-03-01&issuing_date_to=2026-03-31"


def test_invoice_csv_keeps_the_filters_and_the_organization(finance, books):
    rows = csv_rows(finance.get(f"{INVOICES}export.csv?{MARCH}"))
    assert sorted(row["number"] for row in rows) == ["ACM-0001", "ACM-0003"]
    march = next(row for row in rows if row["number"] == "ACM-0001")
    assert march["total_amount"] == "1234.56"
    assert march["currency"] == "EUR"
    assert march["issuing_date"] == "2026-03-05"
    assert march["customer_external_id"] == "acme"


def test_invoice_xlsx_has_decimal_amounts_and_date_cells(finance, books):
    rows = xlsx_rows(finance.get(f"{INVOICES}export.xlsx?currency__exact=EUR"))
    assert sorted(row["number"] for row in rows) == ["ACM-0001", "ACM-0002"]
    march = next(row for row in rows if row["number"] == "ACM-0001")
    assert Decimal(str(march["total_amount"])) == Decimal("1234.56")
    assert march["issuing_date"].date() == dt.date(2026, 3, 5)
    assert march["currency"] == "EUR"


def test_export_page_exports_the_chosen_columns_of_the_filtered_invoices_as_xlsx(finance, books):
    url = f"{INVOICES}export/?{MARCH}"
    assert finance.get(url).status_code == 200
    columns = {"invoiceresource_number": "on", "invoiceresource_total_amount": "on"}
    response = finance.post(url, {"format": "1", "resource": "0", **columns})
    rows = xlsx_rows(response)
    assert sorted((row["number"], str(row["total_amount"])) for row in rows) == [
        ("ACM-0001", "1234.56"),
        ("ACM-0003", "7"),
    ]


def test_invoice_search_narrows_the_export(finance, books):
    rows = csv_rows(finance.get(f"{INVOICES}export.csv?q=ACM-0002"))
    assert [row["number"] for row in rows] == ["ACM-0002"]


def test_text_starting_like_a_formula_is_exported_as_text(finance, organization):
    customer = CustomerFactory(organization=organization, name="=HYPERLINK(1)", external_id="x1")
    build_invoice(organization, customer=customer, number="ACM-0100")
    (row,) = csv_rows(finance.get(f"{INVOICES}export.csv"))
    assert row["customer_name"] == "'=HYPERLINK(1)"
    (cell,) = xlsx_rows(finance.get(f"{INVOICES}export.xlsx"))
    assert cell["customer_name"] == "=HYPERLINK(1)"  # a text cell, not a formula


def test_list_totals_are_the_sums_of_the_filtered_rows(finance, books):
    page = finance.get(f"{INVOICES}?{MARCH}").content.decode()
    totals = re.search(r'id="list-totals".*?</div>\s*</div>', page, re.S).group(0)
    rows = csv_rows(finance.get(f"{INVOICES}export.csv?{MARCH}"))
    for currency in ("EUR", "USD"):
        cents = sum(
            Invoice.objects.get(number=row["number"]).total_amount_cents
            for row in rows
            if row["currency"] == currency
        )
        assert format_money(cents, currency) in totals
    assert format_money(5000, "EUR") not in totals  # April's invoice is filtered out
    assert "9.99" not in totals  # another organization's


def test_invoice_list_date_range_filter(finance, books):
    page = finance.get(f"{INVOICES}?issuing_date_from=2026-04-01").content.decode()
    assert "ACM-0002" in page
    assert "ACM-0001" not in page


def _note(invoice, cents: int):
    fee = invoice.fees.get()
    return credit_note_create(
        invoice=invoice,
        actor=SYSTEM,
        now=NOW,
        items=[ItemInput(fee_id=str(fee.pk), amount_cents=Decimal(cents))],
        reason="other",
        credit_amount_cents=round(cents * 1.2),
    )


def test_credit_note_csv_follows_the_date_range_and_the_organization(
    finance, organization, other_organization
):
    ours = _note(simple_invoice(organization, number="ACM-0200"), 1000)
    _note(simple_invoice(other_organization, number="OTH-0200"), 1000)
    rows = csv_rows(finance.get("/admin/invoicing/creditnote/export.csv"))
    assert [row["number"] for row in rows] == [ours.number]
    assert rows[0]["total_amount"] == "12.00"
    assert rows[0]["invoice_number"] == "ACM-0200"
    day = ours.issuing_date.isoformat()
    later = (ours.issuing_date + dt.timedelta(days=1)).isoformat()
    assert (
        csv_rows(finance.get(f"/admin/invoicing/creditnote/export.csv?issuing_date_from={later}"))
        == []
    )
    page = finance.get(f"/admin/invoicing/creditnote/?issuing_date_to={day}").content.decode()
    assert "Credit left" in page
    assert "€12.00" in re.search(r'id="list-totals".*?</div>\s*</div>', page, re.S).group(0)


def test_payment_xlsx_and_created_date_range(finance, organization, books):
    for invoice, cents, paid in ((books["march"], 1500, NOW), (books["usd"], 700, NOW)):
        payment_create_manual(
            payable=invoice, amount_cents=cents, reference="wire", paid_at=paid, actor=SYSTEM,
            now=NOW,
        )  # fmt: skip
    rows = xlsx_rows(finance.get("/admin/invoicing/payment/export.xlsx?amount_currency__exact=USD"))
    assert [(row["invoice_number"], Decimal(str(row["amount"]))) for row in rows] == [
        ("ACM-0003", Decimal("7.00"))
    ]
    assert (
        csv_rows(finance.get("/admin/invoicing/payment/export.csv?created_at_from=2026-04-02"))
        == []
    )
    assert (
        len(csv_rows(finance.get("/admin/invoicing/payment/export.csv?created_at_to=2026-04-01")))
        == 2
    )


def test_fee_csv_has_the_fees_of_the_searched_invoice(finance, books):
    rows = csv_rows(finance.get("/admin/invoicing/fee/export.csv?q=ACM-0001"))
    assert [(row["invoice_number"], row["amount"], row["currency"]) for row in rows] == [
        ("ACM-0001", "1234.56", "EUR")
    ]


def test_customer_and_subscription_csv_stay_in_the_organization(
    finance, organization, other_organization
):
    ours = SubscriptionFactory(organization=organization)
    SubscriptionFactory(organization=other_organization)
    customers = csv_rows(finance.get("/admin/customers/customer/export.csv"))
    assert [row["external_id"] for row in customers] == [ours.customer.external_id]
    subscriptions = csv_rows(finance.get("/admin/customers/subscription/export.csv"))
    assert [row["external_id"] for row in subscriptions] == [ours.external_id]
    assert subscriptions[0]["plan_code"] == ours.plan.code


def test_staff_without_the_list_cannot_export_it(client, organization, books):
    user = get_user_model().objects.create_user("nobody", "n@example.com", "pw", is_staff=True)
    client.force_login(user)
    assert client.get(f"{INVOICES}export.csv").status_code == 403


@pytest.mark.parametrize(
    ("url", "rows"),
    [
        pytest.param(f"{INVOICES}export.csv", 6, id="invoices"),
        pytest.param("/admin/invoicing/fee/export.csv", 6, id="fees"),
    ],
)
def test_export_queries_do_not_grow_with_the_rows(
    finance, organization, django_assert_max_num_queries, url, rows
):
    for n in range(rows):
        build_invoice(organization, number=f"ACM-03{n:02d}")  # a customer each
    with django_assert_max_num_queries(12):
        assert len(csv_rows(finance.get(url))) == rows
