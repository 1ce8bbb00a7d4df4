"""Two refresh passes checking the same subscription at once, on PostgreSQL with real
connections: one progressive billing invoice per crossing."""

from __future__ import annotations

import pytest
import time_machine
from django.db import IntegrityError, transaction

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from customers.models import Subscription
from invoicing.models import AppliedUsageThreshold, Invoice
from invoicing.services.progressive_billing import (
    progressive_billing_after_usage_pass,
    progressive_billing_check,
)
from metering import hooks
from metering.services.refresh import refresh_usage
from tests.customers.test_customers_api import run_in_threads
from tests.invoicing.progressive_builders import v92_billing
from tests.metering.usage.conftest import at

pytestmark = pytest.mark.django_db(transaction=True)
PASS_AT = at("2022-12-06T10:01:00")


def crossed(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    with time_machine.travel(at("2022-12-06T10:00:00"), tick=False):
        billing.send("total", properties={"total": "1000000"})
    # the pass stores the lifetime usage; its threshold check is left to the test
    hooks.on_usage_refreshed.disconnect(progressive_billing_after_usage_pass)
    try:
        refresh_usage(actor=SYSTEM, now=PASS_AT)
    finally:
        hooks.on_usage_refreshed.connect(progressive_billing_after_usage_pass)
    assert not Invoice.objects.exists()
    return billing


def test_concurrent_checks_issue_one_invoice_for_a_crossing(api, organization):
    billing = crossed(api, organization)

    results = run_in_threads(
        4,
        lambda i: progressive_billing_check(
            subscription=Subscription.objects.get(pk=billing.subscription.pk),
            actor=SYSTEM,
            now=PASS_AT,
        ),
    )

    assert sum(result is not None for result in results) == 1
    assert Invoice.objects.filter(invoice_type="progressive_billing").count() == 1
    assert AppliedUsageThreshold.objects.count() == 1
    assert (
        OutboxEvent.objects.filter(event_type="subscription.usage_threshold_reached").count() == 1
    )


def test_the_database_refuses_a_second_row_for_one_crossing(api, organization):
    billing = crossed(api, organization)
    invoice = progressive_billing_check(
        subscription=billing.subscription, actor=SYSTEM, now=PASS_AT
    )
    applied = AppliedUsageThreshold.objects.get(invoice=invoice)

    with pytest.raises(IntegrityError), transaction.atomic():
        AppliedUsageThreshold.objects.create(
            organization=organization,
            invoice=invoice,
            subscription=billing.subscription,
            usage_threshold=applied.usage_threshold,
            occurrence=applied.occurrence,
        )
