"""Invoice-level vectors of spec/vectors.md D, E, F (wallets and progressive billing aside) and
G (V96-V99), end to end through the invoicing services on PostgreSQL; the vector id is in each
test id. Amounts in cents."""

from datetime import date
from decimal import Decimal

import pytest

from billing.actors import SYSTEM
from customers.models import Subscription
from customers.services.applied_coupons import applied_coupon_create
from invoicing.models import Fee, Invoice
from invoicing.services.generation import (
    invoice_create_for_plan_change,
    invoice_create_for_start,
    invoice_create_for_termination,
    invoice_create_for_trial_end,
)
from invoicing.services.in_advance import in_advance_fees_create
from invoicing.services.lifecycle import finalize_due_drafts
from plans.models import BillableMetricFilter, BillingEntityTax, ChargeFilter, MinimumCommitment
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
    set_entity,
    subscribe,
    tax,
    utc,
)
from tests.plans.factories import BillableMetricFactory, ChargeFactory, CouponFactory

pytestmark = pytest.mark.django_db
Status = Subscription.Status


@pytest.fixture
def acme(organization):
    return customer(organization, external_id="acme")


def terminated(organization, who, on_plan, start, end, **values):
    values.setdefault("status", Status.TERMINATED)
    return subscribe(organization, who, on_plan, start, terminated_at=end, **values)


def upgrade_pair(organization, who, old_plan, new_plan, *, start, at, **values):
    old = terminated(organization, who, old_plan, start, at, external_id="seat", **values)
    new = subscribe(
        organization,
        who,
        new_plan,
        start,
        started_at=at,
        previous_subscription=old,
        external_id="seat",
        **values,
    )
    return old, new


# --------------------------------------------------------------------------------------------
# D. Subscription fee proration, periods and trials


def test_v55_full_period_after_an_earlier_fee(organization, acme):
    # V55
    subscribe(organization, acme, plan(organization, amount_cents=100), utc(2022, 1, 1))
    bill(acme, date(2022, 3, 1))

    assert fee_amounts(only_invoice(bill(acme, date(2022, 4, 1)))) == [100]


@pytest.mark.parametrize("pay_in_advance", [False, True], ids=["V56-arrears", "V56-advance"])
def test_calendar_first_partial_period(organization, acme, pay_in_advance):
    monthly = plan(organization, amount_cents=100, pay_in_advance=pay_in_advance)
    subscription = subscribe(organization, acme, monthly, utc(2022, 3, 15))
    if pay_in_advance:
        invoice = invoice_create_for_start(
            subscription=subscription, actor=SYSTEM, now=utc(2022, 3, 15, 1)
        )
    else:
        invoice = only_invoice(bill(acme, date(2022, 4, 1)))

    assert fee_amounts(invoice) == [55]


@pytest.mark.parametrize(
    ("start", "trial", "expected"),
    [
        pytest.param(utc(2022, 6, 20), 0, 100, id="V58-monday"),
        pytest.param(utc(2022, 6, 20), 3, 57, id="V58-monday-trial-3"),
        pytest.param(utc(2022, 6, 20), 10, 0, id="V58-monday-trial-10"),
        pytest.param(utc(2022, 6, 22), 0, 71, id="V58-wednesday"),
        pytest.param(utc(2022, 6, 22), 3, 29, id="V58-wednesday-trial-3"),
    ],
)
def test_weekly_first_period(organization, acme, start, trial, expected):
    weekly = plan(organization, interval="weekly", amount_cents=100, trial_period=trial)
    subscribe(organization, acme, weekly, start)

    assert fee_amounts(only_invoice(bill(acme, date(2022, 6, 27)))) == [expected]


@pytest.mark.parametrize("pay_in_advance", [False, True], ids=["V59-arrears", "V59-advance"])
def test_yearly_calendar_first_period(organization, acme, pay_in_advance):
    yearly = plan(organization, interval="yearly", amount_cents=100, pay_in_advance=pay_in_advance)
    subscription = subscribe(organization, acme, yearly, utc(2022, 3, 15))
    if pay_in_advance:
        invoice = invoice_create_for_start(
            subscription=subscription, actor=SYSTEM, now=utc(2022, 3, 15)
        )
    else:
        invoice = only_invoice(bill(acme, date(2023, 1, 1)))

    assert fee_amounts(invoice) == [80]  # 292 / 365


