"""Fees of billing items, in Lago's order (spec §12.3 steps 1-4), and the non-invoiceable
recurring renewals (spec §7.14)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from billing.actors import Actor
from billing.money import round_cents, to_major, to_minor
from billing.outbox import emit_many
from billing.periods import (
    Period,
    PlanChange,
    date_diff_with_timezone,
    end_of_day,
    start_of_day,
    subscription_fee_precise_cents,
    subscription_fee_rule,
)
from customers.models import Subscription
from invoicing import calculation
from invoicing.models import Fee, FeeAppliedTax, Invoice
from invoicing.services.applied_taxes import fee_applied_taxes, fill_fee, tax_rate
from invoicing.services.generation.context import (
    DEAD_INVOICE_STATUSES,
    BillingContext,
    Reason,
    _commitment,
    _fixed_charges,
    _iso,
    _parse,
    _started_at,
)
from invoicing.services.generation.items import BillingItem
from metering.presentation import breakdowns_payload
from metering.usage import charge_usage, window_of
from plans.charge_models import compute as compute_charge_model
from plans.models import Charge, FixedCharge, Plan, Tax
from plans.selectors import applicable_taxes

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Fees of an item


@dataclass
class FeeDraft:
    """A fee being built: the unsaved row, its line for `calculation`, its tax rows."""

    fee: Fee
    line: calculation.FeeLine
    taxes: list[Tax]
    attribution: tuple[datetime, datetime] | None = None  # window for the commitment (§22)


def _properties(period: Period, *, charges: Period | None = None) -> dict[str, str]:
    charges = charges or period
    return {
        "from_datetime": _iso(period.from_datetime),
        "to_datetime": _iso(period.to_datetime),
        "charges_from_datetime": _iso(charges.charges_from_datetime),
        "charges_to_datetime": _iso(charges.charges_to_datetime),
        "timestamp": _iso(period.timestamp),
    }


def _plan_code(plan: Plan) -> str:
    # spec §15.3: a plan-limited coupon covers the plan and its overridden children
    return plan.parent.code if plan.parent_id else plan.code


def _fee_line(
    fee: Fee, *, key: str, fee_type: str, taxes: Sequence[Tax], metric_code: str | None, plan: Plan
) -> calculation.FeeLine:
    """The fee as `calculation` reads it."""
    return calculation.FeeLine(
        key=key,
        fee_type=fee_type,
        amount_cents=fee.amount_cents,
        precise_amount_cents=Decimal(fee.precise_amount_cents),
        taxes=tuple(tax_rate(tax) for tax in taxes),
        charge_metric_code=metric_code,
        plan_code=_plan_code(plan),
    )


class _FeeBuilder:
    """Builds the fees of billing items, in Lago's order (spec §12.3 steps 1-4)."""

    def __init__(self, *, invoice: Invoice | None, context: BillingContext, currency: str):
        self.invoice = invoice
        self.context = context
        self.currency = currency
        self.drafts: list[FeeDraft] = []
        self._fee_windows: set[tuple[UUID, datetime]] = set()  # subscription fees built here
        self.customer = context.customer
        self.organization = context.customer.organization

    def _add(
        self,
        fee: Fee,
        *,
        taxes: list[Tax],
        metric_code: str | None = None,
        plan: Plan,
        attribution: tuple[datetime, datetime] | None,
    ) -> FeeDraft:
        fee.organization = self.organization
        fee.customer = self.customer
        fee.invoice = self.invoice
        fee.amount_currency = self.currency
        draft = FeeDraft(
            fee=fee,
            line=_fee_line(
                fee,
                key=str(len(self.drafts)),
                fee_type=fee.fee_type,
                taxes=taxes,
                metric_code=metric_code,
                plan=plan,
            ),
            taxes=taxes,
            attribution=attribution,
        )
        self.drafts.append(draft)
        return draft

    def _taxes(self, plan: Plan, **level: object) -> list[Tax]:
        # spec §14.1: the fee's own levels, then the customer's / entity's (read only if needed)
        taxes = applicable_taxes(organization=self.organization, plan=plan, **level)  # type: ignore[arg-type]
        return taxes or self.context.fallback_taxes()

    # -- the four kinds of fees of one item

    def add_item(self, item: BillingItem) -> None:
        if item.reason == Reason.PROGRESSIVE_BILLING:
            # spec §21.2: the in-arrears charges of the usage window as of now, nothing else
            self._charge_fees(item, true_up=False)
            return
        first = len(self.drafts)
        if item.bills_subscription_fee:
            self._subscription_fee(item)
        if item.bills_charges:
            self._charge_fees(item)
        self._fixed_charge_fees(item)
        self._commitment_fee(item, self.drafts[first:])

    def _subscription_fee(self, item: BillingItem) -> None:
        subscription, period = item.subscription, item.period
        plan = subscription.plan
        window = (subscription.pk, period.to_datetime)
        if self.context.fee_window_billed(subscription, period) or window in self._fee_windows:
            return  # spec §11: one subscription fee per period (starting / trial-end invoice)
        self._fee_windows.add(window)
        rule = subscription_fee_rule(
            pay_in_advance=plan.pay_in_advance,
            billing_time=subscription.billing_time,
            terminated=item.reason == Reason.SUBSCRIPTION_TERMINATING,
            ended_by=item.ended_by,
            created_by=item.created_by,
            first_invoice=not self.context.has_earlier_invoice(subscription),
            has_earlier_fee=self.context.has_earlier_fee(subscription),
        )
        precise = subscription_fee_precise_cents(
            rule=rule, amount_cents=plan.amount_cents, period=period, trial_end_at=item.trial_end_at
        )
        amount = round_cents(precise)
        fee = Fee(
            subscription=subscription,
            fee_type=Fee.FeeType.SUBSCRIPTION,
            amount_cents=amount,
            precise_amount_cents=precise,
            unit_amount_cents=amount,
            precise_unit_amount=to_major(amount, self.currency),
            units=Decimal(1),
            events_count=0,
            invoice_display_name=plan.invoice_display_name,
            amount_details={"plan_amount_cents": plan.amount_cents},
            properties=_properties(period),
        )
        self._add(
            fee,
            taxes=self._taxes(plan),
            plan=plan,
            attribution=(period.from_datetime, period.to_datetime),
        )

    def _charge_fees(self, item: BillingItem, *, true_up: bool = True) -> None:
        subscription = item.subscription
        window = window_of(item.period)
        renewal_window = window_of(item.renewal_period) if item.renewal_period else None
        kept_metrics = self._metrics_carried_to_successor(item)
        for charge in self.context.charges(subscription):
            metric = charge.billable_metric
            # recurring metrics carry their value from the first start of the external id
            # (§4.2); other windows never start before the subscription's own start
            chain_started_at = (
                self.context.chain_started_at(subscription)
                if metric.recurring
                else _started_at(subscription)
            )
            if not charge.invoiceable:
                continue  # fees without invoice: `non_invoiceable_renewals_create` (§7.14)
            if charge.pay_in_advance:
                # billed event by event (§7.14); recurring ones are renewed at period start
                if renewal_window is None or not metric.recurring:
                    continue
                usages = charge_usage(
                    subscription=subscription,
                    charge=charge,
                    window=renewal_window,
                    chain_started_at=chain_started_at,
                    answers=self.context.usage_answers,
                )
                assert item.renewal_period is not None
                self._usage_fees(item, charge, usages, item.renewal_period, true_up=False)
                continue
            if metric.code in kept_metrics:
                continue  # the recurring value carries on in the new plan (code §12.3)
            usages = charge_usage(
                subscription=subscription,
                charge=charge,
                window=window,
                chain_started_at=chain_started_at,
                answers=self.context.usage_answers,
            )
            self._usage_fees(item, charge, usages, item.period, true_up=true_up)

    def _metrics_carried_to_successor(self, item: BillingItem) -> set[str]:
        """Recurring metrics an upgrade carries over: not billed on the closing invoice."""
        if item.ended_by is not PlanChange.UPGRADE:
            return set()
        successor = self.context.successor(item.subscription)
        if successor is None:
            return set()
        next_codes = {c.billable_metric.code for c in self.context.charges(successor)}
        return {
            charge.billable_metric.code
            for charge in self.context.charges(item.subscription)
            if charge.billable_metric.recurring
            and not charge.prorated
            and charge.billable_metric.code in next_codes
        }

    def non_invoiceable_renewals(self, item: BillingItem) -> None:
        """Recurring pay-in-advance charges that are not invoiceable, renewed at the start of
        `item.renewal_period` (spec §7.14): one draft per filter and group with carried units,
        none for those already renewed for that period (idempotent)."""
        period = item.renewal_period
        if period is None:
            return
        subscription = item.subscription
        plan = subscription.plan
        properties = _properties(period)
        for charge in self.context.charges(subscription):
            metric = charge.billable_metric
            if charge.invoiceable or not charge.pay_in_advance or not metric.recurring:
                continue
            usages = charge_usage(
                subscription=subscription,
                charge=charge,
                window=window_of(period),
                chain_started_at=self.context.chain_started_at(subscription),
            )
            renewed = _renewed_buckets(subscription, charge, properties)
            taxes = self._taxes(plan, charge=charge)
            for usage in usages:
                if usage.units == 0 and usage.amount_cents == 0 and usage.events_count == 0:
                    continue  # spec §7.17
                grouped_by = usage.grouped_by or {}
                if _bucket(usage.charge_filter, grouped_by) in renewed:
                    continue
                fee = _usage_fee(
                    subscription,
                    charge,
                    usage,
                    properties=properties,
                    pay_in_advance=True,
                    invoiceable=False,
                )
                self._add(fee, taxes=taxes, metric_code=metric.code, plan=plan, attribution=None)

    def _usage_fees(
        self,
        item: BillingItem,
        charge: Charge,
        usages: Sequence[Any],
        window: Period,
        *,
        true_up: bool,
    ) -> None:
        subscription = item.subscription
        plan = subscription.plan
        metric = charge.billable_metric
        taxes = self._taxes(plan, charge=charge)
        true_up_cents = 0
        parent_index: int | None = None
        if true_up and charge.min_amount_cents > 0:
            days = item.period.charges_days
            if item.ended_by is PlanChange.UPGRADE:
                days -= 1  # spec §7.16: the upgrade day belongs to the new plan
            true_up_cents = calculation.spending_minimum_true_up_cents(
                charge.min_amount_cents,
                sum(usage.amount_cents for usage in usages),
                max(days, 0),
                item.period.charges_duration_days,
            )
            if true_up_cents and usages:
                defaults = [i for i, u in enumerate(usages) if u.charge_filter is None]
                parent_index = defaults[0] if defaults else 0
        attribution = (window.charges_from_datetime, window.charges_to_datetime)
        properties = _properties(item.period, charges=window)
        parent: Fee | None = None
        for index, usage in enumerate(usages):
            empty = usage.units == 0 and usage.amount_cents == 0 and usage.events_count == 0
            if empty and index != parent_index:
                continue  # spec §7.17: zero fees are not persisted
            fee = _usage_fee(subscription, charge, usage, properties=properties)
            self._add(fee, taxes=taxes, metric_code=metric.code, plan=plan, attribution=attribution)
            if index == parent_index:
                parent = fee
        if true_up_cents and parent is not None:
            fee = self._true_up_fee(
                true_up_cents,
                subscription=subscription,
                charge=charge,
                fee_type=Fee.FeeType.CHARGE,
                events_count=0,
                true_up_parent_fee=parent,
                invoice_display_name=parent.invoice_display_name,
                properties=properties,
            )
            self._add(fee, taxes=taxes, metric_code=metric.code, plan=plan, attribution=attribution)

    def _fixed_charge_fees(self, item: BillingItem) -> None:
        subscription = item.subscription
        plan = subscription.plan
        for fixed in _fixed_charges(plan):
            window = (
                item.advance_fixed_period if fixed.pay_in_advance else item.arrears_fixed_period
            )
            if window is None:
                continue
            units = Decimal(fixed.units)
            result = compute_charge_model(
                fixed.charge_model, fixed.properties or {}, units=units, currency=self.currency
            )
            precise = to_minor(result.amount, self.currency)
            days = date_diff_with_timezone(
                window.from_datetime, window.to_datetime, window.timezone
            )
            if fixed.prorated:
                if item.ended_by is PlanChange.UPGRADE and not fixed.pay_in_advance:
                    days -= 1
                precise = precise * max(days, 0) / window.duration_days
            amount = round_cents(precise)
            if fixed.pay_in_advance and fixed.prorated and item.created_by is PlanChange.UPGRADE:
                paid = self._paid_before_upgrade(item, fixed, window, days)
                amount, precise = max(amount - paid, 0), max(precise - paid, Decimal(0))
            if units == 0 and amount == 0:
                continue
            fee = Fee(
                subscription=subscription,
                fixed_charge=fixed,
                add_on=fixed.add_on,
                fee_type=Fee.FeeType.FIXED_CHARGE,
                amount_cents=amount,
                precise_amount_cents=precise,
                unit_amount_cents=round_cents(to_minor(result.unit_amount, self.currency)),
                precise_unit_amount=result.unit_amount,
                units=units,
                pay_in_advance=fixed.pay_in_advance,
                invoice_display_name=fixed.invoice_display_name,
                amount_details=result.amount_details or {},
                properties=_properties(window),
            )
            self._add(
                fee,
                taxes=self._taxes(plan, fixed_charge=fixed),
                plan=plan,
                attribution=(window.from_datetime, window.to_datetime),
            )

    def _paid_before_upgrade(
        self, item: BillingItem, fixed: FixedCharge, window: Period, days: int
    ) -> int:
        """Spec §8: on the first invoice of an upgraded subscription, what the previous
        subscription already paid in advance for the same add-on over the days of `window`.

        The newest in-advance fee of the add-on whose window covers `window` is worth its
        amount over the local days it was billed for; `days` of them are deducted (rounded once),
        as Lago's upgrade scenario "when there are fixed charges" bills.
        """
        previous = item.subscription.previous_subscription
        if item.reason != Reason.SUBSCRIPTION_STARTING or previous is None:
            return 0
        for paid in self.context.advance_fixed_fees(previous):
            if (
                paid.add_on_id != fixed.add_on_id
                or paid.from_datetime > window.from_datetime
                or paid.to_datetime < window.to_datetime
            ):
                continue
            paid_days = date_diff_with_timezone(
                paid.from_datetime, paid.to_datetime, window.timezone
            )
            if paid_days <= 0:
                return 0
            return round_cents(Decimal(paid.amount_cents) * max(days, 0) / paid_days)
        return 0

    def _commitment_fee(self, item: BillingItem, item_drafts: Sequence[FeeDraft]) -> None:
        period = item.commitment_period
        subscription = item.subscription
        plan = subscription.plan
        commitment = _commitment(plan)
        if period is None or commitment is None or commitment.amount_cents <= 0:
            return
        tz = period.timezone
        lower = start_of_day(period.full_period.first, tz)
        upper = min(end_of_day(period.full_period.last, tz), period.to_datetime)
        if subscription.terminated_at is not None:
            upper = max(
                upper, min(subscription.terminated_at, end_of_day(period.full_period.last, tz))
            )

        def attributable(window: tuple[datetime, datetime] | None) -> bool:
            return window is not None and window[0] >= lower and window[1] <= upper

        total = sum(d.fee.amount_cents for d in item_drafts if attributable(d.attribution))
        total += self._persisted_fees_total(subscription, attributable)
        days_covered = date_diff_with_timezone(period.from_datetime, period.to_datetime, tz)
        amount = calculation.commitment_true_up_cents(
            commitment.amount_cents, total, days_covered, period.duration_days
        )
        if amount <= 0:
            return
        fee = self._true_up_fee(
            amount,
            subscription=subscription,
            fee_type=Fee.FeeType.COMMITMENT,
            invoice_display_name=commitment.invoice_display_name,
            properties=_properties(period),
        )
        self._add(
            fee,
            taxes=self._taxes(plan, commitment=commitment),
            plan=plan,
            attribution=None,
        )

    def _true_up_fee(self, amount_cents: int, **fields: Any) -> Fee:
        """One unit of a computed amount: a spending-minimum or commitment true-up."""
        return Fee(
            amount_cents=amount_cents,
            precise_amount_cents=Decimal(amount_cents),
            unit_amount_cents=amount_cents,
            precise_unit_amount=to_major(amount_cents, self.currency),
            units=Decimal(1),
            **fields,
        )

    def _persisted_fees_total(self, subscription: Subscription, attributable: Any) -> int:
        """Fees of the subscription billed elsewhere (earlier invoices, pay-in-advance fees)."""
        if subscription._state.adding:
            return 0
        rows = Fee.objects.filter(subscription_id=subscription.pk, deleted_at__isnull=True).exclude(
            fee_type=Fee.FeeType.COMMITMENT
        )
        rows = rows.exclude(invoice__status__in=DEAD_INVOICE_STATUSES)
        # progressive billing fees bill again usage the period's invoice bills in full
        rows = rows.exclude(invoice__invoice_type=Invoice.InvoiceType.PROGRESSIVE_BILLING)
        if self.invoice is not None and self.invoice.pk is not None:
            rows = rows.exclude(invoice_id=self.invoice.pk)
        total = 0
        for fee_type, amount, properties in rows.values_list(
            "fee_type", "amount_cents", "properties"
        ):
            properties = properties or {}
            if fee_type == Fee.FeeType.CHARGE:
                start = properties.get("charges_from_datetime") or properties.get("from_datetime")
                end = properties.get("charges_to_datetime") or properties.get("to_datetime")
            else:
                start = properties.get("from_datetime")
                end = properties.get("to_datetime")
            window = (_parse(start), _parse(end))
            if window[0] is not None and window[1] is not None and attributable(window):
                total += amount
        return total


