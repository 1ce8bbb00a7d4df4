"""POST/GET /applied_coupons and the customer's applied coupons (spec §15.2)."""

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from customers.models import AppliedCoupon, Customer
from tests.conftest import client_for
from tests.customers.factories import CustomerFactory
from tests.customers.test_customers_api import run_in_threads
from tests.plans.factories import (
    BillableMetricFactory,
    ChargeFactory,
    CouponFactory,
    PlanFactory,
)

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 1, 15, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def customer(organization):
    return CustomerFactory(organization=organization, external_id="acme", currency="")


def apply(api, coupon_code, external_customer_id="acme", **terms):
    payload = {"external_customer_id": external_customer_id, "coupon_code": coupon_code, **terms}
    return api.post("/api/v1/applied_coupons", {"applied_coupon": payload}, format="json")


def applied(api, coupon_code, **terms):
    response = apply(api, coupon_code, **terms)
    assert response.status_code == 200, response.json()
    return response.json()["applied_coupon"]


def test_apply_renders_the_whole_applied_coupon(api, organization, customer):
    coupon = CouponFactory(
        organization=organization,
        code="welcome",
        name="Welcome",
        amount_cents=1500,
        amount_currency="EUR",
        frequency="once",
        expiration="time_limit",
        expiration_at=dt.datetime(2026, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
    )
    with time_machine.travel(NOW, tick=False):
        body = applied(api, "welcome")
    row = AppliedCoupon.objects.get()
    assert body == {
        "lago_id": str(row.pk),
        "lago_coupon_id": str(coupon.pk),
        "coupon_code": "welcome",
        "coupon_name": "Welcome",
        "lago_customer_id": str(customer.pk),
        "external_customer_id": "acme",
        "status": "active",
        "amount_cents": 1500,
        "amount_cents_remaining": 1500,
        "amount_currency": "EUR",
        "percentage_rate": None,
        "frequency": "once",
        "frequency_duration": None,
        "frequency_duration_remaining": None,
        "expiration_at": "2026-12-31T23:59:59Z",
        "created_at": "2026-01-15T10:00:00Z",
        "terminated_at": None,
    }


def test_percentage_coupon_renders_its_rate_as_a_decimal_string(api, organization, customer):
    CouponFactory(organization=organization, code="pct", coupon_type="percentage",
                  amount_cents=None, amount_currency="", percentage_rate="12.5",
                  frequency="recurring", frequency_duration=3)  # fmt: skip
    body = applied(api, "pct")
    assert body["percentage_rate"] == "12.5"
    assert body["amount_cents"] is None
    assert body["amount_currency"] is None
    assert body["amount_cents_remaining"] is None  # only fixed coupons applied once have one
    assert (body["frequency_duration"], body["frequency_duration_remaining"]) == (3, 3)


def test_apply_takes_per_customer_terms_over_the_coupon_ones(api, organization, customer):
    CouponFactory(organization=organization, code="ten", amount_cents=1000)
    body = applied(api, "ten", amount_cents=2500, amount_currency="USD", frequency="recurring",
                   frequency_duration=6)  # fmt: skip
    assert (body["amount_cents"], body["amount_currency"]) == (2500, "USD")
    assert (body["frequency"], body["frequency_duration_remaining"]) == ("recurring", 6)
    assert body["amount_cents_remaining"] is None


def test_a_percentage_rate_sent_as_a_json_number_keeps_its_decimals(api, organization, customer):
    CouponFactory(organization=organization, code="pct", coupon_type="percentage",
                  amount_cents=None, amount_currency="", percentage_rate="10")  # fmt: skip
    assert applied(api, "pct", percentage_rate=12.35)["percentage_rate"] == "12.35"
    assert AppliedCoupon.objects.get().percentage_rate == Decimal("12.35")


def test_recurring_terms_without_a_duration_are_refused(api, organization, customer):
    CouponFactory(organization=organization, code="ten")
    response = apply(api, "ten", frequency="recurring")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"frequency_duration": ["value_is_mandatory"]}


def test_unknown_customer_is_404_customer_not_found(api, organization, customer):
    CouponFactory(organization=organization, code="ten")
    response = apply(api, "ten", external_customer_id="nobody")
    assert response.status_code == 404
    assert response.json()["code"] == "customer_not_found"


def test_deleted_customer_is_404(api, organization, customer):
    CouponFactory(organization=organization, code="ten")
    api.delete("/api/v1/customers/acme")
    assert apply(api, "ten").json()["code"] == "customer_not_found"


@pytest.mark.parametrize(
    "coupon_fields",
    [
        pytest.param({"code": "other"}, id="unknown-code"),
        pytest.param({"status": "terminated", "terminated_at": NOW}, id="terminated"),
        pytest.param(
            {"expiration": "time_limit", "expiration_at": NOW - dt.timedelta(days=1)},
            id="expired",
        ),
        pytest.param({"deleted_at": NOW}, id="deleted"),
    ],
)
def test_a_coupon_that_cannot_be_applied_is_404_coupon_not_found(
    api, organization, customer, coupon_fields
):
    CouponFactory(organization=organization, **{"code": "ten", **coupon_fields})
    response = apply(api, "ten")
    assert response.status_code == 404
    assert response.json()["code"] == "coupon_not_found"


