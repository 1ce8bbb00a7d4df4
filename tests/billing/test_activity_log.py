"""The activity log: every create, update and delete of a business object with its actor, the
object after the change and the changed fields; `/activity_logs` with Lago's filters."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from billing.activity import REDACTED, record_activity, redact, snapshot
from billing.actors import SYSTEM, Actor
from billing.models import ActivityLog
from billing.outbox import emit
from customers.services.customers import customer_create, customer_update
from plans.models import AddOn
from tests.customers.factories import SubscriptionFactory
from tests.plans.factories import AddOnFactory

pytestmark = pytest.mark.django_db


def _create_customer(api, external_id: str, name: str = "Jane"):
    response = api.post(
        "/api/v1/customers",
        {"customer": {"external_id": external_id, "name": name, "currency": "EUR"}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    return response


@pytest.fixture
def staff(organization):
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "s3cret-pass")
    return user


# --- who did it, what changed ----------------------------------------------------------------


def test_api_creation_is_logged_with_the_api_key_and_the_fields_it_set(api, api_key):
    _create_customer(api, "c1")

    entry = ActivityLog.objects.get(activity_type="customer.created")
    assert entry.activity_source == "api"
    assert entry.api_key_id == api_key[0].pk
    assert entry.user_email is None
    assert entry.resource_type == "customer"
    assert entry.external_customer_id == "c1"
    assert entry.activity_object["external_id"] == "c1"
    assert entry.activity_object_changes["external_id"] == [None, "c1"]
    assert entry.activity_object_changes["name"] == [None, "Jane"]


def test_api_update_logs_only_the_fields_that_changed(api):
    _create_customer(api, "c1", name="Jane")
    _create_customer(api, "c1", name="Janet")  # Lago's POST /customers updates an existing one

    entry = ActivityLog.objects.get(activity_type="customer.updated")
    assert entry.activity_object_changes == {"name": ["Jane", "Janet"]}
    assert entry.activity_object["name"] == "Janet"


def test_a_service_saving_twice_in_one_request_logs_one_entry(api):
    _create_customer(api, "c1")

    request_ids = ActivityLog.objects.filter(resource_type="customer").values_list(
        "request_id", flat=True
    )
    assert len(request_ids) == len(set(request_ids)) == 1


def test_dashboard_addition_through_a_service_without_webhook_is_logged_for_the_staff_user(
    client, staff, organization
):
    client.force_login(staff)
    response = client.post(
        "/admin/plans/addon/add/",
        {
            "organization": organization.pk,
            "name": "Setup",
            "code": "setup",
            "amount": "10.00",
            "amount_currency": "EUR",
            "invoice_display_name": "",
            "description": "",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors

    add_on = AddOn.objects.get(code="setup")
    entry = ActivityLog.objects.get()
    assert (entry.activity_type, entry.activity_source) == ("add_on.created", "front")
    assert entry.user_email == "boss@example.com"
    assert entry.resource_id == str(add_on.pk)
    assert entry.activity_object_changes["amount_cents"] == [None, 1000]


def test_dashboard_deletion_is_logged_once_with_the_staff_user(client, staff, organization):
    add_on = AddOnFactory(organization=organization)
    client.force_login(staff)

    response = client.post(f"/admin/plans/addon/{add_on.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    entry = ActivityLog.objects.get()
    assert (entry.activity_type, entry.activity_source) == ("add_on.deleted", "front")
    assert entry.user_email == "boss@example.com"
    assert entry.activity_object["code"] == add_on.code


def test_dashboard_edit_without_a_service_is_logged_with_the_changed_field(
    client, staff, organization
):
    client.force_login(staff)
    page = client.get(f"/admin/billing/organization/{organization.pk}/change/")
    form = page.context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if name in form.fields and value is not None and not isinstance(value, list)
    }
    data.update(audit_logs_retention_days="30", email_settings="[]")
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name, value in management.initial.items():
            data[f"{management.prefix}-{name}"] = value
        for index, inline_form in enumerate(formset.formset.forms):
            data[f"{formset.formset.prefix}-{index}-id"] = inline_form.instance.pk
            for name, value in inline_form.initial.items():
                if value is not None:
                    data[f"{formset.formset.prefix}-{index}-{name}"] = getattr(value, "pk", value)
    data = {k: ("on" if v is True else v) for k, v in data.items() if v is not False}

    response = client.post(f"/admin/billing/organization/{organization.pk}/change/", data)

    assert response.status_code == 302, [
        f.formset.errors for f in response.context["inline_admin_formsets"]
    ]
    entry = ActivityLog.objects.get(activity_type="organization.updated")
    assert entry.activity_source == "front"
    assert entry.activity_object_changes["audit_logs_retention_days"] == [90, 30]


def test_scheduled_job_change_is_logged_as_the_system(organization):
    SubscriptionFactory(
        organization=organization,
        external_id="sub_1",
        ending_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    )

    call_command("jobs", "run", "terminate_ended_subscriptions")

    entry = ActivityLog.objects.get(activity_type="subscription.terminated")
    assert entry.activity_source == "system"
    assert entry.user_email is None
    assert entry.api_key_id is None
    assert entry.external_subscription_id == "sub_1"
    assert entry.activity_object_changes["status"] == ["active", "terminated"]


def test_a_notification_event_is_no_activity(organization):
    customer = customer_create(
        organization=organization, values={"external_id": "c1"}, actor=SYSTEM
    )

    emit(event_type="customer.checkout_url_generated", actor=SYSTEM, obj=customer, payload={})

    assert list(ActivityLog.objects.values_list("activity_type", flat=True)) == ["customer.created"]


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_are_redacted_wherever_they_are_nested():
    body = {
        "webhook_secret": "whsec_1",
        "provider": {"secret_key": "sk_live_1", "code": "stripe"},
        "keys": [{"api_key": "lago_abc", "api_key_id": "k1"}],
        "password": "hunter2",
        "encrypted_secret_key": "gAAAA...",
        "private_key_pem": "-----BEGIN",
    }

    assert redact(body) == {
        "encrypted_secret_key": REDACTED,
        "private_key_pem": REDACTED,
        "webhook_secret": REDACTED,
        "provider": {"secret_key": REDACTED, "code": "stripe"},
        "keys": [{"api_key": REDACTED, "api_key_id": "k1"}],
        "password": REDACTED,
    }


def test_the_object_after_a_change_never_holds_the_organization_webhook_secret(organization):
    organization.webhook_secret = "s3cr3t-signing-key"
    organization.save()

    record_activity(activity_type="organization.updated", actor=SYSTEM, obj=organization)

    entry = ActivityLog.objects.get()
    assert snapshot(organization)["webhook_secret"] == REDACTED
    assert "s3cr3t-signing-key" not in str(entry.activity_object)
    assert "s3cr3t-signing-key" not in str(entry.activity_object_changes)


# --- GET /activity_logs ----------------------------------------------------------------------


def test_list_answers_lago_objects_newest_first_with_pagination_meta(api, organization):
    ActivityLog.objects.all().delete()  # the API key's own creation aside
    customer_create(organization=organization, values={"external_id": "c1"}, actor=SYSTEM)
    customer_create(organization=organization, values={"external_id": "c2"}, actor=SYSTEM)

    body = api.get("/api/v1/activity_logs", {"per_page": 1}).json()

    assert [e["external_customer_id"] for e in body["activity_logs"]] == ["c2"]
    assert body["meta"] == {
        "current_page": 1, "next_page": 2, "prev_page": None, "total_pages": 2, "total_count": 2,
    }  # fmt: skip
    entry = body["activity_logs"][0]
    assert set(entry) == {
        "activity_id", "user_email", "activity_type", "activity_source", "activity_object",
        "activity_object_changes", "external_customer_id", "external_subscription_id",
        "resource_id", "resource_type", "organization_id", "api_key_id", "logged_at",
        "created_at",
    }  # fmt: skip
    assert entry["organization_id"] == str(organization.pk)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"activity_types[]": "customer.updated"}, ["c1:customer.updated"], id="type"),
        pytest.param(
            {"activity_sources[]": ["front", "api"]}, ["c1:customer.updated"], id="sources"
        ),
        pytest.param(
            {"user_emails[]": "boss@example.com"}, ["c1:customer.updated"], id="user-email"
        ),
        pytest.param(
            {"external_customer_id": "c2"}, ["c2:customer.created"], id="external-customer"
        ),
        pytest.param(
            {"resource_types[]": "customer", "activity_types[]": "customer.created"},
            ["c2:customer.created", "c1:customer.created"],
            id="resource-type",
        ),
        pytest.param({"from_date": "2100-01-01"}, [], id="from-date"),
        pytest.param(
            {"to_date": "2000-01-01", "activity_types[]": "customer.created"}, [], id="to-date"
        ),
    ],
)
def test_list_filters(api, organization, staff, params, expected):
    c1 = customer_create(organization=organization, values={"external_id": "c1"}, actor=SYSTEM)
    customer_create(organization=organization, values={"external_id": "c2"}, actor=SYSTEM)
    customer_update(customer=c1, values={"name": "Renamed"}, actor=Actor.for_user(staff))

    body = api.get("/api/v1/activity_logs", params).json()

    assert [
        f"{e['external_customer_id']}:{e['activity_type']}" for e in body["activity_logs"]
    ] == expected


def test_resource_ids_filter(api, organization):
    c1 = customer_create(organization=organization, values={"external_id": "c1"}, actor=SYSTEM)
    customer_create(organization=organization, values={"external_id": "c2"}, actor=SYSTEM)

    body = api.get("/api/v1/activity_logs", {"resource_ids[]": str(c1.pk)}).json()

    assert [e["resource_id"] for e in body["activity_logs"]] == [str(c1.pk)]


def test_one_entry_by_its_activity_id(api, organization):
    customer_create(organization=organization, values={"external_id": "c1"}, actor=SYSTEM)
    entry = ActivityLog.objects.get(resource_type="customer")

    response = api.get(f"/api/v1/activity_logs/{entry.activity_id}")

    assert response.status_code == 200
    assert response.json()["activity_log"]["activity_id"] == str(entry.activity_id)


@pytest.mark.parametrize("activity_id", ["not-a-uuid", "6f1f1b0e-1111-4111-8111-111111111111"])
def test_an_unknown_activity_is_a_404(api, activity_id):
    response = api.get(f"/api/v1/activity_logs/{activity_id}")

    assert response.status_code == 404
    assert response.json()["code"] == "activity_log_not_found"


def test_another_organizations_activity_is_never_visible(api, other_api, organization):
    ActivityLog.objects.all().delete()  # the API keys' own creation aside
    customer_create(organization=organization, values={"external_id": "c1"}, actor=SYSTEM)
    entry = ActivityLog.objects.get()

    assert other_api.get(f"/api/v1/activity_logs/{entry.activity_id}").status_code == 404
    assert other_api.get("/api/v1/activity_logs").json()["activity_logs"] == []
    assert api.get("/api/v1/activity_logs").json()["meta"]["total_count"] == 1


def test_a_key_without_the_activity_log_permission_is_refused(organization):
    from billing.services import api_key_create
    from tests.conftest import client_for

    _key, raw = api_key_create(
        organization=organization, name="limited", permissions={"customer": ["read"]}
    )

    assert client_for(raw).get("/api/v1/activity_logs").status_code == 403


@pytest.mark.django_db(transaction=True)
def test_lago_client_reads_the_activity_log(lago, organization):
    customer_create(organization=organization, values={"external_id": "c1"}, actor=SYSTEM)

    listed = lago.activity_logs.find_all({"activity_types[]": "customer.created"})
    found = lago.activity_logs.find(listed["activity_logs"][0].activity_id)

    assert found.activity_type == "customer.created"
    assert found.external_customer_id == "c1"
    assert found.activity_source == "system"


def test_a_wallets_activity_names_its_customer(organization):
    from tests.wallets.factories import WalletFactory

    wallet = WalletFactory(organization=organization)

    entry = record_activity(activity_type="wallet.updated", actor=SYSTEM, obj=wallet)

    assert entry.external_customer_id == wallet.customer.external_id
    assert entry.external_subscription_id is None


def test_a_subscriptions_activity_names_it_and_its_customer(organization):
    subscription = SubscriptionFactory(organization=organization, external_id="sub_9")

    entry = record_activity(activity_type="subscription.updated", actor=SYSTEM, obj=subscription)

    assert entry.external_subscription_id == "sub_9"
    assert entry.external_customer_id == subscription.customer.external_id
