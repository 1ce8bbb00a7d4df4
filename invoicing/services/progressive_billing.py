"""Progressive billing: an invoice as soon as the lifetime usage passes a usage threshold
(spec §21.2; Lago `LifetimeUsages::CheckThresholdsService`, `Invoices::ProgressiveBillingService`).

Run after each refresh pass (`metering.hooks.on_usage_refreshed`), with the lifetime usage the
pass just stored. Per subscription, under the customer's billing lock (the one every invoice of
the customer is built under, so a second pass waits, then sees the first one's invoice and
passes nothing more): the thresholds passed are computed from the lifetime usage and what the
period's progressive billing invoices already billed; when one is, a `progressive_billing`
invoice is finalized at once with the charge fees of the whole period-to-date usage, less what
the period's earlier progressive invoices billed, then coupons, taxes, credit notes and prepaid
credits. Each crossing is an `AppliedUsageThreshold` row, unique per subscription, threshold and
occurrence: the database refuses a second invoice for the same crossing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from uuid import UUID

from django.db import IntegrityError, transaction

from billing.actors import SYSTEM, Actor
from customers.locks import lock_customer_for_billing
from customers.models import Subscription
from customers.selectors import applicable_usage_thresholds, applicable_usage_thresholds_many
from customers.services.subscription_transitions import record_event
from invoicing import calculation
from invoicing.models import AppliedUsageThreshold, Invoice, InvoiceSubscription
from invoicing.services.finalization import finalize_computed
from invoicing.services.generation.context import (
    BillingContext,
    Reason,
    _local_today,
    subscriptions_for_billing,
)
from invoicing.services.generation.items import BillingItem
from invoicing.services.generation.persist import (
    AMOUNT_FIELDS,
    _currency,
    _new_invoice,
    _persist,
    compute_fees,
)
from invoicing.services.generation.progressive import progressive_billed
from metering.models import LifetimeUsage
from metering.usage import usage_period
from plans.models import UsageThreshold

logger = logging.getLogger(__name__)


def usage_threshold_payload(threshold: UsageThreshold) -> dict:
    """Lago's `UsageThresholdSerializer`."""
    return {
        "lago_id": str(threshold.pk),
        "threshold_display_name": threshold.threshold_display_name or None,
        "amount_cents": threshold.amount_cents,
        "recurring": threshold.recurring,
        "created_at": threshold.created_at.isoformat(),
        "updated_at": threshold.updated_at.isoformat(),
    }


def _crossings(
    subscription: Subscription,
    lifetime: LifetimeUsage,
    thresholds: Sequence[UsageThreshold],
    now: datetime,
) -> list[tuple[UsageThreshold, calculation.ThresholdCrossing]]:
    """The thresholds passed now, with the crossing each one is."""
    billed = progressive_billed(subscription.pk, at=now)
    passed = calculation.passed_usage_thresholds(
        [(t.amount_cents, t.recurring) for t in thresholds],
        historical_cents=lifetime.historical_usage_amount_cents,
        invoiced_cents=lifetime.invoiced_usage_amount_cents,
        current_cents=lifetime.current_usage_amount_cents,
        progressive_billed_cents=billed.billed_amount_cents,
    )
    by_key = {(t.amount_cents, t.recurring): t for t in thresholds}
    return [(by_key[(c.amount_cents, c.recurring)], c) for c in passed]


