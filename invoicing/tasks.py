"""Celery tasks of invoicing: thin wrappers that load by id and call a service (STYLE §11)."""

from __future__ import annotations

from uuid import UUID

from celery import shared_task
from django.db import OperationalError

from billing.actors import SYSTEM
from invoicing.services.in_advance import in_advance_fees_create

RETRY = {
    "acks_late": True,
    "autoretry_for": (OperationalError,),  # lock timeouts, lost connections: worth a retry
    "retry_backoff": True,
    "max_retries": 5,
}

# ============================================================================================
# Pay-in-advance charges (spec §7.14) — usage engineer
# ============================================================================================


@shared_task(**RETRY)
def in_advance_fees_create_task(
    organization_id: str, external_subscription_id: str, transaction_id: str
) -> int:
    """Bill one ingested event on its pay-in-advance charges (and invoice the invoiceable fees
    now); a rerun bills nothing twice."""
    from django.utils import timezone

    fees = in_advance_fees_create(
        organization_id=UUID(organization_id),
        external_subscription_id=external_subscription_id,
        transaction_id=transaction_id,
        actor=SYSTEM,
        now=timezone.now(),
    )
    return len(fees)


def enqueue_in_advance_fees(
    *, organization_id: UUID, events: list, pay_in_advance_events: list
) -> None:
    """`metering.hooks.on_events_ingested`: one task per event of a pay-in-advance charge."""
    for external_subscription_id, transaction_id in pay_in_advance_events:
        in_advance_fees_create_task.delay(
            str(organization_id), external_subscription_id, transaction_id
        )


# ============================================================================================
# End of the pay-in-advance section
# ============================================================================================


# ============================================================================================
# Subscription invoices: billing run, transitions, drafts (spec §9, §12.5, §27) — invoicing
# engineer. Thin wrappers: load by id, call a service; every service re-checks what is already
# billed, so a task run twice (or twice at once) bills nothing twice.
# ============================================================================================


def _subscription(subscription_id: str):  # -> Subscription | None
    from customers.models import Subscription

    return Subscription.objects.filter(pk=subscription_id).first()


@shared_task(**RETRY)
def bill_customers_task() -> int:
    """Hourly :10: the customers whose billing day has come in their own timezone (spec §10.3,
    §27), sent to the workers in chunks of `BILLING_RUN_CHUNK_SIZE` customers
    (`bill_customers_chunk_task`, queue `BILLING_RUN_QUEUE`)."""
    from django.conf import settings
    from django.utils import timezone

    from invoicing.services.billing_run import chunked, customers_due

    due = customers_due(now=timezone.now())
    for chunk in chunked(due, settings.BILLING_RUN_CHUNK_SIZE):
        bill_customers_chunk_task.apply_async(
            args=[[[str(customer_id), day.isoformat()] for customer_id, day in chunk]],
            queue=settings.BILLING_RUN_QUEUE,
        )
    return len(due)


@shared_task(**RETRY)
def bill_customers_chunk_task(due: list[list[str]]) -> int:
    """Bills a chunk of (customer id, billing date) pairs with one shared catalog; a chunk
    delivered twice (or retried) bills nothing twice. Returns the number of invoices created."""
    from datetime import date

    from django.utils import timezone

    from invoicing.services.billing_run import bill_customers

    results = bill_customers(
        due=[(UUID(customer_id), date.fromisoformat(day)) for customer_id, day in due],
        actor=SYSTEM,
        now=timezone.now(),
    )
    return sum(len(result.invoices) for result in results)


@shared_task(**RETRY)
def bill_customer_task(customer_id: str, billing_date: str) -> int:
    """Everything one customer owes on a billing date (one invoice per §9.6)."""
    from datetime import date

    from django.utils import timezone

    from customers.models import Customer
    from invoicing.services.billing_run import bill_customer

    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        return 0  # deleted since the fan-out: nothing to bill
    result = bill_customer(
        customer=customer,
        billing_date=date.fromisoformat(billing_date),
        actor=SYSTEM,
        now=timezone.now(),
    )
    return len(result.invoices)


@shared_task(**RETRY)
def bill_subscription_start_task(subscription_id: str) -> str | None:
    """`on_subscription_started`: the first invoice of a pay-in-advance plan (spec §9.3)."""
    from django.utils import timezone

    from invoicing.services.generation import invoice_create_for_start

    subscription = _subscription(subscription_id)
    if subscription is None:
        return None
    invoice = invoice_create_for_start(subscription=subscription, actor=SYSTEM, now=timezone.now())
    return str(invoice.pk) if invoice else None


