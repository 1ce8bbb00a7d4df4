"""The plan editor: finance staff build plans without JSON, validated like the API."""

import pytest
from django.contrib.auth import get_user_model

from billing.roles import ensure_role_groups
from billing.services import membership_set
from plans.models import BillableMetricFilter, Charge, ChargeFilter, Plan
from tests.customers.factories import SubscriptionFactory
from tests.plans.factories import (
    AddOnFactory,
    BillableMetricFactory,
    ChargeFactory,
    PlanFactory,
    TaxFactory,
)

pytestmark = pytest.mark.django_db

INLINES = ("charges", "fixed_charges", "minimum_commitment", "usage_thresholds")
EMPTY_PRICE = {
    "code": "", "invoice_display_name": "", "regroup_paid_fees": "", "min_amount": "",
    "amount": "", "package_size": "", "free_units": "", "rate": "", "fixed_amount": "",
    "free_units_per_events": "", "free_units_per_total_aggregation": "",
    "per_transaction_min_amount": "", "per_transaction_max_amount": "", "ranges": "",
    "pricing_group_keys": "",
}  # fmt: skip


@pytest.fixture
def catalog(organization):
    compute = BillableMetricFactory(organization=organization, code="compute")
    BillableMetricFilter.objects.create(
        organization=organization, billable_metric=compute, key="region", values=["eu", "us"]
    )
    return {
        "api_calls": BillableMetricFactory(organization=organization, code="api_calls", count=True),
        "storage": BillableMetricFactory(organization=organization, code="storage"),
        "payments": BillableMetricFactory(organization=organization, code="payments"),
        "compute": compute,
        "seats": AddOnFactory(organization=organization, code="seats"),
        "vat": TaxFactory(organization=organization, code="vat_20", name="VAT", rate="20"),
    }


def management(prefix: str, total: int, initial: int = 0) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000",
    }  # fmt: skip


def rows(prefix: str, forms: list[dict], initial: int = 0) -> dict:
    data = management(prefix, len(forms), initial)
    for index, form in enumerate(forms):
        data.update({f"{prefix}-{index}-{key}": value for key, value in form.items()})
    return data


def plan_form(organization, **fields: object) -> dict:
    data = {
        "organization": str(organization.pk), "name": "Premium", "code": "premium",
        "invoice_display_name": "", "description": "", "interval": "monthly",
        "amount": "100.00", "amount_currency": "EUR", "trial_period": "0",
        "metadata_text": "", **fields,
    }  # fmt: skip
    for prefix in INLINES:
        data.update(management(prefix, 0))
    return data


def charge_row(metric, charge_model: str, **fields: object) -> dict:
    return {**EMPTY_PRICE, "id": "", "billable_metric": str(metric.pk),
            "charge_model": charge_model, "invoiceable": "on", **fields}  # fmt: skip


def full_admin_form(organization, catalog: dict) -> dict:
    data = plan_form(organization, pay_in_advance="on", taxes=[str(catalog["vat"].pk)])
    data.update(
        rows("charges", [
            charge_row(catalog["api_calls"], "graduated", invoice_display_name="API calls",
                       ranges="0-100: 0.10 + 0\n101-: 0.05 + 1",
                       taxes=[str(catalog["vat"].pk)]),
            charge_row(catalog["storage"], "package", amount="5", package_size="100",
                       free_units="10"),
            charge_row(catalog["payments"], "percentage", rate="1.5", fixed_amount="0.25",
                       free_units_per_events="3"),
            charge_row(catalog["compute"], "standard", amount="0.02"),
        ])
    )  # fmt: skip
    data.update(
        rows("fixed_charges", [
            {**EMPTY_PRICE, "id": "", "add_on": str(catalog["seats"].pk),
             "charge_model": "standard", "units": "3", "amount": "12.50",
             "pay_in_advance": "on", "prorated": "on"},
        ])
    )  # fmt: skip
    data.update(rows("minimum_commitment", [
        {"id": "", "amount": "500.00", "invoice_display_name": "Commitment",
         "taxes": [str(catalog["vat"].pk)]}]))  # fmt: skip
    data.update(rows("usage_thresholds", [
        {"id": "", "amount": "200", "threshold_display_name": "Alert"},
        {"id": "", "amount": "50", "threshold_display_name": "", "recurring": "on"}]))  # fmt: skip
    return data