def test_another_tenants_coupon_is_404(api, organization, other_organization, customer):
    CouponFactory(organization=other_organization, code="ten")
    assert apply(api, "ten").json()["code"] == "coupon_not_found"


def test_a_non_reusable_coupon_applies_once_per_customer(api, organization, customer):
    CouponFactory(organization=organization, code="once", reusable=False)
    applied(api, "once")
    response = apply(api, "once")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"coupon": ["coupon_is_not_reusable"]}


def test_a_non_reusable_coupon_stays_used_after_termination(api, organization, customer):
    CouponFactory(organization=organization, code="once", reusable=False)
    first = applied(api, "once")
    api.delete(f"/api/v1/customers/acme/applied_coupons/{first['lago_id']}")
    assert apply(api, "once").status_code == 422


def test_a_non_reusable_coupon_applies_to_each_customer(api, organization, customer):
    CouponFactory(organization=organization, code="once", reusable=False)
    CustomerFactory(organization=organization, external_id="globex", currency="")
    applied(api, "once")
    assert apply(api, "once", external_customer_id="globex").status_code == 200


def test_a_reusable_coupon_can_be_applied_twice(api, organization, customer):
    CouponFactory(organization=organization, code="ten", reusable=True)
    applied(api, "ten")
    applied(api, "ten")
    assert AppliedCoupon.objects.count() == 2


def _limited_to_plan(organization, code, plan):
    coupon = CouponFactory(organization=organization, code=code, limited_plans=True)
    coupon.plans.add(plan)
    return coupon


def test_limited_coupons_on_the_same_plan_overlap(api, organization, customer):
    plan = PlanFactory(organization=organization)
    _limited_to_plan(organization, "a", plan)
    _limited_to_plan(organization, "b", plan)
    applied(api, "a")
    response = apply(api, "b")
    assert response.status_code == 405
    assert response.json() == {
        "status": 405,
        "error": "Method Not Allowed",
        "code": "plan_overlapping",
    }


def test_a_metric_limited_coupon_overlaps_a_plan_charging_that_metric(api, organization, customer):
    charge = ChargeFactory(organization=organization)
    _limited_to_plan(organization, "plan_coupon", charge.plan)
    metric_coupon = CouponFactory(
        organization=organization, code="metric_coupon", limited_billable_metrics=True
    )
    metric_coupon.billable_metrics.add(charge.billable_metric)
    applied(api, "plan_coupon")
    assert apply(api, "metric_coupon").json()["code"] == "plan_overlapping"


def test_limited_coupons_on_different_plans_do_not_overlap(api, organization, customer):
    _limited_to_plan(organization, "a", PlanFactory(organization=organization))
    _limited_to_plan(organization, "b", PlanFactory(organization=organization))
    applied(api, "a")
    assert apply(api, "b").status_code == 200


def test_a_terminated_limited_coupon_no_longer_overlaps(api, organization, customer):
    plan = PlanFactory(organization=organization)
    _limited_to_plan(organization, "a", plan)
    _limited_to_plan(organization, "b", plan)
    first = applied(api, "a")
    api.delete(f"/api/v1/customers/acme/applied_coupons/{first['lago_id']}")
    assert apply(api, "b").status_code == 200


def test_an_unlimited_coupon_never_overlaps(api, organization, customer):
    plan = PlanFactory(organization=organization)
    _limited_to_plan(organization, "a", plan)
    BillableMetricFactory(organization=organization)
    CouponFactory(organization=organization, code="all")
    applied(api, "a")
    assert apply(api, "all").status_code == 200


def test_a_fixed_coupon_gives_its_currency_to_a_customer_without_one(api, organization, customer):
    CouponFactory(organization=organization, code="ten", amount_currency="USD")
    applied(api, "ten")
    customer.refresh_from_db()
    assert customer.currency == "USD"


def test_a_fixed_coupon_in_another_currency_is_refused(api, organization, customer):
    Customer.objects.filter(pk=customer.pk).update(currency="EUR")
    CouponFactory(organization=organization, code="ten", amount_currency="USD")
    response = apply(api, "ten")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"currency": ["currencies_does_not_match"]}
    assert not AppliedCoupon.objects.exists()


def test_a_currency_override_must_match_the_customer_currency(api, organization, customer):
    Customer.objects.filter(pk=customer.pk).update(currency="EUR")
    CouponFactory(organization=organization, code="ten", amount_currency="EUR")
    assert apply(api, "ten", amount_currency="GBP").status_code == 422


def test_a_percentage_coupon_leaves_the_customer_currency_alone(api, organization, customer):
    CouponFactory(organization=organization, code="pct", coupon_type="percentage",
                  amount_cents=None, amount_currency="", percentage_rate="10")  # fmt: skip
    applied(api, "pct")
    customer.refresh_from_db()
    assert customer.currency == ""


