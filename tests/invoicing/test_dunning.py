"""Dunning campaigns over several simulated days (time-machine): thresholds per currency,
attempts, days between attempts, counters reset, `dunning_campaign.finished`."""

from __future__ import annotations

import datetime as dt
import io

import pytest
import time_machine
from django.core.management import call_command

from billing.actors import SYSTEM
from billing.errors import Invalid
from billing.models import OutboxEvent
from invoicing.models import CustomerDunning, Invoice, PaymentRequest
from invoicing.services.dunning import (
    billing_entity_dunning_campaign_set,
    customer_dunning_update,
    dunning_campaign_create,
    dunning_campaign_delete,
    process_dunning_campaigns,
)
from invoicing.services.payment_settlement import payment_create_manual
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_receipt_pdf(settings):
    settings.RECEIPT_PDF_ON_CREATE = False


def at(day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2025, 1, day, hour, tzinfo=dt.UTC)


def overdue_invoice(organization, customer, cents: int, currency: str) -> Invoice:
    invoice = build_invoice(
        organization,
        customer=customer,
        currency=currency,
        fees=[FeeSpec(amount_cents=cents)],
        issuing_date=dt.date(2024, 12, 1),
    )
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)
    return invoice


def campaign(organization, **values):
    values.setdefault("thresholds", [{"currency": "EUR", "amount_cents": 15000}])
    return dunning_campaign_create(
        organization=organization,
        name=values.pop("name", "Reminders"),
        code=values.pop("code", "reminders"),
        actor=SYSTEM,
        now=at(1),
        **values,
    )


def run(day: int, hour: int = 10) -> int:
    with time_machine.travel(at(day, hour), tick=False):
        from django.utils import timezone

        return process_dunning_campaigns(actor=SYSTEM, now=timezone.now())


def attempts(customer) -> dict:
    return CustomerDunning.objects.get(customer=customer).currency_attempts


def finished() -> int:
    return OutboxEvent.objects.filter(event_type="dunning_campaign.finished").count()


def test_v106_a_campaign_duns_each_currency_from_its_threshold_up_to_max_attempts(organization):
    customer = CustomerFactory(organization=organization, currency="EUR")
    billing_entity_dunning_campaign_set(
        billing_entity=customer.billing_entity,
        campaign=campaign(
            organization,
            max_attempts=2,
            days_between_attempts=2,
            thresholds=[
                {"currency": "EUR", "amount_cents": 15000},
                {"currency": "USD", "amount_cents": 10000},
            ],
        ),
        actor=SYSTEM,
        now=at(1),
    )
    overdue_invoice(organization, customer, 14900, "EUR")
    overdue_invoice(organization, customer, 12000, "USD")

    assert run(3) == 1  # EUR 149 < 150: only USD
    assert attempts(customer) == {"USD": 1}
    assert PaymentRequest.objects.get().amount_currency == "USD"

    assert run(5) == 0  # within the 2 days between attempts
    overdue_invoice(organization, customer, 1000, "EUR")  # 01-05 18:00: EUR 159

    assert run(6) == 2
    assert attempts(customer) == {"USD": 2, "EUR": 1}
    assert PaymentRequest.objects.count() == 3
    assert finished() == 0

    assert run(9) == 1  # USD at its maximum: only EUR
    assert attempts(customer) == {"USD": 2, "EUR": 2}
    assert PaymentRequest.objects.count() == 4
    assert finished() == 1
    event = OutboxEvent.objects.get(event_type="dunning_campaign.finished")
    assert event.payload["dunning_campaign_code"] == "reminders"
    assert event.payload["overdue_balances"] == [
        {"currency": "EUR", "amount_cents": 15900},
        {"currency": "USD", "amount_cents": 12000},
    ]

    assert run(12) == 0
    assert PaymentRequest.objects.count() == 4
    assert finished() == 1


def test_a_dunning_payment_request_asks_for_every_overdue_invoice_of_the_currency(organization):
    customer = CustomerFactory(organization=organization)
    billing_entity_dunning_campaign_set(
        billing_entity=customer.billing_entity,
        campaign=campaign(organization),
        actor=SYSTEM,
        now=at(1),
    )
    first = overdue_invoice(organization, customer, 10000, "EUR")
    second = overdue_invoice(organization, customer, 6000, "EUR")
    run(3)
    request = PaymentRequest.objects.get()
    assert request.amount_cents == 16000
    assert set(request.invoices.values_list("pk", flat=True)) == {first.pk, second.pk}
    assert request.dunning_campaign.code == "reminders"
    created = OutboxEvent.objects.get(event_type="payment_request.created")
    assert created.payload["dunning_campaign_code"] == "reminders"


def test_a_customer_without_campaign_or_opted_out_is_not_dunned(organization):
    plain = CustomerFactory(organization=organization)
    overdue_invoice(organization, plain, 50000, "EUR")
    assert run(3) == 0
    reminders = campaign(organization)
    opted_out = CustomerFactory(organization=organization)
    overdue_invoice(organization, opted_out, 50000, "EUR")
    customer_dunning_update(
        customer=opted_out,
        applied_dunning_campaign=reminders,
        exclude_from_dunning_campaign=True,
        actor=SYSTEM,
        now=at(1),
    )
    assert run(4) == 0
    assert PaymentRequest.objects.count() == 0


