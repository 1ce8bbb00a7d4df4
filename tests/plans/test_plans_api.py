"""`/plans`: Lago's PlanObject, create/update/delete semantics, §6.2 editing rules, metadata."""

import re

import pytest

from plans.models import (
    BillableMetricFilter,
    Charge,
    ChargeFilter,
    MinimumCommitment,
    Plan,
    UsageThreshold,
)
from tests.customers.factories import SubscriptionFactory
from tests.plans.factories import (
    AddOnFactory,
    BillableMetricFactory,
    ChargeFactory,
    FixedChargeFactory,
    PlanFactory,
    TaxFactory,
)

pytestmark = pytest.mark.django_db


class Matches:
    """Equal to any string matching `pattern` (ids and instants in whole-JSON comparisons)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and bool(self.pattern.fullmatch(other))

    def __repr__(self) -> str:
        return f"Matches({self.pattern.pattern!r})"


UUID = Matches(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
INSTANT = Matches(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture
def catalog(organization):
    """Metrics, an add-on and a tax of the main organization."""
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
        "vat": TaxFactory(organization=organization, code="vat_20", name="VAT", rate="20.00"),
    }


def full_plan_payload(catalog: dict) -> dict:
    return {
        "name": "Premium",
        "invoice_display_name": "Premium plan",
        "code": "premium",
        "interval": "monthly",
        "description": "For pros",
        "amount_cents": 10000,
        "amount_currency": "EUR",
        "trial_period": 5,
        "pay_in_advance": True,
        "tax_codes": ["vat_20"],
        "charges": [
            {
                "billable_metric_id": str(catalog["api_calls"].id),
                "charge_model": "graduated",
                "invoice_display_name": "API calls",
                "properties": {
                    "graduated_ranges": [
                        {"from_value": 0, "to_value": 100, "per_unit_amount": "0.10",
                         "flat_amount": "0"},
                        {"from_value": 101, "to_value": None, "per_unit_amount": "0.05",
                         "flat_amount": "1"},
                    ]
                },
                "tax_codes": ["vat_20"],
            },
            {
                "billable_metric_id": str(catalog["storage"].id),
                "charge_model": "package",
                "properties": {"amount": "5", "package_size": 100, "free_units": 10},
            },
            {
                "billable_metric_id": str(catalog["payments"].id),
                "charge_model": "percentage",
                "properties": {"rate": "1.5", "fixed_amount": "0.25", "free_units_per_events": 3},
            },
            {
                "billable_metric_id": str(catalog["compute"].id),
                "charge_model": "standard",
                "properties": {"amount": "0.02"},
                "filters": [
                    {"invoice_display_name": "EU", "properties": {"amount": "0.03"},
                     "values": {"region": ["eu"]}},
                ],
            },
        ],
        "fixed_charges": [
            {"add_on_id": str(catalog["seats"].id), "charge_model": "standard", "units": "3",
             "properties": {"amount": "12.50"}, "pay_in_advance": True, "prorated": True},
        ],
        "minimum_commitment": {
            "amount_cents": 50000, "invoice_display_name": "Commitment", "tax_codes": ["vat_20"]
        },
        "usage_thresholds": [
            {"amount_cents": 20000, "threshold_display_name": "Alert"},
            {"amount_cents": 5000, "recurring": True},
        ],
        "metadata": {"team": "growth"},
    }  # fmt: skip


def tax_json(tax) -> dict:
    return {
        "lago_id": str(tax.id),
        "name": "VAT",
        "code": "vat_20",
        "rate": 20.0,
        "description": None,
        "applied_to_organization": False,
        "created_at": INSTANT,
    }


def charge_json(metric, code: str, charge_model: str, properties: dict, **extra: object) -> dict:
    return {
        "lago_id": UUID,
        "lago_billable_metric_id": str(metric.id),
        "billable_metric_code": metric.code,
        "code": code,
        "invoice_display_name": None,
        "lago_parent_id": None,
        "created_at": INSTANT,
        "charge_model": charge_model,
        "invoiceable": True,
        "regroup_paid_fees": None,
        "pay_in_advance": False,
        "prorated": False,
        "min_amount_cents": 0,
        "properties": properties,
        "applied_pricing_unit": None,
        "accepts_target_wallet": False,
        "filters": [],
        "taxes": [],
        **extra,
    }


def test_create_answers_the_full_plan_object(api, catalog):
    response = api.post("/api/v1/plans", {"plan": full_plan_payload(catalog)}, format="json")

    assert response.status_code == 200, response.json()
    vat = tax_json(catalog["vat"])
    assert response.json() == {
        "plan": {
            "lago_id": UUID,
            "name": "Premium",
            "invoice_display_name": "Premium plan",
            "created_at": INSTANT,
            "code": "premium",
            "interval": "monthly",
            "description": "For pros",
            "amount_cents": 10000,
            "amount_currency": "EUR",
            "trial_period": 5.0,
            "pay_in_advance": True,
            "bill_charges_monthly": None,
            "bill_fixed_charges_monthly": None,
            "customers_count": 0,
            "active_subscriptions_count": 0,
            "draft_invoices_count": 0,
            "parent_id": None,
            "pending_deletion": False,
            "charges": [
                charge_json(
                    catalog["api_calls"], "api_calls", "graduated",
                    {"graduated_ranges": [
                        {"from_value": 0, "to_value": 100, "per_unit_amount": "0.10",
                         "flat_amount": "0"},
                        {"from_value": 101, "to_value": None, "per_unit_amount": "0.05",
                         "flat_amount": "1"},
                    ]},
                    invoice_display_name="API calls", taxes=[vat],
                ),
                charge_json(
                    catalog["storage"], "storage", "package",
                    {"amount": "5", "package_size": 100, "free_units": 10},
                ),
                charge_json(
                    catalog["payments"], "payments", "percentage",
                    {"rate": "1.5", "fixed_amount": "0.25", "free_units_per_events": 3},
                ),
                charge_json(
                    catalog["compute"], "compute", "standard", {"amount": "0.02"},
                    filters=[{"invoice_display_name": "EU", "properties": {"amount": "0.03"},
                              "values": {"region": ["eu"]}}],
                ),
            ],
            "fixed_charges": [
                {
                    "lago_id": UUID,
                    "lago_add_on_id": str(catalog["seats"].id),
                    "add_on_code": "seats",
                    "code": "seats",
                    "invoice_display_name": "",
                    "lago_parent_id": None,
                    "created_at": INSTANT,
                    "charge_model": "standard",
                    "pay_in_advance": True,
                    "prorated": True,
                    "properties": {"amount": "12.50"},
                    "units": "3.0",
                    "taxes": [],
                }
            ],
            "usage_thresholds": [
                {"lago_id": UUID, "threshold_display_name": None, "amount_cents": 5000,
                 "recurring": True, "created_at": INSTANT, "updated_at": INSTANT},
                {"lago_id": UUID, "threshold_display_name": "Alert", "amount_cents": 20000,
                 "recurring": False, "created_at": INSTANT, "updated_at": INSTANT},
            ],
            "taxes": [vat],
            "minimum_commitment": {
                "lago_id": UUID,
                "plan_code": "premium",
                "amount_cents": 50000,
                "invoice_display_name": "Commitment",
                "interval": "monthly",
                "created_at": INSTANT,
                "updated_at": INSTANT,
                "taxes": [vat],
            },
            "entitlements": [],
            "metadata": {"team": "growth"},
        }
    }  # fmt: skip


def test_show_answers_what_create_answered(api, catalog):
    created = api.post("/api/v1/plans", {"plan": full_plan_payload(catalog)}, format="json")
    assert api.get("/api/v1/plans/premium").json() == created.json()


def test_list_is_paginated_newest_first(api, organization):
    for code in ("a", "b", "c"):
        PlanFactory(organization=organization, code=code)
    response = api.get("/api/v1/plans?per_page=2")
    body = response.json()
    assert [plan["code"] for plan in body["plans"]] == ["c", "b"]
    assert body["meta"] == {
        "current_page": 1, "next_page": 2, "prev_page": None, "total_pages": 2, "total_count": 3
    }  # fmt: skip


def test_list_reads_a_constant_number_of_queries(api, organization, django_assert_max_num_queries):
    def add_plan(code: str) -> None:
        plan = PlanFactory(organization=organization, code=code)
        plan.taxes.add(TaxFactory(organization=organization))
        charge = ChargeFactory(organization=organization, plan=plan)
        charge.taxes.add(TaxFactory(organization=organization))
        ChargeFilter.objects.create(organization=organization, charge=charge, values={"k": ["v"]})
        FixedChargeFactory(organization=organization, plan=plan).taxes.add(
            TaxFactory(organization=organization)
        )
        UsageThreshold.objects.create(organization=organization, plan=plan, amount_cents=10)
        MinimumCommitment.objects.create(
            organization=organization, plan=plan, amount_cents=10
        ).taxes.add(TaxFactory(organization=organization))

    add_plan("one")
    with django_assert_max_num_queries(100) as one_plan:
        api.get("/api/v1/plans")
    for index in range(5):
        add_plan(f"more_{index}")
    with django_assert_max_num_queries(len(one_plan.captured_queries)):
        response = api.get("/api/v1/plans")
    assert len(response.json()["plans"]) == 6


def test_list_hides_overrides_and_deleted_plans(api, organization):
    parent = PlanFactory(organization=organization, code="base")
    PlanFactory(organization=organization, code="base", parent=parent)
    PlanFactory(organization=organization, code="gone", deleted_at="2024-01-01T00:00:00Z")
    assert [p["code"] for p in api.get("/api/v1/plans").json()["plans"]] == ["base"]


def test_create_refuses_a_code_already_used(api, organization):
    PlanFactory(organization=organization, code="premium")
    payload = {"name": "P", "code": "premium", "interval": "monthly", "amount_cents": 0,
               "amount_currency": "EUR"}  # fmt: skip
    response = api.post("/api/v1/plans", {"plan": payload}, format="json")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"code": ["value_already_exist"]}


@pytest.mark.parametrize(
    ("change", "details"),
    [
        pytest.param({"name": None}, {"name": ["value_is_mandatory"]}, id="name-missing"),
        pytest.param({"code": ""}, {"code": ["value_is_mandatory"]}, id="code-missing"),
        pytest.param({"interval": "daily"}, {"interval": ["value_is_invalid"]}, id="interval"),
        pytest.param(
            {"amount_currency": "EURO"}, {"amount_currency": ["value_is_invalid"]}, id="currency"
        ),
        pytest.param({"amount_cents": -1}, {"amount_cents": ["value_is_invalid"]}, id="negative"),
        pytest.param(
            {"amount_cents": None}, {"amount_cents": ["value_is_mandatory"]}, id="no-amount"
        ),
        pytest.param({"trial_period": -1}, {"trial_period": ["value_is_invalid"]}, id="trial"),
        pytest.param(
            {"metadata": {"k" * 101: "v"}}, {"metadata": ["value_is_invalid"]}, id="metadata-key"
        ),
    ],
)
def test_create_validates_plan_fields(api, organization, change, details):
    payload = {"name": "P", "code": "p", "interval": "monthly", "amount_cents": 0,
               "amount_currency": "EUR", **change}  # fmt: skip
    response = api.post("/api/v1/plans", {"plan": payload}, format="json")
    assert response.status_code == 422
    assert response.json()["error_details"] == details
    assert not Plan.objects.exists()


def test_create_without_root_key_is_a_bad_request(api):
    response = api.post("/api/v1/plans", {"name": "P"}, format="json")
    assert response.status_code == 400


def test_create_with_an_unknown_metric_is_not_found(api, organization):
    payload = {"name": "P", "code": "p", "interval": "monthly", "amount_cents": 0,
               "amount_currency": "EUR",
               "charges": [{"billable_metric_id": "00000000-0000-0000-0000-000000000000",
                            "charge_model": "standard",
                            "properties": {"amount": "1"}}]}  # fmt: skip
    response = api.post("/api/v1/plans", {"plan": payload}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "billable_metric_not_found"
    assert not Plan.objects.exists()


def test_create_with_an_unknown_tax_is_not_found(api, organization):
    payload = {"name": "P", "code": "p", "interval": "monthly", "amount_cents": 0,
               "amount_currency": "EUR", "tax_codes": ["nope"]}  # fmt: skip
    response = api.post("/api/v1/plans", {"plan": payload}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "tax_not_found"
    assert not Plan.objects.exists()


def test_create_finds_a_metric_by_code(api, organization):
    BillableMetricFactory(organization=organization, code="calls")
    payload = {"name": "P", "code": "p", "interval": "monthly", "amount_cents": 0,
               "amount_currency": "EUR",
               "charges": [{"billable_metric_code": "calls", "charge_model": "standard",
                            "properties": {"amount": "1"}}]}  # fmt: skip
    response = api.post("/api/v1/plans", {"plan": payload}, format="json")
    assert response.json()["plan"]["charges"][0]["billable_metric_code"] == "calls"


def test_bill_charges_monthly_is_kept_only_for_yearly_and_semiannual_plans(api, organization):
    base = {"name": "P", "amount_cents": 0, "amount_currency": "EUR", "bill_charges_monthly": True}
    yearly = api.post(
        "/api/v1/plans", {"plan": {**base, "code": "y", "interval": "yearly"}}, format="json"
    )
    monthly = api.post(
        "/api/v1/plans", {"plan": {**base, "code": "m", "interval": "monthly"}}, format="json"
    )
    assert yearly.json()["plan"]["bill_charges_monthly"] is True
    assert yearly.json()["plan"]["bill_fixed_charges_monthly"] is False
    assert monthly.json()["plan"]["bill_charges_monthly"] is None


def test_update_changes_the_plan_fields(api, organization):
    PlanFactory(organization=organization, code="p", name="Old", interval="monthly")
    response = api.put(
        "/api/v1/plans/p",
        {"plan": {"name": "New", "interval": "yearly", "amount_cents": 500, "code": "q"}},
        format="json",
    )
    plan = response.json()["plan"]
    assert (plan["name"], plan["interval"], plan["amount_cents"], plan["code"]) == (
        "New", "yearly", 500, "q"
    )  # fmt: skip


def test_update_keeps_core_fields_of_a_plan_with_subscriptions(api, organization):
    plan = PlanFactory(organization=organization, code="p", name="Old", interval="monthly")
    SubscriptionFactory(organization=organization, plan=plan)
    response = api.put(
        "/api/v1/plans/p",
        {"plan": {"name": "New", "amount_cents": 700, "interval": "yearly",
                  "pay_in_advance": True, "amount_currency": "USD", "code": "q",
                  "trial_period": 3}},
        format="json",
    )  # fmt: skip
    plan = response.json()["plan"]
    assert response.status_code == 200
    assert (plan["name"], plan["amount_cents"]) == ("New", 700)
    assert (plan["interval"], plan["pay_in_advance"], plan["amount_currency"]) == (
        "monthly", False, "EUR"
    )  # fmt: skip
    assert (plan["code"], plan["trial_period"]) == ("p", 0.0)


def test_update_keeps_the_charge_model_of_a_plan_with_subscriptions(api, organization):
    charge = ChargeFactory(organization=organization, plan__code="p", code="c")
    SubscriptionFactory(organization=organization, plan=charge.plan)
    response = api.put(
        "/api/v1/plans/p",
        {"plan": {"charges": [{"id": str(charge.id), "charge_model": "package",
                               "pay_in_advance": True, "properties": {"amount": "7"}}]}},
        format="json",
    )  # fmt: skip
    (rendered,) = response.json()["plan"]["charges"]
    assert (rendered["charge_model"], rendered["pay_in_advance"]) == ("standard", False)
    assert rendered["properties"] == {"amount": "7"}


def test_update_to_a_code_already_used_is_refused(api, organization):
    PlanFactory(organization=organization, code="p")
    PlanFactory(organization=organization, code="q")
    response = api.put("/api/v1/plans/p", {"plan": {"code": "q"}}, format="json")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"code": ["value_already_exist"]}


def test_update_replaces_taxes(api, organization):
    plan = PlanFactory(organization=organization, code="p")
    plan.taxes.add(TaxFactory(organization=organization, code="old"))
    TaxFactory(organization=organization, code="new")
    response = api.put("/api/v1/plans/p", {"plan": {"tax_codes": ["new"]}}, format="json")
    assert [t["code"] for t in response.json()["plan"]["taxes"]] == ["new"]


def test_update_replaces_usage_thresholds(api, organization):
    plan = PlanFactory(organization=organization, code="p")
    kept = UsageThreshold.objects.create(organization=organization, plan=plan, amount_cents=100)
    UsageThreshold.objects.create(organization=organization, plan=plan, amount_cents=200)
    response = api.put(
        "/api/v1/plans/p",
        {"plan": {"usage_thresholds": [
            {"id": str(kept.id), "amount_cents": 150, "threshold_display_name": "Moved"},
            {"amount_cents": 900, "recurring": True},
        ]}},
        format="json",
    )  # fmt: skip
    thresholds = response.json()["plan"]["usage_thresholds"]
    assert [(t["amount_cents"], t["recurring"]) for t in thresholds] == [(150, False), (900, True)]
    assert thresholds[0]["lago_id"] == str(kept.id)
    assert UsageThreshold.objects.alive().filter(plan=plan).count() == 2


@pytest.mark.parametrize(
    ("thresholds", "details"),
    [
        pytest.param([{"amount_cents": 0}], {"amount_cents": ["value_is_out_of_range"]}, id="zero"),
        pytest.param(
            [{"amount_cents": 10}, {"amount_cents": 10}],
            {"amount_cents": ["value_already_exist"]},
            id="same-amount",
        ),
        pytest.param(
            [{"amount_cents": 10, "recurring": True}, {"amount_cents": 20, "recurring": True}],
            {"recurring": ["value_already_exist"]},
            id="two-recurring",
        ),
    ],
)
def test_usage_thresholds_are_validated(api, organization, thresholds, details):
    PlanFactory(organization=organization, code="p")
    response = api.put("/api/v1/plans/p", {"plan": {"usage_thresholds": thresholds}}, format="json")
    assert response.status_code == 422
    assert response.json()["error_details"] == details


def test_update_with_an_empty_minimum_commitment_removes_it(api, organization):
    plan = PlanFactory(organization=organization, code="p")
    MinimumCommitment.objects.create(organization=organization, plan=plan, amount_cents=1000)
    response = api.put("/api/v1/plans/p", {"plan": {"minimum_commitment": {}}}, format="json")
    assert response.json()["plan"]["minimum_commitment"] is None


def test_update_changes_the_minimum_commitment(api, organization):
    plan = PlanFactory(organization=organization, code="p")
    MinimumCommitment.objects.create(organization=organization, plan=plan, amount_cents=1000)
    response = api.put(
        "/api/v1/plans/p", {"plan": {"minimum_commitment": {"amount_cents": 2500}}}, format="json"
    )
    assert response.json()["plan"]["minimum_commitment"]["amount_cents"] == 2500


def test_failed_update_writes_nothing(api, organization, catalog):
    plan = PlanFactory(organization=organization, code="p", name="Old")
    response = api.put(
        "/api/v1/plans/p",
        {"plan": {"name": "New", "charges": [
            {"billable_metric_id": str(catalog["storage"].id), "charge_model": "standard",
             "properties": {"amount": "abc"}}]}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 422
    plan.refresh_from_db()
    assert plan.name == "Old"
    assert not Charge.objects.exists()


def test_delete_answers_the_plan_and_frees_its_code(api, organization):
    PlanFactory(organization=organization, code="p")
    response = api.delete("/api/v1/plans/p")
    assert response.status_code == 200
    assert response.json()["plan"]["code"] == "p"
    assert api.get("/api/v1/plans/p").status_code == 404
    payload = {"name": "P2", "code": "p", "interval": "monthly", "amount_cents": 0,
               "amount_currency": "EUR"}  # fmt: skip
    assert api.post("/api/v1/plans", {"plan": payload}, format="json").status_code == 200
    assert Plan.objects.filter(code="p").count() == 2


def test_unknown_plan_is_not_found(api):
    response = api.get("/api/v1/plans/nope")
    assert response.status_code == 404
    assert response.json()["code"] == "plan_not_found"


def test_another_tenants_plan_is_not_found(api, other_api, organization):
    PlanFactory(organization=organization, code="p")
    assert other_api.get("/api/v1/plans/p").status_code == 404
    renamed = other_api.put("/api/v1/plans/p", {"plan": {"name": "x"}}, format="json")
    assert renamed.status_code == 404
    assert other_api.delete("/api/v1/plans/p").status_code == 404
    assert other_api.get("/api/v1/plans").json()["plans"] == []


def test_another_tenants_metric_is_not_found(api, other_organization):
    metric = BillableMetricFactory(organization=other_organization)
    payload = {"name": "P", "code": "p", "interval": "monthly", "amount_cents": 0,
               "amount_currency": "EUR",
               "charges": [{"billable_metric_id": str(metric.id), "charge_model": "standard",
                            "properties": {"amount": "1"}}]}  # fmt: skip
    response = api.post("/api/v1/plans", {"plan": payload}, format="json")
    assert response.json()["code"] == "billable_metric_not_found"


def test_another_tenants_tax_is_not_found(api, other_organization):
    TaxFactory(organization=other_organization, code="vat")
    payload = {"name": "P", "code": "p", "interval": "monthly", "amount_cents": 0,
               "amount_currency": "EUR", "tax_codes": ["vat"]}  # fmt: skip
    response = api.post("/api/v1/plans", {"plan": payload}, format="json")
    assert response.json()["code"] == "tax_not_found"


def test_metadata_post_replaces_and_patch_merges(api, organization):
    PlanFactory(organization=organization, code="p", metadata={"old": "1"})
    replaced = api.post("/api/v1/plans/p/metadata", {"metadata": {"a": "1"}}, format="json")
    merged = api.patch("/api/v1/plans/p/metadata", {"metadata": {"b": None}}, format="json")
    assert replaced.json() == {"metadata": {"a": "1"}}
    assert merged.json() == {"metadata": {"a": "1", "b": None}}


def test_metadata_delete_clears_and_delete_key_drops_one(api, organization):
    PlanFactory(organization=organization, code="p", metadata={"a": "1", "b": "2"})
    assert api.delete("/api/v1/plans/p/metadata/a").json() == {"metadata": {"b": "2"}}
    assert api.delete("/api/v1/plans/p/metadata").json() == {"metadata": None}
    response = api.delete("/api/v1/plans/p/metadata/b")
    assert response.status_code == 404
    assert response.json()["code"] == "metadata_not_found"


def test_metadata_values_longer_than_255_are_refused(api, organization):
    PlanFactory(organization=organization, code="p")
    response = api.post("/api/v1/plans/p/metadata", {"metadata": {"a": "x" * 256}}, format="json")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"metadata": ["value_is_invalid"]}
