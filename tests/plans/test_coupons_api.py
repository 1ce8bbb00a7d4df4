"""`/coupons` (spec §15.1): kinds, frequencies, expiration, limitations, termination."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from billing.actors import SYSTEM
from customers.models import AppliedCoupon
from plans.models import Coupon
from plans.services.coupons import coupon_terminate_expired
from plans.tasks import terminate_expired_coupons_task
from tests.customers.factories import CustomerFactory
from tests.plans.factories import BillableMetricFactory, CouponFactory, PlanFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/coupons"


def iso(instant):
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fixed(**fields):
    return {"name": "Startup deal", "code": "startup", "coupon_type": "fixed_amount",
            "amount_cents": 5000, "amount_currency": "EUR", "frequency": "once",
            "expiration": "no_expiration", **fields}  # fmt: skip


def percentage(**fields):
    return {"name": "Ten off", "code": "ten", "coupon_type": "percentage",
            "percentage_rate": "10", "frequency": "recurring", "frequency_duration": 3,
            "expiration": "no_expiration", **fields}  # fmt: skip


def create(api, payload):
    return api.post(URL, {"coupon": payload}, format="json")


def errors_of(response):
    assert response.status_code == 422, response.json()
    return response.json()["error_details"]


def in_days(days):
    return (timezone.now() + timedelta(days=days)).replace(microsecond=0)


def test_fixed_amount_coupon_renders_the_whole_lago_object(api, organization):
    plan = PlanFactory(organization=organization, code="startup_plan")
    expires = in_days(30)
    response = create(
        api,
        fixed(description="For startups", reusable=False, expiration="time_limit",
              expiration_at=expires.isoformat(), applies_to={"plan_codes": ["startup_plan"]}),
    )  # fmt: skip
    assert response.status_code == 200
    coupon = Coupon.objects.get(organization=organization, code="startup")
    assert response.json() == {
        "coupon": {
            "lago_id": str(coupon.id),
            "name": "Startup deal",
            "code": "startup",
            "description": "For startups",
            "coupon_type": "fixed_amount",
            "amount_cents": 5000,
            "amount_currency": "EUR",
            "percentage_rate": None,
            "frequency": "once",
            "frequency_duration": None,
            "reusable": False,
            "limited_plans": True,
            "limited_billable_metrics": False,
            "plan_codes": ["startup_plan"],
            "billable_metric_codes": [],
            "created_at": iso(coupon.created_at),
            "expiration": "time_limit",
            "expiration_at": iso(expires),
            "terminated_at": None,
        }
    }
    assert list(coupon.plans.all()) == [plan]


def test_percentage_coupon_renders_its_rate_as_lago_does(api, organization):
    body = create(api, percentage(percentage_rate=12.5)).json()["coupon"]
    assert (body["coupon_type"], body["percentage_rate"], body["amount_cents"]) == (
        "percentage",
        "12.5",
        None,
    )
    assert (body["frequency"], body["frequency_duration"]) == ("recurring", 3)
    assert Coupon.objects.get(code="ten").percentage_rate == Decimal("12.5")


def test_forever_coupon_needs_no_duration(api):
    body = create(api, percentage(frequency="forever", frequency_duration=None)).json()
    assert (body["coupon"]["frequency"], body["coupon"]["frequency_duration"]) == (
        "forever",
        None,
    )


def test_coupon_is_reusable_by_default(api):
    payload = fixed()
    payload.pop("expiration")
    body = create(api, payload).json()["coupon"]
    assert (body["reusable"], body["expiration"]) == (True, "no_expiration")


def test_coupon_limited_to_billable_metrics(api, organization):
    BillableMetricFactory(organization=organization, code="calls")
    body = create(api, fixed(applies_to={"billable_metric_codes": ["calls"]})).json()["coupon"]
    assert (body["limited_billable_metrics"], body["billable_metric_codes"]) == (True, ["calls"])
    assert (body["limited_plans"], body["plan_codes"]) == (False, [])


def test_both_limitation_kinds_are_not_allowed(api, organization):
    PlanFactory(organization=organization, code="p")
    BillableMetricFactory(organization=organization, code="m")
    response = create(api, fixed(applies_to={"plan_codes": ["p"], "billable_metric_codes": ["m"]}))
    assert response.status_code == 405
    assert response.json() == {
        "status": 405,
        "error": "Method Not Allowed",
        "code": "only_one_limitation_type_per_coupon_allowed",
    }
    assert not Coupon.objects.filter(organization=organization).exists()


def test_unknown_plan_code_is_404(api, organization, other_organization):
    PlanFactory(organization=other_organization, code="p")
    response = create(api, fixed(applies_to={"plan_codes": ["p"]}))
    assert response.status_code == 404
    assert response.json()["code"] == "plans_not_found"


def test_unknown_billable_metric_code_is_404(api):
    response = create(api, fixed(applies_to={"billable_metric_codes": ["nope"]}))
    assert response.status_code == 404
    assert response.json()["code"] == "billable_metrics_not_found"


@pytest.mark.parametrize(
    ("payload", "details"),
    [
        pytest.param(fixed(amount_cents=None), {"amount_cents": ["value_is_mandatory"]},
                     id="fixed-needs-amount"),
        pytest.param(fixed(amount_cents=0), {"amount_cents": ["value_is_invalid"]},
                     id="fixed-amount-positive"),
        pytest.param(fixed(amount_currency=None), {"amount_currency": ["value_is_mandatory"]},
                     id="fixed-needs-currency"),
        pytest.param(fixed(amount_currency="ABC"), {"amount_currency": ["value_is_invalid"]},
                     id="fixed-known-currency"),
        pytest.param(percentage(percentage_rate=None), {"percentage_rate": ["value_is_mandatory"]},
                     id="percentage-needs-rate"),
        pytest.param(percentage(frequency_duration=None),
                     {"frequency_duration": ["value_is_mandatory"]}, id="recurring-needs-duration"),
        pytest.param(percentage(frequency_duration=0),
                     {"frequency_duration": ["value_is_invalid"]}, id="duration-positive"),
        pytest.param(fixed(expiration="time_limit"), {"expiration_at": ["value_is_mandatory"]},
                     id="time-limit-needs-date"),
        pytest.param(fixed(expiration="time_limit", expiration_at="2020-01-01T00:00:00Z"),
                     {"expiration_at": ["invalid_date"]}, id="time-limit-in-the-past"),
        pytest.param(fixed(coupon_type="gift"), {"coupon_type": ["value_is_invalid"]},
                     id="unknown-type"),
        pytest.param(fixed(frequency="daily"), {"frequency": ["value_is_invalid"]},
                     id="unknown-frequency"),
        pytest.param(fixed(name=""), {"name": ["value_is_mandatory"]}, id="name"),
        pytest.param(fixed(code=""), {"code": ["value_is_mandatory"]}, id="code"),
    ],
)  # fmt: skip
def test_invalid_coupon_is_refused(api, payload, details):
    assert errors_of(create(api, payload)) == details


def test_expiration_later_today_is_accepted(api):
    end_of_day = timezone.now().replace(hour=23, minute=59, second=59, microsecond=0)
    response = create(api, fixed(expiration="time_limit", expiration_at=end_of_day.isoformat()))
    assert response.status_code == 200


def test_code_must_be_unique_among_live_coupons(api):
    create(api, fixed())
    assert errors_of(create(api, fixed())) == {"code": ["value_already_exist"]}
    api.delete(f"{URL}/startup")
    assert create(api, fixed()).status_code == 200


def test_update_changes_only_given_fields(api):
    create(api, fixed())
    body = api.put(f"{URL}/startup", {"coupon": {"amount_cents": 700}}, format="json").json()
    assert (body["coupon"]["amount_cents"], body["coupon"]["name"]) == (700, "Startup deal")


def test_update_switches_the_limitation_kind(api, organization):
    PlanFactory(organization=organization, code="p")
    BillableMetricFactory(organization=organization, code="m")
    create(api, fixed(applies_to={"plan_codes": ["p"]}))
    body = api.put(
        f"{URL}/startup",
        {"coupon": {"applies_to": {"billable_metric_codes": ["m"]}}},
        format="json",
    ).json()["coupon"]
    assert (body["limited_plans"], body["plan_codes"]) == (False, [])
    assert (body["limited_billable_metrics"], body["billable_metric_codes"]) == (True, ["m"])


def test_applied_coupon_keeps_its_terms(api, organization):
    create(api, fixed())
    coupon = Coupon.objects.get(code="startup")
    AppliedCoupon.objects.create(
        organization=organization,
        coupon=coupon,
        customer=CustomerFactory(organization=organization),
        amount_cents=5000,
        amount_currency="EUR",
        frequency="once",
    )
    expires = in_days(10)
    body = api.put(
        f"{URL}/startup",
        {"coupon": {"name": "Renamed", "amount_cents": 1, "expiration": "time_limit",
                    "expiration_at": expires.isoformat()}},
        format="json",
    ).json()["coupon"]  # fmt: skip
    assert (body["name"], body["amount_cents"], body["expiration_at"]) == (
        "Renamed",
        5000,
        iso(expires),
    )


def test_delete_is_a_soft_delete(api, organization):
    create(api, fixed())
    response = api.delete(f"{URL}/startup")
    assert response.status_code == 200
    assert response.json()["coupon"]["code"] == "startup"
    assert Coupon.objects.get(code="startup").deleted_at is not None
    assert api.get(f"{URL}/startup").status_code == 404


def test_list_is_paginated_newest_first(api, organization, django_assert_max_num_queries):
    for n in range(3):
        CouponFactory(organization=organization, code=f"c{n}").plans.add(
            PlanFactory(organization=organization)
        )
    with django_assert_max_num_queries(8):
        body = api.get(URL, {"per_page": 2}).json()
    assert [c["code"] for c in body["coupons"]] == ["c2", "c1"]
    assert body["meta"]["total_count"] == 3


def test_other_tenant_coupon_is_404(api, other_api):
    create(api, fixed())
    response = other_api.get(f"{URL}/startup")
    assert response.status_code == 404
    assert response.json()["code"] == "coupon_not_found"
    assert other_api.delete(f"{URL}/startup").status_code == 404


# --- termination (spec §15.1, §27) -------------------------------------------------------------

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)


def time_limited(organization, code, expiration_at):
    return CouponFactory(
        organization=organization, code=code, expiration="time_limit", expiration_at=expiration_at
    )


def test_expired_coupons_are_terminated(organization):
    expired = time_limited(organization, "old", NOW - timedelta(minutes=1))
    terminated = coupon_terminate_expired(actor=SYSTEM, now=NOW)
    expired.refresh_from_db()
    assert terminated == [expired]
    assert (expired.status, expired.terminated_at) == ("terminated", NOW)


def test_coupons_not_yet_expired_stay_active(organization):
    later = time_limited(organization, "later", NOW + timedelta(minutes=1))
    forever = CouponFactory(organization=organization, code="forever")
    coupon_terminate_expired(actor=SYSTEM, now=NOW)
    later.refresh_from_db()
    forever.refresh_from_db()
    assert (later.status, forever.status) == ("active", "active")


def test_termination_runs_twice_harmlessly(organization):
    time_limited(organization, "old", NOW - timedelta(days=1))
    coupon_terminate_expired(actor=SYSTEM, now=NOW)
    assert coupon_terminate_expired(actor=SYSTEM, now=NOW + timedelta(hours=1)) == []
    assert Coupon.objects.get(code="old").terminated_at == NOW


def test_terminated_coupon_shows_terminated_at(api, organization):
    time_limited(organization, "old", NOW - timedelta(days=1))
    coupon_terminate_expired(actor=SYSTEM, now=NOW)
    assert api.get(f"{URL}/old").json()["coupon"]["terminated_at"] == "2026-03-10T12:30:00Z"


def test_task_terminates_expired_coupons(organization):
    time_limited(organization, "old", timezone.now() - timedelta(days=1))
    assert terminate_expired_coupons_task.delay().get() == 1
    assert Coupon.objects.get(code="old").status == "terminated"


def test_command_dry_run_changes_nothing(organization, capsys):
    time_limited(organization, "old", timezone.now() - timedelta(days=1))
    call_command("terminate_expired_coupons", "--dry-run")
    assert "1 coupon(s) would be terminated" in capsys.readouterr().out
    assert Coupon.objects.get(code="old").status == "active"
