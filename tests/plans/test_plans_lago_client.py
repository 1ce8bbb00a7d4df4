"""The official lago-python-client drives plans, charges, filters and fixed charges unchanged."""

import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models.charge import Charge, ChargeFilter, ChargeFilters, Charges
from lago_python_client.models.fixed_charge import (
    FixedCharge,
    FixedChargeProperties,
    FixedCharges,
)
from lago_python_client.models.minimum_commitment import MinimumCommitment
from lago_python_client.models.plan import Plan
from lago_python_client.models.usage_threshold import UsageThreshold, UsageThresholds

from plans.models import BillableMetricFilter
from tests.plans.factories import AddOnFactory, BillableMetricFactory, TaxFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def catalog(organization):
    compute = BillableMetricFactory(organization=organization, code="compute")
    BillableMetricFilter.objects.create(
        organization=organization, billable_metric=compute, key="region", values=["eu", "us"]
    )
    TaxFactory(organization=organization, code="vat", rate="20")
    return {
        "calls": BillableMetricFactory(organization=organization, code="calls", count=True),
        "storage": BillableMetricFactory(organization=organization, code="storage"),
        "payments": BillableMetricFactory(organization=organization, code="payments"),
        "compute": compute,
        "seats": AddOnFactory(organization=organization, code="seats"),
    }


def premium_plan(catalog: dict) -> Plan:
    return Plan(
        name="Premium",
        code="premium",
        interval="monthly",
        amount_cents=9900,
        amount_currency="EUR",
        pay_in_advance=True,
        tax_codes=["vat"],
        charges=Charges(__root__=[
            Charge(billable_metric_id=str(catalog["calls"].id), charge_model="graduated",
                   properties={"graduated_ranges": [
                       {"from_value": 0, "to_value": 1000, "per_unit_amount": "0.01",
                        "flat_amount": "0"},
                       {"from_value": 1001, "to_value": None, "per_unit_amount": "0.005",
                        "flat_amount": "0"}]}),
            Charge(billable_metric_id=str(catalog["storage"].id), charge_model="package",
                   properties={"amount": "2", "package_size": 10, "free_units": 5}),
            Charge(billable_metric_id=str(catalog["payments"].id), charge_model="percentage",
                   properties={"rate": "2.9", "fixed_amount": "0.30"}),
            Charge(billable_metric_id=str(catalog["compute"].id), charge_model="standard",
                   properties={"amount": "0.10"}, tax_codes=["vat"],
                   filters=ChargeFilters(__root__=[
                       ChargeFilter(invoice_display_name="Europe", properties={"amount": "0.12"},
                                    values={"region": ["eu"]})])),
        ]),
        fixed_charges=FixedCharges(__root__=[
            FixedCharge(add_on_code="seats", charge_model="standard", units=3,
                        properties=FixedChargeProperties(amount="15"), prorated=True),
        ]),
        minimum_commitment=MinimumCommitment(amount_cents=20000, invoice_display_name="Minimum"),
        usage_thresholds=UsageThresholds(__root__=[UsageThreshold(amount_cents=50000)]),
        metadata={"segment": "smb"},
    )  # fmt: skip


def test_client_creates_a_plan_with_every_kind_of_charge(lago, catalog):
    plan = lago.plans.create(premium_plan(catalog))
    assert (plan.code, plan.amount_cents, plan.pay_in_advance) == ("premium", 9900, True)
    charges = {c.billable_metric_code: c for c in plan.charges.__root__}
    assert charges["calls"].properties["graduated_ranges"][1]["per_unit_amount"] == "0.005"
    assert charges["storage"].properties == {"amount": "2", "package_size": 10, "free_units": 5}
    assert charges["payments"].properties == {"rate": "2.9", "fixed_amount": "0.30"}
    (eu,) = charges["compute"].filters.__root__
    assert (eu.values, eu.properties) == ({"region": ["eu"]}, {"amount": "0.12"})
    assert [t.code for t in charges["compute"].taxes.__root__] == ["vat"]
    (seats,) = plan.fixed_charges.__root__
    assert (seats.add_on_code, seats.units, seats.prorated) == ("seats", 3.0, True)
    assert [t.code for t in plan.taxes.__root__] == ["vat"]
    assert plan.minimum_commitment.amount_cents == 20000
    assert plan.usage_thresholds.__root__[0].amount_cents == 50000
    assert plan.metadata == {"segment": "smb"}


