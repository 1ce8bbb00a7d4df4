"""POST/GET/PUT /credit_notes, estimate, void, metadata, download: through DRF."""

from __future__ import annotations

import pytest

from billing.models import OutboxEvent
from invoicing.models import CreditNote, Invoice
from tests.invoicing.credit_note_builders import simple_invoice, v75_invoice, v76_invoice

pytestmark = pytest.mark.django_db


def _fees(invoice):
    return list(invoice.fees.order_by("created_at", "id"))


def _create(api, invoice, items, **amounts):
    body = {"invoice_id": str(invoice.pk), "items": items, **amounts}
    return api.post("/api/v1/credit_notes", {"credit_note": body}, format="json")


def test_estimate_on_full_fees_of_v75(api, organization):
    invoice = v75_invoice(organization)
    fee1, fee2 = _fees(invoice)
    response = api.post(
        "/api/v1/credit_notes/estimate",
        {
            "credit_note": {
                "invoice_id": str(invoice.pk),
                "items": [
                    {"fee_id": str(fee1.pk), "amount_cents": 17900},
                    {"fee_id": str(fee2.pk), "amount_cents": 39900},
                ],
            }
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    estimate = response.json()["estimated_credit_note"]
    assert estimate["taxes_amount_cents"] == 4770
    assert estimate["sub_total_excluding_taxes_amount_cents"] == 32800
    assert estimate["max_creditable_amount_cents"] == 37570
    assert estimate["coupons_adjustment_amount_cents"] == 25000
    assert estimate["max_refundable_amount_cents"] == 1200  # what was paid
    assert estimate["max_offsettable_amount_cents"] == 37570 - 1200
    assert estimate["lago_invoice_id"] == str(invoice.pk)
    assert {item["lago_fee_id"] for item in estimate["items"]} == {str(fee1.pk), str(fee2.pk)}
    assert sorted(tax["amount_cents"] for tax in estimate["applied_taxes"]) == [1490, 1490, 1790]


def test_v75_refund_of_a_partially_couponed_fee(api, organization):
    invoice = v75_invoice(organization, total_paid_amount_cents=11767)
    _, fee2 = _fees(invoice)
    response = _create(
        api, invoice, [{"fee_id": str(fee2.pk), "amount_cents": 26260}], refund_amount_cents=11767
    )
    assert response.status_code == 200, response.json()
    note = response.json()["credit_note"]
    assert note["coupons_adjustment_amount_cents"] == 16454
    assert note["sub_total_excluding_taxes_amount_cents"] == 9806
    assert note["taxes_amount_cents"] == 1961
    assert note["total_amount_cents"] == 11767
    assert note["refund_amount_cents"] == 11767
    assert note["credit_amount_cents"] == 0
    assert note["taxes_rate"] == 20
    assert note["refund_status"] == "pending"
    assert note["credit_status"] is None
    assert note["number"] == f"{invoice.number}-CN001"
    assert note["sequential_id"] == 1
    assert note["items"][0]["amount_cents"] == 26260
    assert note["items"][0]["fee"]["lago_id"] == str(fee2.pk)


def test_v76_rounding_on_a_small_item(api, organization):
    invoice = v76_invoice(organization)
    assert invoice.taxes_amount_cents == 2733
    assert invoice.total_amount_cents == 16399
    fee = _fees(invoice)[0]
    response = _create(
        api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 6833}], credit_amount_cents=8200
    )
    assert response.status_code == 200, response.json()
    note = response.json()["credit_note"]
    assert note["taxes_amount_cents"] == 1367
    assert note["total_amount_cents"] == 8200
    assert note["credit_status"] == "available"
    assert note["balance_amount_cents"] == 8200


def test_a_cent_of_rounding_is_absorbed_by_the_credit(api, organization):
    invoice = v76_invoice(organization)
    fee = _fees(invoice)[0]
    response = _create(
        api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 6833}], credit_amount_cents=8201
    )
    assert response.status_code == 200, response.json()
    assert response.json()["credit_note"]["credit_amount_cents"] == 8200


def test_numbers_run_per_invoice(api, organization):
    invoice = simple_invoice(organization)
    other = simple_invoice(organization)
    fee = _fees(invoice)[0]
    for _ in range(2):
        _create(
            api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 1000}], credit_amount_cents=1200
        )
    _create(
        api, other, [{"fee_id": str(_fees(other)[0].pk), "amount_cents": 1000}],
        credit_amount_cents=1200,
    )  # fmt: skip
    numbers = sorted(CreditNote.objects.values_list("number", flat=True))
    assert numbers == sorted(
        [f"{invoice.number}-CN001", f"{invoice.number}-CN002", f"{other.number}-CN001"]
    )


