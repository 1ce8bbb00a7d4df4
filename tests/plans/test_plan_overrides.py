"""Plan overrides (spec §6.3): a hidden child plan per subscription, and the cascade of parent
edits to the children when `cascade_updates` is asked."""

from datetime import UTC, datetime

import pytest

from billing.actors import SYSTEM
from billing.errors import Invalid
from plans.models import (
    BillableMetricFilter,
    Charge,
    ChargeFilter,
    FixedCharge,
    MinimumCommitment,
    Plan,
    UsageThreshold,
)
from plans.services.plans import plan_override_create, plan_update
from tests.plans.factories import (
    BillableMetricFactory,
    ChargeFactory,
    FixedChargeFactory,
    PlanFactory,
    TaxFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def metric(organization):
    metric = BillableMetricFactory(organization=organization, code="compute")
    BillableMetricFilter.objects.create(
        organization=organization, billable_metric=metric, key="region", values=["eu", "us"]
    )
    return metric


@pytest.fixture
def plan(organization):
    plan = PlanFactory(organization=organization, code="base", amount_cents=1000, name="Base")
    plan.taxes.add(TaxFactory(organization=organization, code="vat"))
    return plan


@pytest.fixture
def charge(organization, plan, metric):
    charge = ChargeFactory(
        organization=organization, plan=plan, billable_metric=metric, code="c",
        properties={"amount": "1"},
    )  # fmt: skip
    ChargeFilter.objects.create(
        organization=organization, charge=charge, values={"region": ["eu"]},
        properties={"amount": "2"},
    )  # fmt: skip
    return charge


def override(plan: Plan, **values: object) -> Plan:
    return plan_override_create(plan=plan, values=values, actor=SYSTEM, now=NOW)


def child_charge(child: Plan) -> Charge:
    return Charge.objects.alive().get(plan=child)


# --- creation ----------------------------------------------------------------------------------


def test_override_is_a_hidden_child_plan_with_the_same_code(api, plan, charge):
    child = override(plan, amount_cents=500, name="Custom")
    assert (child.parent_id, child.code, child.amount_cents, child.name) == (
        plan.id, "base", 500, "Custom"
    )  # fmt: skip
    assert [p["lago_id"] for p in api.get("/api/v1/plans").json()["plans"]] == [str(plan.id)]
    assert api.get("/api/v1/plans/base").json()["plan"]["lago_id"] == str(plan.id)


def test_override_copies_what_is_not_overridden(plan, charge, organization):
    MinimumCommitment.objects.create(organization=organization, plan=plan, amount_cents=900)
    UsageThreshold.objects.create(organization=organization, plan=plan, amount_cents=300)
    child = override(plan)
    copied = child_charge(child)
    assert (copied.parent_id, copied.code, copied.properties) == (charge.id, "c", {"amount": "1"})
    assert [f.values for f in ChargeFilter.objects.alive().filter(charge=copied)] == [
        {"region": ["eu"]}
    ]
    assert [t.code for t in child.taxes.all()] == ["vat"]
    assert MinimumCommitment.objects.get(plan=child).amount_cents == 900
    assert [t.amount_cents for t in UsageThreshold.objects.filter(plan=child)] == [300]


def test_override_changes_a_charge_named_by_id_but_never_its_model(plan, charge):
    child = override(
        plan,
        charges=[{"id": str(charge.id), "charge_model": "package",
                  "properties": {"amount": "0.5"}, "min_amount_cents": 100,
                  "invoice_display_name": "Custom compute"}],
    )  # fmt: skip
    copied = child_charge(child)
    assert (copied.charge_model, copied.properties) == ("standard", {"amount": "0.5"})
    assert (copied.min_amount_cents, copied.invoice_display_name) == (100, "Custom compute")
    charge.refresh_from_db()
    assert charge.properties == {"amount": "1"}


def test_override_replaces_the_filters_of_a_charge(plan, charge):
    child = override(
        plan,
        charges=[{"id": str(charge.id),
                  "filters": [{"values": {"region": ["us"]}, "properties": {"amount": "7"}}]}],
    )  # fmt: skip
    filters = ChargeFilter.objects.alive().filter(charge=child_charge(child))
    assert [(f.values, f.properties) for f in filters] == [({"region": ["us"]}, {"amount": "7"})]


def test_override_changes_fixed_charge_units(plan, organization):
    fixed = FixedChargeFactory(organization=organization, plan=plan, units=1)
    child = override(plan, fixed_charges=[{"id": str(fixed.id), "units": "5"}])
    copied = FixedCharge.objects.get(plan=child)
    assert (copied.parent_id, copied.units) == (fixed.id, 5)


def test_override_with_invalid_properties_writes_nothing(plan, charge):
    with pytest.raises(Invalid) as raised:
        override(plan, charges=[{"id": str(charge.id), "properties": {"amount": "-3"}}])
    assert raised.value.details == {"properties": ["invalid_amount"]}
    assert not Plan.objects.filter(parent=plan).exists()


def test_override_with_its_own_commitment_and_taxes(plan, organization):
    TaxFactory(organization=organization, code="reduced")
    child = override(
        plan, tax_codes=["reduced"], minimum_commitment={"amount_cents": 4000, "tax_codes": []}
    )
    assert [t.code for t in child.taxes.all()] == ["reduced"]
    assert MinimumCommitment.objects.get(plan=child).amount_cents == 4000


# --- cascade of parent edits -------------------------------------------------------------------


def put_plan(api, values: dict) -> dict:
    response = api.put("/api/v1/plans/base", {"plan": values}, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["plan"]


def charge_update(charge: Charge, properties: dict, **extra: object) -> dict:
    return {"id": str(charge.id), "charge_model": charge.charge_model,
            "properties": properties, **extra}  # fmt: skip


def test_cascade_updates_children_that_kept_the_parent_properties(api, plan, charge):
    child = override(plan)
    put_plan(api, {"cascade_updates": True, "charges": [charge_update(charge, {"amount": "3"})]})
    assert child_charge(child).properties == {"amount": "3"}


def test_cascade_keeps_properties_a_child_overrode(api, plan, charge):
    child = override(plan, charges=[{"id": str(charge.id), "properties": {"amount": "0.5"}}])
    put_plan(api, {"cascade_updates": True, "charges": [charge_update(charge, {"amount": "3"})]})
    assert child_charge(child).properties == {"amount": "0.5"}


def test_parent_edits_without_cascade_leave_children_alone(api, plan, charge):
    child = override(plan)
    put_plan(api, {"amount_cents": 2000, "charges": [charge_update(charge, {"amount": "3"})]})
    child.refresh_from_db()
    assert (child.amount_cents, child_charge(child).properties) == (1000, {"amount": "1"})


def test_cascade_moves_the_price_of_children_that_kept_it(api, plan):
    kept = override(plan)
    custom = override(plan, amount_cents=1)
    put_plan(api, {"amount_cents": 2000, "cascade_updates": True})
    kept.refresh_from_db()
    custom.refresh_from_db()
    assert (kept.amount_cents, custom.amount_cents) == (2000, 1)


def test_cascade_adds_new_charges_to_children(api, plan, charge, organization):
    child = override(plan)
    storage = BillableMetricFactory(organization=organization, code="storage")
    put_plan(
        api,
        {"cascade_updates": True, "charges": [
            charge_update(charge, {"amount": "1"}),
            {"billable_metric_id": str(storage.id), "charge_model": "standard",
             "properties": {"amount": "9"}},
        ]},
    )  # fmt: skip
    added = Charge.objects.alive().get(plan=child, billable_metric=storage)
    assert (added.code, added.properties, added.parent.plan_id) == (
        "storage", {"amount": "9"}, plan.id
    )  # fmt: skip


def test_cascade_removes_dropped_charges_from_children(api, plan, charge):
    child = override(plan)
    put_plan(api, {"cascade_updates": True, "charges": []})
    assert not Charge.objects.alive().filter(plan=child).exists()


def test_cascade_updates_inherited_filters_and_keeps_customized_ones(api, plan, charge):
    inherited = override(plan)
    customized = override(
        plan,
        charges=[{"id": str(charge.id),
                  "filters": [{"values": {"region": ["eu"]}, "properties": {"amount": "9"}}]}],
    )  # fmt: skip
    put_plan(
        api,
        {"cascade_updates": True, "charges": [charge_update(
            charge, {"amount": "1"},
            filters=[{"values": {"region": ["eu"]}, "properties": {"amount": "4"}},
                     {"values": {"region": ["us"]}, "properties": {"amount": "5"}}],
        )]},
    )  # fmt: skip

    def filters_of(child: Plan) -> list:
        rows = ChargeFilter.objects.alive().filter(charge=child_charge(child))
        return sorted((f.values["region"][0], f.properties["amount"]) for f in rows)

    assert filters_of(inherited) == [("eu", "4"), ("us", "5")]
    assert filters_of(customized) == [("eu", "9"), ("us", "5")]


def test_cascade_through_the_charge_endpoint(api, plan, charge):
    child = override(plan)
    response = api.put(
        "/api/v1/plans/base/charges/c",
        {"charge": {"charge_model": "standard", "properties": {"amount": "6"},
                    "cascade_updates": True}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200
    assert child_charge(child).properties == {"amount": "6"}


def test_cascade_never_changes_a_childs_charge_model(api, plan, charge):
    child = override(plan)
    put_plan(
        api,
        {"cascade_updates": True,
         "charges": [{"id": str(charge.id), "charge_model": "percentage",
                      "properties": {"rate": "1"}}]},
    )  # fmt: skip
    copied = child_charge(child)
    assert (copied.charge_model, copied.properties) == ("standard", {"amount": "1"})


def test_charge_delete_with_cascade_removes_the_childrens_copies(api, plan, charge):
    child = override(plan)
    api.delete("/api/v1/plans/base/charges/c?cascade_updates=true")
    assert not Charge.objects.alive().filter(plan=child).exists()


def test_filter_update_with_cascade_follows_only_uncustomized_copies(api, plan, charge):
    child = override(plan)
    parent_filter = ChargeFilter.objects.alive().get(charge=charge)
    response = api.put(
        f"/api/v1/plans/base/charges/c/filters/{parent_filter.id}",
        {"filter": {"properties": {"amount": "8"}, "cascade_updates": True}},
        format="json",
    )
    assert response.status_code == 200
    copied = ChargeFilter.objects.alive().get(charge=child_charge(child))
    assert copied.properties == {"amount": "8"}


def test_fixed_charge_cascade_follows_units_and_properties(api, plan, organization):
    fixed = FixedChargeFactory(organization=organization, plan=plan, code="f", units=1)
    kept = override(plan)
    custom = override(plan, fixed_charges=[{"id": str(fixed.id), "units": "9"}])
    response = api.put(
        "/api/v1/plans/base/fixed_charges/f",
        {"fixed_charge": {"charge_model": "standard", "units": "2",
                          "properties": {"amount": "11"}, "cascade_updates": True}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200
    kept_copy = FixedCharge.objects.get(plan=kept)
    custom_copy = FixedCharge.objects.get(plan=custom)
    assert (kept_copy.units, kept_copy.properties) == (2, {"amount": "11"})
    assert (custom_copy.units, custom_copy.properties) == (9, {"amount": "11"})


# --- editing an override (subscription update with plan_overrides, Lago's Plans::UpdateService)


def test_override_update_finds_charges_by_the_parents_id(plan, charge):
    child = override(plan)
    plan_update(
        plan=child,
        values={"charges": [{"id": str(charge.id), "charge_model": "package",
                             "properties": {"amount": "4"}}]},
        actor=SYSTEM, now=NOW,
    )  # fmt: skip
    copied = child_charge(child)
    assert (copied.parent_id, copied.charge_model, copied.properties) == (
        charge.id, "standard", {"amount": "4"}
    )  # fmt: skip
    assert Charge.objects.filter(plan=child).count() == 1


def test_override_update_changes_only_overridable_fields(plan):
    child = override(plan)
    plan_update(
        plan=child,
        values={"amount_cents": 42, "interval": "yearly", "code": "x"},
        actor=SYSTEM,
        now=NOW,
    )
    child.refresh_from_db()
    assert (child.amount_cents, child.interval, child.code) == (42, "monthly", "base")
