"""`/fees` (spec §13): list filters, show, payment status and deletion of invoiceless fees."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from invoicing.models import Fee
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice
from tests.plans.factories import BillableMetricFactory, ChargeFactory

pytestmark = pytest.mark.django_db


def invoiceless_fee(organization, **fields) -> Fee:
    """A pay-in-advance, not invoiceable charge fee (the only fees without invoice)."""
    subscription = SubscriptionFactory(organization=organization)
    metric = BillableMetricFactory(organization=organization, code="seats")
    charge = ChargeFactory(
        organization=organization,
        plan=subscription.plan,
        billable_metric=metric,
        pay_in_advance=True,
        invoiceable=False,
    )
    return Fee.objects.create(
        organization=organization,
        customer=subscription.customer,
        subscription=subscription,
        charge=charge,
        fee_type=Fee.FeeType.CHARGE,
        amount_cents=500,
        precise_amount_cents=Decimal(500),
        amount_currency="EUR",
        units=Decimal(5),
        pay_in_advance=True,
        invoiceable=False,
        pay_in_advance_event_transaction_id="tr_1",
        properties={"timestamp": "2026-03-02T10:00:00+00:00"},
        **fields,
    )


def test_show_renders_an_invoiceless_pay_in_advance_fee(api, organization):
    fee = invoiceless_fee(organization)
    response = api.get(f"/api/v1/fees/{fee.pk}")
    assert response.status_code == 200
    body = response.json()["fee"]
    assert body["lago_invoice_id"] is None
    assert body["pay_in_advance"] is True
    assert body["invoiceable"] is False
    assert body["event_transaction_id"] == "tr_1"
    assert body["item"]["type"] == "charge"
    assert body["item"]["code"] == "seats"
    assert body["item"]["item_type"] == "BillableMetric"
    assert body["external_subscription_id"] == fee.subscription.external_id
    assert body["units"] == "5.0"


def test_list_filters(api, organization):
    fee = invoiceless_fee(organization)
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=100)])
    add_on_fee = invoice.fees.get()
    response = api.get("/api/v1/fees")
    assert response.json()["meta"]["total_count"] == 2

    def ids(**params):
        response = api.get("/api/v1/fees", params)
        assert response.status_code == 200, response.json()
        return {f["lago_id"] for f in response.json()["fees"]}

    assert ids(fee_type="add_on") == {str(add_on_fee.pk)}
    assert ids(billable_metric_code="seats") == {str(fee.pk)}
    assert ids(external_subscription_id=fee.subscription.external_id) == {str(fee.pk)}
    assert ids(external_customer_id=invoice.customer.external_id) == {str(add_on_fee.pk)}
    assert ids(event_transaction_id="tr_1") == {str(fee.pk)}
    assert ids(payment_status="pending") == {str(fee.pk), str(add_on_fee.pk)}
    assert ids(currency="USD") == set()
    assert ids(created_at_from="2000-01-01T00:00:00Z") == {str(fee.pk), str(add_on_fee.pk)}


def test_list_refuses_an_unknown_fee_type(api, organization):
    response = api.get("/api/v1/fees", {"fee_type": "bonus"})
    assert response.status_code == 422
    assert response.json()["error_details"] == {"fee_type": ["value_is_invalid"]}


def test_update_sets_the_payment_status_and_its_instant(api, organization):
    fee = invoiceless_fee(organization)
    response = api.put(
        f"/api/v1/fees/{fee.pk}", {"fee": {"payment_status": "succeeded"}}, format="json"
    )
    assert response.status_code == 200
    body = response.json()["fee"]
    assert body["payment_status"] == "succeeded"
    assert body["succeeded_at"] is not None
    response = api.put(
        f"/api/v1/fees/{fee.pk}", {"fee": {"payment_status": "failed"}}, format="json"
    )
    body = response.json()["fee"]
    assert body["succeeded_at"] is None
    assert body["failed_at"] is not None


def test_update_refuses_an_invoiced_fee_and_a_bad_status(api, organization):
    invoice = build_invoice(organization)
    fee = invoice.fees.get()
    response = api.put(
        f"/api/v1/fees/{fee.pk}", {"fee": {"payment_status": "succeeded"}}, format="json"
    )
    assert response.status_code == 405
    assert response.json()["code"] == "invoiced_fee"
    loose = invoiceless_fee(organization)
    response = api.put(
        f"/api/v1/fees/{loose.pk}", {"fee": {"payment_status": "paid"}}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == {"payment_status": ["value_is_invalid"]}


def test_delete_soft_deletes_an_invoiceless_fee(api, organization):
    fee = invoiceless_fee(organization)
    response = api.delete(f"/api/v1/fees/{fee.pk}")
    assert response.status_code == 200
    assert response.json()["fee"]["lago_id"] == str(fee.pk)
    fee.refresh_from_db()
    assert fee.deleted_at is not None
    assert api.get(f"/api/v1/fees/{fee.pk}").status_code == 404


def test_delete_refuses_an_invoiced_fee(api, organization):
    fee = build_invoice(organization).fees.get()
    response = api.delete(f"/api/v1/fees/{fee.pk}")
    assert response.status_code == 405
    assert response.json()["code"] == "invoiced_fee"


def test_fees_of_hidden_invoices_and_other_tenants_are_not_found(
    api, organization, other_organization
):
    hidden = build_invoice(organization, status="generating").fees.get()
    foreign = build_invoice(
        other_organization,
        customer=CustomerFactory(organization=other_organization, currency="USD"),
        currency="USD",
    ).fees.get()
    for fee in (hidden, foreign):
        response = api.get(f"/api/v1/fees/{fee.pk}")
        assert response.status_code == 404
        assert response.json()["code"] == "fee_not_found"


def test_fee_list_stays_within_a_query_ceiling(api, organization, django_assert_max_num_queries):
    for day in range(1, 6):
        build_invoice(
            organization,
            issuing_date=dt.date(2026, 3, day),
            fees=[FeeSpec(amount_cents=100), FeeSpec(kind="graduated", units=Decimal(10))],
        )
    with django_assert_max_num_queries(8):
        response = api.get("/api/v1/fees")
    assert response.json()["meta"]["total_count"] == 10


def test_a_commitment_fee_is_an_item_of_its_subscription_as_in_lago(api, organization):
    # Lago's Fee#item_type/item_code/item_name/item_id: a commitment fee reads as its
    # subscription's (V1::FeeSerializer `item`), only `type` says "commitment".
    invoice = build_invoice(organization, fees=[FeeSpec(kind="subscription", amount_cents=900)])
    fee = invoice.fees.get()
    fee.fee_type, fee.invoice_display_name = Fee.FeeType.COMMITMENT, "Minimum spend"
    fee.save(update_fields=["fee_type", "invoice_display_name"])
    plan = fee.subscription.plan
    item = api.get(f"/api/v1/fees/{fee.pk}").json()["fee"]["item"]
    assert item == {
        "type": "commitment",
        "code": plan.code,
        "name": plan.name,
        "description": plan.description or None,
        "invoice_display_name": "Minimum spend",
        "filters": None,
        "filter_invoice_display_name": None,
        "lago_item_id": str(fee.subscription_id),
        "item_type": "Subscription",
        "grouped_by": {},
    }
