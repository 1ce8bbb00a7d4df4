"""A finance member reads the invoice list at 1280 px, exports it and searches from the header."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth import get_user_model

from billing.roles import ensure_role_groups
from billing.services import membership_set
from tests.customers.factories import CustomerFactory
from tests.e2e.conftest import admin_login
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def finance(organization):
    ensure_role_groups()
    user = get_user_model().objects.create_user("finance", "fin@example.com", "s3cret-pass")
    membership_set(organization=organization, user=user, role="finance")
    return user


@pytest.fixture
def books(organization, other_organization):
    customer = CustomerFactory(
        organization=organization,
        name="Globex International Holdings",
        external_id="globex-international-holdings",
    )
    for n, (day, cents) in enumerate(
        ((dt.date(2026, 3, 3), 123456), (dt.date(2026, 3, 17), 9900), (dt.date(2026, 4, 2), 500)),
        start=1,
    ):
        build_invoice(organization, customer=customer, number=f"ACM-2026-000{n}",
                      fees=[FeeSpec(amount_cents=cents)], issuing_date=day,
                      payment_status="succeeded" if n == 2 else None)  # fmt: skip
    build_invoice(organization, number="ACM-2026-USD", currency="USD",
                  fees=[FeeSpec(amount_cents=70000)], issuing_date=dt.date(2026, 3, 9))  # fmt: skip
    build_invoice(other_organization, number="OTH-2026-0001", issuing_date=dt.date(2026, 3, 4))


@pytest.fixture
def narrow_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def test_finance_exports_the_filtered_invoice_list_at_1280px(
    live_server, narrow_page, finance, books, tmp_path
):
    page = narrow_page
    admin_login(page, live_server.url, "finance", "s3cret-pass")
    march = "issuing_date_from=2026-03-01&issuing_date_to=2026-03-31"
    page.goto(f"{live_server.url}/admin/invoicing/invoice/?{march}")
    assert page.locator("#result_list tbody tr").count() == 3
    # the list fits the window: no sideways scrolling at 1280 px
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    totals = page.locator("#list-totals").inner_text()
    assert "€1,333.56" in totals  # 1,234.56 + 99.00, April's 5.00 filtered out
    assert "$700.00" in totals
    page.screenshot(path="/tmp/billing-screenshots/invoice-list-1280.png", full_page=True)

    with page.expect_download() as download:
        page.click("a[href*='export.xlsx']")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.suffix == ".xlsx"
    sheet = openpyxl.load_workbook(saved).active
    header, *rows = list(sheet.iter_rows(values_only=True))
    numbers = sorted(row[header.index("number")] for row in rows)
    assert numbers == ["ACM-2026-0001", "ACM-2026-0002", "ACM-2026-USD"]
    amounts = {row[header.index("number")]: row[header.index("total_amount")] for row in rows}
    assert Decimal(str(amounts["ACM-2026-0001"])) == Decimal("1234.56")

    with page.expect_download() as download:
        page.click("a[href*='export.csv']")
    content = open(download.value.path()).read()  # noqa: SIM115
    assert "ACM-2026-0002" in content
    assert "ACM-2026-0003" not in content
    assert "OTH-2026-0001" not in content

    # the export page keeps the filters and offers the columns
    page.click("a[href*='/invoice/export/']")
    page.wait_for_selector("input[name=invoiceresource_total_amount]")
    assert "issuing_date_from=2026-03-01" in page.url
    page.screenshot(path="/tmp/billing-screenshots/invoice-export-page.png", full_page=True)


def test_header_search_answers_a_page_grouped_by_kind(live_server, narrow_page, finance, books):
    page = narrow_page
    admin_login(page, live_server.url, "finance", "s3cret-pass")
    page.goto(f"{live_server.url}/admin/invoicing/invoice/")
    page.fill("#global-search-q", "globex")
    page.press("#global-search-q", "Enter")
    page.wait_for_selector(".search-group")
    kinds = page.locator(".search-group h2").all_inner_texts()
    assert kinds == ["Customers", "Invoices"]
    page.screenshot(path="/tmp/billing-screenshots/global-search.png", full_page=True)
    page.click(".search-group[data-kind=Customers] a")
    page.wait_for_url("**/admin/customers/customer/*/change/")
