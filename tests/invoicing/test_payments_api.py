"""`/payments`, `/payment_receipts`, `/payment_requests` through DRF's client (Lago's wire)."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.actors import SYSTEM
from invoicing.models import Invoice, PaymentReceipt
from invoicing.services.payment_settlement import payment_create_manual
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 4, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _no_receipt_pdf(settings):
    settings.RECEIPT_PDF_ON_CREATE = False


def post_payment(api, **payment):
    return api.post("/api/v1/payments", {"payment": payment}, format="json")


def overdue(invoice):
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)
    invoice.refresh_from_db()
    return invoice


def test_post_payments_answers_the_whole_payment_object(api, organization):
    customer = CustomerFactory(organization=organization, external_id="globex")
    invoice = build_invoice(
        organization, customer=customer, fees=[FeeSpec(amount_cents=10000)], number="ACM-0042"
    )
    response = post_payment(
        api,
        invoice_id=str(invoice.pk),
        amount_cents=2500,
        reference="wire 7",
        paid_at="2026-03-20T10:00:00Z",
    )
    assert response.status_code == 200, response.json()
    body = response.json()["payment"]
    lago_id = body.pop("lago_id")
    assert body == {
        "lago_customer_id": str(customer.pk),
        "external_customer_id": "globex",
        "invoice_ids": [str(invoice.pk)],
        "invoice_numbers": ["ACM-0042"],
        "lago_payable_id": str(invoice.pk),
        "payable_type": "Invoice",
        "amount_cents": 2500,
        "amount_currency": "EUR",
        "status": "succeeded",
        "payment_status": "succeeded",
        "type": "manual",
        "reference": "wire 7",
        "payment_provider_code": None,
        "payment_provider_type": None,
        "external_payment_id": None,
        "provider_payment_id": None,
        "provider_customer_id": None,
        "next_action": {},
        "created_at": "2026-03-20T10:00:00Z",
    }
    again = api.get(f"/api/v1/payments/{lago_id}").json()["payment"]
    assert again["amount_cents"] == 2500
    detail = api.get(f"/api/v1/invoices/{invoice.pk}").json()["invoice"]
    assert detail["total_paid_amount_cents"] == 2500
    assert detail["total_due_amount_cents"] == 7500
    assert detail["payment_status"] == "pending"


def test_the_payment_completing_the_invoice_turns_it_succeeded(api, organization):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)])
    post_payment(api, invoice_id=str(invoice.pk), amount_cents=4000, reference="a")
    post_payment(api, invoice_id=str(invoice.pk), amount_cents=6000, reference="b")
    detail = api.get(f"/api/v1/invoices/{invoice.pk}").json()["invoice"]
    assert detail["payment_status"] == "succeeded"
    assert detail["total_due_amount_cents"] == 0


@pytest.mark.parametrize(
    ("payment", "status", "code", "details"),
    [
        pytest.param(
            {"amount_cents": 10, "reference": "r"},
            422,
            "validation_errors",
            {"invoice_id": ["value_is_mandatory"]},
            id="no-invoice",
        ),
        pytest.param(
            {"invoice_id": "not-a-uuid", "amount_cents": 10, "reference": "r"},
            404,
            "invoice_not_found",
            None,
            id="unknown-invoice",
        ),
        pytest.param(
            {"invoice_id": "OURS", "amount_cents": 20001, "reference": "r"},
            422,
            "validation_errors",
            {"amount_cents": ["value_is_out_of_range"]},
            id="over-payment",
        ),
        pytest.param(
            {"invoice_id": "OURS", "amount_cents": 1.5, "reference": "r"},
            422,
            "validation_errors",
            {"amount_cents": ["invalid_value"]},
            id="not-an-integer",
        ),
        pytest.param(
            {"invoice_id": "OURS", "amount_cents": 10, "reference": "r", "paid_at": "yesterday"},
            422,
            "validation_errors",
            {"paid_at": ["invalid_date"]},
            id="bad-paid-at",
        ),
    ],
)
def test_bad_payments_get_lago_errors(api, organization, payment, status, code, details):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=20000)])
    if payment.get("invoice_id") == "OURS":
        payment["invoice_id"] = str(invoice.pk)
    response = post_payment(api, **payment)
    assert response.status_code == status, response.json()
    body = response.json()
    assert body["code"] == code
    if details is not None:
        assert body["error_details"] == details
    assert api.get("/api/v1/payments").json()["meta"]["total_count"] == 0


def test_a_draft_invoice_cannot_be_paid(api, organization):
    invoice = build_invoice(organization, status="draft")
    response = post_payment(api, invoice_id=str(invoice.pk), amount_cents=10, reference="r")
    assert response.status_code == 405
    assert response.json()["code"] == "invoice_not_finalized"


def test_payments_list_filters_by_invoice_customer_and_currency(api, organization):
    first = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)])
    second = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)], currency="USD")
    for invoice in (first, second):
        payment_create_manual(
            payable=invoice, amount_cents=100, reference="r", paid_at=None, actor=SYSTEM, now=NOW
        )
    by_invoice = api.get("/api/v1/payments", {"invoice_id": str(first.pk)}).json()
    assert [p["invoice_ids"] for p in by_invoice["payments"]] == [[str(first.pk)]]
    by_customer = api.get(
        "/api/v1/payments", {"external_customer_id": second.customer.external_id}
    ).json()
    assert [p["amount_currency"] for p in by_customer["payments"]] == ["USD"]
    by_currency = api.get("/api/v1/payments", {"currency": "EUR"}).json()
    assert by_currency["meta"]["total_count"] == 1
    scoped = api.get(f"/api/v1/customers/{first.customer.external_id}/payments").json()
    assert [p["lago_payable_id"] for p in scoped["payments"]] == [str(first.pk)]


def test_another_organization_sees_and_pays_nothing_of_ours(api, other_api, organization):
    invoice = build_invoice(organization)
    payment = post_payment(api, invoice_id=str(invoice.pk), amount_cents=10, reference="r").json()
    lago_id = payment["payment"]["lago_id"]
    assert other_api.get(f"/api/v1/payments/{lago_id}").status_code == 404
    assert other_api.get("/api/v1/payments").json()["meta"]["total_count"] == 0
    refused = other_api.post(
        "/api/v1/payments",
        {"payment": {"invoice_id": str(invoice.pk), "amount_cents": 10, "reference": "r"}},
        format="json",
    )
    assert refused.status_code == 404
    assert other_api.get("/api/v1/payment_receipts").json()["meta"]["total_count"] == 0


def test_payments_list_stays_within_a_query_ceiling(
    api, organization, django_assert_max_num_queries
):
    for _ in range(5):
        invoice = build_invoice(organization)
        payment_create_manual(
            payable=invoice, amount_cents=100, reference="r", paid_at=None, actor=SYSTEM, now=NOW
        )
    with django_assert_max_num_queries(8):
        assert len(api.get("/api/v1/payments").json()["payments"]) == 5


def test_payment_receipts_list_and_detail(api, organization):
    invoice = build_invoice(organization, fees=[FeeSpec(amount_cents=10000)])
    payment = payment_create_manual(
        payable=invoice, amount_cents=100, reference="r", paid_at=None, actor=SYSTEM, now=NOW
    )
    receipt = PaymentReceipt.objects.get(payment=payment)
    listed = api.get("/api/v1/payment_receipts", {"invoice_id": str(invoice.pk)}).json()
    assert [r["lago_id"] for r in listed["payment_receipts"]] == [str(receipt.pk)]
    body = api.get(f"/api/v1/payment_receipts/{receipt.pk}").json()["payment_receipt"]
    assert body["number"] == receipt.number
    assert body["payment"]["lago_id"] == str(payment.pk)
    assert body["file_url"] is None  # rendered after commit, off in these tests
    assert body["xml_url"] is None
    other = build_invoice(organization)
    assert (
        api.get("/api/v1/payment_receipts", {"invoice_id": str(other.pk)}).json()["meta"][
            "total_count"
        ]
        == 0
    )
    assert api.get("/api/v1/payment_receipts/nope").status_code == 404


# --- payment requests ------------------------------------------------------------------------


def test_post_payment_requests_asks_for_the_overdue_invoices(api, organization):
    customer = CustomerFactory(organization=organization, external_id="globex", email="ap@x.io")
    first = overdue(build_invoice(organization, customer=customer, number="ACM-0100"))
    second = overdue(
        build_invoice(organization, customer=customer, fees=[FeeSpec(amount_cents=5000)])
    )
    response = api.post(
        "/api/v1/payment_requests",
        {
            "payment_request": {
                "external_customer_id": "globex",
                "lago_invoice_ids": [str(first.pk), str(second.pk)],
            }
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()["payment_request"]
    assert body["amount_cents"] == first.total_amount_cents + second.total_amount_cents
    assert body["amount_currency"] == "EUR"
    assert body["email"] == "ap@x.io"
    assert body["payment_status"] == "pending"
    assert body["customer"]["external_id"] == "globex"
    assert sorted(i["lago_id"] for i in body["invoices"]) == sorted([str(first.pk), str(second.pk)])
    listed = api.get("/api/v1/customers/globex/payment_requests").json()
    assert [r["lago_id"] for r in listed["payment_requests"]] == [body["lago_id"]]
    assert api.get(f"/api/v1/payment_requests/{body['lago_id']}").status_code == 200
    pending = api.get("/api/v1/payment_requests", {"payment_status": "succeeded"}).json()
    assert pending["meta"]["total_count"] == 0


@pytest.mark.parametrize(
    ("make", "status", "code"),
    [
        pytest.param("not_overdue", 405, "invoices_not_overdue", id="not-overdue"),
        pytest.param("currencies", 405, "invoices_have_different_currencies", id="currencies"),
        pytest.param("none", 404, "invoice_not_found", id="no-invoice"),
        pytest.param("customer", 404, "customer_not_found", id="unknown-customer"),
    ],
)
def test_payment_request_refusals(api, organization, make, status, code):
    customer = CustomerFactory(organization=organization, external_id="globex")
    eur = overdue(build_invoice(organization, customer=customer))
    ids = [str(eur.pk)]
    external_id = "globex"
    if make == "not_overdue":
        ids.append(str(build_invoice(organization, customer=customer).pk))
    elif make == "currencies":
        ids.append(str(overdue(build_invoice(organization, customer=customer, currency="USD")).pk))
    elif make == "none":
        ids = []
    else:
        external_id = "nobody"
    response = api.post(
        "/api/v1/payment_requests",
        {"payment_request": {"external_customer_id": external_id, "lago_invoice_ids": ids}},
        format="json",
    )
    assert response.status_code == status
    assert response.json()["code"] == code
    assert api.get("/api/v1/payment_requests").json()["meta"]["total_count"] == 0