def _create_invoice(
    subscription: Subscription,
    crossings: Sequence[tuple[UsageThreshold, calculation.ThresholdCrossing]],
    lifetime: LifetimeUsage,
    *,
    actor: Actor,
    now: datetime,
) -> Invoice:
    customer = subscription.customer
    period = replace(usage_period(subscription=subscription, at=now), timestamp=now)
    item = BillingItem(
        subscription=subscription,
        reason=Reason.PROGRESSIVE_BILLING,
        period=period,
        bills_charges=True,
    )
    currency = _currency(customer, [item])
    invoice = _new_invoice(
        customer,
        status=Invoice.Status.GENERATING,
        issuing_date=_local_today(customer, now),
        currency=currency,
    )
    invoice.invoice_type = Invoice.InvoiceType.PROGRESSIVE_BILLING
    invoice.save(force_insert=True)
    InvoiceSubscription.objects.create(
        organization_id=invoice.organization_id,
        invoice=invoice,
        subscription=subscription,
        invoicing_reason=Reason.PROGRESSIVE_BILLING,
        from_datetime=period.from_datetime,
        to_datetime=period.to_datetime,
        charges_from_datetime=period.charges_from_datetime,
        charges_to_datetime=period.charges_to_datetime,
        timestamp=now,
    )
    # the crossings first: a second invoice for one of them stops here, before any usage read
    AppliedUsageThreshold.objects.bulk_create(
        AppliedUsageThreshold(
            organization_id=invoice.organization_id,
            invoice=invoice,
            subscription=subscription,
            usage_threshold=threshold,
            occurrence=crossing.occurrence,
            lifetime_usage_amount_cents=lifetime.total_amount_cents,
        )
        for threshold, crossing in crossings
    )
    context = BillingContext(customer=customer)
    result = compute_fees(
        context=context,
        items=[item],
        invoice=invoice,
        currency=currency,
        finalizing=True,
        now=now,
        actor=actor,
    )
    _persist(invoice, result, actor=actor, now=now)
    return finalize_computed(invoice, actor=actor, now=now, update_fields=AMOUNT_FIELDS)


@transaction.atomic
def progressive_billing_check(
    *, subscription: Subscription, actor: Actor, now: datetime
) -> Invoice | None:
    """The progressive billing invoice of the thresholds the subscription's lifetime usage has
    passed (None: none passed, or another pass billed them). Records
    `subscription.usage_threshold_reached` per threshold passed."""
    customer = lock_customer_for_billing(subscription.customer_id)
    loaded = subscriptions_for_billing(Subscription.objects.filter(pk=subscription.pk)).first()
    if loaded is None or loaded.status != Subscription.Status.ACTIVE:
        return None  # terminated since: its closing invoice bills the usage
    loaded.customer = customer
    thresholds = applicable_usage_thresholds(subscription=loaded)
    if not thresholds:
        return None
    lifetime = LifetimeUsage.objects.filter(subscription_id=loaded.pk).first()
    if lifetime is None:
        return None
    crossings = _crossings(loaded, lifetime, thresholds, now)
    if not crossings:
        return None
    try:
        with transaction.atomic():
            invoice = _create_invoice(loaded, crossings, lifetime, actor=actor, now=now)
    except IntegrityError:
        logger.info("progressive billing of %s: crossing already billed", loaded.pk)
        return None
    for threshold, _crossing in crossings:
        record_event(
            loaded,
            "subscription.usage_threshold_reached",
            actor=actor,
            usage_threshold=usage_threshold_payload(threshold),
        )
    return invoice


def progressive_billing_after_usage_pass(
    *, subscription_ids: Sequence[UUID], now: datetime, **kwargs: object
) -> int:
    """`metering.hooks.on_usage_refreshed`: the threshold check of each refreshed subscription
    that may have passed one (one transaction each; a failure is logged and the others go on).
    Returns the number of invoices issued.

    Read first for all in three queries: the subscriptions, their applicable thresholds and
    their lifetime usages. A subscription without thresholds (no progressive billing), or
    whose lifetime usage is below its smallest threshold (nothing can be passed:
    `calculation.passed_usage_thresholds`), is not checked."""
    issued = 0
    subscriptions = list(
        Subscription.objects.filter(pk__in=list(subscription_ids))
        .select_related("plan")
        .order_by("pk")
    )
    thresholds = applicable_usage_thresholds_many(subscriptions=subscriptions)
    lifetimes = {
        row.subscription_id: row
        for row in LifetimeUsage.objects.filter(
            subscription_id__in=[pk for pk, rows in thresholds.items() if rows]
        )
    }
    for subscription in subscriptions:
        lifetime = lifetimes.get(subscription.pk)
        rows = thresholds[subscription.pk]
        if lifetime is None or lifetime.total_amount_cents < min(
            (t.amount_cents for t in rows), default=0
        ):
            continue
        try:
            if progressive_billing_check(subscription=subscription, actor=SYSTEM, now=now):
                issued += 1
        except Exception:
            logger.exception(
                "progressive billing check failed for subscription %s", subscription.pk
            )
    return issued
