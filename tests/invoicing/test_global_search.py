"""The admin header's search: results grouped by kind, each a link, only the staff member's
organization."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth import get_user_model

from billing.admin_search import parse_amount
from billing.roles import ensure_role_groups
from billing.services import membership_set
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = pytest.mark.django_db
SEARCH = "/admin/find/"


@pytest.fixture(autouse=True)
def _role_groups():
    ensure_role_groups()


@pytest.fixture
def finance(client, organization):
    user = get_user_model().objects.create_user("fin", "f@example.com", "pw-1", is_staff=True)
    membership_set(organization=organization, user=user, role="finance")
    client.force_login(user)
    return client


@pytest.fixture
def both_books(organization, other_organization):
    ours = CustomerFactory(organization=organization, name="Wayne Corp", external_id="cust-wayne")
    theirs = CustomerFactory(
        organization=other_organization, name="Wayne Holdings", external_id="cust-wayne-2"
    )
    return {
        "customer": ours,
        "invoice": build_invoice(organization, customer=ours, number="WAY-0042",
                                 fees=[FeeSpec(amount_cents=98765)]),
        "their_customer": theirs,
        "their_invoice": build_invoice(other_organization, customer=theirs, number="WAY-0043",
                                       fees=[FeeSpec(amount_cents=98765)]),
    }  # fmt: skip


def groups(page: str) -> dict[str, str]:
    """Each kind's section of the results page: {"Customers": html, ...}."""
    return dict(re.findall(r'data-kind="([^"]+)">(.*?)</section>', page, re.S))


def test_finds_a_customer_by_external_id_with_a_link(finance, both_books):
    page = finance.get(SEARCH, {"q": "cust-wayne"}).content.decode()
    found = groups(page)
    customer = both_books["customer"]
    assert f"/admin/customers/customer/{customer.pk}/change/" in found["Customers"]
    assert "Wayne Holdings" not in page  # another organization's customer


def test_finds_an_invoice_by_number_grouped_under_invoices(finance, both_books):
    page = finance.get(SEARCH, {"q": "WAY-0042"}).content.decode()
    found = groups(page)
    assert list(found) == ["Invoices"]
    assert f"/admin/invoicing/invoice/{both_books['invoice'].pk}/change/" in found["Invoices"]


def test_finds_an_invoice_by_amount_but_not_another_organizations(finance, both_books):
    page = finance.get(SEARCH, {"q": "987.65"}).content.decode()
    found = groups(page)
    assert "WAY-0042" in found["Invoices"]
    assert "WAY-0043" not in page
    assert str(both_books["their_invoice"].pk) not in page


def test_a_name_shared_across_organizations_shows_only_ours(finance, both_books):
    page = finance.get(SEARCH, {"q": "Wayne"}).content.decode()
    found = groups(page)
    assert "Wayne Corp" in found["Customers"]
    assert "WAY-0042" in found["Invoices"]
    assert "Wayne Holdings" not in page
    assert "WAY-0043" not in page


def test_nothing_found_says_so(finance, both_books):
    page = finance.get(SEARCH, {"q": "no-such-thing"}).content.decode()
    assert 'id="search-empty"' in page
    assert groups(page) == {}


def test_every_admin_page_has_the_search_in_its_header(finance, both_books):
    page = finance.get("/admin/invoicing/invoice/").content.decode()
    assert 'id="global-search"' in page
    assert 'action="/admin/find/"' in page


@pytest.mark.parametrize(
    ("typed", "amount"),
    [
        pytest.param("987.65", "987.65", id="dot"),
        pytest.param("1,234.56", "1234.56", id="thousands-comma"),
        pytest.param("1 234,56", "1234.56", id="decimal-comma"),
        pytest.param("1,234", "1234", id="comma-thousands-only"),
        pytest.param("WAY-0042", None, id="not-an-amount"),
        pytest.param("-5", None, id="negative"),
    ],
)
def test_parse_amount(typed, amount):
    parsed = parse_amount(typed)
    assert (str(parsed) if parsed is not None else None) == amount


def test_an_amount_in_yen_matches_its_whole_units(finance, organization):
    build_invoice(organization, number="JPY-0001", currency="JPY", fees=[FeeSpec(amount_cents=500)],
                  issuing_date=dt.date(2026, 3, 2))  # fmt: skip
    page = finance.get(SEARCH, {"q": "500"}).content.decode()
    assert "JPY-0001" in groups(page)["Invoices"]
    assert "JPY-0001" not in finance.get(SEARCH, {"q": "5.00"}).content.decode()
