"""Building subscription invoices (spec §9.3-§9.6, §10.3, §11, §12.3, §7.16, §8, §22, §12.11).

Subscriptions are rows made by factories (no hook fires); each test calls the invoicing service
of the transition it checks, with `now` passed in.
"""

from datetime import date

import pytest
import time_machine

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from customers.models import Customer, Subscription
from customers.services.applied_coupons import applied_coupon_create
from invoicing.models import Fee, Invoice
from invoicing.services.generation import (
    invoice_create_for_plan_change,
    invoice_create_for_start,
    invoice_create_for_termination,
    invoice_create_for_trial_end,
    invoice_preview,
)
from plans.models import BillingEntityTax, MinimumCommitment
from tests.invoicing.billing_helpers import (
    bill,
    customer,
    entity,
    fee_amounts,
    fees,
    only_invoice,
    plan,
    rows,
    send_event,
    subscribe,
    tax,
    utc,
)
from tests.plans.factories import (
    BillableMetricFactory,
    ChargeFactory,
    CouponFactory,
    FixedChargeFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(organization):
    return customer(organization, external_id="acme")


# --------------------------------------------------------------------------------------------
# Periodic invoices (spec §10.3)


def test_periodic_invoice_in_arrears_bills_the_period_that_ended(organization, acme):
    monthly = plan(organization, amount_cents=100)
    subscription = subscribe(organization, acme, monthly, utc(2022, 3, 15))

    invoice = only_invoice(bill(acme, date(2022, 4, 1)))

    assert fee_amounts(invoice) == [55]  # V56: 17 days x 100 / 31
    [row] = rows(invoice)
    assert (row.invoicing_reason, row.recurring) == ("subscription_periodic", True)
    assert (row.from_datetime, row.to_datetime) == (utc(2022, 3, 15), utc(2022, 3, 31, 23, 59, 59))
    assert row.charges_from_datetime == utc(2022, 3, 15)
    assert row.timestamp == utc(2022, 4, 1)
    [fee] = fees(invoice)
    assert fee.subscription == subscription
    assert fee.properties["from_datetime"] == "2022-03-15T00:00:00+00:00"
    assert invoice.status == Invoice.Status.FINALIZED
    assert invoice.issuing_date == date(2022, 4, 1)
    assert invoice.total_amount_cents == 55


def test_periodic_invoice_in_advance_bills_the_period_starting(organization, acme):
    monthly = plan(organization, amount_cents=100, pay_in_advance=True)
    subscribe(organization, acme, monthly, utc(2022, 3, 15))

    invoice = only_invoice(bill(acme, date(2022, 4, 1)))

    [row] = rows(invoice)
    assert (row.from_datetime, row.to_datetime) == (utc(2022, 4, 1), utc(2022, 4, 30, 23, 59, 59))
    assert (row.charges_from_datetime, row.charges_to_datetime) == (
        utc(2022, 3, 15),
        utc(2022, 3, 31, 23, 59, 59),
    )
    assert fee_amounts(invoice) == [100]


def test_billing_day_without_due_subscription_bills_nothing(organization, acme):
    subscribe(organization, acme, plan(organization), utc(2022, 3, 15))

    result = bill(acme, date(2022, 4, 2))

    assert result.invoices == ()
    assert not Invoice.objects.exists()


def test_yearly_plan_billing_charges_monthly_bills_the_fee_once_a_year(organization, acme):
    yearly = plan(organization, interval="yearly", amount_cents=1200, bill_charges_monthly=True)
    subscribe(organization, acme, yearly, utc(2023, 1, 1))

    february = only_invoice(bill(acme, date(2023, 2, 1)))
    march = only_invoice(bill(acme, date(2023, 3, 1)))
    next_year = only_invoice(bill(acme, date(2024, 1, 1)))

    assert fee_amounts(february) == fee_amounts(march) == []
    assert [r.charges_from_datetime for r in rows(march)] == [utc(2023, 2, 1)]
    assert fee_amounts(next_year) == [1200]


def test_subscriptions_billed_the_same_day_share_one_invoice(organization, acme):
    subscribe(organization, acme, plan(organization, amount_cents=100), utc(2022, 1, 1))
    subscribe(organization, acme, plan(organization, amount_cents=300), utc(2022, 1, 1))

    invoice = only_invoice(bill(acme, date(2022, 2, 1)))

    assert sorted(fee_amounts(invoice)) == [100, 300]
    assert len(rows(invoice)) == 2


def test_subscription_without_consolidation_gets_its_own_invoice(organization, acme):
    subscribe(organization, acme, plan(organization, amount_cents=100), utc(2022, 1, 1))
    subscribe(
        organization,
        acme,
        plan(organization, amount_cents=300),
        utc(2022, 1, 1),
        consolidate_invoice=False,
    )

    result = bill(acme, date(2022, 2, 1))

    assert sorted(i.total_amount_cents for i in result.invoices) == [100, 300]


# --------------------------------------------------------------------------------------------
# Start, termination, plan changes, trials (spec §9.3-§9.5, §11)


def test_pay_in_advance_start_bills_the_prorated_first_period(organization, acme):
    monthly = plan(organization, amount_cents=100, pay_in_advance=True)
    subscription = subscribe(organization, acme, monthly, utc(2022, 3, 15, 10))

    invoice = invoice_create_for_start(
        subscription=subscription, actor=SYSTEM, now=utc(2022, 3, 15, 10)
    )

    assert fee_amounts(invoice) == [55]  # V56 in advance
    assert rows(invoice)[0].invoicing_reason == "subscription_starting"
    assert (
        invoice_create_for_start(subscription=subscription, actor=SYSTEM, now=utc(2022, 3, 15, 11))
        is None
    )


def test_start_in_the_past_bills_nothing_at_once(organization, acme):
    monthly = plan(organization, pay_in_advance=True)
    subscription = subscribe(organization, acme, monthly, utc(2022, 3, 1))

    assert (
        invoice_create_for_start(subscription=subscription, actor=SYSTEM, now=utc(2022, 3, 10))
        is None
    )


def test_pay_in_arrears_start_bills_nothing(organization, acme):
    subscription = subscribe(organization, acme, plan(organization), utc(2022, 3, 15))

    assert (
        invoice_create_for_start(subscription=subscription, actor=SYSTEM, now=utc(2022, 3, 15))
        is None
    )


def test_termination_in_arrears_bills_the_used_days(organization, acme):
    subscription = subscribe(
        organization,
        acme,
        plan(organization, amount_cents=100),
        utc(2022, 2, 15),
        status=Subscription.Status.TERMINATED,
        terminated_at=utc(2022, 3, 20, 10),
    )

    invoice = invoice_create_for_termination(
        subscription=subscription, actor=SYSTEM, now=utc(2022, 3, 20, 10)
    )

    assert fee_amounts(invoice) == [65]  # V68: 20 days (from the 1st of the period) x 100 / 31
    [row] = rows(invoice)
    assert row.invoicing_reason == "subscription_terminating"
    assert row.to_datetime == utc(2022, 3, 20, 10)


def test_termination_skip_bills_nothing(organization, acme):
    subscription = subscribe(
        organization,
        acme,
        plan(organization),
        utc(2022, 3, 15),
        status=Subscription.Status.TERMINATED,
        terminated_at=utc(2022, 3, 20),
        on_termination_invoice="skip",
    )

    assert (
        invoice_create_for_termination(
            subscription=subscription, actor=SYSTEM, now=utc(2022, 3, 20)
        )
        is None
    )


def test_termination_of_pay_in_advance_plan_bills_no_fee(organization, acme):
    subscription = subscribe(
        organization,
        acme,
        plan(organization, pay_in_advance=True),
        utc(2022, 3, 1),
        status=Subscription.Status.TERMINATED,
        terminated_at=utc(2022, 3, 20),
    )

    invoice = invoice_create_for_termination(
        subscription=subscription, actor=SYSTEM, now=utc(2022, 3, 20)
    )

    assert fee_amounts(invoice) == []
    assert (invoice.status, invoice.total_amount_cents) == (Invoice.Status.FINALIZED, 0)


def _upgrade(organization, acme, old_plan, new_plan, *, start, at):
    old = subscribe(
        organization,
        acme,
        old_plan,
        start,
        status=Subscription.Status.TERMINATED,
        terminated_at=at,
        external_id="seat",
    )
    new = subscribe(
        organization,
        acme,
        new_plan,
        start,
        started_at=at,
        previous_subscription=old,
        external_id="seat",
    )
    return old, new


def test_upgrade_in_arrears_bills_old_days_now_and_new_days_at_period_end(organization, acme):
    # V70: plan A 100 EUR from Jan 1, upgrade to plan B 200 EUR on Jan 15
    old, new = _upgrade(
        organization,
        acme,
        plan(organization, amount_cents=10000),
        plan(organization, amount_cents=20000),
        start=utc(2022, 1, 1),
        at=utc(2022, 1, 15, 9),
    )

    upgrade = invoice_create_for_plan_change(
        previous_subscription=old, subscription=new, actor=SYSTEM, now=utc(2022, 1, 15, 9)
    )
    period_end = only_invoice(bill(acme, date(2022, 2, 1)))

    assert fee_amounts(upgrade) == [4516]  # 14 / 31 x 100.00
    assert fee_amounts(period_end) == [10968]  # 17 / 31 x 200.00


def test_upgrade_to_pay_in_advance_plan_bills_its_first_period_on_the_same_invoice(
    organization, acme
):
    # V72: monthly 1000 in advance (anniversary 06-29) -> yearly 12,000 in advance on 09-28
    old, new = _upgrade(
        organization,
        acme,
        plan(organization, amount_cents=1000, pay_in_advance=True),
        plan(organization, amount_cents=12000, pay_in_advance=True, interval="yearly"),
        start=utc(2023, 6, 29, 12, 12),
        at=utc(2023, 9, 28, 5),
    )
    Subscription.objects.filter(pk__in=[old.pk, new.pk]).update(billing_time="anniversary")

    invoice = invoice_create_for_plan_change(
        previous_subscription=old, subscription=new, actor=SYSTEM, now=utc(2023, 9, 28, 5)
    )

    closing, starting = rows(invoice)
    assert (closing.charges_from_datetime, closing.charges_to_datetime) == (
        utc(2023, 8, 29),
        utc(2023, 9, 28, 5),
    )
    assert starting.invoicing_reason == "subscription_starting"
    assert fee_amounts(invoice) == [9016]  # 275 days x 12,000 / 366


def test_downgrade_bills_the_new_plan_up_to_the_kept_anniversary(organization, acme):
    # V108: monthly 12,900 in advance (anniversary 07-19) -> yearly 118,800 on 2023-11-19
    old = subscribe(
        organization,
        acme,
        plan(organization, amount_cents=12900, pay_in_advance=True),
        utc(2023, 7, 19, 12, 12),
        billing_time="anniversary",
        status=Subscription.Status.TERMINATED,
        terminated_at=utc(2023, 11, 18, 23, 59, 59),
        external_id="seat",
    )
    new = subscribe(
        organization,
        acme,
        plan(organization, amount_cents=118800, pay_in_advance=True, interval="yearly"),
        utc(2023, 7, 19, 12, 12),
        started_at=utc(2023, 11, 19),
        billing_time="anniversary",
        previous_subscription=old,
        external_id="seat",
    )

    invoice = invoice_create_for_plan_change(
        previous_subscription=old, subscription=new, actor=SYSTEM, now=utc(2023, 11, 19, 0, 5)
    )

    assert fee_amounts(invoice) == [78875]  # 243 days x 118,800 / 366
    assert [r.invoicing_reason for r in rows(invoice)] == [
        "subscription_terminating",
        "subscription_starting",
    ]


def test_trial_end_bills_the_rest_of_the_period_in_advance(organization, acme):
    # V63: 5,000,000 monthly in advance, trial 10 days, created 2024-03-05 12:12
    monthly = plan(organization, amount_cents=5_000_000, pay_in_advance=True, trial_period=10)
    subscription = subscribe(organization, acme, monthly, utc(2024, 3, 5, 12, 12))

    assert (
        invoice_create_for_start(
            subscription=subscription, actor=SYSTEM, now=utc(2024, 3, 5, 12, 12)
        )
        is None
    )
    invoice = invoice_create_for_trial_end(
        subscription=subscription, actor=SYSTEM, now=utc(2024, 3, 15, 13, 2)
    )

    assert fee_amounts(invoice) == [2_741_935]  # 17 days of 31
    assert invoice.issuing_date == date(2024, 3, 15)
    assert (
        invoice_create_for_trial_end(
            subscription=subscription, actor=SYSTEM, now=utc(2024, 3, 15, 14)
        )
        is None
    )


# --------------------------------------------------------------------------------------------
# Taxes, coupons, fixed charges, commitments


def test_fee_taxes_follow_the_hierarchy(organization, acme):
    vat = tax(organization, "vat", "20")
    reduced = tax(organization, "reduced", "5.5")
    acme.taxes.add(vat)
    taxed_plan = plan(organization, amount_cents=10000)
    taxed_plan.taxes.add(reduced)
    subscribe(organization, acme, taxed_plan, utc(2022, 1, 1))
    subscribe(organization, acme, plan(organization, amount_cents=10000), utc(2022, 1, 1))

    invoice = only_invoice(bill(acme, date(2022, 2, 1)))

    assert sorted(f.taxes_amount_cents for f in fees(invoice)) == [550, 2000]
    assert invoice.taxes_amount_cents == 2550
    assert invoice.total_amount_cents == 22550
    assert sorted(invoice.applied_taxes.values_list("tax_code", "amount_cents")) == [
        ("reduced", 550),
        ("vat", 2000),
    ]


def test_coupons_are_consumed_by_a_finalized_invoice(organization, acme):
    coupon = CouponFactory(organization=organization, amount_cents=1000, frequency="once")
    applied = applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=utc(2022, 1, 1))
    subscribe(organization, acme, plan(organization, amount_cents=600), utc(2022, 1, 1))

    january = only_invoice(bill(acme, date(2022, 2, 1)))
    february = only_invoice(bill(acme, date(2022, 3, 1)))

    assert (january.coupons_amount_cents, january.total_amount_cents) == (600, 0)
    assert january.payment_status == Invoice.PaymentStatus.SUCCEEDED
    assert (february.coupons_amount_cents, february.total_amount_cents) == (400, 200)
    applied.refresh_from_db()
    assert applied.status == "terminated"
    assert list(applied.credits.values_list("amount_cents", flat=True)) == [600, 400]