@pytest.mark.parametrize(
    ("amount", "start", "billing_date", "expected"),
    [
        pytest.param(5000, utc(2022, 8, 10), date(2022, 9, 1), 3548, id="V61-calendar"),
        pytest.param(1000, utc(2022, 4, 15), date(2022, 5, 1), 533, id="V62-april"),
    ],
)
def test_doc_calendar_examples(organization, acme, amount, start, billing_date, expected):
    subscribe(organization, acme, plan(organization, amount_cents=amount), start)

    assert fee_amounts(only_invoice(bill(acme, billing_date))) == [expected]


def test_v61_anniversary_billing_day_follows_subscription_date(organization, acme):
    # V61 anniversary: an Aug 10 subscription is billed every 10th for Aug 10..Sep 9
    subscribe(organization, acme, plan(organization), utc(2022, 8, 10), billing_time="anniversary")

    assert bill(acme, date(2022, 9, 1)).invoices == ()
    [row] = rows(only_invoice(bill(acme, date(2022, 9, 10))))
    assert (row.from_datetime, row.to_datetime) == (utc(2022, 8, 10), utc(2022, 9, 9, 23, 59, 59))


def test_v63_pay_in_advance_trial_is_billed_when_it_ends(organization, acme):
    # V63
    monthly = plan(organization, amount_cents=5_000_000, pay_in_advance=True, trial_period=10)
    subscription = subscribe(organization, acme, monthly, utc(2024, 3, 5, 12, 12))

    assert (
        invoice_create_for_start(
            subscription=subscription, actor=SYSTEM, now=utc(2024, 3, 5, 12, 12)
        )
        is None
    )
    assert bill(acme, date(2024, 3, 10), now=utc(2024, 3, 10, 12)).invoices == ()
    invoice = invoice_create_for_trial_end(
        subscription=subscription, actor=SYSTEM, now=utc(2024, 3, 15, 13, 2)
    )

    assert fee_amounts(invoice) == [2_741_935]


@pytest.mark.parametrize(
    ("interval", "billing_time", "start", "end", "expected"),
    [
        # quarter Apr-Jun 2022 = 91 days: 31 days used -> 9100 x 31 / 91
        pytest.param("quarterly", "calendar", utc(2022, 1, 1), utc(2022, 5, 1), 3100, id="V65-Q2"),
        # anniversary Feb 2: Feb 2..May 1 = 90 days in 2020 (45 used up to Mar 17), 89 in 2021
        # (44 used): 9100 x 45 / 90 and 9100 x 44 / 89
        pytest.param(
            "quarterly", "anniversary", utc(2019, 11, 2), utc(2020, 3, 17), 4550, id="V65-90d"
        ),
        pytest.param(
            "quarterly", "anniversary", utc(2020, 11, 2), utc(2021, 3, 17), 4499, id="V65-89d"
        ),
        # monthly February: 28 days in 2023 -> single day price 9100 / 28
        pytest.param("monthly", "calendar", utc(2023, 1, 1), utc(2023, 2, 7), 2275, id="V65-feb"),
    ],
)
def test_period_durations(organization, acme, interval, billing_time, start, end, expected):
    subscription = terminated(
        organization,
        acme,
        plan(organization, interval=interval, amount_cents=9100),
        start,
        end,
        billing_time=billing_time,
    )

    invoice = invoice_create_for_termination(subscription=subscription, actor=SYSTEM, now=end)

    assert fee_amounts(invoice) == [expected]