def api_payload(catalog: dict) -> dict:
    return {
        "name": "Premium", "code": "premium_api", "interval": "monthly", "amount_cents": 10000,
        "amount_currency": "EUR", "pay_in_advance": True, "tax_codes": ["vat_20"],
        "charges": [
            {"billable_metric_id": str(catalog["api_calls"].id), "charge_model": "graduated",
             "invoice_display_name": "API calls", "tax_codes": ["vat_20"],
             "properties": {"graduated_ranges": [
                 {"from_value": 0, "to_value": 100, "per_unit_amount": "0.10",
                  "flat_amount": "0"},
                 {"from_value": 101, "to_value": None, "per_unit_amount": "0.05",
                  "flat_amount": "1"}]}},
            {"billable_metric_id": str(catalog["storage"].id), "charge_model": "package",
             "properties": {"amount": "5", "package_size": 100, "free_units": 10}},
            {"billable_metric_id": str(catalog["payments"].id), "charge_model": "percentage",
             "properties": {"rate": "1.5", "fixed_amount": "0.25", "free_units_per_events": 3}},
            {"billable_metric_id": str(catalog["compute"].id), "charge_model": "standard",
             "properties": {"amount": "0.02"},
             "filters": [{"invoice_display_name": "EU", "properties": {"amount": "0.03"},
                          "values": {"region": ["eu"]}}]},
        ],
        "fixed_charges": [{"add_on_id": str(catalog["seats"].id), "charge_model": "standard",
                           "units": "3", "properties": {"amount": "12.50"},
                           "pay_in_advance": True, "prorated": True}],
        "minimum_commitment": {"amount_cents": 50000, "invoice_display_name": "Commitment",
                               "tax_codes": ["vat_20"]},
        "usage_thresholds": [{"amount_cents": 20000, "threshold_display_name": "Alert"},
                             {"amount_cents": 5000, "recurring": True}],
    }  # fmt: skip


def comparable(value: object) -> object:
    """A rendered plan without what differs between two equal plans (ids, instants, codes)."""
    volatile = {"lago_id", "created_at", "updated_at", "code", "plan_code"}
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


def add_filter_on_charge_page(admin_client, charge: Charge, **fields: object):
    data = {**EMPTY_PRICE, "billable_metric": str(charge.billable_metric_id), "code": charge.code,
            "charge_model": charge.charge_model, "invoiceable": "on",
            "amount": charge.properties.get("amount", "")}  # fmt: skip
    data.update(rows("filters", [{**EMPTY_PRICE, "id": "", **fields}]))
    return admin_client.post(f"/admin/plans/charge/{charge.pk}/change/", data)


def test_plan_built_in_the_admin_reads_back_like_one_built_through_the_api(
    admin_client, api, organization, catalog
):
    response = admin_client.post("/admin/plans/plan/add/", full_admin_form(organization, catalog))
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    compute = Charge.objects.get(plan__code="premium", code="compute")
    response = add_filter_on_charge_page(
        admin_client, compute, values_text="region: eu", invoice_display_name="EU", amount="0.03"
    )
    assert response.status_code == 302

    built_by_api = api.post("/api/v1/plans", {"plan": api_payload(catalog)}, format="json")
    assert built_by_api.status_code == 200, built_by_api.json()
    from_admin = api.get("/api/v1/plans/premium").json()["plan"]
    assert comparable(from_admin) == comparable(built_by_api.json()["plan"])


def test_charge_errors_show_next_to_their_field(admin_client, organization, catalog):
    max_metric = BillableMetricFactory(organization=organization, aggregation_type="max_agg")
    data = plan_form(organization)
    data.update(
        rows("charges", [
            charge_row(catalog["api_calls"], "graduated", ranges="0-100: 0.10\n150-: 0.05"),
            charge_row(max_metric, "standard", amount="1", pay_in_advance="on"),
            charge_row(catalog["storage"], "package", amount="abc", package_size="10"),
        ])
    )  # fmt: skip
    response = admin_client.post("/admin/plans/plan/add/", data)
    assert response.status_code == 200
    (charges,) = [f for f in response.context["inline_admin_formsets"]
                  if f.formset.prefix == "charges"]  # fmt: skip
    errors = [form.errors for form in charges.formset.forms]
    assert "Tiers must start at 0" in errors[0]["ranges"][0]
    assert "aggregation" in errors[1]["pay_in_advance"][0]
    assert "amount of 0 or more" in errors[2]["amount"][0]
    assert not Plan.objects.exists()


def test_tier_lines_that_do_not_parse_are_explained(admin_client, organization, catalog):
    data = plan_form(organization)
    data.update(rows("charges", [charge_row(catalog["api_calls"], "volume", ranges="0 to 10")]))
    response = admin_client.post("/admin/plans/plan/add/", data)
    (charges,) = [f for f in response.context["inline_admin_formsets"]
                  if f.formset.prefix == "charges"]  # fmt: skip
    assert "Line 1" in charges.formset.forms[0].errors["ranges"][0]