def test_fixed_charges_in_arrears_and_in_advance(organization, acme):
    monthly = plan(organization, amount_cents=0)
    FixedChargeFactory(organization=organization, plan=monthly, properties={"amount": "10"})
    FixedChargeFactory(
        organization=organization,
        plan=monthly,
        properties={"amount": "3"},
        units=2,
        pay_in_advance=True,
        prorated=True,
    )
    subscription = subscribe(organization, acme, monthly, utc(2022, 3, 15))

    start = invoice_create_for_start(subscription=subscription, actor=SYSTEM, now=utc(2022, 3, 15))
    april = only_invoice(bill(acme, date(2022, 4, 1)))

    assert fee_amounts(start, "fixed_charge") == [329]  # 600 x 17 / 31, prorated
    assert sorted(fee_amounts(april, "fixed_charge")) == [600, 1000]


def test_minimum_commitment_true_up_is_prorated_on_a_partial_period(organization, acme):
    # V90 without usage: commitment 1,000,000 over Feb 28-29 (2 of 29 days) = 68,966
    monthly = plan(organization, amount_cents=10000)
    MinimumCommitment.objects.create(
        organization=organization, plan=monthly, amount_cents=1_000_000
    )
    subscribe(organization, acme, monthly, utc(2024, 2, 28, 10))

    invoice = only_invoice(bill(acme, date(2024, 3, 1)))

    assert fee_amounts(invoice, "subscription") == [690]
    assert fee_amounts(invoice, Fee.FeeType.COMMITMENT) == [68276]


