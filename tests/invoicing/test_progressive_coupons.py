"""Coupons and progressive billing: a later invoice of the period deducts what a progressive
billing invoice billed after its coupons (spec §21.3: fees - coupons - earlier deductions -
credit notes; Lago `Subscriptions::ProgressiveBilledAmount`). Figures computed by hand from the
V92 / V94 plan: 3,100 a month in arrears, 0.0002 per unit, 1,000,000 units = 20,000."""

from __future__ import annotations

from datetime import date

import pytest

from invoicing.models import Credit, CreditNote
from tests.invoicing.billing_helpers import bill, only_invoice
from tests.invoicing.invoice_builders import apply_coupon
from tests.invoicing.progressive_builders import (
    progressive_invoices,
    terminate,
    upgrade,
    usage,
    v92_billing,
)

pytestmark = pytest.mark.django_db


def test_period_invoice_deducts_the_progressive_invoice_after_its_coupon(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    apply_coupon(organization, billing.customer, amount_cents=500, frequency="forever")
    usage(billing, "2022-12-06T10:00:00")
    usage(billing, "2022-12-16T10:00:00")
    [progressive] = progressive_invoices(billing)
    assert (progressive.coupons_amount_cents, progressive.total_amount_cents) == (500, 19_500)

    invoice = only_invoice(bill(billing.customer, date(2023, 1, 1)))

    # 43,100 - (20,000 - 500) = 23,600, then this invoice's own coupon 500
    assert invoice.fees_amount_cents == 43_100
    assert invoice.progressive_billing_credit_amount_cents == 19_500
    assert invoice.coupons_amount_cents == 500
    assert invoice.total_amount_cents == 23_100
    credit = Credit.objects.get(invoice=invoice, progressive_billing_invoice=progressive)
    assert credit.amount_cents == 19_500


def test_second_progressive_invoice_deducts_the_first_after_its_coupon(api, organization):
    billing = v92_billing(api, organization, [(20_000, False), (50_000, False)])
    apply_coupon(organization, billing.customer, amount_cents=500, frequency="forever")
    usage(billing, "2022-12-16T10:00:00")
    usage(billing, "2022-12-21T10:00:00")
    usage(billing, "2022-12-26T10:00:00")

    first, second = progressive_invoices(billing)

    assert first.total_amount_cents == 19_500
    # 60,000 - (20,000 - 500) = 40,500, then the coupon 500
    assert second.progressive_billing_credit_amount_cents == 19_500
    assert second.total_amount_cents == 40_000
    december = only_invoice(bill(billing.customer, date(2023, 1, 1)))
    # 63,100 - (60,000 - 500) = 3,600, then the coupon 500
    assert december.progressive_billing_credit_amount_cents == 59_500
    assert december.total_amount_cents == 3_100


def test_termination_invoice_deducts_the_progressive_invoice_after_its_coupon(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    apply_coupon(organization, billing.customer, amount_cents=1_000, frequency="once")
    usage(billing, "2022-12-06T10:00:00")
    usage(billing, "2022-12-08T10:00:00")

    invoice = terminate(billing, "2022-12-10T12:00:00")

    # the once coupon went on the progressive invoice: 20,000 - 1,000 = 19,000 paid;
    # subscription 3,100 x 10 / 31 = 1,000, usage 40,000
    assert invoice.fees_amount_cents == 41_000
    assert invoice.progressive_billing_credit_amount_cents == 19_000
    assert invoice.coupons_amount_cents == 0
    assert invoice.total_amount_cents == 22_000


def test_upgrade_invoice_deducts_the_progressive_invoice_after_its_coupon(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    apply_coupon(organization, billing.customer, amount_cents=1_000, frequency="once")
    usage(billing, "2022-12-06T10:00:00")
    usage(billing, "2022-12-08T10:00:00")

    invoice = upgrade(billing, "2022-12-10T12:00:00")

    charge_fees = invoice.fees.filter(fee_type="charge", subscription=billing.subscription)
    assert sum(fee.amount_cents for fee in charge_fees) == 40_000
    assert invoice.progressive_billing_credit_amount_cents == 19_000
    assert invoice.total_amount_cents == invoice.fees_amount_cents - 19_000


def test_excess_of_a_progressive_invoice_with_a_coupon_is_returned_net_of_its_coupon_share(
    api, organization
):
    billing = v92_billing(api, organization, [(20_000, False)])
    apply_coupon(organization, billing.customer, amount_cents=500, frequency="forever")
    usage(billing, "2022-12-06T10:00:00")
    [progressive] = progressive_invoices(billing)
    # the price drops before the period ends: the period's usage is worth 15,000 now
    billing.usage_charge.properties = {"amount": "0.00015"}  # type: ignore[attr-defined]
    billing.usage_charge.save()  # type: ignore[attr-defined]

    invoice = only_invoice(bill(billing.customer, date(2023, 1, 1)))

    # to deduct 20,000 - 500 = 19,500; the invoice's usage fee takes 15,000; the 4,500 left
    # is credited on the progressive invoice's fee less its coupon share
    # 4,500 x 500 / 20,000 = 112.5: 4,387.5, rounded half up
    assert invoice.progressive_billing_credit_amount_cents == 15_000
    note = CreditNote.objects.get(invoice=progressive)
    assert note.credit_amount_cents == 4_388
    # 18,100 - 15,000 - coupon 500 = 2,600, paid by the credit note
    assert invoice.coupons_amount_cents == 500
    assert invoice.credit_notes_amount_cents == 2_600
    assert invoice.total_amount_cents == 0
