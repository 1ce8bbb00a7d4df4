"""The activity log's coverage of API keys, staff memberships, billing-entity taxes,
entitlements and charge filters: each through the API, the dashboard and the commands, with its
actor and changed fields; an API key's value is never stored."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from billing.models import ActivityLog, ApiKey, Membership
from billing.roles import ensure_role_groups
from billing.services import api_key_create, audit_logs_purge, membership_set
from tests.plans.factories import BillableMetricFactory, ChargeFactory, PlanFactory, TaxFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def role_groups(db):
    ensure_role_groups()


def _only(activity_type: str, **filters) -> ActivityLog:
    return ActivityLog.objects.get(activity_type=activity_type, **filters)


def _staff(client, organization, role="admin", name="boss"):
    user = get_user_model().objects.create_user(name, f"{name}@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role=role)
    client.force_login(user)
    return user


def _stored_activity_text() -> str:
    """Every stored activity row, as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT t::text FROM billing_activitylog t")
        return "\n".join(row[0] for row in cursor.fetchall())


# --- API keys ----------------------------------------------------------------------------------


def test_the_create_api_key_command_logs_the_key_by_its_prefix_never_its_value(organization):
    out = io.StringIO()

    call_command("create_api_key", "--organization", "Acme", "--name", "CI", stdout=out,
                 stderr=io.StringIO())  # fmt: skip

    raw = out.getvalue().strip().splitlines()[-1]
    key = ApiKey.objects.get(name="CI")
    entry = _only("api_key.created", resource_id=str(key.pk))
    assert (entry.activity_source, entry.actor_name) == ("system", "create_api_key")
    assert entry.activity_object["prefix"] == raw[:9]
    assert entry.activity_object_changes["name"] == [None, "CI"]
    stored = _stored_activity_text()
    assert raw not in stored
    assert raw[9:] not in stored
    assert key.key_hash not in stored


