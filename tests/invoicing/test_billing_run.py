"""The billing run (spec §9.6, §10.3, §27): who is due in their own timezone, idempotency (also
with real concurrent workers on PostgreSQL), catch-up of transitions whose hook did not bill."""

import threading
from datetime import date, timedelta

import pytest
import time_machine
from django.db import close_old_connections, connections

from billing.actors import SYSTEM
from customers.models import Subscription
from customers.services.subscription_clock import subscription_activate_pending
from customers.services.subscriptions import subscription_create, subscription_terminate
from invoicing.models import Invoice, InvoiceSubscription
from invoicing.services.billing_run import bill_customer, customers_due
from invoicing.tasks import bill_customers_task
from tests.invoicing.billing_helpers import (
    bill,
    customer,
    fee_amounts,
    only_invoice,
    plan,
    rows,
    subscribe,
    utc,
)

Status = Subscription.Status


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


# --------------------------------------------------------------------------------------------
# Who is due, when (spec §10.3: the first run after local midnight)


@pytest.mark.django_db
def test_customers_are_due_after_their_own_local_midnight(organization):
    london = customer(organization, external_id="london", timezone="Europe/London")
    new_york = customer(organization, external_id="ny", timezone="America/New_York")
    for who in (london, new_york):
        subscribe(organization, who, plan(organization), utc(2024, 1, 10, 12))

    at_utc_midnight = customers_due(now=utc(2024, 2, 1, 0, 10))
    at_new_york_midnight = customers_due(now=utc(2024, 2, 1, 5, 10))

    assert at_utc_midnight == [(london.pk, date(2024, 2, 1))]
    assert set(at_new_york_midnight) == {
        (london.pk, date(2024, 2, 1)),
        (new_york.pk, date(2024, 2, 1)),
    }


@pytest.mark.django_db
def test_billed_customers_are_no_longer_due(organization):
    acme = customer(organization, external_id="acme")
    subscribe(organization, acme, plan(organization), utc(2024, 1, 10))
    bill(acme, date(2024, 2, 1), now=utc(2024, 2, 1, 0, 10))

    assert customers_due(now=utc(2024, 2, 1, 1, 10)) == []


@pytest.mark.django_db
def test_explicit_date_is_the_same_day_for_every_customer(organization):
    tokyo = customer(organization, external_id="tokyo", timezone="Asia/Tokyo")
    subscribe(organization, tokyo, plan(organization), utc(2024, 1, 10))

    assert customers_due(now=utc(2024, 5, 20), billing_date=date(2024, 3, 1)) == [
        (tokyo.pk, date(2024, 3, 1))
    ]
    assert customers_due(now=utc(2024, 5, 20), billing_date=date(2024, 3, 2)) == []


@pytest.mark.django_db
def test_a_day_yet_to_come_bills_nothing(organization):
    acme = customer(organization, external_id="acme")
    subscribe(organization, acme, plan(organization), utc(2024, 1, 10))

    assert bill(acme, date(2024, 2, 1), now=utc(2024, 1, 31, 23)).invoices == ()


@pytest.mark.django_db
def test_billing_twice_bills_once_and_returns_the_invoice(organization):
    acme = customer(organization, external_id="acme")
    subscribe(organization, acme, plan(organization, amount_cents=700), utc(2024, 1, 1))

    first = only_invoice(bill(acme, date(2024, 2, 1)))
    again = bill(acme, date(2024, 2, 1))

    assert again.invoices == ()
    assert [i.pk for i in again.already_billed] == [first.pk]
    assert Invoice.objects.count() == 1


@pytest.mark.django_db
def test_the_unique_constraint_is_the_last_line(organization):
    # a row for the same period under another billing instant escapes the read check: the
    # constraint refuses the second invoice, which is returned as already billed
    acme = customer(organization, external_id="acme")
    subscription = subscribe(organization, acme, plan(organization), utc(2024, 1, 1))
    first = only_invoice(bill(acme, date(2024, 2, 1)))
    InvoiceSubscription.objects.filter(invoice=first).update(
        timestamp=utc(2024, 2, 1) + timedelta(hours=3)
    )

    again = bill(acme, date(2024, 2, 1))

    assert again.invoices == ()
    assert [i.pk for i in again.already_billed] == [first.pk]
    assert subscription.invoice_subscriptions.count() == 1