# --------------------------------------------------------------------------------------------
# Outbox and preview


def test_finalized_invoice_writes_its_outbox_row(organization, acme):
    subscribe(organization, acme, plan(organization), utc(2022, 1, 1))

    invoice = only_invoice(bill(acme, date(2022, 2, 1)))

    [event] = OutboxEvent.objects.filter(event_type="invoice.created")
    assert event.object_id == str(invoice.pk)
    assert event.payload["number"] == invoice.number


def test_preview_of_a_new_subscription_persists_nothing(organization, acme):
    monthly = plan(organization, amount_cents=100, pay_in_advance=True)

    preview = invoice_preview(
        customer=acme,
        plan=monthly,
        subscription_at=utc(2022, 3, 15),
        now=utc(2022, 3, 15),
    )

    assert [fee.amount_cents for fee in preview.fees] == [55]
    assert preview.invoice.total_amount_cents == 55
    assert not Invoice.objects.exists()
    assert not Fee.objects.exists()


def test_preview_of_a_termination(organization, acme):
    subscription = subscribe(
        organization, acme, plan(organization, amount_cents=100), utc(2022, 3, 1)
    )

    preview = invoice_preview(
        customer=acme,
        subscriptions=[subscription],
        terminated_at=utc(2022, 3, 20, 12),
        now=utc(2022, 3, 20, 12),
    )

    assert [fee.amount_cents for fee in preview.fees] == [65]
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE


