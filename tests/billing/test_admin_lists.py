"""Lists people read: from/to day filters on invoices, customers and subscriptions, and the
global search (customers by name or external id, invoices by number) scoped to the staff
member's organization."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth import get_user_model

from billing.services import membership_set
from customers.models import Customer
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.invoicing.invoice_builders import build_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance_client(client, organization):
    user = get_user_model().objects.create_user("fin", "fin@example.com", "pw-123456")
    membership_set(organization=organization, user=user, role="finance")
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        pytest.param("issuing_date_from=2026-03-01", "ACM-MARCH", "ACM-FEB", id="from"),
        pytest.param("issuing_date_to=2026-02-28", "ACM-FEB", "ACM-MARCH", id="to-included"),
        pytest.param(
            "issuing_date_from=2026-02-01&issuing_date_to=2026-02-28",
            "ACM-FEB",
            "ACM-MARCH",
            id="both-ends",
        ),
    ],
)
def test_invoice_list_filters_by_issuing_day_range(
    admin_client, organization, query, shown, hidden
):
    build_invoice(organization, number="ACM-FEB", issuing_date=dt.date(2026, 2, 28))
    build_invoice(organization, number="ACM-MARCH", issuing_date=dt.date(2026, 3, 1))
    page = admin_client.get(f"/admin/invoicing/invoice/?{query}").content.decode()
    assert shown in page
    assert hidden not in page


def test_customer_list_filters_by_creation_day_range(admin_client, organization):
    old = CustomerFactory(organization=organization, name="Old Corp")
    new = CustomerFactory(organization=organization, name="New Corp")
    Customer.objects.filter(pk=old.pk).update(
        created_at=dt.datetime(2025, 5, 31, 23, tzinfo=dt.UTC)
    )
    Customer.objects.filter(pk=new.pk).update(created_at=dt.datetime(2025, 6, 1, 0, tzinfo=dt.UTC))
    page = admin_client.get(
        "/admin/customers/customer/?created_at_from=2025-06-01&created_at_to=2025-06-01"
    ).content.decode()
    assert "New Corp" in page
    assert "Old Corp" not in page


def test_subscription_list_filters_by_start_day_range(admin_client, organization):
    SubscriptionFactory(
        organization=organization, external_id="sub_jan",
        started_at=dt.datetime(2026, 1, 15, tzinfo=dt.UTC),
    )  # fmt: skip
    SubscriptionFactory(
        organization=organization, external_id="sub_mar",
        started_at=dt.datetime(2026, 3, 15, tzinfo=dt.UTC),
    )  # fmt: skip
    page = admin_client.get(
        "/admin/customers/subscription/?started_at_from=2026-03-01"
    ).content.decode()
    assert "sub_mar" in page
    assert "sub_jan" not in page


def search(client, term: str) -> str:
    return client.get("/admin/search/", {"s": term, "extended": "1"}).content.decode()


def test_global_search_finds_customers_by_name_and_external_id(finance_client, organization):
    CustomerFactory(organization=organization, name="Globex Industries", external_id="glx_42")
    assert "Globex Industries" in search(finance_client, "globex")
    assert "Globex Industries" in search(finance_client, "glx_42")


def test_global_search_finds_invoices_by_number(finance_client, organization):
    build_invoice(organization, number="ACM-0777")
    assert "ACM-0777" in search(finance_client, "ACM-0777")


def test_global_search_stays_in_the_staff_members_organization(finance_client, other_organization):
    CustomerFactory(organization=other_organization, name="Initech Secret", external_id="ini")
    build_invoice(other_organization, number="GLB-0001")
    assert "Initech Secret" not in search(finance_client, "initech")
    assert "GLB-0001" not in search(finance_client, "GLB-0001")
