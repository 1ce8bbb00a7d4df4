"""Subscription invoices, the remaining cases of issue 7: non-invoiceable recurring renewals
(spec §7.14, §12.3 step 2), fixed charges billed monthly (§8, §6), plan-change previews (§12.11)
and usage windows after a timezone change (§10.5).

Subscriptions are rows made by factories (no hook fires); each test calls the invoicing service
of the transition it checks, with `now` passed in.
"""

from datetime import date

import pytest
import time_machine

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from customers.models import Subscription
from invoicing.models import Fee, FeeAppliedTax, Invoice, InvoiceSubscription
from invoicing.services.billing_run import customers_due
from invoicing.services.generation import (
    invoice_create_for_start,
    invoice_create_for_termination,
    invoice_preview,
)
from invoicing.services.in_advance import in_advance_fees_create
from invoicing.services.lifecycle import invoice_finalize, invoice_refresh
from tests.invoicing.billing_helpers import (
    bill,
    customer,
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
from tests.plans.factories import BillableMetricFactory, ChargeFactory, FixedChargeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(organization):
    return customer(organization, external_id="acme")


# --------------------------------------------------------------------------------------------
# 1. Recurring pay-in-advance charges that are not invoiceable (spec §7.14, §12.3 step 2)


def _seats_plan(organization, *, invoiceable: bool, grouped_by: list[str] | None = None):
    """Monthly plan (arrears, 10.00) with a recurring unique-count seat charge at 30.00 a seat,
    paid in advance (Lago scenario "Recurring Non Invoiceable Fees")."""
    monthly = plan(organization, amount_cents=1000)
    metric = BillableMetricFactory(
        organization=organization,
        code="seats",
        aggregation_type="unique_count_agg",
        field_name="item_id",
        recurring=True,
    )
    properties: dict = {"amount": "30"}
    if grouped_by:
        properties["pricing_group_keys"] = grouped_by
    charge = ChargeFactory(
        organization=organization,
        plan=monthly,
        billable_metric=metric,
        pay_in_advance=True,
        invoiceable=invoiceable,
        properties=properties,
    )
    return monthly, charge


def _add_seat(organization, subscription, item_id: str, at) -> None:
    event = send_event(organization, subscription, "seats", at, item_id=item_id)
    in_advance_fees_create(
        organization_id=organization.id,
        external_subscription_id=subscription.external_id,
        transaction_id=event.transaction_id,
        actor=SYSTEM,
        now=at,
    )


def _renewals(charge) -> list[Fee]:
    """Fees of the charge not tied to an ingested event: the period-start renewals."""
    return list(
        Fee.objects.filter(charge=charge, pay_in_advance_event_transaction_id="").order_by(
            "created_at", "id"
        )
    )


def _seated(organization, acme, *, invoiceable=False, grouped_by=None, seats=3):
    monthly, charge = _seats_plan(organization, invoiceable=invoiceable, grouped_by=grouped_by)
    subscription = subscribe(organization, acme, monthly, utc(2024, 6, 5, 12, 12))
    for index in range(1, seats + 1):
        _add_seat(organization, subscription, f"user_{index}", utc(2024, 6, 10 + index, 10))
    return subscription, charge


def test_non_invoiceable_renewal_is_a_fee_without_invoice(organization, acme):
    subscription, charge = _seated(organization, acme)

    invoice = only_invoice(bill(acme, date(2024, 7, 1)))

    [renewal] = _renewals(charge)
    assert renewal.invoice_id is None
    assert (renewal.units, renewal.amount_cents) == (3, 9000)  # 3 carried seats x 30.00
    assert (renewal.pay_in_advance, renewal.invoiceable) == (True, False)
    assert renewal.subscription == subscription
    assert renewal.properties["from_datetime"] == "2024-07-01T00:00:00+00:00"
    assert renewal.properties["to_datetime"] == "2024-07-31T23:59:59+00:00"
    assert fee_amounts(invoice, "charge") == []  # never on the periodic invoice
    assert invoice.fees_amount_cents == fee_amounts(invoice, "subscription")[0]


def test_non_invoiceable_renewal_records_the_fee_created_webhook(organization, acme):
    _, charge = _seated(organization, acme)

    bill(acme, date(2024, 7, 1))

    [renewal] = _renewals(charge)
    outbox = OutboxEvent.objects.get(event_type="fee.created", object_id=str(renewal.pk))
    assert outbox.payload["amount_cents"] == 9000
    assert outbox.payload["lago_charge_id"] == str(charge.pk)


def test_non_invoiceable_renewal_carries_the_charge_taxes(organization, acme):
    _, charge = _seats_plan(organization, invoiceable=False)
    charge.taxes.add(tax(organization, "vat20", "20"))
    subscription = subscribe(organization, acme, charge.plan, utc(2024, 6, 5, 12, 12))
    _add_seat(organization, subscription, "user_1", utc(2024, 6, 11, 10))

    bill(acme, date(2024, 7, 1))

    [renewal] = _renewals(charge)
    assert (renewal.taxes_amount_cents, renewal.taxes_rate) == (600, 20)
    applied = FeeAppliedTax.objects.get(fee=renewal)
    assert (applied.tax_code, applied.amount_cents) == ("vat20", 600)


def test_non_invoiceable_renewal_follows_every_period_start(organization, acme):
    subscription, charge = _seated(organization, acme)
    bill(acme, date(2024, 7, 1))
    _add_seat(organization, subscription, "user_july_1", utc(2024, 7, 12, 1))
    _add_seat(organization, subscription, "user_july_2", utc(2024, 7, 12, 2))

    bill(acme, date(2024, 8, 1))

    assert [(fee.units, fee.amount_cents) for fee in _renewals(charge)] == [(3, 9000), (5, 15000)]


def test_non_invoiceable_renewal_one_fee_per_group(organization, acme):
    _, charge = _seated(organization, acme, grouped_by=["item_id"])

    bill(acme, date(2024, 7, 1))

    renewals = _renewals(charge)
    assert len(renewals) == 3
    assert {fee.grouped_by["item_id"] for fee in renewals} == {"user_1", "user_2", "user_3"}
    assert {(fee.units, fee.amount_cents, fee.invoice_id) for fee in renewals} == {(1, 3000, None)}


def test_non_invoiceable_renewal_is_created_once_per_period(organization, acme):
    _, charge = _seated(organization, acme)
    invoice = only_invoice(bill(acme, date(2024, 7, 1)))
    # the periodic invoice disappears (rows included): the run bills the day again
    InvoiceSubscription.objects.filter(invoice=invoice).delete()
    Fee.objects.filter(invoice=invoice).delete()
    invoice.delete()

    again = only_invoice(bill(acme, date(2024, 7, 1)))

    assert again.pk != invoice.pk
    assert len(_renewals(charge)) == 1
    assert OutboxEvent.objects.filter(event_type="fee.created").count() == 3 + 1


def test_non_invoiceable_renewal_of_a_draft_is_not_redone_by_refresh_or_finalize(
    organization, acme
):
    set_entity(organization, invoice_grace_period=3)
    _, charge = _seated(organization, acme)
    draft = only_invoice(bill(acme, date(2024, 7, 1)))
    assert draft.status == Invoice.Status.DRAFT

    invoice_refresh(invoice=draft, actor=SYSTEM, now=utc(2024, 7, 2))
    invoice_finalize(invoice=draft, actor=SYSTEM, now=utc(2024, 7, 4))

    assert len(_renewals(charge)) == 1
    assert fee_amounts(draft, "charge") == []


def test_no_renewal_without_carried_units(organization, acme):
    monthly, charge = _seats_plan(organization, invoiceable=False)
    subscribe(organization, acme, monthly, utc(2024, 6, 5, 12, 12))

    bill(acme, date(2024, 7, 1))

    assert _renewals(charge) == []


def test_termination_renews_nothing(organization, acme):
    subscription, charge = _seated(organization, acme)
    bill(acme, date(2024, 7, 1))
    subscription.status = Subscription.Status.TERMINATED
    subscription.terminated_at = utc(2024, 7, 15, 1, 10)
    subscription.save()

    invoice_create_for_termination(
        subscription=subscription, actor=SYSTEM, now=utc(2024, 7, 15, 1, 10)
    )

    assert len(_renewals(charge)) == 1


def test_preview_creates_no_renewal(organization, acme):
    subscription, charge = _seated(organization, acme)

    invoice_preview(customer=acme, subscriptions=[subscription], now=utc(2024, 6, 20))

    assert _renewals(charge) == []


def test_invoiceable_renewal_stays_on_the_periodic_invoice(organization, acme):
    _, charge = _seated(organization, acme, invoiceable=True)

    invoice = only_invoice(bill(acme, date(2024, 7, 1)))

    [renewal] = _renewals(charge)
    assert renewal.invoice_id == invoice.pk
    assert fee_amounts(invoice, "charge") == [9000]


# --------------------------------------------------------------------------------------------
# 2. Fixed charges billed monthly on yearly and semiannual plans (spec §8, §6)


def test_yearly_plan_bills_fixed_charges_every_month(organization, acme):
    yearly = plan(
        organization, interval="yearly", amount_cents=12000, bill_fixed_charges_monthly=True
    )
    FixedChargeFactory(organization=organization, plan=yearly, properties={"amount": "10"})
    subscribe(organization, acme, yearly, utc(2023, 1, 1))

    february = only_invoice(bill(acme, date(2023, 2, 1)))
    march = only_invoice(bill(acme, date(2023, 3, 1)))
    next_year = only_invoice(bill(acme, date(2024, 1, 1)))

    assert fee_amounts(february) == fee_amounts(march) == [1000]  # fixed charge only
    [fixed] = fees(march, "fixed_charge")
    assert fixed.properties["from_datetime"] == "2023-02-01T00:00:00+00:00"
    assert fixed.properties["to_datetime"] == "2023-02-28T23:59:59+00:00"
    assert sorted(fee_amounts(next_year)) == [1000, 12000]  # December's fixed charge + the year


def test_yearly_plan_without_the_flag_bills_fixed_charges_yearly(organization, acme):
    yearly = plan(organization, interval="yearly", amount_cents=12000, bill_charges_monthly=True)
    FixedChargeFactory(organization=organization, plan=yearly, properties={"amount": "10"})
    subscribe(organization, acme, yearly, utc(2023, 1, 1))

    february = only_invoice(bill(acme, date(2023, 2, 1)))
    next_year = only_invoice(bill(acme, date(2024, 1, 1)))

    assert fee_amounts(february) == []
    assert sorted(fee_amounts(next_year)) == [1000, 12000]


def test_semiannual_anniversary_plan_bills_fixed_charges_on_each_monthly_anniversary(
    organization, acme
):
    half = plan(
        organization, interval="semiannual", amount_cents=6000, bill_fixed_charges_monthly=True
    )
    FixedChargeFactory(organization=organization, plan=half, properties={"amount": "10"})
    subscribe(organization, acme, half, utc(2023, 1, 10), billing_time="anniversary")

    assert bill(acme, date(2023, 2, 1)).invoices == ()
    february = only_invoice(bill(acme, date(2023, 2, 10)))
    july = only_invoice(bill(acme, date(2023, 7, 10)))

    assert fee_amounts(february) == [1000]
    assert sorted(fee_amounts(july)) == [1000, 6000]


def test_monthly_fixed_charges_leave_yearly_usage_to_the_plan_period(organization, acme):
    yearly = plan(organization, interval="yearly", amount_cents=0, bill_fixed_charges_monthly=True)
    FixedChargeFactory(organization=organization, plan=yearly, properties={"amount": "10"})
    metric = BillableMetricFactory(organization=organization, code="calls", count=True)
    ChargeFactory(
        organization=organization, plan=yearly, billable_metric=metric, properties={"amount": "2"}
    )
    subscription = subscribe(organization, acme, yearly, utc(2023, 1, 1))
    send_event(organization, subscription, "calls", utc(2023, 1, 20))

    february = only_invoice(bill(acme, date(2023, 2, 1)))
    next_year = only_invoice(bill(acme, date(2024, 1, 1)))

    assert fee_amounts(february, "charge") == []
    assert fee_amounts(next_year, "charge") == [200]  # the year's usage, once


def test_monthly_fixed_charge_in_advance_is_prorated_on_the_first_month(organization, acme):
    yearly = plan(
        organization, interval="yearly", amount_cents=12000, bill_fixed_charges_monthly=True
    )
    FixedChargeFactory(
        organization=organization,
        plan=yearly,
        properties={"amount": "10"},
        pay_in_advance=True,
        prorated=True,
    )
    subscription = subscribe(organization, acme, yearly, utc(2023, 1, 15))

    start = invoice_create_for_start(subscription=subscription, actor=SYSTEM, now=utc(2023, 1, 15))
    february = only_invoice(bill(acme, date(2023, 2, 1)))

    assert fee_amounts(start, "fixed_charge") == [548]  # 1000 x 17 / 31
    assert fee_amounts(february) == [1000]  # February, in advance


def test_monthly_fixed_charge_in_arrears_is_prorated_on_termination(organization, acme):
    yearly = plan(organization, interval="yearly", amount_cents=0, bill_fixed_charges_monthly=True)
    FixedChargeFactory(
        organization=organization, plan=yearly, properties={"amount": "10"}, prorated=True
    )
    subscription = subscribe(
        organization,
        acme,
        yearly,
        utc(2023, 1, 1),
        status=Subscription.Status.TERMINATED,
        terminated_at=utc(2023, 3, 10, 12),
    )

    invoice = invoice_create_for_termination(
        subscription=subscription, actor=SYSTEM, now=utc(2023, 3, 10, 12)
    )

    assert fee_amounts(invoice, "fixed_charge") == [323]  # 1000 x 10 / 31


def test_billing_run_finds_the_monthly_fixed_charge_days(organization, acme):
    yearly = plan(organization, interval="yearly", bill_fixed_charges_monthly=True)
    FixedChargeFactory(organization=organization, plan=yearly)
    subscribe(organization, acme, yearly, utc(2023, 1, 1))

    due = customers_due(now=utc(2023, 2, 1, 1), organization=organization)

    assert due == [(acme.pk, date(2023, 2, 1))]


# --------------------------------------------------------------------------------------------
# 3. Previews of a plan change (spec §12.11, §9.4)


def _current(organization, acme, **values):
    values.setdefault("amount_cents", 3100)
    monthly = plan(organization, **values)
    return subscribe(organization, acme, monthly, utc(2024, 3, 1), external_id="seat")


def test_preview_of_an_upgrade_closes_the_old_plan_and_starts_the_new(organization, acme):
    subscription = _current(organization, acme)
    bigger = plan(organization, amount_cents=6200, pay_in_advance=True)

    preview = invoice_preview(
        customer=acme, subscriptions=[subscription], target_plan=bigger, now=utc(2024, 3, 11, 9)
    )

    # old plan Mar 1..10 (the upgrade day is the new plan's): 10 x 100; new Mar 11..31: 21 x 200
    assert [fee.amount_cents for fee in preview.fees] == [1000, 4200]
    assert [item.reason for item in preview.items] == [
        "subscription_terminating",
        "subscription_starting",
    ]
    assert preview.invoice.total_amount_cents == 5200
    assert [s.plan for s in preview.subscriptions] == [subscription.plan, bigger]


def test_preview_of_an_upgrade_to_a_plan_in_arrears_bills_only_the_old_days(organization, acme):
    subscription = _current(organization, acme)
    bigger = plan(organization, amount_cents=6200)

    preview = invoice_preview(
        customer=acme, subscriptions=[subscription], target_plan=bigger, now=utc(2024, 3, 11, 9)
    )

    assert [fee.amount_cents for fee in preview.fees] == [1000]


def test_preview_of_a_downgrade_closes_the_period_then_starts_the_new_plan(organization, acme):
    subscription = _current(organization, acme, amount_cents=6200)
    smaller = plan(organization, amount_cents=3000, pay_in_advance=True)

    preview = invoice_preview(
        customer=acme, subscriptions=[subscription], target_plan=smaller, now=utc(2024, 3, 11, 9)
    )

    # the current period is billed in full, then April in advance on the new plan
    assert [fee.amount_cents for fee in preview.fees] == [6200, 3000]
    terminating, starting = preview.items
    assert terminating.period.to_datetime == utc(2024, 3, 31, 23, 59, 59)
    assert starting.period.from_datetime == utc(2024, 4, 1)


def test_preview_of_a_plan_change_persists_nothing(organization, acme):
    subscription = _current(organization, acme)
    bigger = plan(organization, amount_cents=6200, pay_in_advance=True)

    invoice_preview(
        customer=acme, subscriptions=[subscription], target_plan=bigger, now=utc(2024, 3, 11, 9)
    )

    subscription.refresh_from_db()
    assert (subscription.status, subscription.terminated_at) == ("active", None)
    assert Subscription.objects.count() == 1
    assert not Invoice.objects.exists()
    assert not Fee.objects.exists()


def test_api_preview_of_a_plan_change(api, organization, acme):
    _current(organization, acme)
    plan(organization, code="bigger", amount_cents=6200, pay_in_advance=True)

    with time_machine.travel(utc(2024, 3, 11, 9), tick=False):
        response = api.post(
            "/api/v1/invoices/preview",
            {
                "customer": {"external_id": "acme"},
                "subscriptions": {"external_ids": ["seat"], "plan_code": "bigger"},
            },
            format="json",
        )

    assert response.status_code == 200, response.json()
    body = response.json()["invoice"]
    assert [fee["amount_cents"] for fee in body["fees"]] == [1000, 4200]
    assert [s["plan_code"] for s in body["subscriptions"]][1] == "bigger"
    assert not Invoice.objects.exists()


@pytest.mark.parametrize(
    ("plan_code", "status", "expected"),
    [
        pytest.param("nope", 404, "plan_not_found", id="unknown-plan"),
        pytest.param("current", 422, "new_plan_should_be_different_from_existing_plan", id="same"),
    ],
)
def test_api_preview_of_a_plan_change_refuses(api, organization, acme, plan_code, status, expected):
    _current(organization, acme, code="current")

    response = api.post(
        "/api/v1/invoices/preview",
        {
            "customer": {"external_id": "acme"},
            "subscriptions": {"external_ids": ["seat"], "plan_code": plan_code},
        },
        format="json",
    )

    assert response.status_code == status
    assert expected in str(response.json())


def test_api_preview_of_a_termination_in_the_past_is_refused(api, organization, acme):
    _current(organization, acme)

    with time_machine.travel(utc(2024, 3, 11, 9), tick=False):
        response = api.post(
            "/api/v1/invoices/preview",
            {
                "customer": {"external_id": "acme"},
                "subscriptions": {
                    "external_ids": ["seat"],
                    "terminated_at": "2024-03-10T00:00:00Z",
                },
            },
            format="json",
        )

    assert response.status_code == 422
    assert response.json()["error_details"] == {"terminated_at": ["cannot_be_in_past"]}


# --------------------------------------------------------------------------------------------
# 4. Timezone change (spec §10.5)


def _counted(organization, acme):
    monthly = plan(organization, amount_cents=0)
    metric = BillableMetricFactory(organization=organization, code="calls", count=True)
    ChargeFactory(
        organization=organization, plan=monthly, billable_metric=metric, properties={"amount": "1"}
    )
    return subscribe(organization, acme, monthly, utc(2024, 1, 1))


def test_timezone_change_west_leaves_no_gap_in_usage(organization, acme):
    subscription = _counted(organization, acme)
    bill(acme, date(2024, 2, 1))
    acme.timezone = "America/New_York"  # UTC-5: February would start at 05:00 UTC
    acme.save()
    send_event(organization, subscription, "calls", utc(2024, 2, 1, 2))

    march = only_invoice(bill(acme, date(2024, 3, 1)))

    [row] = rows(march)
    assert row.charges_from_datetime == utc(2024, 2, 1)  # one second after January's window
    assert fee_amounts(march, "charge") == [100]


def test_timezone_change_east_counts_no_event_twice(organization, acme):
    subscription = _counted(organization, acme)
    send_event(organization, subscription, "calls", utc(2024, 1, 31, 20))
    january = only_invoice(bill(acme, date(2024, 2, 1)))
    acme.timezone = "Asia/Tokyo"  # UTC+9: February would start on Jan 31 at 15:00 UTC
    acme.save()

    march = only_invoice(bill(acme, date(2024, 3, 1), now=utc(2024, 3, 1, 12)))

    assert fee_amounts(january, "charge") == [100]
    assert rows(march)[0].charges_from_datetime == utc(2024, 2, 1)
    assert fee_amounts(march, "charge") == []


def test_timezone_change_aligns_the_closing_invoice_too(organization, acme):
    subscription = _counted(organization, acme)
    bill(acme, date(2024, 2, 1))
    acme.timezone = "America/New_York"
    acme.save()
    send_event(organization, subscription, "calls", utc(2024, 2, 1, 2))
    subscription.status = Subscription.Status.TERMINATED
    subscription.terminated_at = utc(2024, 2, 10, 12)
    subscription.save()

    invoice = invoice_create_for_termination(
        subscription=subscription, actor=SYSTEM, now=utc(2024, 2, 10, 12)
    )

    assert rows(invoice)[0].charges_from_datetime == utc(2024, 2, 1)
    assert fee_amounts(invoice, "charge") == [100]


def test_without_timezone_change_windows_stay_on_local_midnight(organization, acme):
    acme.timezone = "America/New_York"
    acme.save()
    _counted(organization, acme)
    bill(acme, date(2024, 2, 1), now=utc(2024, 2, 1, 12))

    march = only_invoice(bill(acme, date(2024, 3, 1), now=utc(2024, 3, 1, 12)))

    assert rows(march)[0].charges_from_datetime == utc(2024, 2, 1, 5)