@shared_task(**RETRY)
def bill_subscription_termination_task(subscription_id: str) -> str | None:
    """`on_subscription_terminated`: the closing invoice (spec §9.5)."""
    from django.utils import timezone

    from invoicing.services.generation import invoice_create_for_termination

    subscription = _subscription(subscription_id)
    if subscription is None:
        return None
    invoice = invoice_create_for_termination(
        subscription=subscription, actor=SYSTEM, now=timezone.now()
    )
    return str(invoice.pk) if invoice else None


@shared_task(**RETRY)
def bill_plan_change_task(previous_subscription_id: str, subscription_id: str) -> str | None:
    """`on_plan_changed`: the closing of the old plan and the first period of the new one."""
    from django.utils import timezone

    from invoicing.services.generation import invoice_create_for_plan_change

    previous, subscription = _subscription(previous_subscription_id), _subscription(subscription_id)
    if previous is None or subscription is None:
        return None
    invoice = invoice_create_for_plan_change(
        previous_subscription=previous, subscription=subscription, actor=SYSTEM, now=timezone.now()
    )
    return str(invoice.pk) if invoice else None


@shared_task(**RETRY)
def bill_trial_end_task(subscription_id: str) -> str | None:
    """`on_trial_ended`: the pay-in-advance fee of the rest of the period (spec §11, V63)."""
    from django.utils import timezone

    from invoicing.services.generation import invoice_create_for_trial_end

    subscription = _subscription(subscription_id)
    if subscription is None:
        return None
    invoice = invoice_create_for_trial_end(
        subscription=subscription, actor=SYSTEM, now=timezone.now()
    )
    return str(invoice.pk) if invoice else None


@shared_task(**RETRY)
def finalize_due_drafts_task() -> int:
    """Hourly :20: finalize the drafts whose grace period is over (spec §12.5)."""
    from django.utils import timezone

    from invoicing.services.lifecycle import finalize_due_drafts

    return len(finalize_due_drafts(actor=SYSTEM, now=timezone.now()))


@shared_task(**RETRY)
def refresh_flagged_drafts_task() -> int:
    """Every 5 minutes: refresh the drafts flagged by late events (spec §12.5)."""
    from django.utils import timezone

    from invoicing.services.lifecycle import refresh_flagged_drafts

    return len(refresh_flagged_drafts(actor=SYSTEM, now=timezone.now()))


@shared_task(**RETRY)
def retry_failed_invoices_task() -> int:
    """Every 15 minutes: retry the finalization of failed invoices (spec §12.9)."""
    from django.utils import timezone

    from invoicing.services.lifecycle import retry_failed

    return len(retry_failed(actor=SYSTEM, now=timezone.now()))


def on_subscription_started(*, subscription_id: UUID, started_at: object) -> None:
    """`customers.hooks.on_subscription_started` -> `bill_subscription_start_task`."""
    bill_subscription_start_task.delay(str(subscription_id))


def on_subscription_terminated(*, subscription_id: UUID, terminated_at: object) -> None:
    """`customers.hooks.on_subscription_terminated` -> `bill_subscription_termination_task`."""
    bill_subscription_termination_task.delay(str(subscription_id))


def on_plan_changed(
    *, previous_subscription_id: UUID, subscription_id: UUID, change: str, timestamp: object
) -> None:
    """`customers.hooks.on_plan_changed` -> `bill_plan_change_task`."""
    bill_plan_change_task.delay(str(previous_subscription_id), str(subscription_id))


def on_trial_ended(*, subscription_id: UUID, trial_ended_at: object) -> None:
    """`customers.hooks.on_trial_ended` -> `bill_trial_end_task`."""
    bill_trial_end_task.delay(str(subscription_id))


# ============================================================================================
# End of the subscription invoices section
# ============================================================================================


# --- payments (spec §12.7) ----------------------------------------------------------------------


@shared_task(**RETRY)
def invoice_mark_overdue_task() -> int:
    """Hourly :25: finalized, unpaid invoices past their due date become overdue."""
    from django.utils import timezone

    from invoicing.services.payments import mark_overdue

    return mark_overdue(actor=SYSTEM, now=timezone.now())


@shared_task(**RETRY)
def figure_deltas_compact_task() -> int:
    """Every 5 minutes: fold the rows appended to the analytics figure tables into one per key
    (the sums the analytics read do not change; fewer rows to read)."""
    from invoicing.services.analytics_figures import figure_deltas_compact

    return figure_deltas_compact()


# ============================================================================================
# Dunning campaigns — payments engineer
# ============================================================================================


@shared_task(**RETRY)
def process_dunning_campaigns_task() -> int:
    """Hourly :45: payment requests for customers whose overdue balance reached a threshold of
    their dunning campaign."""
    from django.utils import timezone

    from invoicing.services.dunning import process_dunning_campaigns

    return process_dunning_campaigns(actor=SYSTEM, now=timezone.now())
