"""Fee estimates for events that are never stored: `POST /events/estimate_fees` and the
instant estimates (`/events/estimate_instant_fees`, `/events/batch_estimate_instant_fees`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, localcontext
from typing import Any
from uuid import uuid4

from billing.errors import Invalid, NotFound
from billing.models import Organization
from billing.money import amount_to_cents, to_minor
from customers.models import Subscription
from metering.services.ingestion import (
    MetricInfo,
    build_event_input,
    metrics_by_code,
)
from metering.store.aggregation import json_text
from metering.usage.buckets import ESTIMATE_UNITS_LIMIT, NUMBER_REQUIRED, ZERO, is_priced
from metering.usage.engine import plan_charges
from metering.usage.in_advance import InAdvanceFee, in_advance_fees
from metering.usage.replay import EventLike, event_bucket
from plans.charge_models import (
    apply_rounding,
    percentage_transaction_amounts,
    standard_amount,
)
from plans.models import AggregationType, Charge, ChargeFilter, ChargeModel


def _estimating_subscription(organization: Organization, external_id: object) -> Subscription:
    """The active subscription an estimated event names (404 `subscription_not_found`)."""
    if isinstance(external_id, int) and not isinstance(external_id, bool):
        external_id = str(external_id)  # Rails params accept numbers as identifiers
    subscription = None
    if isinstance(external_id, str) and external_id:
        subscription = (
            Subscription.objects.for_organization(organization)
            .filter(external_id=external_id, status=Subscription.Status.ACTIVE)
            .select_related("customer__billing_entity", "customer__organization", "plan")
            .first()
        )
    if subscription is None:
        raise NotFound("subscription")
    return subscription


def _event_like(event_input: Any) -> EventLike:
    """An ingestion `EventInput` as the pricing reads it (never stored)."""
    return EventLike(
        transaction_id=event_input.transaction_id,
        external_subscription_id=event_input.external_subscription_id,
        code=event_input.code,
        timestamp=event_input.timestamp,
        properties=event_input.properties,
        precise_total_amount_cents=event_input.precise_total_amount_cents,
        value=event_input.value,
    )


def event_estimate_fees(
    *, organization: Organization, payload: object, now: datetime
) -> tuple[Subscription, list[InAdvanceFee]]:
    """The fees an event would bill on pay-in-advance charges, nothing stored
    (`POST /events/estimate_fees`, spec §5.2, V105): unlike ingestion it validates fully."""
    if not isinstance(payload, dict):
        raise Invalid({"event": ["value_is_invalid"]})
    subscription = _estimating_subscription(organization, payload.get("external_subscription_id"))
    metrics = metrics_by_code(organization_id=organization.id, codes=[str(payload.get("code"))])
    metric = metrics.get(str(payload.get("code")))
    if metric is None:
        raise NotFound("billable_metric")
    # Lago's Fees::EstimatePayInAdvanceService replaces any transaction id with a fresh UUID
    # (its documented input, `EventEstimateFeesInput`, has none): nothing is stored, so an id
    # can neither be missing nor collide, and the fees echo the generated one.
    payload = {**payload, "transaction_id": str(uuid4())}
    event_input, errors = build_event_input(payload, metrics=metrics, now=now)
    if errors or event_input is None:
        raise Invalid(errors)
    if metric.aggregation_type in NUMBER_REQUIRED and event_input.value is None:
        raise Invalid({"properties": ["value_is_not_valid_number"]})
    if event_input.value is not None and abs(event_input.value) >= ESTIMATE_UNITS_LIMIT:
        raise Invalid({"properties": ["value_is_out_of_range"]})
    event = _event_like(event_input)
    return subscription, in_advance_fees(subscription=subscription, event=event, cache="read")


# --------------------------------------------------------------------------------------------
# Instant estimates (`POST /events/estimate_instant_fees`, `/events/batch_estimate_instant_fees`)
#
# Lago's `Fees::EstimateInstant`: what one event costs on its own, for pay-in-advance standard
# and percentage charges only, at reception time (the event's `timestamp` is not read), without
# reading the period so far: no free units, no period maximum, no proration, no taxes, nothing
# stored and no transaction id check (a missing one is generated). Cheap enough to be called
# before every billable action.

INSTANT_CHARGE_MODELS = frozenset({ChargeModel.STANDARD, ChargeModel.PERCENTAGE})
_PERCENTAGE_FREE_KEYS = ("free_units_per_events", "free_units_per_total_aggregation")


@dataclass(frozen=True)
class InstantFee:
    """The fee one event alone would cost on one pay-in-advance charge (nothing stored)."""

    subscription: Subscription
    charge: Charge
    charge_filter: ChargeFilter | None
    units: Decimal  # the event's units (after the metric's expression and rounding)
    precise_amount: Decimal  # major units, unrounded
    amount_cents: int
    precise_unit_amount_cents: Decimal  # amount_cents / units (Lago: in cents)
    currency: str
    transaction_id: str


def _instant_charges(subscription: Subscription) -> list[Charge]:
    return [
        charge
        for charge in plan_charges(subscription)
        if charge.pay_in_advance and charge.charge_model in INSTANT_CHARGE_MODELS
    ]


def _instant_event(payload: dict, metric: Any, now: datetime) -> EventLike:
    """The payload validated as ingestion would, at `now`, its transaction id defaulted."""
    payload = {**payload, "transaction_id": payload.get("transaction_id") or str(uuid4())}
    payload.pop("timestamp", None)  # Lago estimates at reception time whatever the event says
    info = MetricInfo(
        id=metric.id,
        code=metric.code,
        aggregation_type=metric.aggregation_type,
        field_name=metric.field_name,
        expression=metric.expression,
    )
    event_input, errors = build_event_input(payload, metrics={metric.code: info}, now=now)
    if errors or event_input is None:
        raise Invalid(errors)
    return _event_like(event_input)


def _instant_units(metric: Any, event: EventLike) -> Decimal:
    """The units of one event alone: 1 for a count, 1 for a unique value added (0 removed),
    the numeric field otherwise (0 when absent), after the metric's rounding (spec §4.4)."""
    properties = event.properties
    kind = metric.aggregation_type
    if kind == AggregationType.COUNT:
        units = Decimal(1)
    elif kind == AggregationType.UNIQUE_COUNT:
        added = properties.get("operation_type") != "remove"
        units = Decimal(1 if added and json_text(properties.get(metric.field_name)) else 0)
    elif event.value is not None:
        units = event.value
    elif properties.get(metric.field_name) in (None, ""):
        units = ZERO
    else:
        raise Invalid({"properties": ["value_is_not_valid_number"]})
    if abs(units) >= ESTIMATE_UNITS_LIMIT:
        raise Invalid({"properties": ["value_is_out_of_range"]})
    return apply_rounding(units, metric.rounding_function, metric.rounding_precision)


