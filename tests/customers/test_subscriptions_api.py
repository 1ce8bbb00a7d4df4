"""`/api/v1/subscriptions` and `/customers/{id}/subscriptions`: Lago's wire format (spec §9,
Appendix A), its errors (§1.3), tenancy (404) and the current billing period (V102, V104)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.actors import SYSTEM
from billing.periods import date_diff_with_timezone
from billing.services import api_key_create
from customers.models import Subscription
from customers.services.subscriptions import subscription_create, subscription_terminate
from customers.tasks import subscription_activate_pending_task
from tests.conftest import client_for
from tests.customers.factories import CustomerFactory
from tests.plans.factories import PlanFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 3, 5, 12, 12, tzinfo=UTC)
Status = Subscription.Status


@pytest.fixture
def customer(organization):
    return CustomerFactory(organization=organization, external_id="cust_1", timezone="UTC")


@pytest.fixture
def plan(organization):
    return PlanFactory(organization=organization, code="basic", amount_cents=1000)


@pytest.fixture
def premium(organization):
    return PlanFactory(organization=organization, code="premium", amount_cents=5000)


def post(api, payload, at=NOW):
    with time_machine.travel(at, tick=False):
        return api.post("/api/v1/subscriptions", {"subscription": payload}, format="json")


def get(api, path, at=NOW, **params):
    with time_machine.travel(at, tick=False):
        return api.get(path, params)


def make(organization, plan_code="basic", at=NOW, customer="cust_1", **kwargs):
    with time_machine.travel(at, tick=False):
        return subscription_create(
            organization=organization, external_customer_id=customer, plan_code=plan_code,
            actor=SYSTEM, now=at, **kwargs,
        )  # fmt: skip


# --------------------------------------------------------------------------------------------
# POST /subscriptions


def test_create_answers_the_whole_subscription_object(api, customer, plan):
    response = post(api, {"external_customer_id": "cust_1", "plan_code": "basic",
                          "external_id": "sub_1", "name": "Main"})  # fmt: skip
    assert response.status_code == 200
    subscription = Subscription.objects.get()
    assert response.json() == {
        "subscription": {
            "lago_id": str(subscription.pk),
            "external_id": "sub_1",
            "lago_customer_id": str(customer.pk),
            "external_customer_id": "cust_1",
            "billing_entity_code": "default",
            "name": "Main",
            "plan_code": "basic",
            "plan_amount_cents": 1000,
            "plan_amount_currency": "EUR",
            "status": "active",
            "billing_time": "calendar",
            "subscription_at": "2024-03-05T12:12:00Z",
            "started_at": "2024-03-05T12:12:00Z",
            "trial_ended_at": None,
            "ending_at": None,
            "terminated_at": None,
            "canceled_at": None,
            "created_at": "2024-03-05T12:12:00Z",
            "previous_plan_code": None,
            "next_plan_code": None,
            "downgrade_plan_date": None,
            "current_billing_period_started_at": "2024-03-05T12:12:00Z",
            "current_billing_period_ending_at": "2024-03-31T23:59:59Z",
            "on_termination_credit_note": None,
            "on_termination_invoice": "generate",
            "consolidate_invoice": True,
            "purchase_order_number": None,
            "progressive_billing_disabled": False,
            "payment_method": {"payment_method_type": "provider", "payment_method_id": None},
        }
    }


def test_create_in_the_future_is_pending(api, customer, plan):
    response = post(api, {"external_customer_id": "cust_1", "plan_code": "basic",
                          "subscription_at": "2024-04-01T00:00:00Z",
                          "billing_time": "anniversary"})  # fmt: skip
    body = response.json()["subscription"]
    assert (body["status"], body["started_at"], body["billing_time"]) == (
        "pending", None, "anniversary",
    )  # fmt: skip
    assert body["current_billing_period_started_at"] == "2024-04-01T00:00:00Z"


def test_create_accepts_a_bare_date(api, customer, plan):
    response = post(api, {"external_customer_id": "cust_1", "plan_code": "basic",
                          "subscription_at": "2024-03-01"})  # fmt: skip
    assert response.json()["subscription"]["started_at"] == "2024-03-01T00:00:00Z"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        pytest.param({"external_customer_id": "cust_1", "plan_code": "nope"}, 404,
                     "plan_not_found", id="unknown-plan"),
        pytest.param({"external_customer_id": "nobody", "plan_code": "basic"}, 404,
                     "customer_not_found", id="unknown-customer"),
        pytest.param({"external_customer_id": "cust_1"}, 404, "plan_not_found",
                     id="no-plan-code"),
    ],
)  # fmt: skip
def test_create_answers_not_found(api, customer, plan, payload, status, code):
    response = post(api, payload)
    assert (response.status_code, response.json()["code"]) == (status, code)


@pytest.mark.parametrize(
    ("payload", "details"),
    [
        pytest.param({"subscription_at": "tomorrow"}, {"subscription_at": ["invalid_date"]},
                     id="unparsable-subscription-at"),
        pytest.param({"ending_at": "2024-03-01T00:00:00Z"}, {"ending_at": ["invalid_date"]},
                     id="ending-before-start"),
        pytest.param({"billing_time": "weekly"}, {"billing_time": ["value_is_invalid"]},
                     id="unknown-billing-time"),
        pytest.param({"plan_code": "usd"}, {"currency": ["currencies_does_not_match"]},
                     id="currency-mismatch"),
        pytest.param({"external_customer_id": None},
                     {"external_customer_id": ["value_is_mandatory"]}, id="no-customer"),
    ],
)  # fmt: skip
def test_create_refuses_invalid_input(api, organization, customer, plan, payload, details):
    PlanFactory(organization=organization, code="usd", amount_currency="USD")
    response = post(api, {"external_customer_id": "cust_1", "plan_code": "basic", **payload})
    assert response.status_code == 422
    assert response.json() == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": details,
    }
    assert not Subscription.objects.exists()


def test_create_without_root_key_is_a_bad_request(api, customer, plan):
    response = api.post("/api/v1/subscriptions", {"plan_code": "basic"}, format="json")
    assert response.status_code == 400


def test_create_with_an_external_id_used_by_another_customer_is_refused(
    api, organization, customer, plan
):
    CustomerFactory(organization=organization, external_id="cust_2")
    make(organization, external_id="shared")
    response = post(api, {"external_customer_id": "cust_2", "plan_code": "basic",
                          "external_id": "shared"})  # fmt: skip
    assert response.status_code == 422
    assert response.json()["error_details"] == {"external_id": ["value_already_exist"]}


def test_upgrade_answers_the_new_subscription(api, organization, customer, plan, premium):
    make(organization, external_id="sub_1")
    later = NOW + timedelta(days=3)
    response = post(api, {"external_customer_id": "cust_1", "plan_code": "premium",
                          "external_id": "sub_1"}, at=later)  # fmt: skip
    body = response.json()["subscription"]
    assert (body["plan_code"], body["status"], body["previous_plan_code"]) == (
        "premium", "active", "basic",
    )  # fmt: skip
    assert body["started_at"] == "2024-03-08T12:12:00Z"
    old = get(api, "/api/v1/subscriptions/sub_1", at=later, status="terminated").json()
    assert (old["subscription"]["next_plan_code"], old["subscription"]["terminated_at"]) == (
        "premium", "2024-03-08T12:12:00Z",
    )  # fmt: skip


def test_downgrade_answers_the_current_subscription_with_the_coming_plan(
    api, organization, customer, plan, premium
):
    make(organization, "premium", external_id="sub_1")
    response = post(api, {"external_customer_id": "cust_1", "plan_code": "basic",
                          "external_id": "sub_1"}, at=NOW + timedelta(days=3))  # fmt: skip
    body = response.json()["subscription"]
    assert (body["plan_code"], body["status"], body["next_plan_code"]) == (
        "premium", "active", "basic",
    )  # fmt: skip
    assert body["downgrade_plan_date"] == "2024-04-01"
    pending = get(api, "/api/v1/subscriptions/sub_1", status="pending").json()["subscription"]
    assert (pending["plan_code"], pending["previous_plan_code"]) == ("basic", "premium")
    assert pending["current_billing_period_started_at"] == "2024-04-01T00:00:00Z"


def test_create_needs_the_subscription_write_permission(organization, customer, plan):
    _, raw = api_key_create(organization=organization, permissions={"subscription": ["read"]})
    response = post(client_for(raw), {"external_customer_id": "cust_1", "plan_code": "basic"})
    assert response.status_code == 403


# --------------------------------------------------------------------------------------------
# GET /subscriptions and /customers/{id}/subscriptions


@pytest.fixture
def several(organization, customer, plan, premium):
    CustomerFactory(organization=organization, external_id="cust_2", timezone="UTC")
    make(organization, external_id="a")
    make(organization, "premium", external_id="b", customer="cust_2")
    make(organization, external_id="c", subscription_at=NOW + timedelta(days=5))
    subscription_terminate(subscription=make(organization, external_id="d"), actor=SYSTEM, now=NOW)


def external_ids(response):
    return sorted(s["external_id"] for s in response.json()["subscriptions"])


def test_list_shows_only_active_subscriptions_by_default(api, several):
    response = get(api, "/api/v1/subscriptions")
    assert external_ids(response) == ["a", "b"]
    assert response.json()["meta"] == {
        "current_page": 1, "next_page": None, "prev_page": None, "total_pages": 1,
        "total_count": 2,
    }  # fmt: skip


def test_list_filters_on_statuses(api, several):
    response = get(api, "/api/v1/subscriptions", **{"status[]": ["pending", "terminated"]})
    assert external_ids(response) == ["c", "d"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"external_customer_id": "cust_2"}, ["b"], id="customer"),
        pytest.param({"plan_code": "basic"}, ["a"], id="plan"),
    ],
)
def test_list_filters_on_customer_and_plan(api, several, params, expected):
    assert external_ids(get(api, "/api/v1/subscriptions", **params)) == expected


def test_list_is_paginated(api, several):
    response = get(api, "/api/v1/subscriptions", per_page=1, page=2)
    assert len(response.json()["subscriptions"]) == 1
    assert response.json()["meta"]["prev_page"] == 1


def test_list_queries_do_not_grow_with_the_page(api, organization, customer, plan, premium):
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert get(api, "/api/v1/subscriptions").status_code == 200
        return len(queries)

    make(organization, external_id="first")
    count()  # the first call of a key also stamps its last use
    few = count()
    for index in range(6):
        make(organization, external_id=f"more_{index}")
        make(organization, "premium", external_id=f"more_{index}", at=NOW + timedelta(hours=1))
    assert count() == few
    assert few <= 12


def test_customer_subscriptions_lists_that_customer_only(api, several):
    response = get(api, "/api/v1/customers/cust_1/subscriptions")
    assert external_ids(response) == ["a"]
    response = get(api, "/api/v1/customers/cust_1/subscriptions", **{"status[]": ["pending"]})
    assert external_ids(response) == ["c"]


def test_customer_subscriptions_of_an_unknown_customer_is_not_found(api, several):
    response = get(api, "/api/v1/customers/nobody/subscriptions")
    assert (response.status_code, response.json()["code"]) == (404, "customer_not_found")


# --------------------------------------------------------------------------------------------
# GET / PUT / DELETE /subscriptions/{external_id}


def test_get_answers_the_active_subscription(api, organization, customer, plan):
    subscription = make(organization, external_id="sub_1")
    body = get(api, "/api/v1/subscriptions/sub_1").json()["subscription"]
    assert body["lago_id"] == str(subscription.pk)


def test_get_unknown_subscription_is_not_found(api, customer):
    response = get(api, "/api/v1/subscriptions/nope")
    assert response.json() == {
        "status": 404,
        "error": "Not Found",
        "code": "subscription_not_found",
    }


def test_put_updates_name_and_ending_at(api, organization, customer, plan):
    make(organization, external_id="sub_1")
    with time_machine.travel(NOW, tick=False):
        response = api.put(
            "/api/v1/subscriptions/sub_1",
            {"subscription": {"name": "Renamed", "ending_at": "2024-09-01T00:00:00Z"}},
            format="json",
        )
    body = response.json()["subscription"]
    assert (body["name"], body["ending_at"]) == ("Renamed", "2024-09-01T00:00:00Z")


def test_put_with_status_pending_moves_the_start(api, organization, customer, plan):
    make(organization, external_id="sub_1", subscription_at=NOW + timedelta(days=10))
    with time_machine.travel(NOW, tick=False):
        response = api.put(
            "/api/v1/subscriptions/sub_1?status=pending",
            {"subscription": {"subscription_at": "2024-04-02T00:00:00Z"}},
            format="json",
        )
    assert response.json()["subscription"]["subscription_at"] == "2024-04-02T00:00:00Z"


def test_put_with_an_invalid_ending_at_is_refused(api, organization, customer, plan):
    make(organization, external_id="sub_1")
    with time_machine.travel(NOW, tick=False):
        response = api.put(
            "/api/v1/subscriptions/sub_1",
            {"subscription": {"ending_at": "2020-01-01T00:00:00Z"}},
            format="json",
        )
    assert response.json()["error_details"] == {"ending_at": ["invalid_date"]}


def test_delete_terminates_with_the_termination_choices(api, organization, customer):
    PlanFactory(organization=organization, code="advance", pay_in_advance=True)
    make(organization, "advance", external_id="sub_1")
    later = NOW + timedelta(days=2)
    with time_machine.travel(later, tick=False):
        response = api.delete(
            "/api/v1/subscriptions/sub_1?on_termination_credit_note=refund"
            "&on_termination_invoice=skip"
        )
    body = response.json()["subscription"]
    assert (body["status"], body["terminated_at"]) == ("terminated", "2024-03-07T12:12:00Z")
    assert (body["on_termination_credit_note"], body["on_termination_invoice"]) == (
        "refund", "skip",
    )  # fmt: skip
    assert body["current_billing_period_ending_at"] == "2024-03-07T12:12:00Z"


def test_delete_with_status_pending_cancels(api, organization, customer, plan):
    make(organization, external_id="sub_1", subscription_at=NOW + timedelta(days=10))
    with time_machine.travel(NOW, tick=False):
        response = api.delete("/api/v1/subscriptions/sub_1?status=pending")
    body = response.json()["subscription"]
    assert (body["status"], body["canceled_at"]) == ("canceled", "2024-03-05T12:12:00Z")
    assert body["current_billing_period_started_at"] is None


def test_delete_without_status_does_not_reach_a_pending_subscription(
    api, organization, customer, plan
):
    make(organization, external_id="sub_1", subscription_at=NOW + timedelta(days=10))
    response = api.delete("/api/v1/subscriptions/sub_1")
    assert response.status_code == 404
    assert Subscription.objects.get().status == Status.PENDING


def test_delete_with_an_unknown_credit_note_choice_is_refused(api, organization, customer, plan):
    make(organization, external_id="sub_1")
    response = api.delete("/api/v1/subscriptions/sub_1?on_termination_credit_note=burn")
    assert response.json()["error_details"] == {"on_termination_credit_note": ["invalid_value"]}
    assert Subscription.objects.get().status == Status.ACTIVE


# --------------------------------------------------------------------------------------------
# Tenancy (STYLE §8): another organization's subscriptions are 404


@pytest.fixture
def foreign(other_organization):
    CustomerFactory(organization=other_organization, external_id="cust_1", currency="USD")
    PlanFactory(organization=other_organization, code="basic", amount_currency="USD")
    return make(other_organization, external_id="theirs")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("get", "/api/v1/subscriptions/theirs", id="get"),
        pytest.param("put", "/api/v1/subscriptions/theirs", id="put"),
        pytest.param("delete", "/api/v1/subscriptions/theirs", id="delete"),
    ],
)
def test_another_organizations_subscription_is_not_found(api, foreign, method, path):
    response = getattr(api, method)(path, {"subscription": {"name": "x"}}, format="json")
    assert (response.status_code, response.json()["code"]) == (404, "subscription_not_found")
    foreign.refresh_from_db()
    assert (foreign.status, foreign.name) == (Status.ACTIVE, "")


def test_another_organizations_subscriptions_are_not_listed(api, foreign):
    assert get(api, "/api/v1/subscriptions").json()["subscriptions"] == []


def test_another_organizations_customer_cannot_be_subscribed(api, foreign, plan):
    response = post(api, {"external_customer_id": "cust_1", "plan_code": "basic"})
    assert response.json()["code"] == "customer_not_found"


# --------------------------------------------------------------------------------------------
# Current billing period (spec §10; V102, V104)


def period_of(api, external_id, at, status="active"):
    body = get(api, f"/api/v1/subscriptions/{external_id}", at=at, status=status).json()
    return (
        body["subscription"]["current_billing_period_started_at"],
        body["subscription"]["current_billing_period_ending_at"],
    )


def as_datetime(value):
    return datetime.fromisoformat(value)


def test_period_of_a_utc_start_counts_17_days_v102(api, organization, customer, plan):
    make(organization, external_id="sub_1", at=datetime(2022, 3, 15, tzinfo=UTC))
    start, end = period_of(api, "sub_1", at=datetime(2022, 3, 20, tzinfo=UTC))
    assert (start, end) == ("2022-03-15T00:00:00Z", "2022-03-31T23:59:59Z")
    assert date_diff_with_timezone(as_datetime(start), as_datetime(end), ZoneInfo("UTC")) == 17


def test_period_in_paris_is_cut_on_local_days_v102(api, organization, customer, plan):
    customer.timezone = "Europe/Paris"
    customer.save()
    local_start = datetime(2022, 2, 28, 23, 0, tzinfo=UTC)  # 2022-03-01 00:00 in Paris
    subscription = make(organization, external_id="sub_1", at=local_start)
    subscription_terminate(
        subscription=subscription, actor=SYSTEM, now=datetime(2022, 3, 6, 22, 59, 59, tzinfo=UTC)
    )
    start, end = period_of(api, "sub_1", at=datetime(2022, 3, 7, tzinfo=UTC), status="terminated")
    assert (start, end) == ("2022-02-28T23:00:00Z", "2022-03-06T22:59:59Z")
    paris = ZoneInfo("Europe/Paris")
    assert date_diff_with_timezone(as_datetime(start), as_datetime(end), paris) == 6


@pytest.mark.parametrize(
    ("billing_time", "start", "monthly_charges", "at", "expected"),
    [
        pytest.param("calendar", date(2022, 1, 1), False, date(2022, 12, 15),
                     ("2022-01-01T00:00:00Z", "2022-12-31T23:59:59Z"), id="calendar-whole-year"),
        pytest.param("calendar", date(2022, 1, 1), True, date(2022, 12, 15),
                     ("2022-12-01T00:00:00Z", "2022-12-31T23:59:59Z"),
                     id="calendar-charges-monthly"),
        pytest.param("anniversary", date(2020, 2, 2), False, date(2022, 2, 1),
                     ("2021-02-02T00:00:00Z", "2022-02-01T23:59:59Z"), id="anniversary-year"),
    ],
)  # fmt: skip
def test_yearly_plans_report_their_charges_window_v104(
    api, organization, customer, billing_time, start, monthly_charges, at, expected
):
    PlanFactory(
        organization=organization, code="yearly", interval="yearly", amount_cents=12_000,
        bill_charges_monthly=monthly_charges,
    )  # fmt: skip
    started = datetime(start.year, start.month, start.day, tzinfo=UTC)
    make(organization, "yearly", external_id="sub_1", at=started, billing_time=billing_time)
    when = datetime(at.year, at.month, at.day, 12, tzinfo=UTC)
    assert period_of(api, "sub_1", at=when) == expected


# --------------------------------------------------------------------------------------------
# A whole life through the API, with the clock run by the tasks


def test_a_whole_life_through_the_api_and_the_clock(api, organization, customer, plan, premium):
    def status_of(external_id, at, status="active"):
        response = get(api, f"/api/v1/subscriptions/{external_id}", at=at, status=status)
        return response.json()["subscription"]

    payload = {"external_customer_id": "cust_1", "external_id": "life"}
    post(api, {**payload, "plan_code": "basic", "subscription_at": "2024-03-10T08:00:00Z"})
    assert status_of("life", NOW, "pending")["status"] == "pending"

    with time_machine.travel(datetime(2024, 3, 10, 0, 5, tzinfo=UTC), tick=False):
        subscription_activate_pending_task.delay()
    assert status_of("life", datetime(2024, 3, 10, 9, tzinfo=UTC))["started_at"] == (
        "2024-03-10T08:00:00Z"
    )

    upgraded = post(api, {**payload, "plan_code": "premium"}, at=datetime(2024, 3, 12, tzinfo=UTC))
    assert upgraded.json()["subscription"]["previous_plan_code"] == "basic"

    downgraded = post(api, {**payload, "plan_code": "basic"}, at=datetime(2024, 3, 20, tzinfo=UTC))
    assert downgraded.json()["subscription"]["downgrade_plan_date"] == "2024-04-01"

    with time_machine.travel(datetime(2024, 4, 1, 0, 5, tzinfo=UTC), tick=False):
        subscription_activate_pending_task.delay()
    current = status_of("life", datetime(2024, 4, 2, tzinfo=UTC))
    assert (current["plan_code"], current["previous_plan_code"]) == ("basic", "premium")

    with time_machine.travel(datetime(2024, 4, 5, tzinfo=UTC), tick=False):
        ended = api.delete("/api/v1/subscriptions/life").json()["subscription"]
    assert (ended["status"], ended["terminated_at"]) == ("terminated", "2024-04-05T00:00:00Z")
    history = get(
        api, "/api/v1/customers/cust_1/subscriptions", at=datetime(2024, 4, 5, tzinfo=UTC),
        **{"status[]": ["terminated"]},
    ).json()["subscriptions"]  # fmt: skip
    assert sorted(s["plan_code"] for s in history) == ["basic", "basic", "premium"]


def test_list_filters_by_currency_and_billing_entity(api, organization):
    from tests.customers.factories import SubscriptionFactory
    from tests.plans.factories import PlanFactory

    eur = SubscriptionFactory(organization=organization, external_id="eur_sub")
    usd_plan = PlanFactory(organization=organization, amount_currency="USD")
    SubscriptionFactory(
        organization=organization, external_id="usd_sub", plan=usd_plan,
        customer__currency="USD",
    )  # fmt: skip
    by_currency = api.get("/api/v1/subscriptions?currency=USD").json()["subscriptions"]
    assert [s["external_id"] for s in by_currency] == ["usd_sub"]
    by_entity = api.get("/api/v1/subscriptions?billing_entity_codes[]=default").json()
    assert {s["external_id"] for s in by_entity["subscriptions"]} == {"eur_sub", "usd_sub"}
    assert eur.customer.billing_entity.code == "default"
    none = api.get("/api/v1/subscriptions?billing_entity_codes[]=elsewhere").json()
    assert none["subscriptions"] == []