def test_offset_lowers_the_amount_due_and_pays_the_invoice_at_zero(api, organization):
    invoice = simple_invoice(organization)  # 10,000 + 2,000 tax, unpaid
    fee = _fees(invoice)[0]
    first = _create(
        api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 4000}], offset_amount_cents=4800
    )
    assert first.status_code == 200, first.json()
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()["invoice"]
    assert body["total_offsetted_credit_note_amount_cents"] == 4800
    assert body["total_due_amount_cents"] == 7200
    assert body["payment_status"] == "pending"
    _create(api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 6000}], offset_amount_cents=7200)
    invoice.refresh_from_db()
    assert invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()["invoice"]
    assert body["total_due_amount_cents"] == 0


def test_create_records_credit_note_created(api, organization):
    invoice = simple_invoice(organization)
    fee = _fees(invoice)[0]
    response = _create(
        api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 1000}], credit_amount_cents=1200
    )
    event = OutboxEvent.objects.get(event_type="credit_note.created")
    assert event.object_id == response.json()["credit_note"]["lago_id"]
    assert event.payload["total_amount_cents"] == 1200


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amounts", "field", "code"),
    [
        pytest.param(
            {"credit_amount_cents": 1000}, "base", "does_not_match_item_amounts", id="sum",
        ),
        pytest.param(
            {"refund_amount_cents": 1200}, "refund_amount_cents", "cannot_refund_unpaid_invoice",
            id="refund-unpaid",
        ),
        pytest.param({}, "base", "total_amount_must_be_positive", id="nothing"),
    ],
)  # fmt: skip
def test_split_rules_answer_422(api, organization, amounts, field, code):
    invoice = simple_invoice(organization)
    fee = _fees(invoice)[0]
    response = _create(api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 1000}], **amounts)
    assert response.status_code == 422
    assert code in response.json()["error_details"][field]
    assert not CreditNote.objects.exists()


def test_refund_above_what_is_left_paid_is_refused(api, organization):
    invoice = simple_invoice(organization, paid=True)  # 12,000 paid
    fee = _fees(invoice)[0]
    _create(api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 6000}], refund_amount_cents=7200)
    # 4,800 paid left; the item's total is 4,800, one cent more is within the rounding tolerance
    # of the split but not within what was paid
    response = _create(
        api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 4000}], refund_amount_cents=4801
    )
    assert response.status_code == 422
    assert response.json()["error_details"]["refund_amount_cents"] == [
        "higher_than_remaining_invoice_amount"
    ]


def test_refund_beyond_the_remaining_paid_amount(api, organization):
    invoice = v75_invoice(organization, total_paid_amount_cents=1200)
    _, fee2 = _fees(invoice)
    response = _create(
        api, invoice, [{"fee_id": str(fee2.pk), "amount_cents": 26260}], refund_amount_cents=11767
    )
    assert response.status_code == 422
    assert response.json()["error_details"]["refund_amount_cents"] == [
        "higher_than_remaining_invoice_amount"
    ]


def test_offset_beyond_the_amount_due(api, organization):
    invoice = simple_invoice(organization, paid=True)
    fee = _fees(invoice)[0]
    response = _create(
        api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 1000}], offset_amount_cents=1200
    )
    assert response.status_code == 422
    assert response.json()["error_details"]["offset_amount_cents"] == [
        "higher_than_remaining_invoice_amount"
    ]


def test_item_above_the_fee_remaining_amount(api, organization):
    invoice = simple_invoice(organization)
    fee = _fees(invoice)[0]
    response = _create(
        api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 10001}], credit_amount_cents=12001
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == {
        "amount_cents": ["higher_than_remaining_fee_amount"]
    }


def test_negative_item_amount(api, organization):
    invoice = simple_invoice(organization)
    fee = _fees(invoice)[0]
    response = _create(api, invoice, [{"fee_id": str(fee.pk), "amount_cents": -1}])
    assert response.status_code == 422
    assert response.json()["error_details"] == {"amount_cents": ["invalid_value"]}


