"""The activity log in the dashboard: the Developers page with its filters, scoped to the staff
member's organizations, and the timeline of one object on its own page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from billing.activity import record_activity
from billing.actors import SYSTEM, Actor
from billing.models import ActivityLog
from billing.roles import ensure_role_groups
from billing.services import membership_set
from customers.services.customers import customer_create, customer_update
from tests.customers.factories import SubscriptionFactory
from tests.invoicing.invoice_builders import build_invoice
from tests.plans.factories import PlanFactory
from tests.wallets.factories import WalletFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_of(client):
    ensure_role_groups()

    def login(organization):
        user = get_user_model().objects.create_user("ada", "ada@example.com", "pw-123456")
        membership_set(organization=organization, user=user, role="admin")
        ActivityLog.objects.all().delete()  # the login's own membership entry aside
        client.force_login(user)
        return user

    return login


def test_the_page_lists_activities_with_their_actor_and_changes(admin_of, client, organization):
    staff = admin_of(organization)
    customer = customer_create(
        organization=organization, values={"external_id": "c1"}, actor=SYSTEM
    )
    customer_update(customer=customer, values={"name": "Renamed"}, actor=Actor.for_user(staff))

    page = client.get("/admin/billing/activitylog/").content.decode()

    assert "customer.updated" in page
    assert "ada@example.com" in page
    assert "Renamed" in page


def test_the_page_names_a_creations_fields_without_their_values(admin_of, client, organization):
    admin_of(organization)
    customer_create(
        organization=organization,
        values={"external_id": "c1", "name": "Globex", "email": "billing@globex.example"},
        actor=SYSTEM,
    )

    page = client.get("/admin/billing/activitylog/").content.decode()

    assert "billing@globex.example" not in page
    assert "created with" in page


def test_the_page_shows_a_long_update_as_its_first_changes_and_a_count(
    admin_of, client, organization
):
    staff = admin_of(organization)
    customer = customer_create(
        organization=organization, values={"external_id": "c1"}, actor=SYSTEM
    )
    customer_update(
        customer=customer,
        values={"name": "N", "legal_name": "L", "email": "e@x.example", "city": "Paris",
                "zipcode": "75001", "phone": "+33 1"},
        actor=Actor.for_user(staff),
    )  # fmt: skip

    page = client.get("/admin/billing/activitylog/", {"activity_type": "customer.updated"})

    assert "and 3 more" in page.content.decode()


def test_the_page_names_the_object_by_its_name(admin_of, client, organization):
    admin_of(organization)
    customer_create(
        organization=organization, values={"external_id": "c1", "name": "Globex"}, actor=SYSTEM
    )

    page = client.get("/admin/billing/activitylog/").content.decode()

    assert "customer · Globex" in page


def test_an_entrys_page_shows_every_changed_value(admin_of, client, organization):
    admin_of(organization)
    customer_create(
        organization=organization,
        values={"external_id": "c1", "email": "billing@globex.example"},
        actor=SYSTEM,
    )
    entry = ActivityLog.objects.get(activity_type="customer.created")

    page = client.get(f"/admin/billing/activitylog/{entry.pk}/change/").content.decode()

    assert "billing@globex.example" in page


def test_the_page_filters_by_source(admin_of, client, organization):
    staff = admin_of(organization)
    customer = customer_create(
        organization=organization, values={"external_id": "c1"}, actor=SYSTEM
    )
    customer_update(customer=customer, values={"name": "Renamed"}, actor=Actor.for_user(staff))

    response = client.get("/admin/billing/activitylog/", {"activity_source__exact": "system"})

    assert [e.activity_type for e in response.context["cl"].result_list] == ["customer.created"]


def test_the_page_never_shows_another_organizations_activities(
    admin_of, client, organization, other_organization
):
    admin_of(organization)
    customer_create(organization=other_organization, values={"external_id": "x1"}, actor=SYSTEM)

    response = client.get("/admin/billing/activitylog/")

    assert list(response.context["cl"].result_list) == []


def _customer(organization):
    return customer_create(organization=organization, values={"external_id": "c1"}, actor=SYSTEM)


def _subscription(organization):
    return SubscriptionFactory(organization=organization)


def _invoice(organization):
    return build_invoice(organization)


def _wallet(organization):
    return WalletFactory(organization=organization)


def _plan(organization):
    return PlanFactory(organization=organization)


@pytest.mark.parametrize(
    ("make", "path"),
    [
        pytest.param(_customer, "customers/customer", id="customer"),
        pytest.param(_subscription, "customers/subscription", id="subscription"),
        pytest.param(_invoice, "invoicing/invoice", id="invoice"),
        pytest.param(_wallet, "wallets/wallet", id="wallet"),
        pytest.param(_plan, "plans/plan", id="plan"),
    ],
)
def test_an_objects_page_shows_its_timeline(admin_of, client, organization, make, path):
    staff = admin_of(organization)
    obj = make(organization)
    resource_type = path.split("/")[1]
    record_activity(
        activity_type=f"{resource_type}.audited_for_test", actor=Actor.for_user(staff), obj=obj
    )

    page = client.get(f"/admin/{path}/{obj.pk}/change/").content.decode()

    assert 'id="activity-timeline"' in page
    assert f"{resource_type}.audited_for_test" in page
    assert "ada@example.com" in page
