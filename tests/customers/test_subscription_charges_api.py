"""`/api/v1/subscriptions/{external_id}/charges[/{code}[/filters]]` and `/fixed_charges`: one
subscription's prices read and overridden on its own child plan, the catalog plan and the other
subscriptions on it untouched; its current usage and next invoice follow the override."""

from __future__ import annotations

import pytest

from customers.models import Subscription
from invoicing.services.generation.preview import invoice_preview
from plans.models import Charge, ChargeFilter, FixedCharge
from tests.metering.monitoring.helpers import another_subscription
from tests.metering.usage.conftest import at, make_billing
from tests.plans.factories import AddOnFactory, TaxFactory

pytestmark = pytest.mark.django_db

BASE = "/api/v1/subscriptions/sub_1"
NOW = "2026-03-10T12:00:00"


@pytest.fixture
def billing(api, organization):
    """`sub_1` and `sub_2` on plan `usage` (calls at 10.00, a region filter eu at 20.00; a
    `seats` fixed charge of 2 units at 5.00), 3 calls each in March 2026."""
    billing = make_billing(
        api, organization, started_at="2026-03-01", plan_fields={"code": "usage"}
    )
    calls = billing.metric("calls", "count_agg")
    billing.metric_filter(calls, "region", ["eu", "us"])
    billing.calls = billing.charge(calls, code="calls", properties={"amount": "10"})
    billing.eu = billing.charge_filter(billing.calls, {"region": ["eu"]}, {"amount": "20"}, "EU")
    FixedCharge.objects.create(
        organization=organization, plan=billing.plan, code="seats", charge_model="standard",
        add_on=AddOnFactory(organization=organization, code="seat"),
        properties={"amount": "5"}, units=2,
    )  # fmt: skip
    billing.other = another_subscription(billing, 2)
    for sub in ("sub_1", "sub_2"):
        for _ in range(3):
            billing.send("calls", timestamp="2026-03-05T10:00:00", sub=sub)
    return billing


def put_charge(api, body, code="calls", base=BASE):
    return api.put(f"{base}/charges/{code}", {"charge": body}, format="json")


def usage_cents(api, external_id: str, customer: str) -> int:
    import time_machine

    with time_machine.travel(at(NOW), tick=False):
        response = api.get(
            f"/api/v1/customers/{customer}/current_usage",
            {"external_subscription_id": external_id},
        )
    assert response.status_code == 200, response.json()
    return response.json()["customer_usage"]["amount_cents"]


# --------------------------------------------------------------------------------------------
# Reads


def test_the_charges_of_a_subscription_are_its_plans(api, billing):
    response = api.get(f"{BASE}/charges")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert [c["code"] for c in body["charges"]] == ["calls"]
    assert body["charges"][0]["lago_id"] == str(billing.calls.pk)
    assert body["meta"]["total_count"] == 1


def test_one_charge_is_read_by_its_code(api, billing):
    response = api.get(f"{BASE}/charges/calls")

    assert response.status_code == 200, response.json()
    charge = response.json()["charge"]
    assert (charge["code"], charge["properties"], charge["lago_parent_id"]) == (
        "calls", {"amount": "10"}, None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/api/v1/subscriptions/nope/charges", "subscription_not_found"),
        (f"{BASE}/charges/nope", "charge_not_found"),
        (f"{BASE}/charges/nope/filters", "charge_not_found"),
        (f"{BASE}/charges/calls/filters/not-a-uuid", "charge_filter_not_found"),
        (f"{BASE}/fixed_charges/nope", "fixed_charge_not_found"),
    ],
)
def test_unknown_resources_are_404_with_lagos_code(api, billing, path, code):
    response = api.get(path)

    assert response.status_code == 404
    assert response.json()["code"] == code


def test_another_organizations_subscription_is_not_found(billing, other_api):
    for response in (
        other_api.get(f"{BASE}/charges"),
        other_api.put(f"{BASE}/charges/calls", {"charge": {"properties": {"amount": "1"}}},
                      format="json"),
        other_api.get(f"{BASE}/fixed_charges"),
    ):  # fmt: skip
        assert response.status_code == 404
        assert response.json()["code"] == "subscription_not_found"
    assert Charge.objects.get(pk=billing.calls.pk).properties == {"amount": "10"}


