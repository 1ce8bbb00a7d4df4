"""The finance overview page (`admin:overview`): figures, selectors, links and access."""

from __future__ import annotations

import datetime as dt
import json
import re
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from billing.roles import ensure_role_groups
from billing.services import billing_entity_create, membership_set
from invoicing.models import Invoice
from invoicing.overview import customer_revenue
from invoicing.services.analytics_figures import figures_rebuild
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice
from tests.plans.factories import PlanFactory
from tests.wallets.factories import WalletFactory

pytestmark = pytest.mark.django_db

URL = "/admin/overview/"


def this_month() -> dt.date:
    return timezone.now().date().replace(day=1)


@pytest.fixture
def history(organization):
    """A monthly subscription billed this month and last month, one unpaid and overdue."""
    type(organization).objects.filter(pk=organization.pk).update(
        created_at=timezone.now() - dt.timedelta(days=400)
    )
    organization.refresh_from_db()
    customer = CustomerFactory(organization=organization, name="Globex", external_id="globex",
                               timezone="UTC")  # fmt: skip
    sub = SubscriptionFactory(
        organization=organization,
        customer=customer,
        plan=PlanFactory(organization=organization, amount_cents=5000),
    )
    last = (this_month() - dt.timedelta(days=1)).replace(day=1)
    paid = build_invoice(
        organization, customer=customer, subscription=sub, invoice_type="subscription",
        issuing_date=last, payment_status="succeeded",
        period=(last, this_month() - dt.timedelta(days=1)),
        fees=[FeeSpec(kind="subscription", amount_cents=4000)],
    )  # fmt: skip
    late = build_invoice(
        organization, customer=customer, subscription=sub, invoice_type="subscription",
        issuing_date=this_month(), payment_status="failed",
        period=(this_month(), this_month() + dt.timedelta(days=27)),
        fees=[FeeSpec(kind="subscription", amount_cents=5000)],
    )  # fmt: skip
    Invoice.objects.filter(pk=late.pk).update(payment_overdue=True)
    build_invoice(organization, customer=customer, status="draft")
    WalletFactory(organization=organization, customer=customer, balance_cents=2500)
    figures_rebuild(organization=organization)
    return {"customer": customer, "paid": paid, "late": late}


def cards(html: str) -> dict[str, tuple[str, str]]:
    """data-kpi -> (value, link) of the page's KPI cards."""
    found = re.findall(
        r'<a class="ov-card" href="([^"]*)" data-kpi="(\w+)">.*?ov-card-value money">([^<]*)<',
        html,
        re.S,
    )
    return {key: (unescape(value), unescape(url)) for url, key, value in found}


def test_the_overview_has_its_admin_url_name():
    assert reverse("admin:overview") == URL


def test_the_overview_shows_the_key_figures(admin_client, history):
    html = admin_client.get(URL).content.decode()

    figures = {key: value for key, (value, _) in cards(html).items()}
    assert figures["mrr"] == "€50.00"
    assert figures["arr"] == "€600.00"
    assert figures["gross_revenue"] == "€50.00"
    assert figures["outstanding"] == "€50.00"
    assert figures["overdue"] == "€50.00"
    assert figures["failed"] == "€50.00"
    assert figures["prepaid"] == "€25.00"
    assert figures["drafts"] == "1"
    assert "+25.0% vs last month" in html  # 50.00 against 40.00


def test_every_card_links_to_an_admin_list_that_opens(admin_client, history):
    html = admin_client.get(URL).content.decode()

    for key, (_, url) in cards(html).items():
        response = admin_client.get(url)
        assert response.status_code == 200, (key, url)
        assert "?e=1" not in response.get("Location", ""), (key, url)


def test_the_overdue_card_lists_the_overdue_invoice(admin_client, history):
    url = cards(admin_client.get(URL).content.decode())["overdue"][1]

    listed = admin_client.get(url).context["cl"].queryset

    assert list(listed) == [history["late"]]


def test_the_outstanding_card_lists_the_unpaid_invoices(admin_client, history):
    url = cards(admin_client.get(URL).content.decode())["outstanding"][1]

    listed = admin_client.get(url).context["cl"].queryset

    assert list(listed) == [history["late"]]


def test_the_chart_data_covers_twelve_months(admin_client, history):
    html = admin_client.get(URL).content.decode()
    data = json.loads(
        re.search(r'<script id="overview-data" type="application/json">(.*?)</script>', html,
                  re.S).group(1)
    )  # fmt: skip

    assert len(data["labels"]) == 12
    assert data["mrr"][-2:] == [4000, 5000]
    assert data["streams"]["subscription"][-1] == 5000
    assert data["collection"]["failed"][-1] == 5000
    assert [t["name"] for t in data["top"]] == ["Globex"]
    assert "vendor/chartjs/chart.umd.min.js" in html


def test_the_currency_and_billing_entity_selectors_filter_the_figures(admin_client, history):
    entity = billing_entity_create(organization=history["customer"].organization, code="us",
                                   name="US entity")  # fmt: skip

    by_entity = cards(admin_client.get(URL, {"billing_entity": entity.code}).content.decode())
    in_usd = cards(admin_client.get(URL, {"currency": "USD"}).content.decode())

    assert by_entity["gross_revenue"][0] == "€0.00"
    assert f"billing_entity__id__exact={entity.pk}" in by_entity["gross_revenue"][1]
    assert in_usd["gross_revenue"][0] == "$0.00"


def test_a_finance_member_sees_only_their_organization(client, history, other_organization):
    ensure_role_groups()
    user = get_user_model().objects.create_user("fin", "fin@example.com", "pw-123456")
    membership_set(organization=history["customer"].organization, user=user, role="finance")
    client.force_login(user)

    response = client.get(URL, {"organization": str(other_organization.pk)})

    assert response.status_code == 200
    assert response.context["overview"].organization == history["customer"].organization


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(URL)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_customer_revenue_sums_billed_and_overdue_amounts(history):
    rows = customer_revenue(customer=history["customer"], today=timezone.now().date())

    assert rows == [
        {"currency": "EUR", "gross": "€90.00", "gross_12": "€90.00", "overdue": "€50.00",
         "overdue_cents": 5000}
    ]  # fmt: skip


def test_the_customer_360_page_shows_billed_and_overdue_amounts(admin_client, history):
    customer = history["customer"]
    url = reverse("admin:customers_customer_change", args=[customer.pk])

    html = admin_client.get(url).content.decode()

    assert "Gross billed (EUR)" in html
    assert "€90.00" in html
    assert "Overdue (EUR)" in html
    assert "€50.00" in html
