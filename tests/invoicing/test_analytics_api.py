"""`/api/v1/analytics/...` through DRF's client and the official lago-python-client."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from invoicing.models import Invoice
from invoicing.services.analytics_figures import figures_rebuild
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

ENDPOINTS = {
    "gross_revenue": "gross_revenues",
    "mrr": "mrrs",
    "invoiced_usage": "invoiced_usages",
    "invoice_collection": "invoice_collections",
    "overdue_balance": "overdue_balances",
    "usage": "usages",
}


def this_month() -> dt.date:
    return timezone.now().date().replace(day=1)


@pytest.fixture
def billed(organization):
    """One finalized 120.00 invoice with a usage fee this month, overdue and unpaid."""
    customer = CustomerFactory(organization=organization, external_id="acme", timezone="UTC")
    invoice = build_invoice(
        organization, customer=customer, invoice_type="subscription", issuing_date=this_month(),
        net_payment_term=0, fees=[FeeSpec(amount_cents=11000),
                                  FeeSpec(kind="graduated", units=Decimal(100), name="Calls")],
    )  # fmt: skip
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)
    figures_rebuild(organization=organization)
    return invoice


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "root"), ENDPOINTS.items())
def test_each_endpoint_answers_its_lago_root_key(api, billed, path, root):
    response = api.get(f"/api/v1/analytics/{path}")

    assert response.status_code == 200, response.content
    assert list(response.json()) == [root]
    assert response.json()[root], "the billed invoice shows up"


@pytest.mark.django_db
def test_gross_revenue_reads_this_month(api, billed):
    rows = api.get("/api/v1/analytics/gross_revenue?currency=eur").json()["gross_revenues"]

    assert rows == [
        {"month": f"{this_month():%Y-%m}-01T00:00:00Z", "amount_cents": 12000, "currency": "EUR",
         "invoices_count": 1, "billing_entity_id": str(billed.billing_entity_id)}
    ]  # fmt: skip


@pytest.mark.django_db
def test_overdue_balance_names_the_invoices(api, billed):
    rows = api.get("/api/v1/analytics/overdue_balance?external_customer_id=acme").json()

    assert rows["overdue_balances"][0]["lago_invoice_ids"] == [str(billed.pk)]
    assert rows["overdue_balances"][0]["amount_cents"] == 12000


@pytest.mark.django_db
def test_usage_reads_units_and_amount_per_metric(api, billed):
    rows = api.get("/api/v1/analytics/usage?time_granularity=monthly").json()["usages"]

    assert len(rows) == 1
    assert rows[0]["units"] == "100.0"
    assert rows[0]["amount_cents"] == 1000  # 100 units x 0.10
    assert rows[0]["start_of_period_dt"] == this_month().isoformat()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("gross_revenue?months=abc", "months"),
        ("mrr?months=0", "months"),
        ("invoice_collection?currency=EURO", "currency"),
        ("usage?time_granularity=hourly", "time_granularity"),
        ("usage?from_date=yesterday", "from_date"),
        ("usage?is_billable_metric_recurring=maybe", "is_billable_metric_recurring"),
    ],
)
def test_bad_filters_answer_the_422_envelope(api, query, field):
    response = api.get(f"/api/v1/analytics/{query}")

    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_errors"
    assert field in body["error_details"]


@pytest.mark.django_db
def test_an_unknown_billing_entity_is_not_found(api):
    response = api.get("/api/v1/analytics/mrr?billing_entity_code=nope")

    assert response.status_code == 404
    assert response.json()["code"] == "billing_entity_not_found"


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "root"), ENDPOINTS.items())
def test_another_organization_sees_none_of_the_figures(other_api, billed, path, root):
    rows = other_api.get(f"/api/v1/analytics/{path}").json()[root]

    assert all(row.get("amount_cents") in (None, 0) for row in rows)
    assert all(row.get("currency") in (None, "USD") for row in rows)


@pytest.mark.django_db
def test_the_endpoints_are_in_the_openapi_schema(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]

    for path in ENDPOINTS:
        assert f"/api/v1/analytics/{path}" in paths


@pytest.mark.django_db(transaction=True)
def test_the_lago_client_reads_every_analytics_resource(lago, billed):
    month = f"{this_month():%Y-%m}"
    gross = lago.gross_revenues.find_all({"currency": "EUR"})["gross_revenues"]
    assert [(r.month[:7], r.amount_cents, r.invoices_count) for r in gross] == [(month, 12000, 1)]
    mrrs = lago.mrrs.find_all({"months": 1})["mrrs"]
    assert [r.month[:7] for r in mrrs] == [month]
    usage = lago.invoiced_usages.find_all({"currency": "EUR"})["invoiced_usages"]
    assert [(r.amount_cents, r.currency) for r in usage] == [(1000, "EUR")]
    collection = lago.invoice_collections.find_all({"currency": "EUR"})["invoice_collections"]
    assert [(r.payment_status, r.invoices_count) for r in collection if r.month[:7] == month] == [
        ("pending", 1)
    ]
    overdue = lago.overdue_balances.find_all({"external_customer_id": "acme"})["overdue_balances"]
    assert [r.lago_invoice_ids for r in overdue] == [[str(billed.pk)]]
    usages = lago.usages.find_all({"time_granularity": "monthly"})["usages"]
    assert [(u.units, u.amount_cents) for u in usages] == [(100.0, 1000)]