# --------------------------------------------------------------------------------------------
# Charge overrides


def test_an_override_moves_the_subscription_onto_its_own_plan(api, billing):
    response = put_charge(api, {"properties": {"amount": "1"}, "invoice_display_name": "Calls!"})

    assert response.status_code == 200, response.json()
    charge = response.json()["charge"]
    assert charge["lago_parent_id"] == str(billing.calls.pk)
    assert (charge["properties"], charge["invoice_display_name"]) == ({"amount": "1"}, "Calls!")
    subscription = Subscription.objects.get(pk=billing.subscription.pk)
    assert subscription.plan.parent_id == billing.plan.pk
    assert subscription.plan.code == "usage"
    assert api.get(f"{BASE}/charges/calls").json()["charge"]["lago_id"] == charge["lago_id"]


def test_the_plan_and_the_other_subscription_keep_their_prices(api, billing):
    put_charge(api, {"properties": {"amount": "1"}})

    assert Charge.objects.get(pk=billing.calls.pk).properties == {"amount": "10"}
    other = api.get("/api/v1/subscriptions/sub_2/charges/calls").json()["charge"]
    assert (other["lago_id"], other["properties"]) == (str(billing.calls.pk), {"amount": "10"})
    assert api.get("/api/v1/plans/usage/charges/calls").json()["charge"]["properties"] == {
        "amount": "10"
    }


def test_the_override_reprices_this_subscriptions_current_usage_only(api, billing):
    assert usage_cents(api, "sub_1", "cust_1") == 3000

    put_charge(api, {"properties": {"amount": "1"}})

    assert usage_cents(api, "sub_1", "cust_1") == 300
    assert usage_cents(api, "sub_2", "cust_2") == 3000


def test_the_override_reprices_this_subscriptions_next_invoice_only(api, billing):
    put_charge(api, {"properties": {"amount": "1"}})

    def charge_fees(subscription_id):
        subscription = Subscription.objects.get(pk=subscription_id)
        preview = invoice_preview(
            customer=subscription.customer, now=at(NOW), subscriptions=[subscription]
        )
        return sorted(f.amount_cents for f in preview.fees if f.fee_type == "charge")

    assert 300 in charge_fees(billing.subscription.pk)
    assert 3000 not in charge_fees(billing.subscription.pk)
    assert 3000 in charge_fees(billing.other.pk)


def test_a_second_override_edits_the_same_copy(api, billing):
    first = put_charge(api, {"properties": {"amount": "1"}}).json()["charge"]

    second = put_charge(api, {"min_amount_cents": 500}).json()["charge"]

    assert second["lago_id"] == first["lago_id"]
    assert (second["properties"], second["min_amount_cents"]) == ({"amount": "1"}, 500)
    assert Charge.objects.filter(parent=billing.calls).count() == 1


def test_the_charge_model_and_flags_are_never_overridden(api, billing):
    response = put_charge(
        api, {"charge_model": "package", "pay_in_advance": True, "properties": {"amount": "2"}}
    )

    assert response.status_code == 200, response.json()
    charge = response.json()["charge"]
    assert (charge["charge_model"], charge["pay_in_advance"]) == ("standard", False)


def test_taxes_are_overridden_by_code(api, organization, billing):
    TaxFactory(organization=organization, code="vat_sub", rate="5.00")

    response = put_charge(api, {"tax_codes": ["vat_sub"]})

    assert [t["code"] for t in response.json()["charge"]["taxes"]] == ["vat_sub"]
    assert billing.calls.taxes.count() == 0


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"properties": {"amount": "abc"}}, {"properties": ["invalid_amount"]}),
        ({"min_amount_cents": "x"}, None),
        ({"tax_codes": ["unknown"]}, None),
    ],
)
def test_invalid_overrides_are_refused_and_write_nothing(api, billing, body, details):
    response = put_charge(api, body)

    assert response.status_code in (404, 422), response.json()
    if details is not None:
        assert response.status_code == 422
        assert response.json()["code"] == "validation_errors"
        assert response.json()["error_details"] == details
    assert Subscription.objects.get(pk=billing.subscription.pk).plan_id == billing.plan.pk
    assert not Charge.objects.filter(parent=billing.calls).exists()


