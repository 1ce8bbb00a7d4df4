"""Pay-in-advance charge fees (spec §7.14): one fee per ingested event and charge.

Ingestion fires `metering.hooks.on_events_ingested` after commit; `invoicing.apps` turns it into
one `in_advance_fees_create_task` per event of a pay-in-advance charge, which calls
`in_advance_fees_create` here. The amount is the usage engine's (`metering.usage.
in_advance_fees`: model(period with the event) - model(period without it), sum and unique count
billing only the increase of the period maximum); this module persists it with its taxes
(spec §14.1 hierarchy, §14.2 amounts).

Cached aggregations (spec §29): the usage engine resumes from the state stored after the previous
event of the same charge, filter, group and period instead of re-reading the period, and stores
the state after this one (`CachedAggregation`), in this transaction, under a lock per
subscription and metric. `settings.IN_ADVANCE_CACHED_AGGREGATIONS = False` forces the full
replay of the period for every event (same fees; kept for benchmarks and as a kill switch).

Idempotent: a fee is unique per (charge, charge filter, event transaction id)
(`invoicing_fee_in_advance_event_unique`, spec §5.3), so a task run twice, or twice at once,
stores one fee; the second insert's IntegrityError is the "already billed" answer.

Invoices: a fee is stored with `invoice=None`; `in_advance_fee_created(fee, now=...)` then
attaches it, in the same transaction: an invoiceable fee of a positive amount gets its own
invoice of type `subscription` (`invoicing_reason: in_advance_charge`, finalized at once,
coupons and taxes applied: `generation.invoice_create_for_in_advance_fee`); a non-invoiceable
one only records the `fee.created` webhook (an outbox row) and may be regrouped at period end
(`regroup_paid_fees`). Fee and invoice commit together: a rerun finds the fee (IntegrityError
above) and so never invoices it twice, and a failure leaves neither behind.

`now` is the processing time the task passes: the invoice's issuing date, finalization and
number take it, not the event's `timestamp` (an event may be sent late, or for a past instant).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.db import IntegrityError, transaction

from billing.actors import Actor
from billing.outbox import emit
from customers.models import Subscription
from invoicing.calculation import FeeLine, TaxRate, apply_fee_taxes
from invoicing.models import Fee, FeeAppliedTax, Invoice
from invoicing.services.generation import invoice_create_for_in_advance_fee
from metering.presentation import breakdowns_payload
from metering.services.ingestion import subscription_at, subscriptions_by_external_id
from metering.store import get_event_store
from metering.usage import EventLike, InAdvanceFee, in_advance_fees
from plans.selectors import applicable_taxes

logger = logging.getLogger(__name__)


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def in_advance_fee_created(fee: Fee, *, actor: Actor, now: datetime) -> Invoice | None:
    """A pay-in-advance fee was just stored (same transaction): an invoiceable fee gets its
    `in_advance_charge` invoice, finalized at once (spec §7.14, §12.2); `fee` is refreshed
    (invoice, taxes on the net of coupons). A fee of 0 (a negative event, a `remove`, a tier
    already paid) gets its invoice too, as in Lago; the zero-amount setting (§12.6) finalizes
    or closes it. Non-invoiceable fees already got their `fee.created` outbox row and wait for
    `regroup_paid_fees` at period end."""
    if not fee.invoiceable:
        return None
    invoice = invoice_create_for_in_advance_fee(fee=fee, actor=actor, now=now)
    if invoice is not None:
        fee.refresh_from_db()
    return invoice


def _event_subscription(
    organization_id: UUID, external_subscription_id: str, at: datetime
) -> Subscription | None:
    candidates = subscriptions_by_external_id(
        organization_id=organization_id, external_ids=[external_subscription_id]
    ).get(external_subscription_id, [])
    found = subscription_at(candidates, at)
    if found is None:
        return None
    return (
        Subscription.objects.select_related(
            "organization", "plan", "customer__billing_entity", "customer__organization"
        )
        .prefetch_related("customer__taxes", "plan__taxes")
        .get(pk=found.id)
    )


def _store_fee(
    subscription: Subscription, item: InAdvanceFee, *, actor: Actor, now: datetime
) -> Fee | None:
    """One fee and its applied taxes; None when the event was already billed on that charge."""
    customer = subscription.customer
    taxes = applicable_taxes(
        organization=subscription.organization,
        charge=item.charge,
        plan=subscription.plan,
        customer_taxes=list(customer.taxes.all()),
        billing_entity=customer.billing_entity,
    )
    line = FeeLine(
        key="fee",
        fee_type=Fee.FeeType.CHARGE,
        amount_cents=item.amount_cents,
        precise_amount_cents=item.precise_amount_cents,
        taxes=tuple(
            TaxRate(code=t.code, name=t.name, rate=t.rate, description=t.description) for t in taxes
        ),
    )
    apply_fee_taxes(line)
    window = item.window
    try:
        with transaction.atomic():
            fee = Fee.objects.create(
                organization_id=subscription.organization_id,
                invoice=None,
                customer=customer,
                subscription=subscription,
                charge=item.charge,
                charge_filter=item.charge_filter,
                fee_type=Fee.FeeType.CHARGE,
                amount_cents=item.amount_cents,
                precise_amount_cents=item.precise_amount_cents,
                amount_currency=item.currency,
                unit_amount_cents=item.unit_amount_cents,
                precise_unit_amount=item.precise_unit_amount,
                units=item.units,
                total_aggregated_units=item.units,
                events_count=item.events_count,
                taxes_amount_cents=line.taxes_amount_cents,
                taxes_precise_amount_cents=line.taxes_precise_amount_cents,
                taxes_rate=line.taxes_rate,
                pay_in_advance=True,
                invoiceable=item.charge.invoiceable,
                pay_in_advance_event_transaction_id=item.event.transaction_id,
                amount_details=item.amount_details,
                grouped_by=item.grouped_by,
                presentation_breakdowns=breakdowns_payload(item.presentation_breakdowns),
                properties={
                    "from_datetime": _iso(window.from_datetime),
                    "to_datetime": _iso(window.to_datetime),
                    "charges_from_datetime": _iso(window.charges_from_datetime),
                    "charges_to_datetime": _iso(window.charges_to_datetime),
                    "charges_duration": window.charges_duration_days,
                    "timestamp": _iso(item.event.timestamp),
                },
            )
    except IntegrityError:
        return None  # spec §5.3: already billed for this transaction id (a rerun)
    by_code = {t.code: t for t in taxes}
    FeeAppliedTax.objects.bulk_create(
        FeeAppliedTax(
            organization_id=subscription.organization_id,
            fee=fee,
            tax=by_code[applied.tax.code],
            tax_name=applied.tax.name,
            tax_code=applied.tax.code,
            tax_rate=Decimal(applied.tax.rate),
            tax_description=applied.tax.description,
            amount_cents=applied.amount_cents,
            precise_amount_cents=applied.precise_amount_cents,
        )
        for applied in line.applied_taxes
    )
    if not fee.invoiceable:
        emit(
            event_type="fee.created",
            actor=actor,
            obj=fee,
            payload={
                "lago_id": str(fee.pk),
                "lago_charge_id": str(item.charge.pk),
                "external_subscription_id": subscription.external_id,
                "external_customer_id": customer.external_id,
                "amount_cents": fee.amount_cents,
                "amount_currency": fee.amount_currency,
                "event_transaction_id": item.event.transaction_id,
            },
        )
    in_advance_fee_created(fee, actor=actor, now=now)
    return fee


@transaction.atomic
def in_advance_fees_create(
    *,
    organization_id: UUID,
    external_subscription_id: str,
    transaction_id: str,
    actor: Actor,
    now: datetime,
) -> list[Fee]:
    """Bill one stored event on the pay-in-advance charges of its subscription (spec §7.14),
    invoicing the invoiceable fees at `now` (the processing time).

    Returns the fees created now (none when already billed, or when the event is unknown,
    outside the subscription's life, or on no pay-in-advance charge)."""
    event = get_event_store().get_event(organization_id, transaction_id, external_subscription_id)
    if event is None:
        return []
    subscription = _event_subscription(organization_id, external_subscription_id, event.timestamp)
    if subscription is None:
        return []
    cached = getattr(settings, "IN_ADVANCE_CACHED_AGGREGATIONS", True)
    items = in_advance_fees(
        subscription=subscription,
        cache="write" if cached else "off",
        event=EventLike(
            transaction_id=event.transaction_id,
            external_subscription_id=event.external_subscription_id,
            code=event.code,
            timestamp=event.timestamp,
            properties=event.properties or {},
            precise_total_amount_cents=event.precise_total_amount_cents,
            value=event.value,
            id=event.id,
        ),
    )
    created = []
    for item in items:
        fee = _store_fee(subscription, item, actor=actor, now=now)
        if fee is not None:
            created.append(fee)
    return created