def _usage_fee(
    subscription: Subscription, charge: Charge, usage: Any, *, properties: dict, **fields: Any
) -> Fee:
    """The charge fee of one usage bucket (filter and group) of `metering.usage`."""
    return Fee(
        subscription=subscription,
        charge=charge,
        charge_filter=usage.charge_filter,
        fee_type=Fee.FeeType.CHARGE,
        amount_cents=usage.amount_cents,
        precise_amount_cents=usage.precise_amount_cents,
        unit_amount_cents=usage.unit_amount_cents,
        precise_unit_amount=usage.precise_unit_amount,
        units=usage.units,
        total_aggregated_units=usage.total_aggregated_units,
        events_count=usage.events_count,
        invoice_display_name=usage.invoice_display_name,
        amount_details=usage.amount_details or {},
        grouped_by=usage.grouped_by or {},
        presentation_breakdowns=breakdowns_payload(usage.presentation_breakdowns),
        properties=properties,
        **fields,
    )


def _bucket(charge_filter: Any, grouped_by: dict) -> tuple[UUID | None, tuple]:
    return (
        charge_filter.pk if charge_filter is not None else None,
        tuple(sorted((str(k), str(v)) for k, v in grouped_by.items())),
    )


def _renewed_buckets(
    subscription: Subscription, charge: Charge, properties: dict[str, str]
) -> set[tuple[UUID | None, tuple]]:
    """(filter, group) buckets of a charge already renewed without invoice for one period."""
    rows = Fee.objects.filter(
        subscription_id=subscription.pk,
        charge_id=charge.pk,
        pay_in_advance=True,
        invoiceable=False,
        pay_in_advance_event_transaction_id="",
        properties__from_datetime=properties["from_datetime"],
        properties__to_datetime=properties["to_datetime"],
    ).select_related("charge_filter")
    return {_bucket(fee.charge_filter, fee.grouped_by or {}) for fee in rows}