def test_the_customers_own_campaign_wins_over_the_entity_default(organization):
    customer = CustomerFactory(organization=organization)
    overdue_invoice(organization, customer, 5000, "EUR")
    billing_entity_dunning_campaign_set(
        billing_entity=customer.billing_entity,
        campaign=campaign(organization),  # 150.00: not reached
        actor=SYSTEM,
        now=at(1),
    )
    own = campaign(
        organization, code="early", thresholds=[{"currency": "EUR", "amount_cents": 1000}]
    )
    customer_dunning_update(
        customer=customer, applied_dunning_campaign=own, actor=SYSTEM, now=at(1)
    )
    assert run(3) == 1
    assert PaymentRequest.objects.get().dunning_campaign == own


def test_paying_the_overdue_balance_restarts_that_currencys_attempts(organization):
    customer = CustomerFactory(organization=organization)
    billing_entity_dunning_campaign_set(
        billing_entity=customer.billing_entity,
        campaign=campaign(organization, max_attempts=1),
        actor=SYSTEM,
        now=at(1),
    )
    invoice = overdue_invoice(organization, customer, 20000, "EUR")
    run(3)
    assert attempts(customer) == {"EUR": 1}
    payment_create_manual(
        payable=invoice, amount_cents=20000, reference="r", paid_at=None, actor=SYSTEM, now=at(4)
    )
    state = CustomerDunning.objects.get(customer=customer)
    assert state.currency_attempts == {"EUR": 0}
    assert state.last_attempt_at is None
    overdue_invoice(organization, customer, 20000, "EUR")
    assert run(5) == 1  # a new overdue balance is dunned again from attempt 1


def test_changing_the_customers_campaign_restarts_its_attempts(organization):
    customer = CustomerFactory(organization=organization)
    first = campaign(organization, max_attempts=1)
    customer_dunning_update(
        customer=customer, applied_dunning_campaign=first, actor=SYSTEM, now=at(1)
    )
    overdue_invoice(organization, customer, 20000, "EUR")
    run(3)
    assert run(6) == 0  # at its maximum
    second = campaign(organization, code="second", max_attempts=1)
    customer_dunning_update(
        customer=customer, applied_dunning_campaign=second, actor=SYSTEM, now=at(6)
    )
    assert attempts(customer) == {}
    assert run(7) == 1


def test_deleting_a_campaign_falls_back_to_the_entity_default(organization):
    customer = CustomerFactory(organization=organization)
    default = campaign(organization, code="default")
    billing_entity_dunning_campaign_set(
        billing_entity=customer.billing_entity, campaign=default, actor=SYSTEM, now=at(1)
    )
    own = campaign(organization, code="own", max_attempts=1)
    customer_dunning_update(
        customer=customer, applied_dunning_campaign=own, actor=SYSTEM, now=at(1)
    )
    overdue_invoice(organization, customer, 20000, "EUR")
    run(3)
    dunning_campaign_delete(campaign=own, actor=SYSTEM, now=at(4))
    assert attempts(customer) == {}
    assert run(5) == 1
    assert PaymentRequest.objects.order_by("created_at").last().dunning_campaign == default


@pytest.mark.parametrize(
    ("values", "field"),
    [
        pytest.param({"max_attempts": 0}, "max_attempts", id="no-attempts"),
        pytest.param({"days_between_attempts": 0}, "days_between_attempts", id="no-days"),
        pytest.param({"thresholds": []}, "thresholds", id="no-threshold"),
        pytest.param(
            {"thresholds": [{"currency": "EUR", "amount_cents": 1}] * 2},
            "thresholds",
            id="two-thresholds-one-currency",
        ),
        pytest.param({"bcc_emails": ["not an email"]}, "bcc_emails", id="bad-bcc"),
    ],
)
def test_bad_campaigns_are_refused(organization, values, field):
    with pytest.raises(Invalid) as refused:
        campaign(organization, **values)
    assert field in refused.value.details


def test_a_campaign_code_is_unique_per_organization(organization):
    campaign(organization)
    with pytest.raises(Invalid) as refused:
        campaign(organization)
    assert refused.value.details == {"code": ["value_already_exist"]}


def test_the_job_runs_by_hand_and_its_dry_run_writes_nothing(organization):
    customer = CustomerFactory(organization=organization)
    billing_entity_dunning_campaign_set(
        billing_entity=customer.billing_entity,
        campaign=campaign(organization),
        actor=SYSTEM,
        now=at(1),
    )
    overdue_invoice(organization, customer, 20000, "EUR")
    out = io.StringIO()
    call_command("jobs", "run", "process_dunning_campaigns", "--dry-run", stdout=out)
    assert PaymentRequest.objects.count() == 0
    call_command("jobs", "run", "process_dunning_campaigns", stdout=out)
    assert PaymentRequest.objects.count() == 1


def test_marking_an_overdue_invoice_paid_restarts_the_attempts(organization):
    from invoicing.services.payments import invoice_update

    customer = CustomerFactory(organization=organization)
    billing_entity_dunning_campaign_set(
        billing_entity=customer.billing_entity,
        campaign=campaign(organization, bcc_emails=["ar@acme.test"]),
        actor=SYSTEM,
        now=at(1),
    )
    invoice = overdue_invoice(organization, customer, 20000, "EUR")
    run(3)
    created = OutboxEvent.objects.get(event_type="payment_request.created")
    assert created.payload["bcc_emails"] == ["ar@acme.test"]
    invoice_update(invoice=invoice, payment_status="succeeded", actor=SYSTEM, now=at(4))
    assert attempts(customer) == {"EUR": 0}


def test_a_partner_account_is_never_dunned(organization):
    partner = CustomerFactory(organization=organization, account_type="partner")
    billing_entity_dunning_campaign_set(
        billing_entity=partner.billing_entity,
        campaign=campaign(organization),
        actor=SYSTEM,
        now=at(1),
    )
    overdue_invoice(organization, partner, 50000, "EUR")
    assert run(3) == 0
