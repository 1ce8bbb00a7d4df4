"""Admin: a staff member sees only their organizations; API keys are shown once."""

import pytest
from django.contrib.auth import get_user_model

from billing.models import ApiKey
from billing.services import membership_set

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance_user(organization):
    user = get_user_model().objects.create_user("fin", "fin@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role="finance")
    return user


@pytest.fixture
def org_admin(organization):
    user = get_user_model().objects.create_user("boss", "boss@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role="admin")
    return user


def test_role_maps_to_a_django_group(finance_user):
    assert list(finance_user.groups.values_list("name", flat=True)) == ["Finance"]
    assert finance_user.has_perm("invoicing.change_invoice")
    assert not finance_user.has_perm("billing.view_billingentity")  # settings: admins only
    assert not finance_user.has_perm("billing.change_apikey")


def test_staff_sees_only_their_organizations(client, org_admin, organization, other_organization):
    client.force_login(org_admin)
    page = client.get("/admin/billing/organization/").content.decode()
    assert "Acme" in page
    assert "Globex" not in page
    response = client.get(f"/admin/billing/organization/{other_organization.pk}/change/")
    assert response.status_code == 302  # not visible: redirected to the admin index


def test_staff_billing_entity_list_is_scoped(client, org_admin, other_organization):
    client.force_login(org_admin)
    page = client.get("/admin/billing/billingentity/").content.decode()
    assert "Acme" in page
    assert "Globex" not in page


def test_superuser_sees_every_organization(admin_client, organization, other_organization):
    page = admin_client.get("/admin/billing/organization/").content.decode()
    assert "Acme" in page
    assert "Globex" in page


def test_admin_creates_an_api_key_and_shows_it_once(client, org_admin, organization):
    client.force_login(org_admin)
    response = client.post(
        "/admin/billing/apikey/add/",
        {"organization": organization.pk, "name": "from admin", "permissions": "null"},
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    shown = [m for m in messages if "not shown again" in m]
    assert shown
    raw = shown[0].rsplit(" ", 1)[1]
    key = ApiKey.objects.get(name="from admin")
    assert key.prefix == raw[:9]
    assert raw not in client.get(f"/admin/billing/apikey/{key.pk}/change/").content.decode()


def test_admin_rotate_action_issues_a_successor(client, org_admin, api_key):
    client.force_login(org_admin)
    response = client.post(
        "/admin/billing/apikey/",
        {"action": "rotate_in_24h", "_selected_action": [api_key[0].pk]},
        follow=True,
    )
    assert response.status_code == 200
    old = ApiKey.objects.get(pk=api_key[0].pk)
    assert old.rotated_to is not None
    assert old.expires_at is not None


def test_api_request_log_is_browsable(client, org_admin, api):
    api.get("/api/v1/organizations")
    client.force_login(org_admin)
    page = client.get("/admin/billing/apirequestlog/").content.decode()
    assert "/api/v1/organizations" in page