def test_preview_for_an_inline_customer_with_entity_taxes(organization):
    BillingEntityTax.objects.create(
        organization=organization,
        billing_entity=entity(organization),
        tax=tax(organization, "be20", "20"),
    )
    inline = Customer(
        organization=organization,
        billing_entity=entity(organization),
        external_id="",
        sequential_id=0,
        currency="EUR",
        timezone="UTC",
    )

    preview = invoice_preview(
        customer=inline,
        plan=plan(organization, amount_cents=3100),
        subscription_at=utc(2024, 3, 10),
        now=utc(2024, 3, 10),
    )

    assert [fee.amount_cents for fee in preview.fees] == [2200]  # in arrears: Mar 10..31
    assert preview.invoice.taxes_amount_cents == 440
    assert preview.invoice.total_amount_cents == 2640


def test_preview_of_the_next_invoice_includes_usage_to_date(organization, acme):
    monthly = plan(organization, amount_cents=1000)
    metric = BillableMetricFactory(organization=organization, code="calls", count=True)
    ChargeFactory(
        organization=organization, plan=monthly, billable_metric=metric, properties={"amount": "2"}
    )
    subscription = subscribe(organization, acme, monthly, utc(2024, 1, 1))
    send_event(organization, subscription, "calls", utc(2024, 3, 5))
    coupon = CouponFactory(organization=organization, amount_cents=100, frequency="once")
    applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=utc(2024, 1, 1))

    with time_machine.travel(utc(2024, 3, 10), tick=False):
        preview = invoice_preview(customer=acme, subscriptions=[subscription], now=utc(2024, 3, 10))

    assert sorted(fee.amount_cents for fee in preview.fees) == [200, 1000]
    assert preview.invoice.coupons_amount_cents == 100
    assert preview.invoice.total_amount_cents == 1100
    assert preview.items[0].period.timestamp == utc(2024, 4, 1)
    assert not Invoice.objects.exists()