# --------------------------------------------------------------------------------------------
# Safety net for the hooks, imported subscriptions, downgrades


@pytest.mark.django_db
def test_missed_starting_invoice_is_billed_on_its_day(organization):
    acme = customer(organization, external_id="acme")
    monthly = plan(organization, amount_cents=3100, pay_in_advance=True)
    subscribe(organization, acme, monthly, utc(2024, 3, 10, 9))  # no hook ran

    assert customers_due(now=utc(2024, 3, 10, 10, 10)) == [(acme.pk, date(2024, 3, 10))]
    invoice = only_invoice(bill(acme, date(2024, 3, 10), now=utc(2024, 3, 10, 10, 10)))

    assert [r.invoicing_reason for r in rows(invoice)] == ["subscription_starting"]
    assert fee_amounts(invoice) == [2200]  # 22 days of 31


@pytest.mark.django_db
def test_missed_closing_invoice_is_billed_the_next_hour(organization):
    acme = customer(organization, external_id="acme")
    subscribe(
        organization,
        acme,
        plan(organization, amount_cents=3100),
        utc(2024, 3, 1),
        status=Status.TERMINATED,
        terminated_at=utc(2024, 3, 10, 23, 30),
    )

    assert customers_due(now=utc(2024, 3, 11, 0, 10)) == [(acme.pk, date(2024, 3, 10))]
    invoice = only_invoice(bill(acme, date(2024, 3, 10), now=utc(2024, 3, 11, 0, 10)))

    assert fee_amounts(invoice) == [1000]


@pytest.mark.django_db
def test_imported_subscription_is_billed_as_if_the_clock_had_run(organization):
    acme = customer(organization, external_id="acme")
    # created today with a start three months ago: the backfill bills its past periods
    subscribe(organization, acme, plan(organization, amount_cents=3100), utc(2024, 1, 16))

    february = only_invoice(bill(acme, date(2024, 2, 1), now=utc(2024, 4, 20)))
    march = only_invoice(bill(acme, date(2024, 3, 1), now=utc(2024, 4, 20)))

    assert fee_amounts(february) == [1600]  # Jan 16..31
    assert fee_amounts(march) == [3100]


@pytest.mark.django_db
def test_downgrade_day_bills_the_old_plan_once_whatever_runs_first(organization):
    acme = customer(organization, external_id="acme")
    expensive = plan(organization, code="gold", amount_cents=5000)
    cheap = plan(organization, code="silver", amount_cents=1000)
    subscribe(organization, acme, expensive, utc(2024, 1, 1), external_id="seat")
    subscription_create(
        organization=organization,
        external_customer_id="acme",
        plan_code="silver",
        external_id="seat",
        actor=SYSTEM,
        now=utc(2024, 1, 20),
    )

    before_rotation = bill(acme, date(2024, 2, 1), now=utc(2024, 2, 1, 0, 1))
    subscription_activate_pending(actor=SYSTEM, now=utc(2024, 2, 1, 0, 5))
    after_rotation = only_invoice(bill(acme, date(2024, 2, 1), now=utc(2024, 2, 1, 0, 10)))

    assert before_rotation.invoices == ()
    assert [r.invoicing_reason for r in rows(after_rotation)] == ["subscription_terminating"]
    assert fee_amounts(after_rotation) == [5000]
    assert bill(acme, date(2024, 2, 1), now=utc(2024, 2, 1, 1, 10)).invoices == ()
    new = Subscription.objects.get(plan=cheap)
    assert new.status == Status.ACTIVE


# --------------------------------------------------------------------------------------------
# Hooks of customers.hooks (after commit)