def test_v67_pay_in_advance_anniversary_boundaries(organization, acme):
    # V67
    monthly = plan(organization, amount_cents=1000, pay_in_advance=True)
    subscription = subscribe(
        organization, acme, monthly, utc(2023, 6, 29, 12, 12), billing_time="anniversary"
    )

    first = invoice_create_for_start(
        subscription=subscription, actor=SYSTEM, now=utc(2023, 6, 29, 12, 12)
    )
    second = only_invoice(bill(acme, date(2023, 7, 29)))

    assert fee_amounts(first) == [1000]
    assert rows(first)[0].to_datetime == utc(2023, 7, 28, 23, 59, 59)
    [row] = rows(second)
    assert (row.from_datetime, row.to_datetime) == (utc(2023, 7, 29), utc(2023, 8, 28, 23, 59, 59))
    assert (row.charges_from_datetime, row.charges_to_datetime) == (
        utc(2023, 6, 29, 12, 12),
        utc(2023, 7, 28, 23, 59, 59),
    )
    assert fee_amounts(second) == [1000]


# --------------------------------------------------------------------------------------------
# E. Terminations, upgrades, downgrades


@pytest.mark.parametrize(
    ("interval", "start", "end", "trial", "expected"),
    [
        pytest.param("monthly", utc(2022, 2, 1), utc(2022, 3, 20, 12), 0, 65, id="V68-monthly"),
        pytest.param("weekly", utc(2022, 3, 1), utc(2022, 3, 16, 12), 0, 43, id="V68-weekly"),
    ],
)
def test_termination_in_arrears(organization, acme, interval, start, end, trial, expected):
    subscription = terminated(
        organization, acme, plan(organization, interval=interval, amount_cents=100), start, end
    )

    invoice = invoice_create_for_termination(subscription=subscription, actor=SYSTEM, now=end)

    assert fee_amounts(invoice) == [expected]


def test_v68_v102_termination_in_arrears_in_paris(organization):
    # V68 / V102: same 20 days with the customer in Europe/Paris
    paris = customer(organization, external_id="paris", timezone="Europe/Paris")
    subscription = terminated(
        organization,
        paris,
        plan(organization, amount_cents=100),
        utc(2022, 1, 31, 23),
        utc(2022, 3, 20, 12),
    )

    invoice = invoice_create_for_termination(
        subscription=subscription, actor=SYSTEM, now=utc(2022, 3, 20, 12)
    )

    assert fee_amounts(invoice) == [65]
    assert rows(invoice)[0].from_datetime == utc(2022, 2, 28, 23)


@pytest.mark.parametrize(
    ("start", "trial", "expected"),
    [
        pytest.param(utc(2022, 2, 1), 0, 61, id="V68-upgrade"),
        pytest.param(utc(2022, 3, 15), 3, 6, id="V68-upgrade-trial-3"),
        pytest.param(utc(2022, 3, 15), 45, 0, id="V68-upgrade-trial-45"),
    ],
)
def test_termination_by_upgrade_leaves_the_upgrade_day(organization, acme, start, trial, expected):
    old, new = upgrade_pair(
        organization,
        acme,
        plan(organization, amount_cents=100, trial_period=trial),
        plan(organization, amount_cents=200),
        start=start,
        at=utc(2022, 3, 20, 12),
    )

    invoice = invoice_create_for_plan_change(
        previous_subscription=old, subscription=new, actor=SYSTEM, now=utc(2022, 3, 20, 12)
    )

    assert fee_amounts(invoice, "subscription") == [expected]


def test_v69_first_invoice_of_the_upgraded_subscription(organization, acme):
    # V69
    old, new = upgrade_pair(
        organization,
        acme,
        plan(organization, amount_cents=80),
        plan(organization, amount_cents=100),
        start=utc(2022, 1, 1),
        at=utc(2022, 3, 15),
    )
    invoice_create_for_plan_change(
        previous_subscription=old, subscription=new, actor=SYSTEM, now=utc(2022, 3, 15)
    )

    assert fee_amounts(only_invoice(bill(acme, date(2022, 4, 1)))) == [55]


def test_v70_upgrade_doc_example(organization, acme):
    # V70
    old, new = upgrade_pair(
        organization,
        acme,
        plan(organization, amount_cents=10000),
        plan(organization, amount_cents=20000),
        start=utc(2022, 1, 1),
        at=utc(2022, 1, 15, 9),
    )

    now = utc(2022, 1, 15, 9)
    upgrade = invoice_create_for_plan_change(
        previous_subscription=old, subscription=new, actor=SYSTEM, now=now
    )

    assert fee_amounts(upgrade) == [4516]
    assert fee_amounts(only_invoice(bill(acme, date(2022, 2, 1)))) == [10968]


