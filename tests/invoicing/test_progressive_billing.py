"""Progressive billing (usage thresholds): the invoices the refresh pass issues when the lifetime
usage passes a threshold, and their deduction from the period's later invoices (V92, V94)."""

from __future__ import annotations

from datetime import date

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from invoicing.models import AppliedUsageThreshold, Credit, CreditNote, Invoice
from invoicing.services.generation import invoice_create_for_termination
from invoicing.services.progressive_billing import progressive_billing_after_usage_pass
from metering.models import LifetimeUsage
from tests.customers.factories import SubscriptionFactory
from tests.invoicing.billing_helpers import bill, only_invoice
from tests.invoicing.progressive_builders import (
    progressive_invoices,
    terminate,
    upgrade,
    usage,
    v92_billing,
)
from tests.metering.usage.conftest import at, make_billing

pytestmark = pytest.mark.django_db

# -- V92: one threshold


def test_passing_the_threshold_issues_a_finalized_progressive_invoice(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])

    usage(billing, "2022-12-06T10:00:00")

    [invoice] = progressive_invoices(billing)
    assert invoice.status == Invoice.Status.FINALIZED
    assert invoice.number
    assert "DRAFT" not in invoice.number
    assert (invoice.fees_amount_cents, invoice.total_amount_cents) == (20_000, 20_000)
    assert invoice.issuing_date == date(2022, 12, 6)
    applied = AppliedUsageThreshold.objects.get(invoice=invoice)
    assert (applied.usage_threshold.amount_cents, applied.lifetime_usage_amount_cents) == (
        20_000,
        20_000,
    )


def test_passing_a_threshold_records_the_threshold_and_invoice_events(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])

    usage(billing, "2022-12-06T10:00:00")

    [reached] = OutboxEvent.objects.filter(event_type="subscription.usage_threshold_reached")
    assert reached.object_id == str(billing.subscription.pk)
    assert reached.payload["usage_threshold"]["amount_cents"] == 20_000
    [invoice] = progressive_invoices(billing)
    assert OutboxEvent.objects.filter(
        event_type="invoice.created", object_id=str(invoice.pk)
    ).exists()


