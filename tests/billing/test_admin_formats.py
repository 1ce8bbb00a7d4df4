"""One money, number and date format in the admin: Babel in the organization's locale with the
currency symbol, thousands separators on units, ISO dates."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.utils.formats import date_format

from billing.money import display_locale, format_money, format_unit_price, format_units
from billing.services import membership_set
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

NNBSP, NBSP = "\u202f", "\xa0"


@pytest.mark.parametrize(
    ("value", "locale", "shown"),
    [
        pytest.param(Decimal("5186.08"), "en", "5,186.08", id="thousands-en"),
        pytest.param(Decimal("1234567"), "fr", f"1{NNBSP}234{NNBSP}567", id="thousands-fr"),
        pytest.param(Decimal("1E+3"), "en", "1,000", id="exponent-written-out"),
        pytest.param(Decimal("0.0001"), "en", "0.0001", id="never-rounded"),
        pytest.param(Decimal("60.0"), "en", "60", id="no-trailing-zero"),
        pytest.param(None, "en", "—", id="none"),
    ],
)
def test_format_units_groups_thousands_and_keeps_every_digit(value, locale, shown):
    assert format_units(value, locale) == shown


def test_display_locale_applies_where_no_locale_is_passed():
    with display_locale("fr"):
        assert format_money(123456, "EUR") == f"1{NNBSP}234,56{NBSP}€"
        assert format_unit_price(Decimal("0.0025"), "EUR") == f"0,0025{NBSP}€"
    assert format_money(123456, "EUR") == "€1,234.56"


def test_an_explicit_locale_wins_over_the_display_locale():
    with display_locale("fr"):
        assert format_money(123456, "EUR", "en") == "€1,234.56"


@pytest.fixture
def invoice(organization):
    customer = CustomerFactory(organization=organization, name="Globex", external_id="globex")
    return build_invoice(
        organization,
        customer=customer,
        number="ACM-0001",
        fees=[FeeSpec(amount_cents=123456)],
    )


@pytest.fixture
def usage_invoice(organization):
    return build_invoice(
        organization, number="ACM-0002", fees=[FeeSpec(amount_cents=500, units=Decimal("5186.08"))]
    )


@pytest.fixture
def staff_client(client, organization):
    user = get_user_model().objects.create_user("fin", "fin@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role="finance")
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_invoice_list_shows_money_in_the_organizations_locale(staff_client, organization, invoice):
    organization.document_locale = "fr"
    organization.save(update_fields=["document_locale"])
    page = staff_client.get("/admin/invoicing/invoice/").content.decode()
    assert f"1{NNBSP}234,56{NBSP}€" in page


@pytest.mark.django_db
def test_invoice_list_shows_english_money_for_an_english_organization(staff_client, invoice):
    page = staff_client.get("/admin/invoicing/invoice/").content.decode()
    assert "€1,234.56" in page


@pytest.mark.django_db
def test_invoice_page_shows_units_with_separators(staff_client, usage_invoice):
    url = f"/admin/invoicing/invoice/{usage_invoice.pk}/change/"
    assert "5,186.08" in staff_client.get(url).content.decode()


@pytest.mark.django_db
def test_dates_use_one_iso_format_in_lists(staff_client, invoice):
    page = staff_client.get("/admin/invoicing/invoice/").content.decode()
    assert "2026-03-01" in page  # issuing date
    assert not re.search(r"(Jan|Feb|Mar|Apr)\.? \d{1,2}, \d{4}", page)


def test_django_date_formats_are_iso_days_and_minutes():
    instant = dt.datetime(2026, 3, 1, 14, 5, 9, tzinfo=dt.UTC)
    assert date_format(instant, "DATETIME_FORMAT") == "2026-03-01 14:05"
    assert date_format(instant.date()) == "2026-03-01"
    assert date_format(instant.date(), "SHORT_DATE_FORMAT") == "2026-03-01"
