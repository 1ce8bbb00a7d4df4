"""`POST /invoices/preview` answers as Lago's V1::InvoiceSerializer with the preview includes
(`preview_subscriptions`: V1::SubscriptionSerializer, `credits`: V1::CreditSerializer) and
Invoices::PreviewService's unsaved invoice stamped with the current time."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from tests.customers.factories import SubscriptionFactory
from tests.plans.factories import CouponFactory, PlanFactory

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def preview(api, payload):
    with time_machine.travel(NOW, tick=False):
        response = api.post("/api/v1/invoices/preview", payload, format="json")
    assert response.status_code == 200, response.json()
    return response.json()["invoice"]


def new_subscription_preview(api, organization, **extra):
    PlanFactory(organization=organization, code="pro", amount_cents=9900, pay_in_advance=True)
    payload = {"customer": {"name": "Prospect", "currency": "EUR"}, "plan_code": "pro", **extra}
    return preview(api, payload)


def test_preview_invoice_is_stamped_with_the_current_time(api, organization):
    body = new_subscription_preview(api, organization)
    assert (body["created_at"], body["updated_at"]) == (
        "2026-03-10T12:00:00Z",
        "2026-03-10T12:00:00Z",
    )


def test_preview_subscriptions_are_whole_subscription_objects(api, organization):
    SubscriptionFactory(organization=organization, external_id="sub_1")
    answered = api.get("/api/v1/subscriptions/sub_1").json()["subscription"]
    customer = answered["external_customer_id"]
    body = preview(
        api, {"customer": {"external_id": customer}, "subscriptions": {"external_ids": ["sub_1"]}}
    )
    [subscription] = body["subscriptions"]
    # V1::SubscriptionSerializer adds `applicable_usage_thresholds` only when a single
    # subscription is shown, created or updated; an invoice's subscriptions go without it
    assert set(subscription) == set(answered) - {"applicable_usage_thresholds"}
    assert subscription["lago_id"] == answered["lago_id"]
    assert subscription["created_at"] == answered["created_at"]


def test_a_previewed_new_subscription_is_created_at_its_start(api, organization):
    # Invoices::Preview::BuildSubscriptionService: created_at = subscription_at or now.
    body = new_subscription_preview(api, organization, subscription_at="2026-03-01T00:00:00Z")
    [subscription] = body["subscriptions"]
    assert subscription["created_at"] == "2026-03-01T00:00:00Z"
    assert subscription["plan_code"] == "pro"
    assert "current_billing_period_started_at" in subscription


def test_preview_credit_of_a_known_coupon_names_it(api, organization):
    # PreviewContextService takes the organization's coupon of that code; V1::CreditSerializer
    # answers its id, code and name.
    coupon = CouponFactory(organization=organization, code="ten", name="Ten off")
    body = new_subscription_preview(
        api, organization, coupons=[{"code": "ten", "coupon_type": "fixed_amount",
                                     "amount_cents": 1000, "amount_currency": "EUR"}]
    )  # fmt: skip
    [credit] = body["credits"]
    assert credit["item"] == {
        "lago_item_id": str(coupon.pk),
        "type": "coupon",
        "code": "ten",
        "name": "Ten off",
    }


def test_preview_credit_of_an_ad_hoc_coupon_carries_the_given_code_and_name(api, organization):
    # An unknown code is a `Coupon.new` of the request's attributes: no id yet.
    body = new_subscription_preview(
        api, organization, coupons=[{"code": "adhoc", "name": "Ad hoc", "coupon_type":
                                     "fixed_amount", "amount_cents": 500, "amount_currency": "EUR"}]
    )  # fmt: skip
    [credit] = body["credits"]
    assert credit["item"] == {"lago_item_id": None, "type": "coupon", "code": "adhoc",
                              "name": "Ad hoc"}  # fmt: skip


def test_preview_credit_of_a_customers_applied_coupon_names_it(api, organization):
    from tests.invoicing.invoice_builders import apply_coupon

    subscription = SubscriptionFactory(organization=organization, external_id="sub_1")
    subscription.plan.amount_cents = 5000
    subscription.plan.save()
    applied = apply_coupon(organization, subscription.customer, amount_cents=700)
    coupon = applied.coupon
    body = preview(
        api,
        {
            "customer": {"external_id": subscription.customer.external_id},
            "subscriptions": {"external_ids": ["sub_1"]},
        },
    )
    [credit] = body["credits"]
    assert credit["item"] == {
        "lago_item_id": str(coupon.pk),
        "type": "coupon",
        "code": coupon.code,
        "name": coupon.name,
    }


def test_preview_accepts_the_nulls_the_official_client_sends(api, organization):
    # lago-python-client sends every absent key as null; Lago's controller tests
    # `preview_params[:coupons] && ...` and BuildSubscriptionService defaults the billing time.
    # (The client itself cannot read the answer: its InvoiceResponse requires a `lago_id`, which
    # Lago's unsaved preview invoice does not have either.)
    PlanFactory(organization=organization, code="pro", amount_cents=9900, pay_in_advance=True)
    payload = {
        "customer": {"name": "Prospect", "currency": "EUR"},
        "plan_code": "pro",
        "billing_time": None,
        "subscription_at": None,
        "coupons": None,
        "subscriptions": None,
        "billing_entity_code": None,
    }
    body = preview(api, payload)
    assert body["subscriptions"][0]["billing_time"] == "calendar"
