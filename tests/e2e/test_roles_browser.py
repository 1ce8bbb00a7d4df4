"""Each staff role logs in at 1280 px: the home page and the invoice list, screenshotted; the list
fits the width with every column visible, and the sidebar shows only the role's sections."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from billing.roles import ensure_role_groups
from billing.services import membership_set
from tests.customers.factories import CustomerFactory
from tests.e2e.conftest import admin_login
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH = 1280
COLUMNS = ("Number", "Customer", "Invoice type", "Status", "Payment", "Total", "Issued", "Due")


@pytest.fixture
def staff(organization):
    ensure_role_groups()
    for role in ("admin", "manager", "finance"):
        user = get_user_model().objects.create_user(role, f"{role}@example.com", "s3cret-pass")
        membership_set(organization=organization, user=user, role=role)
    customer = CustomerFactory(
        organization=organization, name="Bergmann Maschinenbau GmbH", external_id="bergmann_de"
    )
    for n in range(1, 6):
        build_invoice(
            organization,
            customer=customer,
            number=f"ACM-2026-{n:05d}",
            fees=[FeeSpec(amount_cents=123456789 * n, name="Enterprise plan")],
            payment_status="succeeded" if n % 2 else None,
        )


@pytest.fixture
def narrow_page(browser):
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.mark.parametrize(
    ("role", "sections"),
    [
        ("admin", ["Billing", "Catalog", "Developers", "Settings"]),
        ("manager", ["Billing", "Catalog", "Developers"]),
        ("finance", ["Billing", "Catalog"]),
    ],
)
def test_each_role_sees_its_home_and_an_invoice_list_that_fits(
    live_server, narrow_page, staff, role, sections
):
    page = narrow_page
    admin_login(page, live_server.url, role, "s3cret-pass")
    nav = page.locator("#nav-sidebar, nav").first.inner_text()
    for title in ("Billing", "Catalog", "Developers", "Settings"):
        assert (title in nav) == (title in sections), title
    page.screenshot(path=f"{shots()}/role-{role}-home.png", full_page=True)

    page.goto(f"{live_server.url}/admin/invoicing/invoice/")
    page.wait_for_selector("#result_list")
    page.screenshot(path=f"{shots()}/role-{role}-invoices-1280.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    headers = page.locator("#result_list thead th")
    texts = [t.strip() for t in headers.all_inner_texts()]
    for column in COLUMNS:
        assert any(text.startswith(column) for text in texts), column
    for box in (h.bounding_box() for h in headers.all()):
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= WIDTH
    # money keeps to one line: no cut or wrapped amounts
    for cell in page.locator("td.field-total").all():
        assert cell.evaluate("e => e.scrollWidth <= e.clientWidth")
        assert "\n" not in cell.inner_text()


def shots() -> str:
    from tests.e2e.conftest import SCREENSHOTS

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return str(SCREENSHOTS)