def test_credit_beyond_the_invoice_remaining_amount(api, organization):
    invoice = simple_invoice(organization)
    fee = _fees(invoice)[0]
    _create(
        api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 10000}], credit_amount_cents=12000
    )
    response = _create(
        api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 0}], credit_amount_cents=10
    )
    assert response.status_code == 422
    details = response.json()["error_details"]
    assert "higher_than_remaining_invoice_amount" in details["credit_amount_cents"]


def test_fee_of_another_invoice_is_not_found(api, organization):
    invoice = simple_invoice(organization)
    other = simple_invoice(organization)
    response = _create(
        api, invoice, [{"fee_id": str(_fees(other)[0].pk), "amount_cents": 100}],
        credit_amount_cents=120,
    )  # fmt: skip
    assert response.status_code == 404
    assert response.json()["code"] == "fee_not_found"


@pytest.mark.parametrize("status", ["draft", "voided"])
def test_draft_and_voided_invoices_cannot_be_credited(api, organization, status):
    invoice = simple_invoice(organization, status=status)
    fee = _fees(invoice)[0]
    response = _create(
        api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 100}], credit_amount_cents=120
    )
    assert response.status_code == 405
    assert response.json()["code"] == "invalid_type_or_status"


def test_credit_invoice_refuses_credit(api, organization):
    invoice = simple_invoice(organization, invoice_type="credit", paid=True)
    fee = _fees(invoice)[0]
    response = _create(
        api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 1000}], credit_amount_cents=1200
    )
    assert response.status_code == 422
    assert response.json()["error_details"]["credit_amount_cents"] == ["cannot_credit_invoice"]


def test_unknown_reason(api, organization):
    invoice = simple_invoice(organization)
    fee = _fees(invoice)[0]
    response = _create(
        api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 100}], credit_amount_cents=120,
        reason="whim",
    )  # fmt: skip
    assert response.status_code == 422
    assert response.json()["error_details"] == {"reason": ["value_is_invalid"]}


def test_items_must_be_a_list(api, organization):
    invoice = simple_invoice(organization)
    response = api.post(
        "/api/v1/credit_notes",
        {"credit_note": {"invoice_id": str(invoice.pk), "items": "x"}},
        format="json",
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == {"items": ["must_be_an_array"]}


# --- reads, update, void, metadata, tenancy ----------------------------------------------------


@pytest.fixture
def note(api, organization):
    invoice = simple_invoice(organization, paid=True)
    fee = _fees(invoice)[0]
    response = _create(
        api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 5000}],
        credit_amount_cents=3000, refund_amount_cents=3000, reason="order_change",
        description="Too much", metadata={"ticket": "T-1"},
    )  # fmt: skip
    assert response.status_code == 200, response.json()
    return response.json()["credit_note"]


def test_find_and_list_with_filters(api, organization, note):
    assert api.get(f"/api/v1/credit_notes/{note['lago_id']}").json()["credit_note"] == note
    assert note["metadata"] == {"ticket": "T-1"}
    listed = api.get("/api/v1/credit_notes").json()
    assert listed["meta"]["total_count"] == 1
    for query, count in [
        ("reason[]=order_change", 1),
        ("reason[]=other", 0),
        ("credit_status[]=available", 1),
        ("refund_status[]=succeeded", 0),
        (f"invoice_number={note['invoice_number']}", 1),
        ("amount_from=6000&amount_to=6000", 1),
        ("amount_from=6001", 0),
        ("currency=EUR", 1),
        ("currency=USD", 0),
        (f"search_term={note['number']}", 1),
        (f"external_customer_id={note['customer']['external_id']}", 1),
        ("external_customer_id=nobody", 0),
        ("self_billed=false", 1),
        ("issuing_date_from=2000-01-01", 1),
        ("issuing_date_to=2000-01-01", 0),
    ]:
        body = api.get(f"/api/v1/credit_notes?{query}").json()
        assert body["meta"]["total_count"] == count, query
    customer = note["customer"]["external_id"]
    assert api.get(f"/api/v1/customers/{customer}/credit_notes").json()["meta"]["total_count"] == 1