def test_a_dashboard_key_creation_is_logged_once_as_the_staff_user(client, organization):
    _staff(client, organization)

    response = client.post(
        "/admin/billing/apikey/add/",
        {"organization": organization.pk, "name": "Zapier", "permissions": "null"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    key = ApiKey.objects.get(name="Zapier")
    entry = _only("api_key.created", resource_id=str(key.pk))
    assert (entry.activity_source, entry.user_email) == ("front", "boss@example.com")
    assert ActivityLog.objects.filter(resource_id=str(key.pk)).count() == 1
    raw = next(str(m) for m in response.wsgi_request._messages if "lago_" in str(m))
    assert raw.split(": ")[-1] not in _stored_activity_text()


def test_a_dashboard_rotation_logs_the_old_key_rotated_and_the_new_one_created(
    client, organization
):
    _staff(client, organization)
    key, _raw = api_key_create(organization=organization, name="Main")

    response = client.post(
        "/admin/billing/apikey/",
        {"action": "rotate_in_24h", "_selected_action": [key.pk]},
    )

    assert response.status_code == 302
    rotated = _only("api_key.rotated")
    successor = ApiKey.objects.get(rotated_from=key)
    assert rotated.resource_id == str(key.pk)
    assert rotated.user_email == "boss@example.com"
    assert rotated.activity_object_changes["rotated_to_id"] == [None, str(successor.pk)]
    assert rotated.activity_object_changes["expires_at"][0] is None
    created = _only("api_key.created", resource_id=str(successor.pk))
    assert created.user_email == "boss@example.com"
    assert "key_hash" not in created.activity_object


def test_a_dashboard_revocation_is_logged_as_the_key_deleted(client, organization, api_key):
    _staff(client, organization)
    key, _raw = api_key_create(organization=organization, name="Old")

    client.post("/admin/billing/apikey/", {"action": "revoke", "_selected_action": [key.pk]})

    entry = _only("api_key.deleted")
    assert (entry.resource_id, entry.user_email) == (str(key.pk), "boss@example.com")
    assert entry.activity_object_changes["revoked_at"][0] is None
    assert entry.activity_object["revoked_at"] is not None


# --- memberships --------------------------------------------------------------------------------


def test_the_create_user_command_logs_the_membership_as_a_system_job(organization, monkeypatch):
    monkeypatch.setenv("BILLING_USER_PASSWORD", "a-long-enough-passphrase-42")

    call_command(
        "create_user", "--username", "ann", "--organization", "Acme", "--role", "finance",
        "--email", "ann@example.com",
        stdout=io.StringIO(),
    )  # fmt: skip

    entry = _only("membership.created")
    assert (entry.activity_source, entry.actor_name) == ("system", "create_user")
    assert entry.activity_object["email"] == "ann@example.com"
    assert entry.activity_object_changes["role"] == [None, "finance"]
    assert "passphrase" not in _stored_activity_text()


def test_a_dashboard_role_change_is_logged_with_the_role_before_and_after(client, organization):
    _staff(client, organization)
    clerk = get_user_model().objects.create_user("clerk", "clerk@example.com", "pw-123456")
    membership = membership_set(organization=organization, user=clerk, role="finance")

    response = client.post(
        f"/admin/billing/membership/{membership.pk}/change/", {"role": "manager"}
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    entry = _only("membership.updated")
    assert entry.user_email == "boss@example.com"
    assert entry.activity_object_changes == {"role": ["finance", "manager"]}
    assert ActivityLog.objects.filter(resource_id=str(membership.pk)).count() == 2  # + created


def test_a_dashboard_removal_is_logged_as_the_membership_deleted(client, organization):
    _staff(client, organization)
    clerk = get_user_model().objects.create_user("clerk", "clerk@example.com", "pw-123456")
    membership = membership_set(organization=organization, user=clerk, role="finance")

    response = client.post(f"/admin/billing/membership/{membership.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302, response.content.decode()[:2000]
    entry = _only("membership.deleted")
    assert (entry.resource_id, entry.user_email) == (str(membership.pk), "boss@example.com")
    assert entry.activity_object["username"] == "clerk"
    assert not Membership.objects.filter(pk=membership.pk).exists()


def test_a_member_added_on_the_organization_page_is_logged_and_gets_the_role_group(
    client, organization
):
    _staff(client, organization)
    clerk = get_user_model().objects.create_user("clerk", "clerk@example.com", "pw-123456")
    page = client.get(f"/admin/billing/organization/{organization.pk}/change/")
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data = {k: (v.pk if hasattr(v, "pk") else v) for k, v in data.items()}
    for formset in page.context["inline_admin_formsets"]:
        management = formset.formset.management_form
        for name, field in management.fields.items():
            data[f"{management.prefix}-{name}"] = management.initial.get(name, field.initial)
        for index, inline_form in enumerate(formset.formset.forms):
            data[f"{formset.formset.prefix}-{index}-id"] = inline_form.instance.pk
            for name in inline_form.fields:
                value = inline_form.initial.get(name)
                if value is not None:
                    data[f"{formset.formset.prefix}-{index}-{name}"] = getattr(value, "pk", value)
    prefix = next(
        f.formset.prefix for f in page.context["inline_admin_formsets"]
        if f.formset.model is Membership
    )  # fmt: skip
    count = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = count + 1
    data[f"{prefix}-{count}-user"] = clerk.pk
    data[f"{prefix}-{count}-role"] = "finance"

    response = client.post(f"/admin/billing/organization/{organization.pk}/change/", data)

    assert response.status_code == 302, (
        response.context["adminform"].form.errors,
        [f.formset.errors for f in response.context["inline_admin_formsets"]],
    )
    entry = _only("membership.created", activity_object__username="clerk")
    assert entry.user_email == "boss@example.com"
    assert clerk.groups.filter(pk=Group.objects.get(name="Finance").pk).exists()


# --- billing-entity taxes -----------------------------------------------------------------------


def test_api_billing_entity_taxes_are_logged_with_the_codes_before_and_after(api, organization):
    TaxFactory(organization=organization, code="vat_fr")

    response = api.put(
        "/api/v1/billing_entities/default",
        {"billing_entity": {"tax_codes": ["vat_fr"]}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    entry = _only("billing_entity.updated")
    assert entry.activity_source == "api"
    assert entry.activity_object_changes == {"tax_codes": [None, ["vat_fr"]]}
    assert [t["code"] for t in entry.activity_object["taxes"]] == ["vat_fr"]


def test_a_tax_applied_to_the_organization_logs_its_default_entity_taxes(api, organization):
    response = api.post(
        "/api/v1/taxes",
        {"tax": {"name": "VAT", "code": "vat", "rate": "20", "applied_to_organization": True}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    entry = _only("billing_entity.updated")
    assert entry.resource_id == str(organization.default_billing_entity().pk)
    assert entry.activity_object_changes == {"tax_codes": [None, ["vat"]]}


def test_deleting_a_tax_logs_its_removal_from_the_billing_entity(api, organization):
    api.post("/api/v1/taxes", {"tax": {"name": "VAT", "code": "vat", "rate": "20",
             "applied_to_organization": True}}, format="json")  # fmt: skip

    assert api.delete("/api/v1/taxes/vat").status_code == 200

    latest = ActivityLog.objects.filter(activity_type="billing_entity.updated").latest("id")
    assert latest.activity_object_changes == {"tax_codes": [["vat"], None]}


# --- entitlements --------------------------------------------------------------------------------


@pytest.fixture
def seats_feature(api):
    response = api.post(
        "/api/v1/features",
        {"feature": {"code": "seats", "privileges": [{"code": "max", "value_type": "integer"}]}},
        format="json",
    )
    assert response.status_code == 200, response.json()


def test_api_plan_entitlements_are_logged_as_the_plan_updated(api, organization, seats_feature):
    plan = PlanFactory(organization=organization, code="pro")

    response = api.post(
        "/api/v1/plans/pro/entitlements", {"entitlements": {"seats": {"max": 10}}}, format="json"
    )
    api.delete("/api/v1/plans/pro/entitlements/seats")

    assert response.status_code == 200, response.json()
    added, removed = ActivityLog.objects.filter(activity_type="plan.updated").order_by("id")
    assert (added.resource_id, added.activity_source) == (str(plan.pk), "api")
    assert added.activity_object_changes == {"entitlements": [None, {"seats": {"max": "10"}}]}
    assert removed.activity_object_changes == {"entitlements": [{"seats": {"max": "10"}}, None]}


def test_dashboard_plan_entitlements_are_logged_as_the_staff_user(
    client, organization, seats_feature
):
    from plans.models import Feature, Privilege

    _staff(client, organization, role="manager")
    plan = PlanFactory(organization=organization, code="pro")
    feature, privilege = Feature.objects.get(code="seats"), Privilege.objects.get(code="max")

    response = client.post(
        f"/admin/plans/plan/{plan.pk}/entitlements/",
        {f"feature_{feature.pk}": "on", f"privilege_{privilege.pk}": "7"},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    entry = _only("plan.updated")
    assert entry.user_email == "boss@example.com"
    assert entry.activity_object_changes == {"entitlements": [None, {"seats": {"max": "7"}}]}


def test_api_subscription_entitlements_are_logged_as_the_subscription_updated(
    api, organization, seats_feature
):
    from tests.customers.factories import SubscriptionFactory

    plan = PlanFactory(organization=organization, code="pro")
    subscription = SubscriptionFactory(organization=organization, plan=plan, external_id="s1")

    response = api.patch(
        "/api/v1/subscriptions/s1/entitlements",
        {"entitlements": {"seats": {"max": 3}}},
        format="json",
    )

    assert response.status_code == 200, response.json()
    entry = _only("subscription.updated")
    assert (entry.resource_id, entry.activity_source) == (str(subscription.pk), "api")
    assert entry.activity_object_changes == {"entitlements": [None, {"seats": {"max": "3"}}]}


# --- charge filters ----------------------------------------------------------------------------


@pytest.fixture
def charge(organization):
    from plans.models import BillableMetricFilter

    metric = BillableMetricFactory(organization=organization, code="compute")
    BillableMetricFilter.objects.create(
        organization=organization, billable_metric=metric, key="region", values=["eu", "us"]
    )
    plan = PlanFactory(organization=organization, code="p")
    return ChargeFactory(organization=organization, plan=plan, billable_metric=metric, code="c")


EU = {"values": {"region": ["eu"]}, "properties": {"amount": "3"}, "invoice_display_name": "EU"}


def test_api_filter_changes_are_logged_as_their_charge_updated(api, charge):
    created = api.post("/api/v1/plans/p/charges/c/filters", {"filter": EU}, format="json")
    url = f"/api/v1/plans/p/charges/c/filters/{created.json()['filter']['lago_id']}"
    api.put(url, {"filter": {"properties": {"amount": "4"}}}, format="json")
    api.delete(url)

    added, changed, removed = ActivityLog.objects.filter(
        activity_type="charge.updated", resource_id=str(charge.pk)
    ).order_by("id")
    assert added.activity_source == "api"
    assert added.activity_object_changes == {"filters": [None, [EU]]}
    assert changed.activity_object_changes == {
        "filters": [[EU], [{**EU, "properties": {"amount": "4"}}]]
    }
    assert removed.activity_object_changes == {
        "filters": [[{**EU, "properties": {"amount": "4"}}], None]
    }


def test_api_plan_update_with_filters_shows_them_in_the_plan_entry(api, charge):
    metric_id = str(charge.billable_metric_id)
    charges = [{"id": str(charge.pk), "billable_metric_id": metric_id, "charge_model": "standard",
                "properties": {"amount": "1"}, "filters": [EU]}]  # fmt: skip

    response = api.put("/api/v1/plans/p", {"plan": {"charges": charges}}, format="json")

    assert response.status_code == 200, response.json()
    entry = _only("plan.updated")
    assert entry.activity_object_changes["charge_filters"] == [None, {"c": [EU]}]
    assert entry.activity_object["charges"][0]["filters"][0]["values"] == {"region": ["eu"]}


# --- tenancy and retention ---------------------------------------------------------------------


def test_the_new_entries_belong_to_their_organization_only(api, other_api, organization):
    TaxFactory(organization=organization, code="vat_fr")
    api.put("/api/v1/billing_entities/default", {"billing_entity": {"tax_codes": ["vat_fr"]}},
            format="json")  # fmt: skip

    theirs = other_api.get("/api/v1/activity_logs").json()["activity_logs"]

    assert _only("billing_entity.updated").organization_id == organization.pk
    assert not [e for e in theirs if e["activity_type"] == "billing_entity.updated"]


def test_retention_purges_the_new_entries_too(organization):
    key, _raw = api_key_create(organization=organization, name="Old")
    old = timezone.now() - dt.timedelta(days=organization.audit_logs_retention_days + 1)
    ActivityLog.objects.filter(resource_id=str(key.pk)).update(logged_at=old, created_at=old)

    audit_logs_purge(now=timezone.now())

    assert not ActivityLog.objects.filter(resource_id=str(key.pk)).exists()