def test_v72_upgrade_monthly_to_yearly_in_advance(organization, acme):
    # V72 (the credit note of the unused day is the credit-note engine's)
    old, new = upgrade_pair(
        organization,
        acme,
        plan(organization, amount_cents=1000, pay_in_advance=True),
        plan(organization, amount_cents=12000, pay_in_advance=True, interval="yearly"),
        start=utc(2023, 6, 29, 12, 12),
        at=utc(2023, 9, 28, 5),
        billing_time="anniversary",
    )

    invoice = invoice_create_for_plan_change(
        previous_subscription=old, subscription=new, actor=SYSTEM, now=utc(2023, 9, 28, 5)
    )

    assert fee_amounts(invoice) == [9016]
    assert rows(invoice)[0].charges_to_datetime == utc(2023, 9, 28, 5)


@pytest.mark.parametrize(
    ("timezone", "start", "first_total"),
    [
        pytest.param("UTC", utc(2023, 2, 8, 10), 4500, id="V73-utc"),
        pytest.param("America/New_York", utc(2023, 2, 8, 2), 4715, id="V73-utc-minus"),
    ],
)
def test_terminate_pay_in_advance_on_its_first_day(organization, timezone, start, first_total):
    # V73: 5000 in advance, tax 20 %; the credit note part belongs to the credit-note engine
    who = customer(organization, external_id="v73", timezone=timezone)
    who.taxes.add(tax(organization, "vat20", "20"))
    monthly = plan(organization, amount_cents=5000, pay_in_advance=True)
    subscription = subscribe(organization, who, monthly, start)

    first = invoice_create_for_start(subscription=subscription, actor=SYSTEM, now=start)
    Subscription.objects.filter(pk=subscription.pk).update(
        status=Status.TERMINATED, terminated_at=start
    )
    closing = invoice_create_for_termination(subscription=subscription, actor=SYSTEM, now=start)

    assert first.total_amount_cents == first_total
    assert closing.total_amount_cents == 0


def test_v75_invoice_with_coupon_limited_to_a_plan(organization, acme):
    # V75
    ten = tax(organization, "be10", "10")
    BillingEntityTax.objects.create(
        organization=organization, billing_entity=entity(organization), tax=ten
    )
    plan1 = plan(organization, amount_cents=17900, pay_in_advance=True)
    plan2 = plan(organization, amount_cents=39900, pay_in_advance=True)
    plan2.taxes.add(tax(organization, "p10a", "10"), tax(organization, "p10b", "10"))
    for on_plan in (plan1, plan2):
        subscribe(organization, acme, on_plan, utc(2022, 12, 19), billing_time="anniversary")
    coupon = CouponFactory(
        organization=organization, amount_cents=25000, frequency="forever", limited_plans=True
    )
    coupon.plans.add(plan2)
    applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=utc(2023, 1, 1))

    invoice = only_invoice(bill(acme, date(2023, 10, 19)))

    assert invoice.fees_amount_cents == 57800
    assert invoice.coupons_amount_cents == 25000
    assert sorted(f.taxes_amount_cents for f in fees(invoice)) == [1790, 2980]
    assert invoice.taxes_amount_cents == 4770
    assert invoice.total_amount_cents == 37570
    assert invoice.taxes_rate == Decimal("14.54268")