def test_a_missing_root_is_a_400(api, billing):
    response = api.put(f"{BASE}/charges/calls", {"properties": {}}, format="json")

    assert response.status_code == 400


def test_filters_are_replaced_as_a_set_on_the_copy(api, billing):
    response = put_charge(
        api, {"filters": [{"values": {"region": ["us"]}, "properties": {"amount": "3"}}]}
    )

    assert response.status_code == 200, response.json()
    assert [(f["values"], f["properties"]) for f in response.json()["charge"]["filters"]] == [
        ({"region": ["us"]}, {"amount": "3"})
    ]
    assert ChargeFilter.objects.alive().get(charge=billing.calls).pk == billing.eu.pk


# --------------------------------------------------------------------------------------------
# Charge filters


def filters_url(base=BASE):
    return f"{base}/charges/calls/filters"


def test_the_filters_of_a_subscriptions_charge_are_listed(api, billing):
    response = api.get(filters_url())

    assert response.status_code == 200, response.json()
    assert [f["lago_id"] for f in response.json()["filters"]] == [str(billing.eu.pk)]
    single = api.get(f"{filters_url()}/{billing.eu.pk}").json()["filter"]
    assert (single["values"], single["properties"]) == ({"region": ["eu"]}, {"amount": "20"})


def test_a_filter_is_added_for_this_subscription_only(api, billing):
    response = api.post(
        filters_url(),
        {"filter": {"values": {"region": ["us"]}, "properties": {"amount": "7"}}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    created = ChargeFilter.objects.get(pk=response.json()["filter"]["lago_id"])
    assert created.charge.parent_id == billing.calls.pk
    assert ChargeFilter.objects.alive().filter(charge=billing.calls).count() == 1
    assert len(api.get(filters_url()).json()["filters"]) == 2
    assert len(api.get(filters_url("/api/v1/subscriptions/sub_2")).json()["filters"]) == 1


@pytest.mark.parametrize(
    ("body", "details"),
    [
        ({"properties": {"amount": "7"}}, {"values": ["value_is_mandatory"]}),
        ({"values": {"region": ["eu"]}, "properties": {"amount": "7"}},
         {"values": ["value_already_exists"]}),
        ({"values": {"region": ["mars"]}, "properties": {"amount": "7"}},
         {"values": ["value_is_invalid"]}),
    ],
)  # fmt: skip
def test_invalid_filters_are_422_with_lagos_codes(api, billing, body, details):
    response = api.post(filters_url(), {"filter": body}, format="json")

    assert response.status_code == 422, response.json()
    assert response.json()["error_details"] == details


def test_a_filter_is_overridden_on_the_copy_the_plans_kept(api, billing):
    response = api.put(
        f"{filters_url()}/{billing.eu.pk}",
        {"filter": {"properties": {"amount": "2"}, "values": {"region": ["us"]}}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()["filter"]
    assert body["lago_id"] != str(billing.eu.pk)
    assert (body["values"], body["properties"]) == ({"region": ["eu"]}, {"amount": "2"})
    billing.eu.refresh_from_db()
    assert billing.eu.properties == {"amount": "20"}


def test_a_filter_is_removed_for_this_subscription_only(api, billing):
    response = api.delete(f"{filters_url()}/{billing.eu.pk}")

    assert response.status_code == 200, response.json()
    assert api.get(filters_url()).json()["filters"] == []
    billing.eu.refresh_from_db()
    assert billing.eu.deleted_at is None
    assert len(api.get(filters_url("/api/v1/subscriptions/sub_2")).json()["filters"]) == 1


# --------------------------------------------------------------------------------------------
# Fixed charges


def test_the_fixed_charges_of_a_subscription_are_its_plans(api, billing):
    response = api.get(f"{BASE}/fixed_charges")

    assert response.status_code == 200, response.json()
    assert [(f["code"], f["units"]) for f in response.json()["fixed_charges"]] == [("seats", "2.0")]
    assert api.get(f"{BASE}/fixed_charges/seat").json()["fixed_charge"]["code"] == "seats"


def test_fixed_charge_units_are_overridden_for_this_subscription_only(api, billing):
    response = api.put(
        f"{BASE}/fixed_charges/seats",
        {"fixed_charge": {"units": "5", "apply_units_immediately": False}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()["fixed_charge"]
    assert body["units"] == "5.0"
    assert body["lago_parent_id"] == str(FixedCharge.objects.get(plan=billing.plan).pk)
    assert FixedCharge.objects.get(plan=billing.plan).units == 2
    other = api.get("/api/v1/subscriptions/sub_2/fixed_charges/seats").json()["fixed_charge"]
    assert other["units"] == "2.0"


def test_negative_units_are_refused(api, billing):
    response = api.put(
        f"{BASE}/fixed_charges/seats", {"fixed_charge": {"units": "-1"}}, format="json"
    )

    assert response.status_code == 422, response.json()
    assert response.json()["error_details"] == {"units": ["value_is_invalid"]}
    assert Subscription.objects.get(pk=billing.subscription.pk).plan_id == billing.plan.pk


# --------------------------------------------------------------------------------------------
# The official client


@pytest.mark.django_db(transaction=True)
def test_lago_python_client_reads_and_overrides_a_subscription_charge(lago, billing):
    from lago_python_client.models.charge import Charge as ChargeInput

    found = lago.subscription_charges.find("sub_1", "calls")
    assert found.code == "calls"

    updated = lago.subscription_charges.update(
        "sub_1", "calls", ChargeInput(properties={"amount": "1"})
    )

    assert updated.lago_id != str(billing.calls.pk)
    assert Charge.objects.get(pk=updated.lago_id).parent_id == billing.calls.pk
    assert updated.properties == {"amount": "1"}
    # (the client's `find_all` of child resources sends no API key: not usable here)
    assert lago.subscription_charges.find("sub_1", "calls").lago_id == updated.lago_id
    filters = lago.subscriptions.find_all_charge_filters("sub_1", "calls")
    assert len(filters["filters"]) == 1


@pytest.mark.django_db(transaction=True)
def test_lago_python_client_manages_a_subscriptions_charge_filters(lago, billing):
    from lago_python_client.models.charge import ChargeFilter as FilterInput

    created = lago.subscriptions.create_charge_filter(
        "sub_1", "calls", FilterInput(values={"region": ["us"]}, properties={"amount": "7"})
    )
    assert created.values == {"region": ["us"]}
    found = lago.subscriptions.find_charge_filter("sub_1", "calls", created.lago_id)
    assert found.properties == {"amount": "7"}
    updated = lago.subscriptions.update_charge_filter(
        "sub_1", "calls", created.lago_id, FilterInput(properties={"amount": "8"})
    )
    assert updated.properties == {"amount": "8"}

    lago.subscriptions.destroy_charge_filter("sub_1", "calls", created.lago_id)

    listing = lago.subscriptions.find_all_charge_filters("sub_1", "calls")
    assert [f.values for f in listing["filters"]] == [{"region": ["eu"]}]
    plan_filters = lago.plans.find_all_charge_filters("usage", "calls")
    assert [f.properties for f in plan_filters["filters"]] == [{"amount": "20"}]


@pytest.mark.django_db(transaction=True)
def test_lago_python_client_overrides_a_subscriptions_fixed_charge(lago, billing):
    from lago_python_client.models.fixed_charge import FixedCharge as FixedChargeInput

    updated = lago.subscription_fixed_charges.update(
        "sub_1", "seats", FixedChargeInput(units=5, apply_units_immediately=False)
    )

    assert float(updated.units) == 5
    assert float(lago.subscription_fixed_charges.find("sub_1", "seats").units) == 5
    assert float(lago.subscription_fixed_charges.find("sub_2", "seats").units) == 2
