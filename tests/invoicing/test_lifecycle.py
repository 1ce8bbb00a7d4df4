"""Drafts, finalization, numbering, deletion and failures of subscription invoices (spec §2.3,
§12.5-§12.7, §12.9)."""

from datetime import date

import pytest
import time_machine

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from billing.services import billing_entity_create
from customers.services.applied_coupons import applied_coupon_create
from invoicing.models import Credit, Invoice, InvoiceSequence
from invoicing.services.lifecycle import (
    finalize_due_drafts,
    invoice_delete_draft,
    invoice_finalize,
    invoice_mark_failed,
    invoice_refresh,
    refresh_flagged_drafts,
    retry_failed,
)
from tests.customers.factories import CustomerFactory
from tests.invoicing.billing_helpers import (
    bill,
    customer,
    fee_amounts,
    only_invoice,
    plan,
    send_event,
    set_entity,
    subscribe,
    utc,
)
from tests.plans.factories import BillableMetricFactory, ChargeFactory, CouponFactory

pytestmark = pytest.mark.django_db
Status = Invoice.Status


@pytest.fixture
def acme(organization):
    return customer(organization, external_id="acme", sequential_id=7)


@pytest.fixture
def graced(organization):
    return set_entity(organization, invoice_grace_period=3, document_number_prefix="ACM-1A2B")


def outbox(event_type):
    return list(
        OutboxEvent.objects.filter(event_type=event_type).values_list("object_id", flat=True)
    )


# --------------------------------------------------------------------------------------------
# Drafts and the grace period (spec §12.5)


def test_grace_period_makes_a_draft_until_the_finalization_date(organization, acme, graced):
    subscribe(organization, acme, plan(organization, amount_cents=1000), utc(2024, 1, 1))

    draft = only_invoice(bill(acme, date(2024, 2, 1)))

    assert draft.status == Status.DRAFT
    assert draft.number == "ACM-1A2B-DRAFT"
    assert draft.sequential_id is None
    assert draft.expected_finalization_date == date(2024, 2, 4)
    assert outbox("invoice.drafted") == [str(draft.pk)]
    assert outbox("invoice.created") == []

    assert finalize_due_drafts(actor=SYSTEM, now=utc(2024, 2, 3, 23, 20)) == []
    [finalized] = finalize_due_drafts(actor=SYSTEM, now=utc(2024, 2, 4, 0, 20))

    assert finalized.pk == draft.pk
    draft.refresh_from_db()
    assert draft.status == Status.FINALIZED
    assert draft.number == "ACM-1A2B-007-001"
    assert draft.issuing_date == date(2024, 2, 4)
    assert draft.payment_due_date == date(2024, 2, 4)
    assert outbox("invoice.created") == [str(draft.pk)]


def test_drafts_are_finalized_in_their_customer_timezone(organization, graced):
    tokyo = customer(organization, external_id="tokyo", timezone="Asia/Tokyo")
    subscribe(organization, tokyo, plan(organization), utc(2023, 12, 31, 15))  # Jan 1 in Tokyo
    draft = only_invoice(bill(tokyo, date(2024, 2, 1), now=utc(2024, 1, 31, 15, 10)))

    assert draft.expected_finalization_date == date(2024, 2, 4)
    # 2024-02-03 15:20 UTC is already 2024-02-04 00:20 in Tokyo
    assert [i.pk for i in finalize_due_drafts(actor=SYSTEM, now=utc(2024, 2, 3, 15, 20))] == [
        draft.pk
    ]


def test_drafts_never_consume_coupons(organization, acme, graced):
    coupon = CouponFactory(organization=organization, amount_cents=300, frequency="once")
    applied = applied_coupon_create(customer=acme, coupon=coupon, actor=SYSTEM, now=utc(2024, 1, 1))
    subscribe(organization, acme, plan(organization, amount_cents=1000), utc(2024, 1, 1))

    draft = only_invoice(bill(acme, date(2024, 2, 1)))

    assert (draft.coupons_amount_cents, draft.total_amount_cents) == (0, 1000)
    assert not Credit.objects.exists()
    applied.refresh_from_db()
    assert applied.status == "active"

    finalized = invoice_finalize(invoice=draft, actor=SYSTEM, now=utc(2024, 2, 2))

    assert (finalized.coupons_amount_cents, finalized.total_amount_cents) == (300, 700)
    applied.refresh_from_db()
    assert applied.status == "terminated"