def test_pay_in_advance_charge_fee_gets_its_own_invoice(organization, acme):
    from invoicing.services.generation import invoice_create_for_in_advance_fee
    from invoicing.services.in_advance import in_advance_fees_create

    acme.taxes.add(tax(organization, "vat20", "20"))
    monthly = plan(organization, amount_cents=0)
    metric = BillableMetricFactory(organization=organization, code="seats", count=True)
    ChargeFactory(
        organization=organization,
        plan=monthly,
        billable_metric=metric,
        pay_in_advance=True,
        properties={"amount": "10"},
    )
    coupon = CouponFactory(organization=organization, amount_cents=500, frequency="once")
    applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=utc(2024, 3, 1))
    subscription = subscribe(organization, acme, monthly, utc(2024, 3, 1))
    event = send_event(organization, subscription, "seats", utc(2024, 3, 5, 10))
    [fee] = in_advance_fees_create(
        organization_id=organization.id,
        external_subscription_id=subscription.external_id,
        transaction_id=event.transaction_id,
        actor=SYSTEM,
        now=utc(2024, 3, 5, 10),
    )

    invoice = fee.invoice  # invoice_create_for_in_advance_fee, called in the same transaction

    [row] = rows(invoice)
    assert row.invoicing_reason == "in_advance_charge"
    assert (invoice.fees_amount_cents, invoice.coupons_amount_cents) == (1000, 500)
    assert (invoice.taxes_amount_cents, invoice.total_amount_cents) == (100, 600)
    fee.refresh_from_db()
    assert (fee.invoice_id, fee.taxes_amount_cents) == (invoice.pk, 100)
    assert invoice.status == Invoice.Status.FINALIZED
    assert invoice_create_for_in_advance_fee(fee=fee, actor=SYSTEM, now=utc(2024, 3, 5, 11)) is None
    # the periodic invoice does not bill the metered in-advance charge again
    assert fee_amounts(only_invoice(bill(acme, date(2024, 4, 1))), "charge") == []


def test_trial_ending_on_a_billing_day_bills_the_period_once(organization, acme):
    monthly = plan(organization, amount_cents=3000, pay_in_advance=True, trial_period=10)
    subscription = subscribe(organization, acme, monthly, utc(2024, 3, 22, 12))  # trial -> Apr 1

    invoice = only_invoice(bill(acme, date(2024, 4, 1), now=utc(2024, 4, 1, 13)))

    assert fee_amounts(invoice, "subscription") == [3000]
    assert {r.invoicing_reason for r in rows(invoice)} == {
        "subscription_periodic",
        "subscription_trial_ended",
    }
    assert (
        invoice_create_for_trial_end(
            subscription=subscription, actor=SYSTEM, now=utc(2024, 4, 1, 13)
        )
        is None
    )