def test_refund_status_is_recorded_by_update(api, note):
    response = api.put(
        f"/api/v1/credit_notes/{note['lago_id']}",
        {"credit_note": {"refund_status": "succeeded"}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["credit_note"]["refund_status"] == "succeeded"
    bad = api.put(
        f"/api/v1/credit_notes/{note['lago_id']}",
        {"credit_note": {"refund_status": "maybe"}},
        format="json",
    )
    assert bad.status_code == 422


def test_refund_failure_records_its_event(api, note):
    api.put(
        f"/api/v1/credit_notes/{note['lago_id']}",
        {"credit_note": {"refund_status": "failed"}},
        format="json",
    )
    assert OutboxEvent.objects.filter(event_type="credit_note.refund_failure").count() == 1


def test_void_gives_up_the_remaining_credit_once(api, note):
    response = api.put(f"/api/v1/credit_notes/{note['lago_id']}/void")
    assert response.status_code == 200
    body = response.json()["credit_note"]
    assert (body["credit_status"], body["balance_amount_cents"]) == ("voided", 0)
    again = api.put(f"/api/v1/credit_notes/{note['lago_id']}/void")
    assert again.status_code == 405
    assert again.json()["code"] == "no_voidable_amount"


def test_metadata_endpoints(api, note):
    url = f"/api/v1/credit_notes/{note['lago_id']}/metadata"
    assert api.post(url, {"metadata": {"a": "1"}}, format="json").json() == {"metadata": {"a": "1"}}
    merged = api.patch(url, {"metadata": {"b": "2"}}, format="json").json()
    assert merged == {"metadata": {"a": "1", "b": "2"}}
    assert api.delete(f"{url}/a").json() == {"metadata": {"b": "2"}}
    assert api.delete(url).json() == {"metadata": None}


def test_download_renders_the_pdf(api, note):
    response = api.post(f"/api/v1/credit_notes/{note['lago_id']}/download")
    assert response.status_code == 200
    file_url = response.json()["credit_note"]["file_url"]
    assert file_url
    pdf = api.get(file_url)
    assert pdf.status_code == 200
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")
    assert OutboxEvent.objects.filter(event_type="credit_note.generated").count() == 1


def test_another_organization_cannot_see_or_touch_it(other_api, note, organization):
    lago_id = note["lago_id"]
    assert other_api.get(f"/api/v1/credit_notes/{lago_id}").status_code == 404
    assert other_api.put(f"/api/v1/credit_notes/{lago_id}/void").status_code == 404
    assert other_api.get("/api/v1/credit_notes").json()["meta"]["total_count"] == 0
    response = other_api.post(
        "/api/v1/credit_notes",
        {"credit_note": {"invoice_id": note["lago_invoice_id"], "items": []}},
        format="json",
    )
    assert response.status_code == 404
    assert response.json()["code"] == "invoice_not_found"


def test_invoice_shows_the_credit_notes_it_consumed(api, organization):
    invoice = simple_invoice(organization)
    assert (
        api.get(f"/api/v1/invoices/{invoice.pk}").json()["invoice"]["credit_notes_amount_cents"]
        == 0
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"credit_amount_cents": 2**63}, 422, id="credit-past-bigint"),
        pytest.param({"credit_amount_cents": -5}, 422, id="negative-credit"),
        pytest.param({"items": [{"fee_id": "x", "amount_cents": "abc"}]}, 422, id="text-amount"),
        pytest.param({"items": [{"fee_id": "x", "amount_cents": 1e300}]}, 422, id="huge-amount"),
        pytest.param({"items": [None]}, 422, id="null-item"),
        pytest.param({"metadata": ["a"]}, 422, id="metadata-list"),
        pytest.param({"invoice_id": "not-a-uuid"}, 404, id="bad-invoice-id"),
    ],
)
def test_hostile_input_is_a_4xx_and_writes_nothing(api, organization, body, status):
    invoice = simple_invoice(organization)
    fee = _fees(invoice)[0]
    payload = {
        "invoice_id": str(invoice.pk),
        "items": [{"fee_id": str(fee.pk), "amount_cents": 1000}],
        "credit_amount_cents": 1200,
        **body,
    }
    response = api.post("/api/v1/credit_notes", {"credit_note": payload}, format="json")
    assert response.status_code == status, response.json()
    assert not CreditNote.objects.exists()


def test_list_reads_a_fixed_number_of_queries(api, organization, django_assert_max_num_queries):
    for _ in range(3):
        invoice = simple_invoice(organization)
        fee = _fees(invoice)[0]
        _create(
            api, invoice, [{"fee_id": str(fee.pk), "amount_cents": 1000}], credit_amount_cents=1200
        )
    with django_assert_max_num_queries(20):
        body = api.get("/api/v1/credit_notes").json()
    assert body["meta"]["total_count"] == 3
