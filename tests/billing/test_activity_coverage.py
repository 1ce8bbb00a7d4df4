"""The activity log covers every business object a user changes (API, dashboard, job), and
renders the object after the change as the API answers it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from billing.actors import SYSTEM
from billing.models import ActivityLog
from billing.services import membership_set
from customers.services.payment_methods import payment_method_record_from_provider
from invoicing.models import DunningCampaign
from tests.invoicing.test_fees_api import invoiceless_fee
from tests.metering.monitoring.helpers import calls_billing
from tests.plans.factories import CouponFactory, PlanFactory
from tests.wallets.factories import WalletFactory
from wallets.services.alerts import alert_create, alert_delete

pytestmark = pytest.mark.django_db


def _only(activity_type: str) -> ActivityLog:
    return ActivityLog.objects.get(activity_type=activity_type)


# --- the object after the change, as the API answers it ---------------------------------------


def test_a_customer_created_through_the_api_is_logged_as_the_api_renders_it(api):
    response = api.post(
        "/api/v1/customers",
        {"customer": {"external_id": "c1", "name": "Jane", "currency": "EUR"}},
        format="json",
    )

    assert response.status_code == 200
    assert _only("customer.created").activity_object == response.json()["customer"]


def test_the_activity_list_answers_the_rendered_object(api):
    api.post("/api/v1/customers", {"customer": {"external_id": "c1"}}, format="json")

    entry = api.get("/api/v1/activity_logs").json()["activity_logs"][0]

    shown = api.get("/api/v1/customers/c1").json()["customer"]
    assert entry["activity_object"] == shown


def test_an_object_without_an_api_rendering_keeps_its_columns(organization):
    from billing.activity import record_activity

    entry = record_activity(activity_type="organization.updated", actor=SYSTEM, obj=organization)

    assert entry.activity_object["name"] == "Acme"
    assert entry.activity_object["lago_id"] == str(organization.pk)


# --- API --------------------------------------------------------------------------------------


def test_api_fee_payment_status_update_is_logged_with_the_changed_fields(
    api, api_key, organization
):
    fee = invoiceless_fee(organization)

    api.put(f"/api/v1/fees/{fee.pk}", {"fee": {"payment_status": "succeeded"}}, format="json")

    entry = _only("fee.updated")
    assert (entry.activity_source, entry.api_key_id) == ("api", api_key[0].pk)
    assert entry.activity_object_changes["payment_status"] == ["pending", "succeeded"]
    assert entry.activity_object == api.get(f"/api/v1/fees/{fee.pk}").json()["fee"]


def test_api_fee_deletion_is_logged(api, organization):
    fee = invoiceless_fee(organization)

    api.delete(f"/api/v1/fees/{fee.pk}")

    entry = _only("fee.deleted")
    assert entry.resource_id == str(fee.pk)
    assert entry.activity_object_changes["deleted_at"][0] is None


def test_api_metadata_only_customer_edit_names_the_metadata(api):
    api.post("/api/v1/customers", {"customer": {"external_id": "c1"}}, format="json")

    api.post(
        "/api/v1/customers",
        {"customer": {"external_id": "c1", "metadata": [{"key": "crm", "value": "42"}]}},
        format="json",
    )

    entry = _only("customer.updated")
    assert entry.activity_object_changes == {
        "metadata": [None, [{"key": "crm", "value": "42", "display_in_invoice": False}]]
    }


def test_api_plan_metadata_merge_is_logged(api, organization):
    PlanFactory(organization=organization, code="pro", metadata={"tier": "1"})

    response = api.patch("/api/v1/plans/pro/metadata", {"metadata": {"tier": "2"}}, format="json")

    assert response.status_code == 200, response.json()
    entry = _only("plan.updated")
    assert entry.activity_object_changes == {"metadata": [{"tier": "1"}, {"tier": "2"}]}


def test_api_usage_alert_create_update_and_delete_are_logged(api, organization):
    calls_billing(api, organization)
    url = "/api/v1/subscriptions/sub_1/alerts"
    created = api.post(
        url,
        {"alert": {"alert_type": "current_usage_amount", "code": "usage",
                   "thresholds": [{"value": 1000}]}},
        format="json",
    )  # fmt: skip
    api.put(f"{url}/usage", {"alert": {"name": "Spend"}}, format="json")
    api.delete(f"{url}/usage")

    logged = ActivityLog.objects.filter(resource_type="usage_alert").order_by("id")
    assert [e.activity_type for e in logged] == [
        "usage_alert.created",
        "usage_alert.updated",
        "usage_alert.deleted",
    ]
    assert logged[0].activity_object == created.json()["alert"]
    assert logged[0].external_subscription_id == "sub_1"
    assert logged[1].activity_object_changes == {"name": ["", "Spend"]}


def test_a_wallet_alert_is_logged_from_creation_to_deletion(organization):
    wallet = WalletFactory(organization=organization)
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

    alert = alert_create(
        wallet=wallet,
        values={
            "alert_type": "wallet_balance_amount",
            "code": "low",
            "thresholds": [{"value": 10}],
        },
        actor=SYSTEM,
        now=now,
    )
    alert_delete(alert=alert, actor=SYSTEM)

    logged = ActivityLog.objects.filter(resource_type="wallet_alert").order_by("id")
    assert [e.activity_type for e in logged] == ["wallet_alert.created", "wallet_alert.deleted"]
    assert logged[0].activity_object["wallet_code"] == wallet.code
    assert logged[0].external_customer_id == wallet.customer.external_id


def test_a_payment_method_recorded_from_the_provider_is_logged(organization):
    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(organization=organization)

    payment_method_record_from_provider(
        customer=customer,
        payment_provider_type="stripe",
        payment_provider_code="stripe_eu",
        provider_customer_id="cus_1",
        provider_method_id="pm_1",
        provider_method_type="card",
        details={"brand": "visa", "last4": "4242"},
        actor=SYSTEM,
    )

    entry = _only("payment_method.created")
    assert entry.activity_object["provider_method_id"] == "pm_1"
    assert entry.activity_object["is_default"] is True
    assert entry.external_customer_id == customer.external_id


# --- dashboard --------------------------------------------------------------------------------


def test_dashboard_dunning_campaign_creation_is_logged_with_its_thresholds(client, organization):
    user = get_user_model().objects.create_user(
        "mgr", "mgr@example.com", "pw-123456", is_staff=True
    )
    membership_set(organization=organization, user=user, role="manager")
    client.force_login(user)

    response = client.post(
        "/admin/invoicing/dunningcampaign/add/",
        {
            "organization": organization.pk,
            "name": "Gentle",
            "code": "gentle",
            "description": "",
            "max_attempts": 3,
            "days_between_attempts": 5,
            "bcc_emails_text": "",
            "thresholds-TOTAL_FORMS": 1,
            "thresholds-INITIAL_FORMS": 0,
            "thresholds-0-currency": "EUR",
            "thresholds-0-amount_cents": 10000,
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = DunningCampaign.objects.get()
    entry = _only("dunning_campaign.created")
    assert (entry.activity_source, entry.user_email) == ("front", "mgr@example.com")
    assert entry.resource_id == str(campaign.pk)
    assert entry.activity_object_changes["thresholds"] == [
        None,
        [{"currency": "EUR", "amount_cents": 10000}],
    ]


# --- job --------------------------------------------------------------------------------------


def test_the_expired_coupons_job_logs_the_coupon_as_the_api_renders_it(api, organization):
    coupon = CouponFactory(
        organization=organization,
        code="spring",
        expiration="time_limit",
        expiration_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )

    call_command("jobs", "run", "terminate_expired_coupons")

    entry = _only("coupon.terminated")
    assert (entry.activity_source, entry.api_key_id, entry.user_email) == ("system", None, None)
    assert entry.activity_object_changes["status"] == ["active", "terminated"]
    assert entry.activity_object == api.get(f"/api/v1/coupons/{coupon.code}").json()["coupon"]