def non_invoiceable_renewals_create(
    *, context: BillingContext, items: Sequence[BillingItem], currency: str, actor: Actor
) -> list[Fee]:
    """Spec §7.14, §12.3 step 2: at a period start, the carried-over units of recurring
    pay-in-advance charges that are not invoiceable become fees without invoice (full amount,
    their taxes, `fee.created`), never on the periodic invoice, even a draft's.

    Called under the customer lock when the periodic invoice is created (not by a refresh or a
    finalization, nor a preview): one fee per charge, filter, group and period, whatever the
    number of runs.
    """
    builder = _FeeBuilder(invoice=None, context=context, currency=currency)
    for item in items:
        builder.non_invoiceable_renewals(item)
    fees = []
    for draft in builder.drafts:
        calculation.apply_fee_taxes(draft.line)
        fill_fee(draft.fee, draft.line)
        fees.append(draft.fee)
    Fee.objects.bulk_create(fees)
    FeeAppliedTax.objects.bulk_create(
        row
        for draft in builder.drafts
        for row in fee_applied_taxes(
            draft.fee,
            draft.line,
            organization_id=draft.fee.organization_id,
            tax_by_code={tax.code: tax for tax in draft.taxes},
        )
    )
    emit_many(event_type="fee.created", actor=actor, objs=fees, payload=_fee_created_payload)
    return fees


def _fee_created_payload(fee: Fee) -> dict:
    """The `fee.created` payload of a renewal fee without invoice (spec §7.14)."""
    subscription = fee.subscription
    assert subscription is not None
    return {
        "lago_id": str(fee.pk),
        "lago_charge_id": str(fee.charge_id),
        "external_subscription_id": subscription.external_id,
        "external_customer_id": fee.customer.external_id,
        "amount_cents": fee.amount_cents,
        "amount_currency": fee.amount_currency,
        "units": str(fee.units),
        "from_datetime": fee.properties["from_datetime"],
        "to_datetime": fee.properties["to_datetime"],
    }