def test_a_threshold_already_passed_issues_no_second_invoice(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")

    usage(billing, "2022-12-16T10:00:00")

    assert len(progressive_invoices(billing)) == 1


@pytest.mark.parametrize(
    ("grace_days", "status"),
    [
        pytest.param(0, Invoice.Status.FINALIZED, id="no-grace-period"),
        pytest.param(2, Invoice.Status.DRAFT, id="grace-period-draft"),
    ],
)
def test_v92_end_of_period_invoice_deducts_the_progressive_invoice(
    api, organization, grace_days, status
):
    billing = v92_billing(api, organization, [(20_000, False)])
    billing.customer.invoice_grace_period = grace_days
    billing.customer.save()
    usage(billing, "2022-12-06T10:00:00")
    usage(billing, "2022-12-16T10:00:00")

    invoice = only_invoice(bill(billing.customer, date(2023, 1, 1)))

    assert invoice.status == status
    assert invoice.fees_amount_cents == 43_100
    assert invoice.progressive_billing_credit_amount_cents == 20_000
    assert invoice.total_amount_cents == 23_100
    [progressive] = progressive_invoices(billing)
    credit = Credit.objects.get(invoice=invoice, progressive_billing_invoice__isnull=False)
    assert (credit.progressive_billing_invoice, credit.amount_cents) == (progressive, 20_000)
    assert credit.before_taxes


def test_v92_a_one_time_threshold_passes_once_in_the_subscription_life(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    december = only_invoice(bill(billing.customer, date(2023, 1, 1)))
    assert (december.fees_amount_cents, december.total_amount_cents) == (23_100, 3_100)

    usage(billing, "2023-01-10T10:00:00", total=2_000_000)
    january = only_invoice(bill(billing.customer, date(2023, 2, 1)))

    assert len(progressive_invoices(billing)) == 1
    assert january.total_amount_cents == 43_100
    assert january.progressive_billing_credit_amount_cents == 0


# -- V94: two thresholds


def test_v94_two_thresholds_each_invoice_bills_what_the_earlier_did_not(api, organization):
    billing = v92_billing(api, organization, [(20_000, False), (50_000, False)])

    usage(billing, "2022-12-16T10:00:00")
    assert [i.total_amount_cents for i in progressive_invoices(billing)] == [20_000]
    usage(billing, "2022-12-21T10:00:00")
    assert len(progressive_invoices(billing)) == 1
    usage(billing, "2022-12-26T10:00:00")

    first, second = progressive_invoices(billing)
    assert first.total_amount_cents == 20_000
    assert (second.fees_amount_cents, second.progressive_billing_credit_amount_cents) == (
        60_000,
        20_000,
    )
    assert second.total_amount_cents == 40_000
    invoice = only_invoice(bill(billing.customer, date(2023, 1, 1)))
    assert invoice.progressive_billing_credit_amount_cents == 60_000
    assert invoice.total_amount_cents == 3_100


# -- recurring threshold across two periods


def test_fixed_and_recurring_thresholds_across_two_periods(api, organization):
    """The recurring threshold passes when C + I mod R >= R (Lago's check): every 30,000 of
    lifetime usage once the one-time threshold is billed."""
    billing = v92_billing(api, organization, [(20_000, False), (30_000, True)])

    usage(billing, "2022-12-06T10:00:00")  # 20,000: the one-time threshold
    usage(billing, "2022-12-16T10:00:00")  # 40,000: passes 30,000
    usage(billing, "2022-12-21T10:00:00")  # 60,000: passes 60,000
    assert [i.fees_amount_cents for i in progressive_invoices(billing)] == [20_000, 40_000, 60_000]
    assert [i.total_amount_cents for i in progressive_invoices(billing)] == [20_000, 20_000, 20_000]
    december = only_invoice(bill(billing.customer, date(2023, 1, 1)))
    assert december.progressive_billing_credit_amount_cents == 60_000
    assert december.total_amount_cents == 3_100

    usage(billing, "2023-01-10T10:00:00")  # lifetime 80,000: below 90,000
    assert len(progressive_invoices(billing)) == 3
    usage(billing, "2023-01-20T10:00:00")  # lifetime 100,000: passes 90,000

    invoices = progressive_invoices(billing)
    assert [i.fees_amount_cents for i in invoices] == [20_000, 40_000, 60_000, 40_000]
    assert invoices[3].progressive_billing_credit_amount_cents == 0  # a new period
    steps = AppliedUsageThreshold.objects.filter(usage_threshold__recurring=True)
    assert sorted(steps.values_list("occurrence", flat=True)) == [1, 2, 3]
    january = only_invoice(bill(billing.customer, date(2023, 2, 1)))
    assert (january.fees_amount_cents, january.total_amount_cents) == (43_100, 3_100)


def test_lifetime_usage_counts_each_period_once(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    bill(billing.customer, date(2023, 1, 1))

    usage(billing, "2023-01-10T10:00:00")

    lifetime = LifetimeUsage.objects.get(subscription=billing.subscription)
    assert lifetime.invoiced_usage_amount_cents == 20_000
    assert lifetime.current_usage_amount_cents == 20_000


# -- termination, upgrade, excess


def test_termination_invoice_deducts_the_progressive_invoice(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    usage(billing, "2022-12-08T10:00:00")

    invoice = terminate(billing, "2022-12-10T12:00:00")

    charges = 40_000
    assert invoice.progressive_billing_credit_amount_cents == 20_000
    assert invoice.total_amount_cents == invoice.fees_amount_cents - 20_000
    assert invoice.fees_amount_cents - charges > 0  # the prorated subscription fee


def test_progressive_invoices_billing_more_than_the_usage_return_the_excess_by_credit_note(
    api, organization
):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    [progressive] = progressive_invoices(billing)
    # the price drops before the period ends: the period's usage is worth 15,000 now
    billing.usage_charge.properties = {"amount": "0.00015"}  # type: ignore[attr-defined]
    billing.usage_charge.save()  # type: ignore[attr-defined]

    invoice = only_invoice(bill(billing.customer, date(2023, 1, 1)))

    assert invoice.progressive_billing_credit_amount_cents == 15_000
    note = CreditNote.objects.get(invoice=progressive)
    assert (note.total_amount_cents, note.credit_amount_cents) == (5_000, 5_000)
    assert note.automatic
    # the credit note's credit is spent by the period's invoice (after taxes)
    assert invoice.credit_notes_amount_cents == 3_100
    assert invoice.total_amount_cents == 0


def test_a_subscription_with_progressive_billing_disabled_gets_no_progressive_invoice(
    api, organization
):
    billing = v92_billing(api, organization, [(20_000, False)])
    billing.subscription.progressive_billing_disabled = True
    billing.subscription.save()

    usage(billing, "2022-12-06T10:00:00")

    assert progressive_invoices(billing) == []


def test_billing_a_termination_again_deducts_nothing_more(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    terminate(billing, "2022-12-10T12:00:00")
    billing.subscription.refresh_from_db()

    terminate_at = at("2022-12-10T12:00:00")
    with time_machine.travel(terminate_at, tick=False):
        again = invoice_create_for_termination(
            subscription=billing.subscription, actor=SYSTEM, now=terminate_at
        )

    assert again is None
    assert Credit.objects.filter(progressive_billing_invoice__isnull=False).count() == 1


def test_upgrade_invoice_deducts_the_progressive_invoice_of_the_previous_plan(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    usage(billing, "2022-12-06T10:00:00")
    usage(billing, "2022-12-08T10:00:00")

    invoice = upgrade(billing, "2022-12-10T12:00:00")

    [progressive] = progressive_invoices(billing)
    credit = Credit.objects.get(invoice=invoice, progressive_billing_invoice__isnull=False)
    assert (credit.progressive_billing_invoice, credit.amount_cents) == (progressive, 20_000)
    assert invoice.progressive_billing_credit_amount_cents == 20_000
    charge_fees = invoice.fees.filter(fee_type="charge", subscription=billing.subscription)
    assert sum(fee.amount_cents for fee in charge_fees) == 40_000
    assert invoice.total_amount_cents == invoice.fees_amount_cents - 20_000


# -- the pass's check: only the subscriptions that may have passed a threshold


def test_a_usage_below_the_smallest_threshold_is_not_checked(api, organization):
    billing = v92_billing(api, organization, [(20_000, False), (50_000, False)])
    usage(billing, "2022-12-06T10:00:00", total=999_950)  # 199.99
    assert LifetimeUsage.objects.get().total_amount_cents == 19_999

    with CaptureQueriesContext(connection) as captured:
        issued = progressive_billing_after_usage_pass(
            subscription_ids=[billing.subscription.pk], now=at("2022-12-06T10:02:00")
        )

    assert issued == 0
    # the subscriptions, their thresholds, their lifetime usages: no customer lock taken
    assert len(captured.captured_queries) == 3


def test_subscriptions_without_thresholds_cost_the_check_nothing_each(api, organization):
    billing = make_billing(api, organization, started_at="2022-12-01")
    others = [SubscriptionFactory(organization=organization, plan=billing.plan) for _ in range(4)]
    counts = []
    for chosen in ([billing.subscription], [billing.subscription, *others]):
        with CaptureQueriesContext(connection) as captured:
            progressive_billing_after_usage_pass(
                subscription_ids=[s.pk for s in chosen], now=at("2022-12-06T10:02:00")
            )
        counts.append(len(captured.captured_queries))

    assert counts[0] == counts[1] <= 3