def test_refresh_picks_up_late_events(organization, acme, graced):
    monthly = plan(organization, amount_cents=0)
    metric = BillableMetricFactory(organization=organization, code="calls", count=True)
    ChargeFactory(
        organization=organization, plan=monthly, billable_metric=metric, properties={"amount": "2"}
    )
    subscription = subscribe(organization, acme, monthly, utc(2024, 1, 1))
    send_event(organization, subscription, "calls", utc(2024, 1, 10))
    draft = only_invoice(bill(acme, date(2024, 2, 1)))
    assert draft.fees_amount_cents == 200

    send_event(organization, subscription, "calls", utc(2024, 1, 31, 23))  # late event
    draft.ready_to_be_refreshed = True
    draft.save()
    [refreshed] = refresh_flagged_drafts(actor=SYSTEM, now=utc(2024, 2, 2))

    assert refreshed.fees_amount_cents == 400
    assert fee_amounts(refreshed, "charge") == [400]
    refreshed.refresh_from_db()
    assert refreshed.ready_to_be_refreshed is False


def test_finalization_recomputes_the_draft(organization, acme, graced):
    monthly = plan(organization, amount_cents=1000)
    subscribe(organization, acme, monthly, utc(2024, 1, 1))
    draft = only_invoice(bill(acme, date(2024, 2, 1)))
    monthly.amount_cents = 1500
    monthly.save()

    finalized = invoice_finalize(invoice=draft, actor=SYSTEM, now=utc(2024, 2, 2))

    assert fee_amounts(finalized) == [1500]
    assert finalized.total_amount_cents == 1500


def test_refresh_and_finalize_leave_a_finalized_invoice_alone(organization, acme):
    subscribe(organization, acme, plan(organization, amount_cents=1000), utc(2024, 1, 1))
    invoice = only_invoice(bill(acme, date(2024, 2, 1)))

    assert (
        invoice_refresh(invoice=invoice, actor=SYSTEM, now=utc(2024, 2, 2)).number == invoice.number
    )
    assert (
        invoice_finalize(invoice=invoice, actor=SYSTEM, now=utc(2024, 2, 2)).number
        == invoice.number
    )
    assert InvoiceSequence.objects.get(customer=acme).last_value == 1


def test_deleted_draft_is_gone_and_never_billed_again(organization, acme, graced):
    subscribe(organization, acme, plan(organization, amount_cents=1000), utc(2024, 1, 1))
    draft = only_invoice(bill(acme, date(2024, 2, 1)))

    deleted = invoice_delete_draft(invoice=draft, actor=SYSTEM, now=utc(2024, 2, 2))

    assert deleted.status == Status.DELETED
    assert outbox("invoice.deleted") == [str(draft.pk)]
    assert bill(acme, date(2024, 2, 1)).invoices == ()
    assert finalize_due_drafts(actor=SYSTEM, now=utc(2024, 2, 10)) == []


def test_only_drafts_can_be_deleted(organization, acme):
    from billing.errors import NotAllowed

    subscribe(organization, acme, plan(organization), utc(2024, 1, 1))
    invoice = only_invoice(bill(acme, date(2024, 2, 1)))

    with pytest.raises(NotAllowed, match="not_deletable"):
        invoice_delete_draft(invoice=invoice, actor=SYSTEM, now=utc(2024, 2, 2))


def test_failed_finalization_is_retried(organization, acme, graced):
    subscription = subscribe(
        organization, acme, plan(organization, amount_cents=1000), utc(2024, 1, 1)
    )
    draft = only_invoice(bill(acme, date(2024, 2, 1)))
    failed = invoice_mark_failed(
        invoice=draft, error=RuntimeError("tax provider"), actor=SYSTEM, now=utc(2024, 2, 4)
    )
    assert failed.status == Status.FAILED
    assert failed.error_details[0]["details"]["message"] == "tax provider"

    [retried] = retry_failed(actor=SYSTEM, now=utc(2024, 2, 4, 0, 15))

    assert retried.pk == draft.pk
    assert retried.status == Status.FINALIZED
    assert retried.error_details == []
    assert subscription.invoice_subscriptions.count() == 1


def test_draft_that_cannot_be_finalized_becomes_failed(organization, acme, graced):
    monthly = plan(organization, amount_cents=0)
    metric = BillableMetricFactory(organization=organization, code="calls", count=True)
    charge = ChargeFactory(
        organization=organization, plan=monthly, billable_metric=metric, properties={"amount": "1"}
    )
    subscribe(organization, acme, monthly, utc(2024, 1, 1))
    draft = only_invoice(bill(acme, date(2024, 2, 1)))
    charge.properties = {"amount": "not a number"}  # broken after the draft was made
    charge.save()

    assert finalize_due_drafts(actor=SYSTEM, now=utc(2024, 2, 4, 0, 20)) == []

    draft.refresh_from_db()
    assert draft.status == Status.FAILED
    assert draft.error_details


# --------------------------------------------------------------------------------------------
# Numbering (spec §2.3)