def test_v78_spending_minimum_across_filters_on_termination(organization, acme):
    # V78 (the credit note of the in-advance fee belongs to the credit-note engine)
    acme.taxes.add(tax(organization, "vat20", "20"))
    monthly = plan(organization, amount_cents=10000, pay_in_advance=True)
    metric = BillableMetricFactory(organization=organization, code="payments", count=True)
    BillableMetricFilter.objects.create(
        organization=organization, billable_metric=metric, key="region", values=["europe", "usa"]
    )
    charge = ChargeFactory(
        organization=organization,
        plan=monthly,
        billable_metric=metric,
        properties={"amount": "0"},
        min_amount_cents=10000,
    )
    for region, amount in (("europe", "20"), ("usa", "50")):
        ChargeFilter.objects.create(
            organization=organization,
            charge=charge,
            values={"region": [region]},
            properties={"amount": amount},
        )
    subscription = subscribe(organization, acme, monthly, utc(2023, 2, 1))
    send_event(organization, subscription, "payments", utc(2023, 2, 25, 10), region="usa")
    send_event(organization, subscription, "payments", utc(2023, 2, 25, 11), region="europe")
    Subscription.objects.filter(pk=subscription.pk).update(
        status=Status.TERMINATED, terminated_at=utc(2023, 2, 25, 12)
    )

    invoice = invoice_create_for_termination(
        subscription=subscription, actor=SYSTEM, now=utc(2023, 2, 25, 12)
    )

    assert sorted(fee_amounts(invoice)) == [0, 1929, 2000, 5000]
    [true_up] = Fee.objects.filter(invoice=invoice, true_up_parent_fee__isnull=False)
    assert (true_up.amount_cents, true_up.taxes_amount_cents) == (1929, 386)
    assert true_up.true_up_parent_fee.amount_cents == 0
    assert (invoice.fees_amount_cents, invoice.taxes_amount_cents) == (8929, 1786)


# --------------------------------------------------------------------------------------------
# F. Invoice totals: taxes, coupons, commitments


def test_v79_tax_hierarchy_coupon_before_tax_and_true_up(organization, acme):
    # V79
    banking = tax(organization, "banking_rates", "10")
    sales_fr = tax(organization, "sales_tax_fr", "0")
    sales = tax(organization, "sales_tax", "20")
    monthly = plan(organization, amount_cents=10000)
    monthly.taxes.add(banking)
    fx = BillableMetricFactory(organization=organization, code="fx", field_name="total")
    cards = BillableMetricFactory(organization=organization, code="cards", count=True)
    ChargeFactory(
        organization=organization, plan=monthly, billable_metric=fx, properties={"amount": "1"}
    ).taxes.add(sales_fr)
    ChargeFactory(
        organization=organization,
        plan=monthly,
        billable_metric=cards,
        properties={"amount": "30"},
        min_amount_cents=5000,
    ).taxes.add(sales)
    coupon = CouponFactory(organization=organization, amount_cents=1000, frequency="once")
    applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=utc(2023, 1, 1))
    subscription = subscribe(organization, acme, monthly, utc(2023, 1, 1))
    send_event(organization, subscription, "fx", utc(2023, 1, 10), total=50)
    send_event(organization, subscription, "cards", utc(2023, 1, 11))

    invoice = only_invoice(bill(acme, date(2023, 2, 1)))

    got = {
        (f.amount_cents, f.precise_coupons_amount_cents, f.taxes_amount_cents)
        for f in fees(invoice)
    }
    assert got == {(10000, 500, 950), (5000, 250, 0), (3000, 150, 570), (2000, 100, 380)}
    assert invoice.fees_amount_cents == 20000
    assert invoice.coupons_amount_cents == 1000
    assert invoice.sub_total_excluding_taxes_amount_cents == 19000
    assert invoice.taxes_amount_cents == 1900
    assert invoice.sub_total_including_taxes_amount_cents == 20900
    assert invoice.total_amount_cents == 20900


def test_v80_coupons_larger_than_the_invoice(organization, acme):
    # V80
    monthly = plan(organization, amount_cents=10000)
    monthly.taxes.add(tax(organization, "t10", "10"))
    subscribe(organization, acme, monthly, utc(2022, 1, 1))
    for amount, day in ((1000, 1), (11000, 2)):
        coupon = CouponFactory(organization=organization, amount_cents=amount, frequency="once")
        applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=utc(2022, 1, day))

    invoice = only_invoice(bill(acme, date(2022, 2, 1)))

    assert sorted(invoice.credits.values_list("amount_cents", flat=True)) == [1000, 9000]
    [fee] = fees(invoice)
    assert (fee.precise_coupons_amount_cents, fee.taxes_amount_cents) == (10000, 0)
    assert (invoice.total_amount_cents, invoice.payment_status) == (0, "succeeded")