def test_plan_code_already_used_is_shown_on_the_code_field(admin_client, organization):
    PlanFactory(organization=organization, code="premium")
    response = admin_client.post("/admin/plans/plan/add/", plan_form(organization))
    assert response.context["adminform"].form.errors["code"] == ["Already used."]


def test_editing_a_plan_keeps_charge_ids_and_soft_deletes_removed_charges(
    admin_client, organization, catalog
):
    plan = PlanFactory(organization=organization, code="p", amount_cents=1000)
    kept = ChargeFactory(organization=organization, plan=plan, billable_metric=catalog["storage"],
                         code="kept")  # fmt: skip
    dropped = ChargeFactory(organization=organization, plan=plan, code="dropped")
    data = plan_form(organization, code="p", name="Renamed", amount="12.00")
    data.pop("organization")
    data.update(rows("charges", [
        charge_row(catalog["storage"], "standard", id=str(kept.pk), code="kept", amount="7"),
        charge_row(dropped.billable_metric, "standard", id=str(dropped.pk), code="dropped",
                   amount="1", DELETE="on"),
    ], initial=2))  # fmt: skip
    response = admin_client.post(f"/admin/plans/plan/{plan.pk}/change/", data)
    assert response.status_code == 302
    plan.refresh_from_db()
    kept.refresh_from_db()
    dropped.refresh_from_db()
    assert (plan.name, plan.amount_cents) == ("Renamed", 1200)
    assert (kept.deleted_at, kept.properties) == (None, {"amount": "7"})
    assert dropped.deleted_at is not None


def test_filter_values_are_checked_against_the_metric(admin_client, organization, catalog):
    charge = ChargeFactory(organization=organization, billable_metric=catalog["compute"])
    response = add_filter_on_charge_page(admin_client, charge, values_text="region: mars",
                                         amount="1")  # fmt: skip
    assert response.status_code == 200
    (filters,) = response.context["inline_admin_formsets"]
    assert filters.formset.forms[0].errors["values_text"] == ["Invalid value."]
    assert not ChargeFilter.objects.exists()


def test_changelist_formats_money_and_hides_overrides_and_deleted_plans(admin_client, organization):
    plan = PlanFactory(organization=organization, name="Visible", code="v", amount_cents=4900)
    PlanFactory(organization=organization, name="Override", code="v", parent=plan)
    PlanFactory(organization=organization, name="Gone", code="g",
                deleted_at="2024-01-01T00:00:00Z")  # fmt: skip
    page = admin_client.get("/admin/plans/plan/").content.decode()
    assert "Visible" in page
    assert "€49.00" in page
    assert "Override" not in page
    assert "Gone" not in page


def test_changelist_filters_by_interval_and_searches(admin_client, organization):
    PlanFactory(organization=organization, name="Monthly one", code="m", interval="monthly")
    PlanFactory(organization=organization, name="Yearly one", code="y", interval="yearly")
    filtered = admin_client.get("/admin/plans/plan/?interval__exact=yearly").content.decode()
    searched = admin_client.get("/admin/plans/plan/?q=Monthly").content.decode()
    assert "Yearly one" in filtered
    assert "Monthly one" not in filtered
    assert "Monthly one" in searched
    assert "Yearly one" not in searched


def test_admin_delete_is_a_soft_delete(admin_client, organization):
    plan = PlanFactory(organization=organization, code="p")
    response = admin_client.post(f"/admin/plans/plan/{plan.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.deleted_at is not None


def test_plan_with_subscriptions_shows_its_core_read_only(admin_client, organization):
    plan = PlanFactory(organization=organization, code="p", interval="monthly")
    SubscriptionFactory(organization=organization, plan=plan)
    form = admin_client.get(f"/admin/plans/plan/{plan.pk}/change/").context["adminform"].form
    assert "interval" not in form.fields
    assert "amount_currency" not in form.fields
    assert "name" in form.fields


def test_staff_sees_only_their_organizations_plans(client, organization, other_organization):
    ensure_role_groups()  # the role groups must know the catalog's permissions
    user = get_user_model().objects.create_user("fin", "fin@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role="admin")
    PlanFactory(organization=organization, name="Ours", code="ours")
    theirs = PlanFactory(organization=other_organization, name="Theirs", code="theirs")
    client.force_login(user)
    page = client.get("/admin/plans/plan/").content.decode()
    assert "Ours" in page
    assert "Theirs" not in page
    assert client.get(f"/admin/plans/plan/{theirs.pk}/change/").status_code == 302