def test_client_finds_lists_updates_and_destroys_a_plan(lago, catalog):
    created = lago.plans.create(premium_plan(catalog))
    assert lago.plans.find("premium").lago_id == created.lago_id
    listing = lago.plans.find_all({"per_page": 10})
    assert [p.code for p in listing["plans"]] == ["premium"]
    assert listing["meta"]["total_count"] == 1

    compute = next(c for c in created.charges.__root__ if c.billable_metric_code == "compute")
    updated = lago.plans.update(
        Plan(name="Premium 2", amount_cents=12900,
             charges=Charges(__root__=[
                 Charge(id=compute.lago_id, charge_model="standard",
                        properties={"amount": "0.20"})])),
        "premium",
    )  # fmt: skip
    assert (updated.name, updated.amount_cents) == ("Premium 2", 12900)
    (only,) = updated.charges.__root__
    assert (only.lago_id, only.properties) == (compute.lago_id, {"amount": "0.20"})
    assert [f.values for f in only.filters.__root__] == [{"region": ["eu"]}]  # not sent: kept

    destroyed = lago.plans.destroy("premium")
    assert destroyed.lago_id == created.lago_id
    with pytest.raises(LagoApiError) as raised:
        lago.plans.find("premium")
    assert raised.value.status_code == 404


def test_client_sees_validation_errors(lago, catalog):
    plan = premium_plan(catalog)
    plan.charges.__root__[1].properties = {"amount": "2", "package_size": 0, "free_units": 0}
    with pytest.raises(LagoApiError) as raised:
        lago.plans.create(plan)
    assert raised.value.status_code == 422
    assert raised.value.response["error_details"] == {"properties": ["invalid_package_size"]}


def test_client_manages_charges_filters_and_fixed_charges(lago, catalog):
    lago.plans.create(premium_plan(catalog))

    charge = lago.plan_charges.find("premium", "compute")
    assert charge.properties == {"amount": "0.10"}
    updated = lago.plan_charges.update(
        "premium", "compute", Charge(charge_model="standard", properties={"amount": "0.11"})
    )
    assert updated.properties == {"amount": "0.11"}

    created = lago.plans.create_charge_filter(
        "premium", "compute",
        ChargeFilter(properties={"amount": "0.09"}, values={"region": ["us"]}),
    )  # fmt: skip
    assert created.values == {"region": ["us"]}
    listing = lago.plans.find_all_charge_filters("premium", "compute")
    assert [f.values for f in listing["filters"]] == [{"region": ["eu"]}, {"region": ["us"]}]
    found = lago.plans.find_charge_filter("premium", "compute", created.lago_id)
    assert found.properties == {"amount": "0.09"}
    lago.plans.destroy_charge_filter("premium", "compute", created.lago_id)

    fixed = lago.plan_fixed_charges.update(
        "premium", "seats",
        FixedCharge(charge_model="standard", units=5,
                    properties=FixedChargeProperties(amount="14")),
    )  # fmt: skip
    assert (fixed.units, fixed.properties.amount) == (5.0, "14")
    assert lago.plan_fixed_charges.destroy("premium", "seats").code == "seats"

    removed = lago.plan_charges.destroy("premium", "compute")
    assert removed.billable_metric_code == "compute"


def test_client_replaces_and_merges_plan_metadata(lago, catalog):
    lago.plans.create(premium_plan(catalog))
    assert lago.plans.replace_metadata("premium", {"a": "1"}) == {"a": "1"}
    assert lago.plans.merge_metadata("premium", {"b": "2"}) == {"a": "1", "b": "2"}
    assert lago.plans.delete_metadata_key("premium", "a") == {"b": "2"}
    assert lago.plans.delete_all_metadata("premium") is None
