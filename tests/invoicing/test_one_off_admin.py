"""Admin "New one-off invoice": add-on lines for one customer, a preview of the totals, then the
invoice POST /invoices would issue; refusals next to their field and nothing written."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from billing.models import OutboxEvent
from billing.roles import ensure_role_groups
from billing.services import membership_set
from invoicing.models import Fee, Invoice
from tests.customers.factories import CustomerFactory
from tests.plans.factories import AddOnFactory, TaxFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/invoicing/invoice/add/"


@pytest.fixture(autouse=True)
def role_groups(db):
    ensure_role_groups()


def login(client, organization, role):
    user = get_user_model().objects.create_user(role, f"{role}@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role=role)
    client.force_login(user)
    return client


@pytest.fixture
def finance(client, organization):
    return login(client, organization, "finance")


@pytest.fixture
def catalog(organization):
    return {
        "customer": CustomerFactory(organization=organization, external_id="globex",
                                    name="Globex", currency="EUR"),
        "setup": AddOnFactory(organization=organization, code="setup", name="Setup",
                              amount_cents=50_000),
        "training": AddOnFactory(organization=organization, code="training", name="Training",
                                 amount_cents=12_000),
        "vat": TaxFactory(organization=organization, code="vat_20", name="VAT", rate="20"),
    }  # fmt: skip


def line(n, add_on, **fields):
    data = {f"line-{n}-add_on": str(add_on.pk), f"line-{n}-units": "1"}
    data.update({f"line-{n}-{key}": value for key, value in fields.items()})
    return data


def form_data(*lines, button="_save", currency="EUR"):
    data = {
        "currency": currency,
        "line-TOTAL_FORMS": "3",
        "line-INITIAL_FORMS": "0",
        "line-MIN_NUM_FORMS": "0",
        "line-MAX_NUM_FORMS": "20",
        button: "1",
    }
    for item in lines:
        data.update(item)
    for n in range(3):
        data.setdefault(f"line-{n}-units", "1")  # the blank lines' initial value
    return data


def url(customer):
    return f"{ADD}?customer={customer.pk}"


def _two_lines(catalog):
    return (
        line(0, catalog["setup"]),
        line(1, catalog["training"], units="3", unit_amount="99.50",
             description="Onboarding days", taxes=str(catalog["vat"].pk)),
    )  # fmt: skip


def test_creating_issues_the_invoice_the_api_would(finance, catalog, api, organization):
    response = finance.post(url(catalog["customer"]), form_data(*_two_lines(catalog)))
    ours = Invoice.objects.get(customer=catalog["customer"])
    assert response.status_code == 302
    assert response["Location"] == f"/admin/invoicing/invoice/{ours.pk}/change/"

    CustomerFactory(organization=organization, external_id="twin", currency="EUR")
    answer = api.post(
        "/api/v1/invoices",
        {"invoice": {"external_customer_id": "twin", "currency": "EUR", "fees": [
            {"add_on_code": "setup", "units": 1},
            {"add_on_code": "training", "units": 3, "unit_amount_cents": 9950,
             "description": "Onboarding days", "tax_codes": ["vat_20"]},
        ]}},
        format="json",
    )  # fmt: skip
    assert answer.status_code == 200, answer.json()
    theirs = Invoice.objects.get(customer__external_id="twin")

    def shape(invoice):
        fees = sorted(
            (f.add_on.code, f.units, f.unit_amount_cents, f.amount_cents, f.taxes_amount_cents,
             f.description)
            for f in Fee.objects.filter(invoice=invoice).select_related("add_on")
        )  # fmt: skip
        return (invoice.invoice_type, invoice.status, invoice.currency, invoice.fees_amount_cents,
                invoice.taxes_amount_cents, invoice.total_amount_cents, fees)  # fmt: skip

    assert shape(ours) == shape(theirs)
    assert shape(ours)[:6] == ("one_off", "finalized", "EUR", 50_000 + 29_850, 5_970, 85_820)
    assert ours.number
    assert OutboxEvent.objects.filter(event_type="invoice.one_off_created").count() == 2


def test_preview_shows_the_totals_and_writes_nothing(finance, catalog):
    response = finance.post(
        url(catalog["customer"]), form_data(*_two_lines(catalog), button="_preview")
    )
    assert response.status_code == 200
    assert dict(response.context["preview"]) == {
        "Fees": "€798.50", "Taxes": "€59.70", "Total": "€858.20",
    }  # fmt: skip
    assert not Invoice.objects.exists()
    assert not OutboxEvent.objects.filter(event_type__startswith="invoice.").exists()


def test_preview_does_not_set_a_first_currency(finance, catalog, organization):
    newcomer = CustomerFactory(organization=organization, currency="")
    response = finance.post(url(newcomer), form_data(line(0, catalog["setup"]), button="_preview"))
    assert response.context["preview"]
    newcomer.refresh_from_db()
    assert newcomer.currency == ""


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        pytest.param({"units": "-1"}, "units", "greater than or equal to 0", id="negative-units"),
        pytest.param({"unit_amount": "-5"}, "unit_amount", "greater than or equal to 0",
                     id="negative-amount"),
        pytest.param({"unit_amount": "1.001"}, "unit_amount", "Too many decimals",
                     id="sub-cent-amount"),
    ],
)  # fmt: skip
def test_an_invalid_line_is_refused_next_to_its_field(finance, catalog, fields, field, message):
    response = finance.post(
        url(catalog["customer"]), form_data(line(0, catalog["setup"], **fields))
    )
    assert response.status_code == 200
    assert message in " ".join(response.context["formset"].forms[0].errors[field])
    assert not Invoice.objects.exists()


def test_no_line_is_refused(finance, catalog):
    response = finance.post(url(catalog["customer"]), form_data())
    assert "at least one add-on" in " ".join(response.context["formset"].non_form_errors())
    assert not Invoice.objects.exists()


def test_another_currency_than_the_customers_is_refused_next_to_it(finance, catalog):
    response = finance.post(
        url(catalog["customer"]), form_data(line(0, catalog["setup"]), currency="USD")
    )
    assert "currency" in response.context["form"].errors
    assert not Invoice.objects.exists()


def test_another_organizations_add_on_is_neither_offered_nor_accepted(
    finance, catalog, other_organization
):
    theirs = AddOnFactory(organization=other_organization, code="setup", name="Their setup")
    assert "Their setup" not in finance.get(url(catalog["customer"])).content.decode()
    response = finance.post(url(catalog["customer"]), form_data(line(0, theirs)))
    assert "add_on" in response.context["formset"].forms[0].errors
    assert not Invoice.objects.exists()


def test_another_organizations_customer_is_neither_offered_nor_invoiced(
    finance, catalog, other_organization
):
    stranger = CustomerFactory(organization=other_organization, name="Stranger Ltd")
    assert "Stranger Ltd" not in finance.get(ADD).content.decode()
    response = finance.post(url(stranger), form_data(line(0, catalog["setup"])))
    assert "pick_form" in response.context
    assert not Invoice.objects.exists()


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("admin", True), ("finance", True), ("manager", False)],
)
def test_who_may_issue_a_one_off_invoice(client, organization, catalog, role, allowed):
    staff = login(client, organization, role)
    response = staff.post(url(catalog["customer"]), form_data(line(0, catalog["setup"])))
    assert response.status_code == (302 if allowed else 403)
    assert Invoice.objects.exists() is allowed
    page = staff.get(f"/admin/customers/customer/{catalog['customer'].pk}/change/")
    assert ("One-off invoice" in page.content.decode()) is allowed


def test_unit_amount_left_empty_bills_the_add_ons_price(finance, catalog):
    finance.post(url(catalog["customer"]), form_data(line(0, catalog["setup"], units="2")))
    fee = Fee.objects.get()
    assert (fee.units, fee.unit_amount_cents, fee.amount_cents) == (Decimal(2), 50_000, 100_000)
