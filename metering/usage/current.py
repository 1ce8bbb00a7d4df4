"""The `customer_usage` body (spec §25): current and projected usage of a subscription."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from billing.money import decimal_string
from billing.periods import local_date
from customers.models import Customer, Subscription
from metering.presentation import (
    breakdowns_payload,
    merge,
)
from metering.usage.buckets import ZERO, group_key, live_filters
from metering.usage.engine import ChargeUsage, plan_charges, subscription_usage
from metering.usage.taxes import FeeTaxes, taxes_amount_cents
from metering.usage.windows import UsageWindow, usage_period, window_of
from plans.models import Charge


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _totals(usages: Sequence[ChargeUsage], projected: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "units": decimal_string(sum((u.units for u in usages), ZERO)),
        "total_aggregated_units": decimal_string(
            sum((u.total_aggregated_units or ZERO for u in usages), ZERO)
        ),
        "events_count": sum(u.events_count for u in usages),
        "amount_cents": sum(u.amount_cents for u in usages),
    }
    if projected:
        data["projected_units"] = decimal_string(
            sum((u.projected_units or ZERO for u in usages), ZERO)
        )
        data["projected_amount_cents"] = sum(u.projected_amount_cents or 0 for u in usages)
    data["pricing_unit_details"] = None
    return data


def _filters_payload(usages: Sequence[ChargeUsage], projected: bool) -> list[dict]:
    if not usages or not live_filters(usages[0].charge):
        return []
    by_filter: dict[UUID | None, list[ChargeUsage]] = {}
    for usage in usages:
        key = usage.charge_filter.pk if usage.charge_filter is not None else None
        by_filter.setdefault(key, []).append(usage)
    payload = []
    for grouped in by_filter.values():
        charge_filter = grouped[0].charge_filter
        payload.append(
            {
                **_totals(grouped, projected),
                "invoice_display_name": (
                    (charge_filter.invoice_display_name or None) if charge_filter else None
                ),
                "values": dict(charge_filter.values) if charge_filter is not None else None,
                "presentation_breakdowns": _breakdowns(grouped),
            }
        )
    return payload


def _breakdowns(usages: Sequence[ChargeUsage]) -> list[dict]:
    """Presentation breakdowns of several fees added up (Lago's PresentationBreakdownBuilder)."""
    return breakdowns_payload(merge(b for u in usages for b in u.presentation_breakdowns))


def _grouped_payload(usages: Sequence[ChargeUsage], projected: bool) -> list[dict]:
    if not any(u.grouped_by for u in usages):
        return []
    by_group: dict[tuple, list[ChargeUsage]] = {}
    for usage in usages:
        by_group.setdefault(group_key(usage.grouped_by), []).append(usage)
    return [
        {
            **_totals(grouped, projected),
            "grouped_by": dict(grouped[0].grouped_by),
            "filters": _filters_payload(grouped, projected),
            "presentation_breakdowns": _breakdowns(grouped),
        }
        for grouped in by_group.values()
    ]


def charges_usage_payload(usages: Sequence[ChargeUsage], *, projected: bool = False) -> list[dict]:
    """`charges_usage` of a usage body: one entry per charge (Lago's ChargeUsageSerializer)."""
    by_charge: dict[UUID, list[ChargeUsage]] = {}
    for usage in usages:
        by_charge.setdefault(usage.charge.pk, []).append(usage)
    payload = []
    for charge_usages in by_charge.values():
        charge = charge_usages[0].charge
        metric = charge.billable_metric
        payload.append(
            {
                **_totals(charge_usages, projected),
                "amount_currency": charge_usages[0].currency,
                "charge": {
                    "lago_id": str(charge.pk),
                    "code": charge.code,
                    "charge_model": charge.charge_model,
                    "invoice_display_name": charge.invoice_display_name or None,
                },
                "billable_metric": {
                    "lago_id": str(metric.pk),
                    "name": metric.name,
                    "code": metric.code,
                    "aggregation_type": metric.aggregation_type,
                },
                "filters": _filters_payload(charge_usages, projected),
                "grouped_usage": _grouped_payload(charge_usages, projected),
                "presentation_breakdowns": _breakdowns(charge_usages),
            }
        )
    return payload


@dataclass(frozen=True)
class UsageSelection:
    """The optional narrowing of a current usage (`charge_id`, `charge_code`,
    `billable_metric_code`, `group[key]=value`, spec §25)."""

    charge_id: str | None = None
    charge_code: str | None = None
    billable_metric_code: str | None = None
    group: dict[str, str | list[str]] = field(default_factory=dict)
    presentation: tuple[str, ...] | None = None  # `filter_by_presentation` keys (§7.13)

    def keeps_charge(self, charge: Charge) -> bool:
        return (
            (self.charge_id is None or str(charge.pk) == self.charge_id)
            and (self.charge_code is None or charge.code == self.charge_code)
            and (
                self.billable_metric_code is None
                or charge.billable_metric.code == self.billable_metric_code
            )
        )

    def keeps_usage(self, usage: ChargeUsage) -> bool:
        """A group value, or a list of accepted values (`filter_by_group`)."""
        return all(
            usage.grouped_by.get(key) in (value if isinstance(value, list) else [value])
            for key, value in self.group.items()
        )


def _elapsed_ratio(window: UsageWindow, now: datetime) -> Decimal:
    """Days elapsed in the usage window over its full period's days (spec §25 projections)."""
    tz = ZoneInfo(window.timezone)
    first = local_date(window.charges_from_datetime, tz)
    last = local_date(window.charges_to_datetime, tz)
    today = local_date(now, tz)
    if today >= last:
        return Decimal(1)
    if today < first:
        return ZERO
    return Decimal((today - first).days + 1) / Decimal(window.charges_duration_days)


def customer_current_usage(
    *,
    customer: Customer,
    subscription: Subscription,
    now: datetime,
    apply_taxes: bool = True,
    projected: bool = False,
    selection: UsageSelection | None = None,
    chain_started_at: datetime | None = None,
) -> dict:
    """The §25 `customer_usage` body: a dry run of the period's charges (no subscription fee,
    no coupons), taxed per §14.1 unless `apply_taxes` is false. `projected` adds the
    `projected_*` figures of `/projected_usage`. `chain_started_at`: the first start of the
    external id when the caller read it already (`with_initial_started_at`)."""
    period = usage_period(subscription=subscription, at=now)
    window = window_of(period)
    selection = selection or UsageSelection()
    charges = [c for c in plan_charges(subscription) if selection.keeps_charge(c)]
    usages = subscription_usage(
        subscription=subscription,
        window=window,
        include_pay_in_advance=True,
        period_ratio=_elapsed_ratio(window, now) if projected else None,
        charges=charges,
        presentation_filter=selection.presentation,
        chain_started_at=chain_started_at,
    )
    usages = [u for u in usages if selection.keeps_usage(u)]
    amount_cents = sum(u.amount_cents for u in usages)
    taxes = 0
    if apply_taxes:
        fee_taxes = FeeTaxes(subscription=subscription)
        per_charge = {c.pk: fee_taxes.for_charge(c) for c in charges}
        taxes = taxes_amount_cents((u.amount_cents, per_charge[u.charge.pk]) for u in usages)
    body: dict[str, Any] = {
        "from_datetime": iso(window.charges_from_datetime),
        "to_datetime": iso(window.charges_to_datetime),
        "issuing_date": local_date(period.timestamp, period.timezone).isoformat(),
        "lago_invoice_id": None,
        "currency": subscription.plan.amount_currency,
        "amount_cents": amount_cents,
        "taxes_amount_cents": taxes,
        "total_amount_cents": amount_cents + taxes,
    }
    if projected:
        body["projected_amount_cents"] = sum(u.projected_amount_cents or 0 for u in usages)
    body["charges_usage"] = charges_usage_payload(usages, projected=projected)
    return body