def test_v80_coupons_larger_than_two_subscriptions(organization, acme):
    # V80, two subscriptions and two 10,000 coupons
    subscribe(organization, acme, plan(organization, amount_cents=10000), utc(2022, 1, 1))
    subscribe(organization, acme, plan(organization, amount_cents=5000), utc(2022, 1, 1))
    for day in (1, 2):
        coupon = CouponFactory(organization=organization, amount_cents=10000, frequency="once")
        applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=utc(2022, 1, day))

    invoice = only_invoice(bill(acme, date(2022, 2, 1)))

    assert sorted(f.precise_coupons_amount_cents for f in fees(invoice)) == [5000, 10000]
    assert invoice.total_amount_cents == 0


def test_v82_once_fixed_coupon_carries_its_remainder(organization, acme):
    # V82: once fixed 5,000 on a 3,000 then a 4,000 base
    subscription = subscribe(
        organization, acme, plan(organization, amount_cents=3000), utc(2022, 1, 1)
    )
    coupon = CouponFactory(organization=organization, amount_cents=5000, frequency="once")
    applied = applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=utc(2022, 1, 1))

    first = only_invoice(bill(acme, date(2022, 2, 1)))
    subscription.plan.amount_cents = 4000
    subscription.plan.save()
    second = only_invoice(bill(acme, date(2022, 3, 1)))

    assert (first.coupons_amount_cents, second.coupons_amount_cents) == (3000, 2000)
    applied.refresh_from_db()
    assert applied.status == "terminated"


def test_v82_recurring_fixed_coupon_loses_the_unused_part(organization, acme):
    # V82: recurring fixed 5,000 on a 3,000 base -> 3,000, one period less
    subscribe(organization, acme, plan(organization, amount_cents=3000), utc(2022, 1, 1))
    coupon = CouponFactory(
        organization=organization, amount_cents=5000, frequency="recurring", frequency_duration=2
    )
    applied = applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=utc(2022, 1, 1))

    first = only_invoice(bill(acme, date(2022, 2, 1)))
    applied.refresh_from_db()
    assert (first.coupons_amount_cents, applied.frequency_duration_remaining) == (3000, 1)
    second = only_invoice(bill(acme, date(2022, 3, 1)))
    third = only_invoice(bill(acme, date(2022, 4, 1)))

    applied.refresh_from_db()
    assert (second.coupons_amount_cents, third.coupons_amount_cents) == (3000, 0)
    assert applied.status == "terminated"


def test_v82_percentage_coupon_rounds_half_up(organization, acme):
    # V82: 15 % of 12,345 = 1,851.75 -> 1,852
    subscribe(organization, acme, plan(organization, amount_cents=12345), utc(2022, 1, 1))
    coupon = CouponFactory(
        organization=organization,
        coupon_type="percentage",
        amount_cents=None,
        amount_currency="",
        percentage_rate=Decimal(15),
        frequency="forever",
    )
    applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=utc(2022, 1, 1))

    assert only_invoice(bill(acme, date(2022, 2, 1))).coupons_amount_cents == 1852


def test_v83_invoice_totals_order(organization, acme):
    # V83 / §12.3 worked example, up to the credit notes and prepaid credits (other engines):
    # subscription 50.00 + usage 20.00 - coupon 10.00 = 60.00; tax 10 % -> 66.00
    acme.taxes.add(tax(organization, "t10", "10"))
    monthly = plan(organization, amount_cents=5000)
    metric = BillableMetricFactory(organization=organization, code="calls", count=True)
    ChargeFactory(
        organization=organization, plan=monthly, billable_metric=metric, properties={"amount": "20"}
    )
    subscription = subscribe(organization, acme, monthly, utc(2022, 1, 1))
    send_event(organization, subscription, "calls", utc(2022, 1, 20))
    coupon = CouponFactory(organization=organization, amount_cents=1000, frequency="once")
    applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=utc(2022, 1, 1))

    invoice = only_invoice(bill(acme, date(2022, 2, 1)))

    assert invoice.fees_amount_cents == 7000
    assert invoice.sub_total_excluding_taxes_amount_cents == 6000
    assert invoice.taxes_amount_cents == 600
    assert invoice.sub_total_including_taxes_amount_cents == 6600
    assert invoice.total_amount_cents == 6600