# --- lists ------------------------------------------------------------------------------------


@pytest.fixture
def three_applied(api, organization, customer):
    CustomerFactory(organization=organization, external_id="globex", currency="")
    for code in ("a", "b"):
        CouponFactory(organization=organization, code=code)
    applied(api, "a")
    terminated = applied(api, "b")
    api.delete(f"/api/v1/customers/acme/applied_coupons/{terminated['lago_id']}")
    applied(api, "a", external_customer_id="globex")


def listed(api, url):
    response = api.get(url)
    assert response.status_code == 200, response.json()
    return sorted(
        (c["external_customer_id"], c["coupon_code"], c["status"])
        for c in response.json()["applied_coupons"]
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("", [("acme", "a", "active"), ("acme", "b", "terminated"),
                          ("globex", "a", "active")], id="all"),
        pytest.param("status=terminated", [("acme", "b", "terminated")], id="status"),
        pytest.param("external_customer_id=globex", [("globex", "a", "active")], id="customer"),
        pytest.param("coupon_code[]=b", [("acme", "b", "terminated")], id="coupon-code"),
        pytest.param("coupon_code[]=a&external_customer_id=acme", [("acme", "a", "active")],
                     id="combined"),
    ],
)  # fmt: skip
def test_applied_coupon_list_filters(api, three_applied, query, expected):
    assert listed(api, f"/api/v1/applied_coupons?{query}") == expected


def test_applied_coupon_list_carries_credits_and_meta(api, three_applied):
    body = api.get("/api/v1/applied_coupons?per_page=2").json()
    assert all(c["credits"] == [] for c in body["applied_coupons"])
    assert body["meta"]["total_count"] == 3
    assert body["meta"]["next_page"] == 2


def test_applied_coupon_list_with_an_invalid_status_is_422(api, three_applied):
    assert api.get("/api/v1/applied_coupons?status=gone").status_code == 422


def test_customer_applied_coupons_lists_only_that_customer(api, three_applied):
    assert listed(api, "/api/v1/customers/acme/applied_coupons") == [
        ("acme", "a", "active"),
        ("acme", "b", "terminated"),
    ]


def test_customer_applied_coupons_of_an_unknown_customer_is_404(api):
    response = api.get("/api/v1/customers/nobody/applied_coupons")
    assert response.status_code == 404
    assert response.json()["code"] == "customer_not_found"


def test_applied_coupons_of_another_tenant_are_not_listed(api, other_api, three_applied):
    assert listed(other_api, "/api/v1/applied_coupons") == []
    assert other_api.get("/api/v1/customers/acme/applied_coupons").status_code == 404


def test_applied_coupon_list_query_count_is_bounded(
    api, three_applied, django_assert_max_num_queries
):
    with django_assert_max_num_queries(5):
        api.get("/api/v1/applied_coupons")


# --- termination ------------------------------------------------------------------------------


def test_delete_terminates_the_applied_coupon(api, organization, customer):
    CouponFactory(organization=organization, code="ten")
    body = applied(api, "ten")
    with time_machine.travel(NOW, tick=False):
        response = api.delete(f"/api/v1/customers/acme/applied_coupons/{body['lago_id']}")
    assert response.status_code == 200
    assert response.json()["applied_coupon"]["status"] == "terminated"
    assert response.json()["applied_coupon"]["terminated_at"] == "2026-01-15T10:00:00Z"


def test_terminating_twice_keeps_the_first_termination(api, organization, customer):
    CouponFactory(organization=organization, code="ten")
    url = f"/api/v1/customers/acme/applied_coupons/{applied(api, 'ten')['lago_id']}"
    first = api.delete(url).json()["applied_coupon"]["terminated_at"]
    second = api.delete(url)
    assert second.status_code == 200
    assert second.json()["applied_coupon"]["terminated_at"] == first


@pytest.mark.parametrize(
    "applied_coupon_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"]
)
def test_deleting_an_unknown_applied_coupon_is_404(api, customer, applied_coupon_id):
    response = api.delete(f"/api/v1/customers/acme/applied_coupons/{applied_coupon_id}")
    assert response.status_code == 404
    assert response.json()["code"] == "applied_coupon_not_found"


def test_an_applied_coupon_is_terminated_only_through_its_customer(api, organization, customer):
    CustomerFactory(organization=organization, external_id="globex", currency="")
    CouponFactory(organization=organization, code="ten")
    body = applied(api, "ten")
    response = api.delete(f"/api/v1/customers/globex/applied_coupons/{body['lago_id']}")
    assert response.status_code == 404
    assert AppliedCoupon.objects.get().status == "active"


# --- concurrency (PostgreSQL) -----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_applications_of_a_non_reusable_coupon_apply_it_once(
    api_key, organization, customer
):
    CouponFactory(organization=organization, code="once", reusable=False)
    statuses = run_in_threads(5, lambda i: apply(client_for(api_key[1]), "once").status_code)
    assert sorted(statuses) == [200, 422, 422, 422, 422]
    assert AppliedCoupon.objects.count() == 1