def test_per_customer_numbers_count_the_customer_invoices(organization, acme):
    set_entity(organization, document_number_prefix="LAG-1234")
    acme.sequential_id = 1
    acme.save()
    subscribe(organization, acme, plan(organization), utc(2024, 1, 1))

    first = only_invoice(bill(acme, date(2024, 2, 1)))
    second = only_invoice(bill(acme, date(2024, 3, 1)))

    assert (first.number, second.number) == ("LAG-1234-001-001", "LAG-1234-001-002")
    assert (first.sequential_id, second.sequential_id) == (1, 2)


def test_per_billing_entity_numbers_use_the_finalization_month(organization):
    set_entity(
        organization,
        document_numbering="per_billing_entity",
        document_number_prefix="ORG-11",
        timezone="Asia/Tokyo",
    )
    first_customer = customer(organization, external_id="one", timezone="Asia/Tokyo")
    second_customer = customer(organization, external_id="two", timezone="Asia/Tokyo")
    for who in (first_customer, second_customer):
        subscribe(organization, who, plan(organization), utc(2024, 1, 1))

    first = only_invoice(bill(first_customer, date(2024, 2, 1), now=utc(2024, 1, 31, 23)))
    second = only_invoice(bill(second_customer, date(2024, 2, 1), now=utc(2024, 2, 1, 1)))

    # 2024-01-31 23:00 UTC is already February in Tokyo
    assert (first.number, second.number) == ("ORG-11-202402-001", "ORG-11-202402-002")
    assert (first.billing_entity_sequential_id, second.billing_entity_sequential_id) == (1, 2)


def test_switch_to_per_entity_numbering_continues_from_the_invoice_count(organization, acme):
    set_entity(organization, document_number_prefix="ORG-11")
    subscribe(organization, acme, plan(organization), utc(2023, 1, 1))
    for month in range(2, 11):  # nine invoices numbered per customer
        bill(acme, date(2023, month, 1))
    set_entity(organization, document_numbering="per_billing_entity")

    tenth = only_invoice(bill(acme, date(2023, 11, 1)))

    assert tenth.number == "ORG-11-202311-010"


def test_each_billing_entity_numbers_its_own_invoices(organization):
    other = billing_entity_create(
        organization=organization, code="eu", name="EU", document_number_prefix="EU-0001"
    )
    eu_customer = CustomerFactory(
        organization=organization, billing_entity=other, timezone="UTC", sequential_id=42
    )
    set_entity(organization, document_number_prefix="US-0001")
    subscribe(organization, eu_customer, plan(organization), utc(2024, 1, 1))

    invoice = only_invoice(bill(eu_customer, date(2024, 2, 1)))

    assert invoice.billing_entity == other
    assert invoice.number == "EU-0001-042-001"


# --------------------------------------------------------------------------------------------
# PDF after commit


def test_finalization_queues_the_pdf_after_commit(
    organization, acme, django_capture_on_commit_callbacks, settings
):
    settings.INVOICE_PDF_ON_FINALIZE = False  # the guard; the real task is the surface's
    subscribe(organization, acme, plan(organization), utc(2024, 1, 1))

    with django_capture_on_commit_callbacks() as callbacks:
        only_invoice(bill(acme, date(2024, 2, 1)))

    # not the outbox's drain nor the after-commit hooks (invoice finalized: payment collection)
    pdf = [c for c in callbacks if c.__module__ not in ("billing.outbox", "billing.signals")]
    assert len(pdf) == 1
    pdf[0]()  # guarded: nothing raises when PDFs are disabled


def test_invoice_creation_time_is_now(organization, acme):
    subscribe(organization, acme, plan(organization), utc(2024, 1, 1))
    with time_machine.travel(utc(2024, 2, 1, 0, 10), tick=False):
        invoice = only_invoice(bill(acme, date(2024, 2, 1), now=utc(2024, 2, 1, 0, 10)))

    assert invoice.created_at == utc(2024, 2, 1, 0, 10)
    assert invoice.finalized_at == utc(2024, 2, 1, 0, 10)


def test_the_hourly_task_finalizes_drafts_on_their_day(organization, acme):
    from invoicing.tasks import finalize_due_drafts_task

    set_entity(organization, invoice_grace_period=2)
    subscribe(organization, acme, plan(organization, amount_cents=1000), utc(2024, 1, 1))
    draft = only_invoice(bill(acme, date(2024, 2, 1)))

    with time_machine.travel(utc(2024, 2, 2, 23, 20), tick=False):
        assert finalize_due_drafts_task() == 0
    with time_machine.travel(utc(2024, 2, 3, 0, 20), tick=False):
        assert finalize_due_drafts_task() == 1

    draft.refresh_from_db()
    assert (draft.status, draft.issuing_date) == (Status.FINALIZED, date(2024, 2, 3))