def test_s12_4_taxes_are_rounded_once_per_invoice(organization, acme):
    # spec §12.4: three 3.33 fees at 10 % -> 0.333 each: fees show 0.33, the invoice 1.00
    acme.taxes.add(tax(organization, "t10", "10"))
    for _ in range(3):
        subscribe(organization, acme, plan(organization, amount_cents=333), utc(2022, 1, 1))

    invoice = only_invoice(bill(acme, date(2022, 2, 1)))

    assert [f.taxes_amount_cents for f in fees(invoice)] == [33, 33, 33]
    assert invoice.taxes_amount_cents == 100
    [applied] = invoice.applied_taxes.all()
    assert (applied.amount_cents, applied.fees_amount_cents) == (100, 999)
    assert invoice.total_amount_cents == 1099


def _commitment_plan(organization, *, pay_in_advance: bool):
    monthly = plan(organization, amount_cents=10000, pay_in_advance=pay_in_advance)
    MinimumCommitment.objects.create(
        organization=organization, plan=monthly, amount_cents=1_000_000
    )
    metrics = {}
    for code, recurring, in_advance in (
        ("arrears", False, False),
        ("advance", False, True),
        ("recurring", True, True),
    ):
        metric = BillableMetricFactory(
            organization=organization, code=code, field_name="value", recurring=recurring
        )
        ChargeFactory(
            organization=organization,
            plan=monthly,
            billable_metric=metric,
            pay_in_advance=in_advance,
            properties={"amount": "1"},
        )
        metrics[code] = metric
    return monthly


def _send_and_bill_in_advance(organization, subscription, code, value, at):
    event = send_event(organization, subscription, code, at, value=value)
    in_advance_fees_create(
        organization_id=organization.id,
        external_subscription_id=subscription.external_id,
        transaction_id=event.transaction_id,
        actor=SYSTEM,
        now=at,
    )


def test_v90_minimum_commitment_in_arrears(organization, acme):
    # V90
    monthly = _commitment_plan(organization, pay_in_advance=False)
    subscription = subscribe(organization, acme, monthly, utc(2024, 2, 28, 10))
    for code in ("arrears", "advance", "recurring"):
        _send_and_bill_in_advance(organization, subscription, code, 10, utc(2024, 2, 28, 12))

    march = only_invoice(bill(acme, date(2024, 3, 1)))
    april = only_invoice(bill(acme, date(2024, 4, 1)))

    assert fee_amounts(march, "commitment") == [65276]
    assert sorted(fee_amounts(march)) == [690, 1000, 1000, 65276]  # + the March renewal
    assert fee_amounts(april, "commitment") == [989000]


def test_v91_minimum_commitment_in_advance(organization, acme):
    # V91
    monthly = _commitment_plan(organization, pay_in_advance=True)
    subscription = subscribe(organization, acme, monthly, utc(2024, 2, 28, 10))
    first = invoice_create_for_start(
        subscription=subscription, actor=SYSTEM, now=utc(2024, 2, 28, 10)
    )
    for code, value in (("recurring", 15), ("arrears", 25), ("advance", 30)):
        _send_and_bill_in_advance(organization, subscription, code, value, utc(2024, 2, 28, 12))

    march = only_invoice(bill(acme, date(2024, 3, 1)))
    april = only_invoice(bill(acme, date(2024, 4, 1)))

    assert fee_amounts(first) == [690]
    assert fee_amounts(march, "commitment") == [61276]
    assert fee_amounts(april, "commitment") == [988500]


# --------------------------------------------------------------------------------------------
# G. Settings: issuing dates, due dates, empty invoices


NEXT, END = "next_period_start", "current_period_end"
ALIGN, KEEP = "align_with_finalization_date", "keep_anchor"