@pytest.mark.django_db
def test_subscription_services_bill_through_the_hooks(
    organization, django_capture_on_commit_callbacks
):
    customer(organization, external_id="acme")
    plan(organization, code="advance", amount_cents=3100, pay_in_advance=True)

    with (
        time_machine.travel(utc(2024, 3, 10, 9), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        subscription = subscription_create(
            organization=organization,
            external_customer_id="acme",
            plan_code="advance",
            actor=SYSTEM,
            now=utc(2024, 3, 10, 9),
        )
    with (
        time_machine.travel(utc(2024, 3, 20, 9), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        subscription_terminate(subscription=subscription, actor=SYSTEM, now=utc(2024, 3, 20, 9))

    reasons = list(
        InvoiceSubscription.objects.filter(subscription=subscription)
        .order_by("created_at")
        .values_list("invoicing_reason", flat=True)
    )
    assert reasons == ["subscription_starting", "subscription_terminating"]
    assert bill(subscription.customer, date(2024, 3, 10), now=utc(2024, 3, 21)).invoices == ()


# --------------------------------------------------------------------------------------------
# Concurrent runs on PostgreSQL (real threads, real transactions)


def _in_threads(count, target):
    barrier = threading.Barrier(count)
    results, errors = [], []

    def run(index):
        close_old_connections()
        try:
            barrier.wait()
            results.append(target(index))
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


@pytest.mark.django_db(transaction=True)
def test_parallel_runs_of_one_customer_bill_each_invoice_once(organization):
    acme = customer(organization, external_id="acme")
    for amount in (100, 200, 300):
        subscribe(organization, acme, plan(organization, amount_cents=amount), utc(2024, 1, 1))
    subscribe(
        organization,
        acme,
        plan(organization, amount_cents=400),
        utc(2024, 1, 1),
        consolidate_invoice=False,
    )

    results = _in_threads(
        4,
        lambda _: bill_customer(
            customer=acme, billing_date=date(2024, 2, 1), actor=SYSTEM, now=utc(2024, 2, 1)
        ),
    )

    invoices = Invoice.objects.filter(customer=acme)
    assert sorted(i.total_amount_cents for i in invoices) == [400, 600]
    assert sum(len(r.invoices) for r in results) == 2
    assert InvoiceSubscription.objects.count() == 4
    assert sorted(invoices.values_list("sequential_id", flat=True)) == [1, 2]


@pytest.mark.django_db(transaction=True)
def test_two_whole_billing_runs_at_once_bill_each_invoice_once(organization, settings):
    customers = [customer(organization, external_id=f"c{i}") for i in range(6)]
    for who in customers:
        subscribe(organization, who, plan(organization, amount_cents=1000), utc(2024, 1, 1))

    with time_machine.travel(utc(2024, 2, 1, 0, 10), tick=False):
        _in_threads(2, lambda _: bill_customers_task())

    assert Invoice.objects.count() == 6
    assert InvoiceSubscription.objects.count() == 6
    assert all(i.status == Invoice.Status.FINALIZED for i in Invoice.objects.all())


@pytest.mark.django_db
def test_upgrade_bills_through_the_plan_change_hook(
    organization, django_capture_on_commit_callbacks
):
    customer(organization, external_id="acme")
    plan(organization, code="basic", amount_cents=3100)
    plan(organization, code="pro", amount_cents=6200, pay_in_advance=True)
    with time_machine.travel(utc(2024, 3, 1, 9), tick=False):
        subscription_create(
            organization=organization,
            external_customer_id="acme",
            plan_code="basic",
            external_id="seat",
            actor=SYSTEM,
            now=utc(2024, 3, 1, 9),
        )
    with (
        time_machine.travel(utc(2024, 3, 11, 9), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        subscription_create(
            organization=organization,
            external_customer_id="acme",
            plan_code="pro",
            external_id="seat",
            actor=SYSTEM,
            now=utc(2024, 3, 11, 9),
        )

    invoice = Invoice.objects.get()
    assert [r.invoicing_reason for r in rows(invoice)] == [
        "subscription_terminating",
        "subscription_starting",
    ]
    # basic: Mar 1..10 (the upgrade day is the new plan's); pro: Mar 11..31 in advance
    assert sorted(fee_amounts(invoice)) == [1000, 4200]
