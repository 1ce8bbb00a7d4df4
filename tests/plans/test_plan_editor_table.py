"""The plan editor's tier table (graduated, volume, graduated percentage), the currency of a new
plan and the yes/no billing switches."""

from __future__ import annotations

import re

import pytest
from django.http import QueryDict

from plans.admin.tiers import TierTableWidget, rows_from_text, text_from_rows
from plans.models import Charge, Plan
from tests.plans import test_plan_admin as editor
from tests.plans.test_plan_admin import charge_row, plan_form, rows

pytestmark = pytest.mark.django_db

catalog = editor.catalog  # the plan editor tests' catalog fixture


def table_post(name: str, tiers: list[tuple[str, str, str, str]]) -> QueryDict:
    data = QueryDict(mutable=True)
    for low, high, price, flat in tiers:
        data.appendlist(f"{name}-from", low)
        data.appendlist(f"{name}-to", high)
        data.appendlist(f"{name}-price", price)
        data.appendlist(f"{name}-flat", flat)
    return data


def test_table_rows_become_tier_lines_and_blank_rows_are_dropped():
    data = table_post("r", [("0", "100", "0.10", ""), ("", "", "", ""), ("101", "", "0.05", "1")])
    assert TierTableWidget().value_from_datadict(data, {}, "r") == (
        "0-100: 0.10 + 0\n101-: 0.05 + 1"
    )


def test_the_tier_text_itself_is_still_accepted():
    data = QueryDict(mutable=True)
    data["r"] = "0-10: 1 + 0"
    assert TierTableWidget().value_from_datadict(data, {}, "r") == "0-10: 1 + 0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("0-100: 0.10 + 0", [("0", "100", "0.10", "0")], id="closed"),
        pytest.param("101-: 0.05 + 2", [("101", "", "0.05", "2")], id="open-last-tier"),
        pytest.param("0-1000: 1% + 0", [("0", "1000", "1", "0")], id="percentage"),
        pytest.param("0-inf: 3", [("0", "", "3", "")], id="inf-and-no-flat"),
    ],
)
def test_stored_tiers_read_back_into_rows(text, expected):
    assert [tuple(row.values()) for row in rows_from_text(text)] == expected


def test_rows_and_text_round_trip():
    text = "0-100: 0.10 + 0\n101-: 0.05 + 1"
    assert text_from_rows(rows_from_text(text)) == text


def test_the_table_renders_one_input_row_per_tier_and_an_empty_one_when_none():
    html = TierTableWidget().render("charges-0-ranges", "0-10: 1 + 0\n11-: 0.5 + 0")
    assert html.count('name="charges-0-ranges-from"') == 2
    assert 'value="0.5"' in html
    assert "Add a tier" in html
    empty = TierTableWidget().render("charges-0-ranges", "")
    assert empty.count('name="charges-0-ranges-from"') == 1


def test_a_graduated_charge_is_priced_from_the_table(admin_client, organization, catalog):
    data = plan_form(organization)
    row = charge_row(catalog["api_calls"], "graduated")
    del row["ranges"]
    data.update(rows("charges", [row]))
    for low, high, price, flat in (("0", "100", "0.10", "0"), ("101", "", "0.05", "1")):
        data.setdefault("charges-0-ranges-from", []).append(low)
        data.setdefault("charges-0-ranges-to", []).append(high)
        data.setdefault("charges-0-ranges-price", []).append(price)
        data.setdefault("charges-0-ranges-flat", []).append(flat)
    response = admin_client.post("/admin/plans/plan/add/", data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    charge = Charge.objects.get(plan__code="premium")
    assert charge.properties["graduated_ranges"] == [
        {"from_value": 0, "to_value": 100, "per_unit_amount": "0.10", "flat_amount": "0"},
        {"from_value": 101, "to_value": None, "per_unit_amount": "0.05", "flat_amount": "1"},
    ]


def test_a_volume_charge_page_shows_its_tiers_as_a_table(admin_client, organization, catalog):
    data = plan_form(organization)
    data.update(rows("charges", [charge_row(catalog["seats_metric"], "volume",
                                            ranges="0-10: 2 + 0\n11-: 1.5 + 0")]))  # fmt: skip
    assert admin_client.post("/admin/plans/plan/add/", data).status_code == 302
    plan = Plan.objects.get(code="premium")
    page = admin_client.get(f"/admin/plans/plan/{plan.pk}/change/").content.decode()
    assert re.search(r'name="charges-0-ranges-price"\s+value="1.5"', page)
    assert 'class="tier-table"' in page


@pytest.fixture
def catalog_with_seats(catalog, organization):
    from tests.plans.factories import BillableMetricFactory

    catalog["seats_metric"] = BillableMetricFactory(organization=organization, code="seats_m")
    return catalog


@pytest.fixture(autouse=True)
def _seats(request):
    if "catalog" in request.fixturenames:
        request.getfixturevalue("catalog_with_seats")


def test_a_new_plan_starts_in_the_organizations_currency(client, organization):
    from django.contrib.auth import get_user_model

    from billing.roles import ensure_role_groups
    from billing.services import membership_set

    ensure_role_groups()
    organization.default_currency = "CHF"
    organization.save(update_fields=["default_currency"])
    user = get_user_model().objects.create_user("mgr", "mgr@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role="manager")
    client.force_login(user)
    page = client.get("/admin/plans/plan/add/").content.decode()
    assert re.search(r'<option value="CHF" selected>', page)


def test_billing_switches_are_yes_or_no_not_unknown(admin_client, organization):
    page = admin_client.get("/admin/plans/plan/add/").content.decode()
    assert "Unknown" not in page
    assert re.search(r'type="checkbox" name="bill_charges_monthly"', page)


@pytest.mark.parametrize(
    ("interval", "posted", "stored"),
    [
        pytest.param("yearly", {}, False, id="yearly-unticked-is-no"),
        pytest.param("yearly", {"bill_charges_monthly": "on"}, True, id="yearly-ticked"),
        pytest.param("monthly", {"bill_charges_monthly": "on"}, None, id="monthly-means-nothing"),
    ],
)
def test_billing_switches_store_yes_or_no(admin_client, organization, interval, posted, stored):
    response = admin_client.post(
        "/admin/plans/plan/add/", plan_form(organization, interval=interval, **posted)
    )
    assert response.status_code == 302
    assert Plan.objects.get(code="premium").bill_charges_monthly is stored