@pytest.mark.parametrize(
    ("anchor", "adjustment", "grace", "drafted", "issued"),
    [
        pytest.param(NEXT, ALIGN, 0, None, date(2024, 11, 1), id="V96-next-align-0"),
        pytest.param(NEXT, ALIGN, 2, date(2024, 11, 3), date(2024, 11, 3), id="V96-next-align-2"),
        pytest.param(NEXT, KEEP, 2, date(2024, 11, 1), date(2024, 11, 1), id="V96-next-keep-2"),
        pytest.param(END, ALIGN, 2, date(2024, 11, 3), date(2024, 11, 3), id="V96-end-align-2"),
        pytest.param(END, ALIGN, 0, None, date(2024, 10, 31), id="V96-end-align-0"),
        pytest.param(END, KEEP, 2, date(2024, 10, 31), date(2024, 10, 31), id="V96-end-keep-2"),
    ],
)
def test_issuing_date_preferences(organization, acme, anchor, adjustment, grace, drafted, issued):
    set_entity(
        organization,
        subscription_invoice_issuing_date_anchor=anchor,
        subscription_invoice_issuing_date_adjustment=adjustment,
        invoice_grace_period=grace,
    )
    subscribe(organization, acme, plan(organization), utc(2024, 1, 1))

    invoice = only_invoice(bill(acme, date(2024, 11, 1), now=utc(2024, 11, 1, 0, 10)))
    if drafted is not None:
        assert (invoice.status, invoice.issuing_date) == (Invoice.Status.DRAFT, drafted)
        finalize_due_drafts(actor=SYSTEM, now=utc(2024, 11, 3, 0, 20))
        invoice.refresh_from_db()

    assert (invoice.status, invoice.issuing_date) == (Invoice.Status.FINALIZED, issued)


def test_v97_payment_due_date_from_the_entity_net_payment_term(organization, acme):
    # V97
    set_entity(organization, net_payment_term=30)
    subscribe(organization, acme, plan(organization), utc(2024, 1, 1))

    invoice = only_invoice(bill(acme, date(2024, 11, 1)))

    assert (invoice.issuing_date, invoice.payment_due_date) == (
        date(2024, 11, 1),
        date(2024, 12, 1),
    )
    assert invoice.net_payment_term == 30


def test_v97_payment_due_date_with_no_term_is_the_issuing_date(organization):
    # V97: net_payment_term 0 (customer value wins over the entity's)
    set_entity(organization, net_payment_term=30)
    who = customer(organization, external_id="net0", net_payment_term=0)
    subscribe(organization, who, plan(organization), utc(2024, 1, 1))

    invoice = only_invoice(bill(who, date(2024, 11, 1)))

    assert invoice.payment_due_date == date(2024, 11, 1)


@pytest.mark.parametrize(
    ("setting", "amount", "coupon", "status", "numbered"),
    [
        pytest.param("inherit", 0, 0, Invoice.Status.CLOSED, False, id="V99-inherit-skips"),
        pytest.param("finalize", 0, 0, Invoice.Status.FINALIZED, True, id="V99-customer-finalize"),
        pytest.param("inherit", 1000, 1000, Invoice.Status.FINALIZED, True, id="V99-discounted"),
    ],
)
def test_empty_invoice_setting(organization, setting, amount, coupon, status, numbered):
    set_entity(organization, finalize_zero_amount_invoice=False)
    who = customer(organization, external_id="v99", finalize_zero_amount_invoice=setting)
    subscribe(organization, who, plan(organization, amount_cents=amount), utc(2024, 1, 1))
    if coupon:
        fixed = CouponFactory(organization=organization, amount_cents=coupon, frequency="once")
        applied_coupon_create(customer=who, coupon=fixed, actor=SYSTEM, now=utc(2024, 1, 1))

    invoice = only_invoice(bill(who, date(2024, 2, 1)))

    assert invoice.status == status
    assert invoice.total_amount_cents == 0
    assert bool(invoice.sequential_id) is numbered
    assert invoice.number.endswith("-DRAFT") is not numbered
