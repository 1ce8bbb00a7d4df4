"""Applied coupons as invoicing consumed them (spec §15.2, §15.3): `amount_cents_remaining` of a
fixed coupon applied once is its amount minus the credits that still consume it, and lists show
the coupon's credits (invoice credits of type coupon) with their invoice."""

from __future__ import annotations

from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.actors import SYSTEM
from customers.services.applied_coupons import applied_coupon_create
from invoicing.models import Credit, Invoice
from invoicing.services.void import invoice_void
from tests.invoicing.billing_helpers import bill, customer, only_invoice, plan, subscribe, utc
from tests.plans.factories import CouponFactory


def coupon_billed(
    organization,
    *,
    coupon_cents: int = 5_000,
    plan_cents: int = 3_000,
    external_id: str = "acme",
    code: str = "welcome",
):
    """A fixed coupon applied once, partly consumed by the finalized invoice of one period."""
    acme = customer(organization, external_id=external_id)
    coupon = CouponFactory(
        organization=organization,
        code=code,
        name="Welcome",
        amount_cents=coupon_cents,
        frequency="once",
    )
    applied = applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=utc(2024, 1, 1))
    subscribe(organization, acme, plan(organization, amount_cents=plan_cents), utc(2024, 1, 1))
    invoice = only_invoice(bill(acme, date(2024, 2, 1)))
    assert invoice.status == Invoice.Status.FINALIZED
    return applied, invoice


def expected_credit(credit: Credit, invoice: Invoice) -> dict:
    coupon = credit.applied_coupon.coupon
    return {
        "lago_id": str(credit.pk),
        "amount_cents": credit.amount_cents,
        "amount_currency": "EUR",
        "before_taxes": True,
        "item": {
            "lago_item_id": str(coupon.pk),
            "type": "coupon",
            "code": "welcome",
            "name": "Welcome",
            "description": coupon.description or None,
        },
        "invoice": {"lago_id": str(invoice.pk), "payment_status": invoice.payment_status},
    }


@pytest.mark.django_db
class TestApi:
    def test_the_list_shows_the_remaining_amount_and_the_credits(self, api, organization):
        applied, invoice = coupon_billed(organization)
        credit = Credit.objects.get(applied_coupon=applied)

        [body] = api.get("/api/v1/applied_coupons").json()["applied_coupons"]

        assert (body["amount_cents"], body["amount_cents_remaining"]) == (5_000, 2_000)
        assert body["credits"] == [expected_credit(credit, invoice)]

    def test_the_customer_list_shows_them_too(self, api, organization):
        coupon_billed(organization)

        [body] = api.get("/api/v1/customers/acme/applied_coupons").json()["applied_coupons"]

        assert body["amount_cents_remaining"] == 2_000
        assert [c["amount_cents"] for c in body["credits"]] == [3_000]

    def test_a_coupon_used_up_has_nothing_remaining(self, api, organization):
        coupon_billed(organization, coupon_cents=2_000, plan_cents=3_000)

        [body] = api.get("/api/v1/applied_coupons").json()["applied_coupons"]

        assert (body["status"], body["amount_cents_remaining"]) == ("terminated", 0)

    def test_voiding_the_invoice_gives_the_amount_back_and_keeps_the_credit_listed(
        self, api, organization
    ):
        _, invoice = coupon_billed(organization, coupon_cents=5_000, plan_cents=8_000)
        invoice_void(
            invoice=invoice, actor=SYSTEM, now=utc(2024, 2, 2)
        )  # 30 EUR due, unpaid: voidable

        [body] = api.get("/api/v1/applied_coupons").json()["applied_coupons"]

        assert (body["status"], body["amount_cents_remaining"]) == ("active", 5_000)
        assert [c["invoice"]["lago_id"] for c in body["credits"]] == [str(invoice.pk)]

    def test_terminating_renders_the_remaining_amount_without_credits(self, api, organization):
        applied, _ = coupon_billed(organization)

        response = api.delete(f"/api/v1/customers/acme/applied_coupons/{applied.pk}")

        body = response.json()["applied_coupon"]
        assert (body["status"], body["amount_cents_remaining"]) == ("terminated", 2_000)
        assert "credits" not in body  # as Lago: credits only in lists

    def test_the_list_reads_the_credits_of_the_whole_page_at_once(self, api, organization):
        def queries() -> int:
            with CaptureQueriesContext(connection) as captured:
                assert api.get("/api/v1/applied_coupons").status_code == 200
            return len(captured)

        coupon_billed(organization)
        queries()  # the first request of a key reads more (its last use is recorded)
        one = queries()
        coupon_billed(organization, external_id="globex", code="hello")

        assert queries() == one


@pytest.mark.django_db(transaction=True)
def test_the_lago_client_reads_the_remaining_amount_and_the_credits(lago, organization):
    applied, invoice = coupon_billed(organization)

    [found] = lago.applied_coupons.find_all({"external_customer_id": "acme"})["applied_coupons"]

    assert (found.lago_id, found.amount_cents_remaining) == (str(applied.pk), 2_000)
    [credit] = found.credits.__root__
    assert (credit.amount_cents, credit.item.type, credit.item.code) == (3_000, "coupon", "welcome")
    assert credit.invoice.lago_id == str(invoice.pk)