def _instant_cents(amount: Decimal, currency: str) -> int:
    """`amount_to_cents` with the digits a large amount needs (28 by default)."""
    digits = to_minor(amount, currency).adjusted() + 2
    with localcontext() as context:
        context.prec = max(context.prec, digits)
        return amount_to_cents(amount, currency)


def _instant_fee(subscription: Subscription, charge: Charge, event: EventLike) -> InstantFee:
    bucket = event_bucket(charge, event)  # the matching filter's price, else the charge's
    units = _instant_units(charge.billable_metric, event)
    currency = subscription.plan.amount_currency
    amount = ZERO
    if units >= 0 and is_priced(charge.charge_model, bucket.properties):
        if charge.charge_model == ChargeModel.PERCENTAGE:
            terms = {k: v for k, v in bucket.properties.items() if k not in _PERCENTAGE_FREE_KEYS}
            [transaction_amount] = percentage_transaction_amounts(terms, per_event_units=[units])
            amount = transaction_amount or ZERO
        else:
            amount = standard_amount(bucket.properties, units=units).amount
    amount_cents = _instant_cents(amount, currency)
    unit_amount_cents = Decimal(amount_cents) / units if amount_cents and units else ZERO
    return InstantFee(
        subscription=subscription,
        charge=charge,
        charge_filter=bucket.charge_filter,
        units=units,
        precise_amount=amount,
        amount_cents=amount_cents,
        precise_unit_amount_cents=unit_amount_cents,
        currency=currency,
        transaction_id=event.transaction_id,
    )


def _instant_fees(
    subscription: Subscription, charges: Sequence[Charge], payload: dict, now: datetime
) -> list[InstantFee]:
    """One event's fees on the instant charges of its metric (none when it matches none)."""
    code = payload.get("code")
    matching = [c for c in charges if c.billable_metric.code == (str(code) if code else None)]
    if not matching:
        return []
    event = _instant_event(payload, matching[0].billable_metric, now)
    return [_instant_fee(subscription, charge, event) for charge in matching]


def event_estimate_instant_fees(
    *, organization: Organization, payload: object, now: datetime
) -> list[InstantFee]:
    """`POST /events/estimate_instant_fees`: the fees of one event alone on the pay-in-advance
    standard and percentage charges of its metric. 404 `subscription_not_found`; 422
    `code: does_not_match_an_instant_charge` when the metric has none of them."""
    if not isinstance(payload, dict):
        raise Invalid({"event": ["value_is_invalid"]})
    subscription = _estimating_subscription(organization, payload.get("external_subscription_id"))
    fees = _instant_fees(subscription, _instant_charges(subscription), payload, now)
    if not fees:
        raise Invalid({"code": ["does_not_match_an_instant_charge"]})
    return fees


def events_estimate_instant_fees(
    *, organization: Organization, payloads: object, now: datetime
) -> list[InstantFee]:
    """`POST /events/batch_estimate_instant_fees`: every fee of every event, by subscription
    (first seen first), then in event order. An event whose metric has no instant charge adds
    nothing, but a subscription without any instant charge is refused (422, as Lago); an
    unknown subscription is a 404; an invalid event a 422 under its index."""
    if not isinstance(payloads, list):
        raise Invalid({"events": ["value_is_invalid"]})
    by_subscription: dict[object, list[tuple[int, dict]]] = {}
    for index, payload in enumerate(payloads):
        if not isinstance(payload, dict):
            raise Invalid({str(index): {"event": ["value_is_invalid"]}})
        key = payload.get("external_subscription_id")
        key = key if isinstance(key, str | int) and not isinstance(key, bool) else None
        by_subscription.setdefault(key, []).append((index, payload))
    fees: list[InstantFee] = []
    for external_id, events in by_subscription.items():
        subscription = _estimating_subscription(organization, external_id)
        charges = _instant_charges(subscription)
        if not charges:
            raise Invalid({"code": ["does_not_match_an_instant_charge"]})
        for index, payload in events:
            try:
                fees.extend(_instant_fees(subscription, charges, payload, now))
            except Invalid as error:
                raise Invalid({str(index): error.details}) from error
    return fees
