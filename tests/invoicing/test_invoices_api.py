"""`/invoices` and `/customers/{id}/invoices` (spec §12): shapes, filters, writes, PDF links."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.models import OutboxEvent
from billing.services import api_key_create, billing_entity_create
from invoicing.models import Invoice, InvoiceMetadata
from tests.conftest import client_for
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, apply_coupon, build_invoice, vat

pytestmark = pytest.mark.django_db


def iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def test_show_renders_the_whole_invoice_object(api, organization):
    customer = CustomerFactory(organization=organization, name="Globex")
    tax = vat(organization)
    invoice = build_invoice(
        organization,
        customer=customer,
        fees=[FeeSpec(amount_cents=12345, units=Decimal(3), name="Setup", taxes=[tax])],
        number="ACM-0001",
    )
    fee = invoice.fees.get()
    fee_tax = fee.applied_taxes.get()
    invoice_tax = invoice.applied_taxes.get()
    response = api.get(f"/api/v1/invoices/{invoice.pk}")
    assert response.status_code == 200
    body = response.json()["invoice"]
    assert body.pop("customer")["external_id"] == customer.external_id
    assert body == {
        "lago_id": str(invoice.pk),
        "billing_entity_code": "default",
        "sequential_id": None,
        "number": "ACM-0001",
        "issuing_date": "2026-03-01",
        "payment_due_date": "2026-03-31",
        "net_payment_term": 30,
        "invoice_type": "one_off",
        "status": "finalized",
        "payment_status": "pending",
        "payment_dispute_lost_at": None,
        "payment_overdue": False,
        "currency": "EUR",
        "fees_amount_cents": 37035,
        "taxes_amount_cents": 7407,
        "progressive_billing_credit_amount_cents": 0,
        "coupons_amount_cents": 0,
        "credit_notes_amount_cents": 0,
        "sub_total_excluding_taxes_amount_cents": 37035,
        "sub_total_including_taxes_amount_cents": 44442,
        "total_amount_cents": 44442,
        "total_due_amount_cents": 44442,
        "total_paid_amount_cents": 0,
        "total_offsetted_credit_note_amount_cents": 0,
        "prepaid_credit_amount_cents": 0,
        "prepaid_granted_credit_amount_cents": 0,
        "prepaid_purchased_credit_amount_cents": 0,
        "file_url": None,
        "xml_url": None,
        "version_number": 4,
        "self_billed": False,
        "created_at": iso(invoice.created_at),
        "updated_at": iso(invoice.updated_at),
        "voided_at": None,
        "metadata": [],
        "applied_taxes": [
            {
                "lago_id": str(invoice_tax.pk),
                "lago_invoice_id": str(invoice.pk),
                "lago_tax_id": str(tax.pk),
                "tax_name": "VAT",
                "tax_code": "vat_20",
                "tax_rate": 20.0,
                "tax_description": None,
                "amount_cents": 7407,
                "amount_currency": "EUR",
                "fees_amount_cents": 37035,
                "created_at": iso(invoice_tax.created_at),
            }
        ],
        "subscriptions": [],
        "billing_periods": [],
        "fees": [
            {
                "lago_id": str(fee.pk),
                "lago_charge_id": None,
                "lago_charge_filter_id": None,
                "lago_fixed_charge_id": None,
                "lago_invoice_id": str(invoice.pk),
                "lago_true_up_fee_id": None,
                "lago_true_up_parent_fee_id": None,
                "lago_subscription_id": None,
                "external_subscription_id": None,
                "lago_customer_id": str(customer.pk),
                "external_customer_id": customer.external_id,
                "item": {
                    "type": "add_on",
                    "code": fee.add_on.code,
                    "name": "Setup",
                    "description": None,
                    "invoice_display_name": "Setup",
                    "filters": None,
                    "filter_invoice_display_name": None,
                    "lago_item_id": str(fee.add_on_id),
                    "item_type": "AddOn",
                    "grouped_by": {},
                },
                "pay_in_advance": False,
                "invoiceable": True,
                "amount_cents": 37035,
                "amount_currency": "EUR",
                "precise_amount": "370.35",
                "precise_total_amount": "444.42",
                "taxes_amount_cents": 7407,
                "taxes_precise_amount": "74.07",
                "taxes_rate": 20.0,
                "total_aggregated_units": None,
                "total_amount_cents": 44442,
                "total_amount_currency": "EUR",
                "units": "3.0",
                "description": None,
                "precise_unit_amount": "123.45",
                "precise_coupons_amount_cents": "0.0",
                "sub_total_excluding_taxes_amount_cents": 37035,
                "sub_total_excluding_taxes_precise_amount_cents": "37035.0",
                "events_count": 0,
                "payment_status": "pending",
                "created_at": iso(fee.created_at),
                "succeeded_at": None,
                "failed_at": None,
                "refunded_at": None,
                "amount_details": {},
                "self_billed": False,
                "pricing_unit_details": None,
                "from_date": None,
                "to_date": None,
                "event_transaction_id": None,
                "applied_taxes": [
                    {
                        "lago_id": str(fee_tax.pk),
                        "lago_fee_id": str(fee.pk),
                        "lago_tax_id": str(tax.pk),
                        "tax_name": "VAT",
                        "tax_code": "vat_20",
                        "tax_rate": 20.0,
                        "tax_description": None,
                        "amount_cents": 7407,
                        "amount_currency": "EUR",
                        "created_at": iso(fee_tax.created_at),
                    }
                ],
                "presentation_breakdowns": [],
            }
        ],
        "credits": [],
        "error_details": [],
        "applied_invoice_custom_sections": [],
    }


def test_show_lists_subscriptions_billing_periods_and_coupon_credits(api, organization):
    customer = CustomerFactory(organization=organization)
    applied = apply_coupon(organization, customer, name="Welcome", code="welcome")
    invoice = build_invoice(
        organization,
        customer=customer,
        invoice_type="subscription",
        fees=[FeeSpec(kind="subscription", amount_cents=5000)],
        applied_coupon=applied,
        coupon_amount_cents=1000,
    )
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()["invoice"]
    subscription = invoice.fees.get().subscription
    assert [s["external_id"] for s in body["subscriptions"]] == [subscription.external_id]
    (period,) = body["billing_periods"]
    assert period["lago_subscription_id"] == str(subscription.pk)
    assert period["invoicing_reason"] == "subscription_periodic"
    assert period["subscription_from_datetime"] == "2026-01-31T23:00:00Z"  # Paris midnight
    (credit,) = body["credits"]
    assert credit["amount_cents"] == 1000
    assert credit["before_taxes"] is True
    assert credit["item"] == {
        "lago_item_id": str(applied.coupon_id),
        "type": "coupon",
        "code": "welcome",
        "name": "Welcome",
    }
    assert credit["invoice"] == {"lago_id": str(invoice.pk), "payment_status": "pending"}
    assert body["coupons_amount_cents"] == 1000
    assert body["fees"][0]["item"]["type"] == "subscription"
    assert body["fees"][0]["from_date"] == "2026-01-31T23:00:00Z"


def test_list_is_paginated_newest_first_within_a_query_ceiling(
    api, organization, django_assert_max_num_queries
):
    for day in (1, 3, 2):
        build_invoice(organization, issuing_date=dt.date(2026, 3, day))
    with django_assert_max_num_queries(12):
        response = api.get("/api/v1/invoices", {"per_page": 2})
    body = response.json()
    assert [i["issuing_date"] for i in body["invoices"]] == ["2026-03-03", "2026-03-02"]
    assert body["meta"] == {
        "current_page": 1,
        "next_page": 2,
        "prev_page": None,
        "total_pages": 2,
        "total_count": 3,
    }
    assert "fees" not in body["invoices"][0]  # Lago lists without fees
    assert {"customer", "metadata", "applied_taxes"} <= body["invoices"][0].keys()


def numbers(response) -> set[str]:
    assert response.status_code == 200, response.json()
    return {invoice["number"] for invoice in response.json()["invoices"]}


def test_list_filters_on_status_payment_and_customer(api, organization):
    customer = CustomerFactory(organization=organization, name="Initech", email="ap@initech.test")
    build_invoice(organization, number="A-1", customer=customer)
    build_invoice(organization, number="A-2", payment_status="succeeded")
    build_invoice(organization, status="draft")
    build_invoice(organization, status="voided", number="Z-3")
    query = "/api/v1/invoices?statuses[]=finalized&statuses[]=voided"
    assert numbers(api.get(query)) == {"A-1", "A-2", "Z-3"}
    assert numbers(api.get("/api/v1/invoices?payment_statuses[]=succeeded")) == {"A-2"}
    assert numbers(api.get("/api/v1/invoices", {"external_customer_id": customer.external_id})) == {
        "A-1"
    }
    assert numbers(api.get("/api/v1/invoices", {"search_term": "initech"})) == {"A-1"}
    # "Z-3", not "A-3": an "a-3" can occur in another invoice's lago_id, which is searched too
    assert numbers(api.get("/api/v1/invoices", {"search_term": "Z-3"})) == {"Z-3"}


def test_list_filters_on_amounts_dates_currency_type_and_overdue(api, organization):
    build_invoice(organization, number="B-1", fees=[FeeSpec(amount_cents=1000)])
    build_invoice(
        organization,
        number="B-2",
        fees=[FeeSpec(amount_cents=5000)],
        issuing_date=dt.date(2026, 4, 10),
        invoice_type="subscription",
    )
    build_invoice(organization, number="B-3", currency="USD", fees=[FeeSpec(amount_cents=9000)])
    Invoice.objects.filter(number="B-3").update(payment_overdue=True)
    assert numbers(api.get("/api/v1/invoices", {"amount_from": 2000, "amount_to": 6000})) == {"B-2"}
    assert numbers(api.get("/api/v1/invoices", {"issuing_date_from": "2026-04-01"})) == {"B-2"}
    assert numbers(api.get("/api/v1/invoices", {"issuing_date_to": "2026-03-31"})) == {
        "B-1",
        "B-3",
    }
    assert numbers(api.get("/api/v1/invoices", {"currency": "USD"})) == {"B-3"}
    assert numbers(api.get("/api/v1/invoices", {"invoice_type": "subscription"})) == {"B-2"}
    assert numbers(api.get("/api/v1/invoices", {"payment_overdue": "true"})) == {"B-3"}


def test_list_filters_on_metadata_and_billing_entities(api, organization):
    tagged = build_invoice(organization, number="C-1")
    build_invoice(organization, number="C-2")
    InvoiceMetadata.objects.create(
        organization=organization, invoice=tagged, key="po", value="PO-77"
    )
    assert numbers(api.get("/api/v1/invoices", {"metadata[po]": "PO-77"})) == {"C-1"}
    assert numbers(api.get("/api/v1/invoices", {"metadata[po]": ""})) == {"C-2"}
    entity = billing_entity_create(organization=organization, code="eu", name="EU")
    other = CustomerFactory(organization=organization, billing_entity=entity)
    build_invoice(organization, customer=other, number="C-3")
    assert numbers(api.get("/api/v1/invoices?billing_entity_codes[]=eu")) == {"C-3"}
    response = api.get("/api/v1/invoices?billing_entity_codes[]=nope")
    assert response.status_code == 404
    assert response.json()["code"] == "billing_entity_not_found"


def test_list_refuses_an_unknown_status(api, organization):
    response = api.get("/api/v1/invoices?statuses[]=paid")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"statuses": ["value_is_invalid"]}


@pytest.mark.parametrize("status", ["generating", "closed", "deleted"])
def test_internal_statuses_are_neither_listed_nor_shown(api, organization, status):
    invoice = build_invoice(organization, status=status)
    assert api.get("/api/v1/invoices").json()["invoices"] == []
    response = api.get(f"/api/v1/invoices/{invoice.pk}")
    assert response.status_code == 404
    assert response.json()["code"] == "invoice_not_found"


def test_another_tenants_invoice_is_not_found(api, other_organization):
    invoice = build_invoice(other_organization, currency="USD")
    assert api.get(f"/api/v1/invoices/{invoice.pk}").status_code == 404
    assert api.get("/api/v1/invoices/not-a-uuid").status_code == 404
    assert api.put(f"/api/v1/invoices/{invoice.pk}/void").status_code in (404, 405)
    assert api.post(f"/api/v1/invoices/{invoice.pk}/void").status_code == 404


def test_customer_invoices_lists_only_that_customer(api, organization):
    customer = CustomerFactory(organization=organization)
    build_invoice(organization, customer=customer, number="D-1")
    build_invoice(organization, number="D-2")
    assert numbers(api.get(f"/api/v1/customers/{customer.external_id}/invoices")) == {"D-1"}
    response = api.get("/api/v1/customers/unknown/invoices")
    assert response.status_code == 404
    assert response.json()["code"] == "customer_not_found"


def test_update_sets_payment_status_and_replaces_metadata(api, organization):
    invoice = build_invoice(organization)
    kept = InvoiceMetadata.objects.create(
        organization=organization, invoice=invoice, key="po", value="1"
    )
    InvoiceMetadata.objects.create(organization=organization, invoice=invoice, key="old", value="x")
    response = api.put(
        f"/api/v1/invoices/{invoice.pk}",
        {
            "invoice": {
                "payment_status": "succeeded",
                "metadata": [{"id": str(kept.pk), "key": "po", "value": "2"}, {"key": "new"}],
            }
        },
        format="json",
    )
    assert response.status_code == 200
    body = response.json()["invoice"]
    assert body["payment_status"] == "succeeded"
    assert body["total_paid_amount_cents"] == invoice.total_amount_cents
    assert body["total_due_amount_cents"] == 0
    assert [(m["key"], m["value"]) for m in body["metadata"]] == [("po", "2"), ("new", "")]
    assert body["metadata"][0]["lago_id"] == str(kept.pk)
    event = OutboxEvent.objects.get(event_type="invoice.payment_status_updated")
    assert event.object_id == str(invoice.pk)


def test_update_refuses_the_payment_status_of_a_draft(api, organization):
    invoice = build_invoice(organization, status="draft")
    response = api.put(
        f"/api/v1/invoices/{invoice.pk}",
        {"invoice": {"payment_status": "succeeded"}},
        format="json",
    )
    assert response.status_code == 405
    assert response.json()["code"] == "payment_status_update_on_draft_invoice"


def test_update_refuses_an_unknown_payment_status(api, organization):
    invoice = build_invoice(organization)
    response = api.put(
        f"/api/v1/invoices/{invoice.pk}", {"invoice": {"payment_status": "paid"}}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == {"payment_status": ["value_is_invalid"]}


def test_void_voids_a_finalized_unpaid_invoice(api, organization):
    invoice = build_invoice(organization)
    response = api.post(f"/api/v1/invoices/{invoice.pk}/void")
    assert response.status_code == 200
    body = response.json()["invoice"]
    assert body["status"] == "voided"
    assert body["voided_at"] is not None
    assert body["total_due_amount_cents"] == 0


def test_an_api_void_records_the_api_key_as_the_actor(api, api_key, organization):
    invoice = build_invoice(organization)
    api.post(f"/api/v1/invoices/{invoice.pk}/void")
    event = OutboxEvent.objects.get(event_type="invoice.voided")
    assert (event.actor_type, event.actor_id) == ("api_key", str(api_key[0].pk))


def test_void_refuses_a_paid_invoice_unless_asked_explicitly(api, organization):
    invoice = build_invoice(organization, payment_status="succeeded")
    response = api.post(f"/api/v1/invoices/{invoice.pk}/void")
    assert response.status_code == 405
    assert response.json()["code"] == "not_voidable"
    response = api.post(
        f"/api/v1/invoices/{invoice.pk}/void", {"generate_credit_note": False}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["invoice"]["status"] == "voided"


def test_lose_dispute_marks_the_invoice(api, organization):
    invoice = build_invoice(organization)
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)
    response = api.post(f"/api/v1/invoices/{invoice.pk}/lose_dispute")
    assert response.status_code == 200
    body = response.json()["invoice"]
    assert body["payment_dispute_lost_at"] is not None
    assert body["payment_overdue"] is False
    draft = build_invoice(organization, status="draft")
    response = api.put(f"/api/v1/invoices/{draft.pk}/lose_dispute")  # the client's verb
    assert response.status_code == 405
    assert response.json()["code"] == "not_disputable"


def test_download_renders_the_pdf_and_serves_it_by_signed_link(
    api, organization, settings, tmp_path, client
):
    settings.MEDIA_ROOT = tmp_path
    invoice = build_invoice(organization, number="ACM-0099")
    response = api.post(f"/api/v1/invoices/{invoice.pk}/download")
    assert response.status_code == 200
    file_url = response.json()["invoice"]["file_url"]
    assert file_url.startswith("http://testserver/api/v1/invoices/files/")
    pdf = client.get(file_url.removeprefix("http://testserver"))
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")
    assert 'filename="ACM-0099.pdf"' in pdf["Content-Disposition"]
    tampered = client.get(file_url.removeprefix("http://testserver")[:-3] + "abc")
    assert tampered.status_code == 404
    assert api.get(f"/api/v1/invoices/{invoice.pk}").json()["invoice"]["file_url"]


def test_download_of_a_draft_is_not_found(api, organization):
    draft = build_invoice(organization, status="draft")
    assert api.post(f"/api/v1/invoices/{draft.pk}/download").status_code == 404


def test_delete_refuses_a_finalized_invoice(api, organization):
    invoice = build_invoice(organization)
    response = api.delete(f"/api/v1/invoices/{invoice.pk}")
    assert response.status_code == 405
    assert response.json()["code"] == "not_deletable"


def test_retry_refuses_an_invoice_that_did_not_fail(api, organization):
    invoice = build_invoice(organization)
    response = api.post(f"/api/v1/invoices/{invoice.pk}/retry")
    assert response.status_code == 405
    assert response.json()["code"] == "invalid_status"


def test_finalize_of_a_finalized_invoice_is_not_found(api, organization):
    invoice = build_invoice(organization)
    assert api.put(f"/api/v1/invoices/{invoice.pk}/finalize").status_code == 404


def test_refresh_of_a_finalized_invoice_changes_nothing(api, organization):
    invoice = build_invoice(organization)
    response = api.put(f"/api/v1/invoices/{invoice.pk}/refresh")
    assert response.status_code == 200
    assert response.json()["invoice"]["total_amount_cents"] == invoice.total_amount_cents


def test_a_key_without_the_invoice_permission_is_refused(organization):
    _, raw = api_key_create(organization=organization, permissions={"invoice": ["read"]})
    client = client_for(raw)
    invoice = build_invoice(organization)
    assert client.get("/api/v1/invoices").status_code == 200
    assert client.post(f"/api/v1/invoices/{invoice.pk}/void").status_code == 403


def test_preview_of_a_new_subscription_for_an_inline_customer(api, organization):
    from tests.plans.factories import PlanFactory

    PlanFactory(organization=organization, code="pro", amount_cents=9900, pay_in_advance=True)
    response = api.post(
        "/api/v1/invoices/preview",
        {
            "customer": {"name": "Prospect", "currency": "EUR"},
            "plan_code": "pro",
            "subscription_at": "2026-03-01T00:00:00Z",
            "coupons": [
                {
                    "code": "ten",
                    "coupon_type": "fixed_amount",
                    "amount_cents": 1000,
                    "amount_currency": "EUR",
                }
            ],
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()["invoice"]
    assert body["lago_id"] is None
    assert body["customer"]["name"] == "Prospect"
    assert body["fees"][0]["item"]["code"] == "pro"
    assert body["coupons_amount_cents"] == 1000
    assert body["total_amount_cents"] == body["fees_amount_cents"] - 1000
    assert Invoice.objects.count() == 0


def test_preview_of_an_existing_subscription(api, organization):
    from tests.customers.factories import SubscriptionFactory

    subscription = SubscriptionFactory(organization=organization, external_id="sub_1")
    response = api.post(
        "/api/v1/invoices/preview",
        {
            "customer": {"external_id": subscription.customer.external_id},
            "subscriptions": {"external_ids": ["sub_1"]},
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()["invoice"]
    assert body["subscriptions"][0]["external_id"] == "sub_1"
    assert body["customer"]["external_id"] == subscription.customer.external_id
    assert Invoice.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        pytest.param({"plan_code": "nope"}, 404, "plan_not_found", id="plan"),
        pytest.param({"customer": {"external_id": "nobody"}}, 404, "customer_not_found", id="cust"),
        pytest.param({"coupons": {"code": "x"}}, 400, None, id="coupons-not-array"),
    ],
)
def test_preview_refuses_bad_requests(api, organization, payload, status, code):
    response = api.post("/api/v1/invoices/preview", payload, format="json")
    assert response.status_code == status
    assert response.json().get("code") == code
