"""The billing run fanned out in chunks over two real Celery workers (separate processes, Redis
broker): every subscription is billed exactly once, both workers take chunks, and chunks
delivered twice bill nothing twice."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from customers.models import Subscription
from invoicing.models import Invoice, InvoiceSubscription
from invoicing.services.billing_run import chunked, customers_due
from invoicing.tasks import bill_customers_chunk_task, bill_customers_task
from tests.integrations.test_webhook_worker import _wait, celery_worker, redis_broker
from tests.invoicing.billing_helpers import customer, plan, subscribe

pytestmark = pytest.mark.django_db(transaction=True)

CUSTOMERS = 12
CHUNK = 2
TASK = "invoicing.tasks.bill_customers_chunk_task"


def _weekly_subscriptions_due_today(organization) -> list[Subscription]:
    """Weekly anniversary subscriptions started 7 days ago (UTC): their billing day is today."""
    weekly = plan(organization, code="weekly", interval="weekly", amount_cents=700)
    today = timezone.now().astimezone(UTC).date() - timedelta(days=7)
    started = datetime(today.year, today.month, today.day, tzinfo=UTC)
    return [
        subscribe(
            organization,
            customer(organization, external_id=f"run_{n:02d}", timezone="UTC"),
            weekly,
            started,
            billing_time="anniversary",
        )
        for n in range(CUSTOMERS)
    ]


def _succeeded(log: str) -> int:
    return len(re.findall(rf"Task {re.escape(TASK)}\[[^\]]+\] succeeded", log))


def test_two_workers_bill_every_subscription_once(organization, settings, tmp_path):
    settings.BILLING_RUN_CHUNK_SIZE = CHUNK
    subscriptions = _weekly_subscriptions_due_today(organization)
    due = customers_due(now=timezone.now())
    assert len(due) == CUSTOMERS
    chunks = chunked(due, CHUNK)
    env = {"INVOICE_PDF_ON_FINALIZE": "0"}
    with (
        redis_broker(),
        celery_worker(tmp_path, "alpha", **env),
        celery_worker(tmp_path, "beta", **env),
    ):
        assert bill_customers_task() == CUSTOMERS  # the hourly job: one task per chunk
        for chunk in chunks:  # every chunk delivered a second time
            bill_customers_chunk_task.delay([[str(pk), day.isoformat()] for pk, day in chunk])
        sent = 2 * len(chunks)
        logs = (tmp_path / "alpha.log", tmp_path / "beta.log")
        finished = _wait(
            lambda: sum(_succeeded(log.read_text()) for log in logs) >= sent, timeout=120
        )
        assert finished, [log.read_text()[-3000:] for log in logs]

    billed = list(
        InvoiceSubscription.objects.filter(subscription__in=subscriptions).values_list(
            "subscription_id", flat=True
        )
    )
    assert sorted(billed) == sorted(s.pk for s in subscriptions)  # each one exactly once
    assert Invoice.objects.filter(organization=organization).count() == CUSTOMERS
    assert all(_succeeded(log.read_text()) > 0 for log in logs)  # both workers took chunks
    assert customers_due(now=timezone.now()) == []
