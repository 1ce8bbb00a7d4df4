"""Subscription invoices: what a customer owes for its subscriptions at one billing instant.

Spec §9.3-§9.6 (which transition bills what), §10.3 (boundaries), §11 (subscription fee), §7.16
(spending minimum), §8 (fixed charges), §22 (minimum commitment), §12.2-§12.5 (invoice types,
computation order, drafts), §12.11 (preview).

An invoice is built from *billing items*: one subscription, one reason (`subscription_periodic`,
`_starting`, `_terminating`, `_trial_ended`) and the `billing.periods.Period` it is billed for.
The item becomes the `InvoiceSubscription` row (the double-billing guard: its unique
constraints stop a second run), then fees, in Lago's order (§12.3): subscription fee, charge
fees per filter and group (via the usage engine `customers.usage`) with their spending-minimum
true-ups, fixed charges (monthly windows with `bill_fixed_charges_monthly`), the minimum commitment
true-up. Coupons, taxes and totals are the pure `invoicing.calculation.compute_invoice`. Dates
come from `billing.periods`, never from here. Recurring pay-in-advance charges that are not
invoiceable are renewed at period start as fees without invoice, next to the periodic invoice
(`non_invoiceable_renewals_create`, §7.14).

    item = periodic_item(subscription, billing_date, context)
    invoice = invoice_create_for_items(customer=..., items=[item], billing_date=..., now=...)

Coupons are only consumed when an invoice is finalized: a draft (grace period, §12.5) carries its
fees and taxes on the gross amounts, and `lifecycle.invoice_finalize` recomputes everything with
the coupons (`invoice_recompute(..., finalizing=True)`).

Every fee keeps the boundaries it was computed for in `properties` (`from_datetime`,
`to_datetime`, `charges_from_datetime`, `charges_to_datetime`, `timestamp`, ISO UTC), as Lago
does: the commitment true-up attributes fees to a plan period with them, and the in-advance
guard (a period's subscription fee is billed once) reads them.
"""

from __future__ import annotations

import importlib.util
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction
from django.db.models import Exists, Min, OuterRef, Prefetch, QuerySet, Sum

from billing.errors import Invalid
from billing.models import OutboxEvent
from billing.money import round_cents, to_major, to_minor
from billing.periods import (
    BillingCycle,
    Interval,
    Period,
    PlanChange,
    align_charges_from,
    billing_period,
    bills_subscription_fee_on,
    charges_cycle,
    date_diff_with_timezone,
    end_of_day,
    first_period,
    is_billing_day,
    local_date,
    next_billing_day,
    period_containing,
    plan_change,
    start_of_day,
    subscription_fee_precise_cents,
    subscription_fee_rule,
    termination_period,
    trial_end,
    trial_end_period,
)
from customers.models import AppliedCoupon, Customer, Subscription
from customers.services.subscriptions import subscription_cycle
from invoicing import calculation
from invoicing.models import (
    Credit,
    Fee,
    FeeAppliedTax,
    Invoice,
    InvoiceAppliedTax,
    InvoiceSubscription,
    InvoicingReason,
)
from plans.charge_models import compute as compute_charge_model
from plans.models import Charge, FixedCharge, MinimumCommitment, Plan, Tax
from plans.selectors import applicable_taxes, billing_entity_taxes
from wallets.services import consumption

logger = logging.getLogger(__name__)

Reason = InvoicingReason
ZERO = Decimal(0)
# (subscription, reason, billing instant of a periodic invoice / None): what is billed
Key = tuple[UUID, str, datetime | None]
# Reasons a subscription gets once in its life (unique constraint `once_per_reason`).
ONCE_REASONS = frozenset({Reason.SUBSCRIPTION_STARTING, Reason.SUBSCRIPTION_TERMINATING})
SUBSCRIPTION_REASONS = frozenset(
    {
        Reason.SUBSCRIPTION_PERIODIC,
        Reason.SUBSCRIPTION_STARTING,
        Reason.SUBSCRIPTION_TERMINATING,
        Reason.SUBSCRIPTION_TRIAL_ENDED,
    }
)
# Invoices whose fees no longer count for anything (commitment attribution).
_DEAD_STATUSES = (Invoice.Status.VOIDED, Invoice.Status.DELETED)


# --------------------------------------------------------------------------------------------
# Loading subscriptions with everything billing reads


def subscriptions_for_billing(queryset: QuerySet[Subscription]) -> QuerySet[Subscription]:
    """Subscriptions with their plan, commitment, fixed charges and taxes.

    The caller sets `subscription.customer` to the (locked) customer it bills: few joins keep
    the planning time of this per-customer query low.
    """
    return queryset.select_related(
        "plan__parent", "plan__minimum_commitment", "previous_subscription"
    ).prefetch_related(
        "plan__taxes",
        "plan__minimum_commitment__taxes",
        Prefetch(
            "plan__fixed_charges",
            queryset=FixedCharge.objects.alive()
            .select_related("add_on")
            .prefetch_related("taxes")
            .order_by("created_at", "id"),
            to_attr="live_fixed_charges",
        ),
    )


def _fixed_charges(plan: Plan) -> list[FixedCharge]:
    prefetched = getattr(plan, "live_fixed_charges", None)
    if prefetched is not None:
        return prefetched
    return list(plan.fixed_charges.alive().prefetch_related("taxes").order_by("created_at", "id"))


def _commitment(plan: Plan) -> MinimumCommitment | None:
    try:
        return plan.minimum_commitment
    except ObjectDoesNotExist:
        return None


def has_advance_fixed_charges(plan: Plan) -> bool:
    """Whether the plan bills fixed charges at period start (a starting invoice, §8)."""
    return any(fixed.pay_in_advance for fixed in _fixed_charges(plan))


def _started_at(subscription: Subscription) -> datetime:
    return subscription.started_at or subscription.subscription_at


def _key(subscription_id: UUID, reason: str, timestamp: datetime) -> Key:
    # periodic invoices are told apart by their billing instant; the others are once per reason
    return (subscription_id, reason, timestamp if reason == Reason.SUBSCRIPTION_PERIODIC else None)


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat()


def _parse(value: object) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def usage_engine_available() -> bool:
    """Whether `customers.usage` (charge usage) exists: without it no charge fee is billed."""
    return importlib.util.find_spec("customers.usage") is not None


# --------------------------------------------------------------------------------------------
# Context: what one invoice computation reads once


@dataclass
class BillingContext:
    """Reads shared by the items of one customer's invoices (cached per computation).

    `exclude_invoice_id`: the invoice being recomputed, ignored in the history (a refreshed draft
    is not its own "earlier fee").
    """

    customer: Customer
    exclude_invoice_id: UUID | None = None
    _chain_starts: dict[UUID, datetime] | None = None
    _history_ids: set[UUID] = field(default_factory=set)
    _with_fee: set[UUID] = field(default_factory=set)
    _with_invoice: set[UUID] = field(default_factory=set)
    _fee_windows: dict[UUID, set[datetime]] = field(default_factory=dict)
    _billed: set[Key] = field(default_factory=set)
    _charges: dict[UUID, list[Charge]] = field(default_factory=dict)
    _fallback_taxes: list[Tax] | None = None
    _successors: dict[UUID, Subscription | None] = field(default_factory=dict)
    # (billing instant, usage window end) of each periodic invoice, per subscription (§10.5)
    _usage_windows: dict[UUID, list[tuple[datetime, datetime]]] = field(default_factory=dict)

    # -- chain starts and trials (spec §11, §30.3)

    def load(self, subscriptions: Sequence[Subscription]) -> None:
        """Bulk-reads the history of these subscriptions (two or three queries).

        Chain starts are read now only for the subscriptions whose trial or plan change needs
        them; recurring usage reads them on demand.
        """
        known = self._chain_starts or {}
        missing = [
            s
            for s in subscriptions
            if s.pk not in known and (s.plan.trial_period or s.previous_subscription_id)
        ]
        if missing:
            self._load_chain_starts(missing)
        self._load_history(subscriptions)

    def _load_chain_starts(self, subscriptions: Sequence[Subscription]) -> None:
        if self._chain_starts is None:
            self._chain_starts = {}
        saved = [s for s in subscriptions if not s._state.adding]
        external_ids = {s.external_id for s in saved}
        firsts: dict[str, datetime] = {}
        if external_ids:
            rows = (
                Subscription.objects.filter(
                    customer_id=self.customer.pk,
                    external_id__in=external_ids,
                    started_at__isnull=False,
                )
                .values("external_id")
                .annotate(first=Min("started_at"))
            )
            firsts = {row["external_id"]: row["first"] for row in rows}
        for subscription in subscriptions:
            candidates = [
                d for d in (firsts.get(subscription.external_id), subscription.started_at) if d
            ]
            self._chain_starts[subscription.pk] = (
                min(candidates) if candidates else subscription.subscription_at
            )

    def chain_started_at(self, subscription: Subscription) -> datetime:
        """First start of the external id (recurring usage and trials count from it)."""
        if self._chain_starts is None or subscription.pk not in self._chain_starts:
            self._load_chain_starts([subscription])
        assert self._chain_starts is not None
        return self._chain_starts[subscription.pk]

    def trial_end(self, subscription: Subscription) -> datetime | None:
        """Exact end of the plan's free trial, counted from the chain start (spec §11)."""
        if not subscription.plan.trial_period:
            return None
        return trial_end(self.chain_started_at(subscription), subscription.plan.trial_period)

    # -- billing history (fee rules of spec §11, in-advance guard)

    def _load_history(self, subscriptions: Sequence[Subscription]) -> None:
        ids = [s.pk for s in subscriptions if not s._state.adding and s.pk not in self._history_ids]
        self._history_ids.update(s.pk for s in subscriptions)
        if not ids:
            return
        fees = Fee.objects.filter(subscription_id__in=ids, fee_type=Fee.FeeType.SUBSCRIPTION)
        invoice_subscriptions = InvoiceSubscription.objects.filter(subscription_id__in=ids)
        if self.exclude_invoice_id is not None:
            fees = fees.exclude(invoice_id=self.exclude_invoice_id)
            invoice_subscriptions = invoice_subscriptions.exclude(
                invoice_id=self.exclude_invoice_id
            )
        for subscription_id, properties in fees.values_list("subscription_id", "properties"):
            self._with_fee.add(subscription_id)
            to_datetime = _parse((properties or {}).get("to_datetime"))
            if to_datetime is not None:
                self._fee_windows.setdefault(subscription_id, set()).add(to_datetime)
        for subscription_id, reason, timestamp, charges_to in invoice_subscriptions.values_list(
            "subscription_id", "invoicing_reason", "timestamp", "charges_to_datetime"
        ):
            if reason in SUBSCRIPTION_REASONS:  # not pay-in-advance charge invoices
                self._with_invoice.add(subscription_id)
            if reason == Reason.SUBSCRIPTION_PERIODIC and charges_to is not None:
                self._usage_windows.setdefault(subscription_id, []).append((timestamp, charges_to))
            self._billed.add(_key(subscription_id, reason, timestamp))

    def _ensure_history(self, subscription: Subscription) -> None:
        if subscription.pk not in self._history_ids:
            self._load_history([subscription])

    def has_earlier_fee(self, subscription: Subscription) -> bool:
        self._ensure_history(subscription)
        return subscription.pk in self._with_fee

    def has_earlier_invoice(self, subscription: Subscription) -> bool:
        self._ensure_history(subscription)
        return subscription.pk in self._with_invoice

    def billed_keys(self, subscriptions: Iterable[Subscription]) -> set[Key]:
        """What is already billed for these subscriptions (see `billed_keys`)."""
        for subscription in subscriptions:
            self._ensure_history(subscription)
        return set(self._billed)

    def fee_window_billed(self, subscription: Subscription, period: Period) -> bool:
        """A subscription fee of this subscription already covers the period's fee window."""
        self._ensure_history(subscription)
        return period.to_datetime in self._fee_windows.get(subscription.pk, set())

    def previous_charges_to(self, subscription: Subscription, before: datetime) -> datetime | None:
        """End of the usage window of the last periodic invoice billed before `before`."""
        self._ensure_history(subscription)
        earlier = [w for w in self._usage_windows.get(subscription.pk, ()) if w[0] < before]
        return max(earlier)[1] if earlier else None

    # -- plan changes (spec §9.4)

    def created_by(self, subscription: Subscription) -> PlanChange | None:
        """The plan change that created this subscription, if any."""
        previous = subscription.previous_subscription
        if previous is None:
            return None
        if previous.terminated_at is not None and previous.terminated_at == subscription.started_at:
            return PlanChange.UPGRADE
        return PlanChange.DOWNGRADE

    def successor(self, subscription: Subscription) -> Subscription | None:
        if subscription._state.adding:
            return None
        if subscription.pk not in self._successors:
            self._successors[subscription.pk] = (
                subscription.next_subscriptions.exclude(status=Subscription.Status.CANCELED)
                .exclude(status=Subscription.Status.PENDING)
                .select_related("plan")
                .order_by("-created_at", "-pk")
                .first()
            )
        return self._successors[subscription.pk]

    def assume_successor(self, subscription: Subscription, successor: Subscription) -> None:
        """A plan change that is only previewed (§12.11): `successor` follows `subscription`."""
        self._successors[subscription.pk] = successor

    def ended_by(self, subscription: Subscription) -> PlanChange | None:
        """The plan change that ended this subscription, if any."""
        if subscription.terminated_at is None:
            return None
        successor = self.successor(subscription)
        if successor is None:
            return None
        if successor.started_at == subscription.terminated_at:
            return PlanChange.UPGRADE
        return PlanChange.DOWNGRADE

    # -- catalog reads

    def charges(self, subscription: Subscription) -> list[Charge]:
        if subscription.plan_id not in self._charges:
            from customers.usage import plan_charges

            self._charges[subscription.plan_id] = plan_charges(subscription)
        return self._charges[subscription.plan_id]

    def fallback_taxes(self) -> list[Tax]:
        """Levels 7-8 of spec §14.1: the customer's taxes, else the billing entity's."""
        if self._fallback_taxes is None:
            # an inline (unsaved) preview customer has no taxes of its own
            taxes = [] if self.customer._state.adding else list(self.customer.taxes.all())
            if not taxes:
                taxes = billing_entity_taxes(billing_entity=self.customer.billing_entity)
            self._fallback_taxes = taxes
        return self._fallback_taxes


# --------------------------------------------------------------------------------------------
# Billing items


@dataclass(frozen=True)
class BillingItem:
    """One subscription on an invoice: the boundaries it is billed for and what they bill.

    `period` is the `InvoiceSubscription` row (fee window, usage window, billing instant).
    `renewal_period` is the period starting now, whose recurring pay-in-advance charges are
    billed again (§7.14, §12.3 step 2). The fixed-charge windows are the period just ended (in
    arrears) and the period starting (in advance, §8). `commitment_period` is the plan period
    this invoice closes (§22), None when it closes none.
    """

    subscription: Subscription
    reason: str
    period: Period
    recurring: bool = False
    bills_subscription_fee: bool = False
    bills_charges: bool = False
    renewal_period: Period | None = None
    arrears_fixed_period: Period | None = None
    advance_fixed_period: Period | None = None
    commitment_period: Period | None = None
    ended_by: PlanChange | None = None
    created_by: PlanChange | None = None
    trial_end_at: datetime | None = None


def fixed_charges_cycle(cycle: BillingCycle, plan: Plan) -> BillingCycle:
    """The cycle cutting fixed-charge windows (spec §8): monthly for yearly and semiannual plans
    with `bill_fixed_charges_monthly`, else the plan's own."""
    if plan.bill_fixed_charges_monthly and cycle.interval in (Interval.YEARLY, Interval.SEMIANNUAL):
        return BillingCycle(
            interval=Interval.MONTHLY,
            billing_time=cycle.billing_time,
            anchor=cycle.anchor,
            timezone=cycle.timezone,
        )
    return cycle


def is_periodic_billing_day(subscription: Subscription, day: date) -> bool:
    """Whether the subscription gets a periodic invoice on this local day: a plan (or monthly
    charges) period starts on it, or a monthly fixed-charge period (spec §8, §10.3)."""
    cycle = subscription_cycle(subscription)
    fixed_cycle = fixed_charges_cycle(cycle, subscription.plan)
    return is_billing_day(cycle, day) or (
        fixed_cycle is not cycle and is_billing_day(fixed_cycle, day)
    )


def next_periodic_billing_day(subscription: Subscription, after: date) -> date:
    """First periodic billing day strictly after a local day (see `is_periodic_billing_day`)."""
    cycle = subscription_cycle(subscription)
    fixed_cycle = fixed_charges_cycle(cycle, subscription.plan)
    return min(next_billing_day(cycle, after), next_billing_day(fixed_cycle, after))


def _aligned_usage(
    period: Period, subscription: Subscription, context: BillingContext, *, started_at: datetime
) -> Period:
    """Spec §10.5: after a timezone change, usage starts one second after the previous
    periodic invoice's usage window (no gap, no overlap) when they are less than 26 h apart."""
    previous_to = context.previous_charges_to(subscription, period.timestamp)
    if previous_to is None:
        return period
    aligned = max(align_charges_from(period.charges_from_datetime, previous_to), started_at)
    if aligned == period.charges_from_datetime or aligned >= period.charges_to_datetime:
        return period
    return replace(period, charges_from_datetime=aligned)


def periodic_item(
    subscription: Subscription, billing_date: date, context: BillingContext
) -> BillingItem | None:
    """The invoice of a billing day (spec §10.3): the period that ended yesterday (in arrears),
    the one starting today (in advance), the usage of the period that ended.

    With `bill_fixed_charges_monthly` (§8) the fixed charges follow their monthly cycle; on a
    month that starts no plan (or charges) period the invoice carries only them."""
    cycle = subscription_cycle(subscription)
    plan = subscription.plan
    fixed_cycle = fixed_charges_cycle(cycle, plan)
    monthly_fixed = fixed_cycle is not cycle
    tz = cycle.timezone
    started_at = _started_at(subscription)
    if local_date(started_at, tz) >= billing_date:
        return None
    arrears_fixed: Period | None = None
    advance_fixed: Period | None = None
    plan_day = is_billing_day(cycle, billing_date)
    if not plan_day and not (monthly_fixed and is_billing_day(fixed_cycle, billing_date)):
        return None
    billing_at = start_of_day(billing_date, tz)
    if monthly_fixed:
        arrears_fixed = billing_period(
            fixed_cycle, billing_at=billing_at, started_at=started_at, pay_in_advance=False
        )
        advance_fixed = billing_period(
            fixed_cycle, billing_at=billing_at, started_at=started_at, pay_in_advance=True
        )
        if not plan_day:
            return _fixed_charges_item(
                subscription,
                replace(cycle, bill_charges_monthly=True),  # the row's usage window: that month
                billing_at=billing_at,
                arrears_fixed=arrears_fixed,
                advance_fixed=advance_fixed,
                context=context,
            )
    arrears = billing_period(
        cycle, billing_at=billing_at, started_at=started_at, pay_in_advance=False
    )
    advance = billing_period(
        cycle, billing_at=billing_at, started_at=started_at, pay_in_advance=True
    )
    period = advance if plan.pay_in_advance else arrears
    period = _aligned_usage(period, subscription, context, started_at=started_at)
    boundary = bills_subscription_fee_on(cycle, billing_date)
    if not monthly_fixed:
        arrears_fixed, advance_fixed = (arrears, advance) if boundary else (None, None)
    trial_end_at = context.trial_end(subscription)
    bills_fee = period.bills_subscription_fee
    if (
        plan.pay_in_advance
        and trial_end_at is not None
        and trial_end_at > billing_at
        and local_date(trial_end_at, tz) != billing_date
    ):
        # still in trial: the trial-end invoice bills the rest of the period (spec §11)
        bills_fee = False
    commitment_period = arrears if boundary else None
    if plan.pay_in_advance and not context.has_earlier_invoice(subscription):
        commitment_period = None  # nothing billed in advance for the period that ended
    return BillingItem(
        subscription=subscription,
        reason=Reason.SUBSCRIPTION_PERIODIC,
        period=period,
        recurring=True,
        bills_subscription_fee=bills_fee,
        bills_charges=True,
        renewal_period=period_containing(charges_cycle(cycle), billing_date, started_at=started_at),
        arrears_fixed_period=arrears_fixed,
        advance_fixed_period=advance_fixed,
        commitment_period=commitment_period,
        created_by=context.created_by(subscription),
        trial_end_at=trial_end_at,
    )


def _fixed_charges_item(
    subscription: Subscription,
    monthly_cycle: BillingCycle,
    *,
    billing_at: datetime,
    arrears_fixed: Period,
    advance_fixed: Period,
    context: BillingContext,
) -> BillingItem:
    """A month of fixed charges inside a yearly or semiannual plan period (spec §8): no
    subscription fee, no usage (billed with the plan period), no commitment."""
    period = billing_period(
        monthly_cycle,
        billing_at=billing_at,
        started_at=_started_at(subscription),
        pay_in_advance=subscription.plan.pay_in_advance,
    )
    return BillingItem(
        subscription=subscription,
        reason=Reason.SUBSCRIPTION_PERIODIC,
        period=replace(period, bills_subscription_fee=False),
        recurring=True,
        arrears_fixed_period=arrears_fixed,
        advance_fixed_period=advance_fixed,
        created_by=context.created_by(subscription),
    )


def starting_item(subscription: Subscription, context: BillingContext) -> BillingItem | None:
    """The invoice at the start of a pay-in-advance plan (spec §9.3): the first (prorated)
    period's fee, unless a free trial runs; in-advance fixed charges of the first period."""
    plan = subscription.plan
    advance_fixed = has_advance_fixed_charges(plan)
    if not plan.pay_in_advance and not advance_fixed:
        return None
    cycle = subscription_cycle(subscription)
    started_at = _started_at(subscription)
    trial_end_at = context.trial_end(subscription)
    in_trial = trial_end_at is not None and trial_end_at > started_at
    bills_fee = plan.pay_in_advance and not in_trial
    if not bills_fee and not advance_fixed:
        return None
    period = first_period(cycle, started_at=started_at, pay_in_advance=True)
    fixed_cycle = fixed_charges_cycle(cycle, plan)
    return BillingItem(
        subscription=subscription,
        reason=Reason.SUBSCRIPTION_STARTING,
        period=period,
        bills_subscription_fee=bills_fee,
        advance_fixed_period=(
            period
            if fixed_cycle is cycle
            else first_period(fixed_cycle, started_at=started_at, pay_in_advance=True)
        ),
        created_by=context.created_by(subscription),
        trial_end_at=trial_end_at,
    )


def termination_item(subscription: Subscription, context: BillingContext) -> BillingItem | None:
    """The closing invoice (spec §9.5): usage up to the termination and, in arrears, the
    prorated fee; the period's commitment prorated to the termination (§22)."""
    if subscription.terminated_at is None:
        return None
    cycle = subscription_cycle(subscription)
    fixed_cycle = fixed_charges_cycle(cycle, subscription.plan)
    started_at = _started_at(subscription)
    period = termination_period(
        cycle,
        started_at=started_at,
        terminated_at=subscription.terminated_at,
        pay_in_advance=subscription.plan.pay_in_advance,
    )
    period = _aligned_usage(period, subscription, context, started_at=started_at)
    return BillingItem(
        subscription=subscription,
        reason=Reason.SUBSCRIPTION_TERMINATING,
        period=period,
        bills_subscription_fee=period.bills_subscription_fee,
        bills_charges=True,
        arrears_fixed_period=(
            period
            if fixed_cycle is cycle
            else termination_period(
                fixed_cycle,
                started_at=started_at,
                terminated_at=subscription.terminated_at,
                pay_in_advance=False,
            )
        ),
        commitment_period=period,
        ended_by=context.ended_by(subscription),
        created_by=context.created_by(subscription),
        trial_end_at=context.trial_end(subscription),
    )


def trial_end_item(subscription: Subscription, context: BillingContext) -> BillingItem | None:
    """The pay-in-advance fee billed when a free trial ends (spec §11, V63): the rest of the
    period containing the trial end; usage stays with the periodic invoices."""
    plan = subscription.plan
    trial_end_at = context.trial_end(subscription)
    started_at = _started_at(subscription)
    if not plan.pay_in_advance or trial_end_at is None or trial_end_at <= started_at:
        return None
    if subscription.terminated_at is not None and subscription.terminated_at <= trial_end_at:
        return None
    cycle = subscription_cycle(subscription)
    period = trial_end_period(cycle, started_at=started_at, billing_at=trial_end_at)
    return BillingItem(
        subscription=subscription,
        reason=Reason.SUBSCRIPTION_TRIAL_ENDED,
        period=period,
        bills_subscription_fee=True,
        created_by=context.created_by(subscription),
        trial_end_at=trial_end_at,
    )


def item_for_row(row: InvoiceSubscription, context: BillingContext) -> BillingItem | None:
    """The item an `InvoiceSubscription` row was built from, with its stored boundaries (a
    draft is recomputed on exactly the windows it was created for)."""
    subscription = row.subscription
    tz = ZoneInfo(subscription.customer.applicable_timezone)
    match row.invoicing_reason:
        case Reason.SUBSCRIPTION_PERIODIC:
            item = periodic_item(subscription, local_date(row.timestamp, tz), context)
        case Reason.SUBSCRIPTION_STARTING:
            item = starting_item(subscription, context)
        case Reason.SUBSCRIPTION_TERMINATING:
            item = termination_item(subscription, context)
        case Reason.SUBSCRIPTION_TRIAL_ENDED:
            item = trial_end_item(subscription, context)
        case _:
            return None
    if item is None:
        return None
    period = replace(
        item.period,
        from_datetime=row.from_datetime,
        to_datetime=row.to_datetime,
        charges_from_datetime=row.charges_from_datetime or item.period.charges_from_datetime,
        charges_to_datetime=row.charges_to_datetime or item.period.charges_to_datetime,
        timestamp=row.timestamp,
    )
    return replace(item, period=period)


# --------------------------------------------------------------------------------------------
# Fees of an item


@dataclass
class FeeDraft:
    """A fee being built: the unsaved row, its line for `calculation`, its tax rows."""

    fee: Fee
    line: calculation.FeeLine
    taxes: list[Tax]
    attribution: tuple[datetime, datetime] | None = None  # window for the commitment (§22)


def _tax_rate(tax: Tax) -> calculation.TaxRate:
    return calculation.TaxRate(
        code=tax.code, name=tax.name, rate=Decimal(tax.rate), description=tax.description
    )


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
            line=calculation.FeeLine(
                key=str(len(self.drafts)),
                fee_type=fee.fee_type,
                amount_cents=fee.amount_cents,
                precise_amount_cents=Decimal(fee.precise_amount_cents),
                taxes=tuple(_tax_rate(tax) for tax in taxes),
                charge_metric_code=metric_code,
                plan_code=_plan_code(plan),
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

    def _charge_fees(self, item: BillingItem) -> None:
        if not usage_engine_available():
            logger.warning("customers.usage is missing: charges of %s not billed", item)
            return
        from customers.usage import charge_usage, window_of

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
            )
            self._usage_fees(item, charge, usages, item.period, true_up=True)

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
        if period is None or not usage_engine_available():
            return
        from customers.usage import charge_usage, window_of

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
                fee = Fee(
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
                    pay_in_advance=True,
                    invoiceable=False,
                    invoice_display_name=usage.invoice_display_name,
                    amount_details=usage.amount_details or {},
                    grouped_by=grouped_by,
                    properties=properties,
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
            fee = Fee(
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
                properties=properties,
            )
            self._add(fee, taxes=taxes, metric_code=metric.code, plan=plan, attribution=attribution)
            if index == parent_index:
                parent = fee
        if true_up_cents and parent is not None:
            fee = Fee(
                subscription=subscription,
                charge=charge,
                fee_type=Fee.FeeType.CHARGE,
                amount_cents=true_up_cents,
                precise_amount_cents=Decimal(true_up_cents),
                unit_amount_cents=true_up_cents,
                precise_unit_amount=to_major(true_up_cents, self.currency),
                units=Decimal(1),
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
            if fixed.prorated:
                days = date_diff_with_timezone(
                    window.from_datetime, window.to_datetime, window.timezone
                )
                if item.ended_by is PlanChange.UPGRADE and not fixed.pay_in_advance:
                    days -= 1
                precise = precise * max(days, 0) / window.duration_days
            amount = round_cents(precise)
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
        fee = Fee(
            subscription=subscription,
            fee_type=Fee.FeeType.COMMITMENT,
            amount_cents=amount,
            precise_amount_cents=Decimal(amount),
            unit_amount_cents=amount,
            precise_unit_amount=to_major(amount, self.currency),
            units=Decimal(1),
            invoice_display_name=commitment.invoice_display_name,
            properties=_properties(period),
        )
        self._add(
            fee,
            taxes=self._taxes(plan, commitment=commitment),
            plan=plan,
            attribution=None,
        )

    def _persisted_fees_total(self, subscription: Subscription, attributable: Any) -> int:
        """Fees of the subscription billed elsewhere (earlier invoices, pay-in-advance fees)."""
        if subscription._state.adding:
            return 0
        rows = Fee.objects.filter(subscription_id=subscription.pk, deleted_at__isnull=True).exclude(
            fee_type=Fee.FeeType.COMMITMENT
        )
        rows = rows.exclude(invoice__status__in=_DEAD_STATUSES)
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
    *, context: BillingContext, items: Sequence[BillingItem], currency: str
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
        _fill_fee(draft)
        fees.append(draft.fee)
    Fee.objects.bulk_create(fees)
    FeeAppliedTax.objects.bulk_create(
        FeeAppliedTax(
            organization_id=draft.fee.organization_id,
            fee=draft.fee,
            tax=next((t for t in draft.taxes if t.code == applied.tax.code), None),
            tax_name=applied.tax.name,
            tax_code=applied.tax.code,
            tax_rate=applied.tax.rate,
            tax_description=applied.tax.description,
            amount_cents=applied.amount_cents,
            precise_amount_cents=applied.precise_amount_cents,
        )
        for draft in builder.drafts
        for applied in draft.line.applied_taxes
    )
    OutboxEvent.objects.bulk_create(_fee_created(draft.fee) for draft in builder.drafts)
    return fees


def _fee_created(fee: Fee) -> OutboxEvent:
    """The `fee.created` outbox row of a renewal fee without invoice (spec §7.14)."""
    subscription = fee.subscription
    assert subscription is not None
    return OutboxEvent(
        organization_id=fee.organization_id,
        event_type="fee.created",
        object_type="fee",
        object_id=str(fee.pk),
        payload={
            "lago_id": str(fee.pk),
            "lago_charge_id": str(fee.charge_id),
            "external_subscription_id": subscription.external_id,
            "external_customer_id": fee.customer.external_id,
            "amount_cents": fee.amount_cents,
            "amount_currency": fee.amount_currency,
            "units": str(fee.units),
            "from_datetime": fee.properties["from_datetime"],
            "to_datetime": fee.properties["to_datetime"],
        },
    )


# --------------------------------------------------------------------------------------------
# Coupons (spec §15.3): read at finalization, consumed with the invoice


def _coupon_limits(applied: AppliedCoupon) -> tuple[frozenset[str], frozenset[str]]:
    coupon = applied.coupon
    plans = frozenset(p.code for p in coupon.plans.all()) if coupon.limited_plans else frozenset()
    metrics = (
        frozenset(m.code for m in coupon.billable_metrics.all())
        if coupon.limited_billable_metrics
        else frozenset()
    )
    return plans, metrics


def coupon_to_apply(
    applied: AppliedCoupon, *, used_cents: int = 0, already_applied: bool = False
) -> calculation.CouponToApply:
    """An applied coupon as `calculation.apply_coupons` reads it (spec §15.2)."""
    coupon = applied.coupon
    plans, metrics = _coupon_limits(applied)
    amount_cents = applied.amount_cents if applied.amount_cents is not None else coupon.amount_cents
    fixed = coupon.coupon_type == calculation.CouponType.FIXED_AMOUNT
    return calculation.CouponToApply(
        key=str(applied.pk),
        coupon_type=coupon.coupon_type,
        frequency=applied.frequency,
        applied_at=applied.created_at,
        amount_cents=amount_cents if fixed else None,
        currency=(applied.amount_currency or coupon.amount_currency) if fixed else None,
        percentage_rate=(
            applied.percentage_rate if applied.percentage_rate is not None
            else coupon.percentage_rate
        ),
        remaining_cents=(
            max((amount_cents or 0) - used_cents, 0)
            if fixed and applied.frequency == calculation.CouponFrequency.ONCE
            else None
        ),
        frequency_duration_remaining=(
            applied.frequency_duration_remaining
            if applied.frequency_duration_remaining is not None
            else applied.frequency_duration
        ),
        limited_plan_codes=plans,
        limited_metric_codes=metrics,
        already_applied=already_applied,
    )  # fmt: skip


def _applied_coupons(customer: Customer, *, lock: bool) -> list[AppliedCoupon]:
    rows = (
        AppliedCoupon.objects.filter(customer_id=customer.pk, status=AppliedCoupon.Status.ACTIVE)
        .select_related("coupon")
        .prefetch_related("coupon__plans", "coupon__billable_metrics")
        .order_by("pk")
    )
    if lock:
        # pk order: two invoices of the customer finalized at once consume coupons in turn
        rows = rows.select_for_update(of=("self",))
    return list(rows)


def _coupons_for(
    customer: Customer, invoice: Invoice | None, *, lock: bool
) -> tuple[list[calculation.CouponToApply], dict[str, AppliedCoupon]]:
    if customer._state.adding or getattr(customer, "has_active_coupons", True) is False:
        return [], {}
    applied = _applied_coupons(customer, lock=lock)
    if not applied:
        return [], {}
    ids = [a.pk for a in applied]
    used = dict(
        Credit.objects.filter(applied_coupon_id__in=ids, voided_at__isnull=True)
        .values("applied_coupon_id")
        .annotate(total=Sum("amount_cents"))
        .values_list("applied_coupon_id", "total")
    )
    on_invoice: set[UUID] = set()
    if invoice is not None and invoice.pk is not None:
        on_invoice = set(
            Credit.objects.filter(invoice_id=invoice.pk, applied_coupon_id__in=ids).values_list(
                "applied_coupon_id", flat=True
            )
        )
    coupons = [
        coupon_to_apply(a, used_cents=used.get(a.pk) or 0, already_applied=a.pk in on_invoice)
        for a in applied
    ]
    return coupons, {str(a.pk): a for a in applied}


# --------------------------------------------------------------------------------------------
# Computing and persisting an invoice


@dataclass
class ComputedFees:
    """The result of a computation: fee drafts and the invoice math."""

    drafts: list[FeeDraft]
    computed: calculation.ComputedInvoice
    applied_coupons: dict[str, AppliedCoupon]
    prepaid: consumption.PrepaidCredits | None = None  # drawn when persisted (spec §17.5)


def _currency(customer: Customer, items: Sequence[BillingItem]) -> str:
    if customer.currency:
        return customer.currency
    for item in items:
        return item.subscription.plan.amount_currency
    return customer.organization.default_currency


def compute_fees(
    *,
    context: BillingContext,
    items: Sequence[BillingItem],
    invoice: Invoice | None,
    currency: str,
    finalizing: bool,
    extra_coupons: Sequence[calculation.CouponToApply] = (),
    lock_coupons: bool = True,
    now: datetime | None = None,
) -> ComputedFees:
    """Fees of the items, then coupons and prepaid credits (finalizing only), taxes and totals
    (spec §12.3)."""
    builder = _FeeBuilder(invoice=invoice, context=context, currency=currency)
    for item in items:
        builder.add_item(item)
    lines = [draft.line for draft in builder.drafts]
    coupons: list[calculation.CouponToApply] = []
    applied: dict[str, AppliedCoupon] = {}
    prepaid = None
    if finalizing:
        coupons, applied = _coupons_for(context.customer, invoice, lock=lock_coupons)
        coupons.extend(extra_coupons)
        prepaid = _prepaid_credits(context.customer, currency, lines, now=now)
    # spec §12.3: a draft never consumes coupons nor prepaid credits (applied at finalization)
    computed = calculation.compute_invoice(
        lines,
        coupons,
        currency=currency,
        prepaid_credit_allocator=prepaid.allocator if prepaid is not None else None,
    )
    return ComputedFees(
        drafts=builder.drafts, computed=computed, applied_coupons=applied, prepaid=prepaid
    )


def _prepaid_credits(
    customer: Customer,
    currency: str,
    lines: Sequence[calculation.FeeLine],
    *,
    now: datetime | None,
    lock: bool = True,
) -> consumption.PrepaidCredits | None:
    """The wallets' allocator for a subscription invoice (spec §17.5); none for a customer
    being previewed (not saved)."""
    if customer._state.adding:
        return None
    return consumption.prepaid_credits(
        customer_id=customer.pk, currency=currency, lines=lines, now=now, lock=lock
    )


def _apply_totals(invoice: Invoice, computed: calculation.ComputedInvoice) -> None:
    totals = computed.totals
    invoice.fees_amount_cents = totals.fees_amount_cents
    invoice.coupons_amount_cents = totals.coupons_amount_cents
    invoice.progressive_billing_credit_amount_cents = totals.progressive_billing_credit_amount_cents
    invoice.sub_total_excluding_taxes_amount_cents = totals.sub_total_excluding_taxes_amount_cents
    invoice.taxes_amount_cents = totals.taxes_amount_cents
    invoice.taxes_rate = totals.taxes_rate
    invoice.sub_total_including_taxes_amount_cents = totals.sub_total_including_taxes_amount_cents
    invoice.credit_notes_amount_cents = totals.credit_notes_amount_cents
    invoice.prepaid_credit_amount_cents = totals.prepaid_credit_amount_cents
    invoice.prepaid_granted_credit_amount_cents = totals.prepaid_granted_credit_amount_cents
    invoice.prepaid_purchased_credit_amount_cents = totals.prepaid_purchased_credit_amount_cents
    invoice.total_amount_cents = totals.total_amount_cents
    invoice.payment_status = totals.payment_status


AMOUNT_FIELDS = (
    "fees_amount_cents",
    "coupons_amount_cents",
    "progressive_billing_credit_amount_cents",
    "sub_total_excluding_taxes_amount_cents",
    "taxes_amount_cents",
    "taxes_rate",
    "sub_total_including_taxes_amount_cents",
    "credit_notes_amount_cents",
    "prepaid_credit_amount_cents",
    "prepaid_granted_credit_amount_cents",
    "prepaid_purchased_credit_amount_cents",
    "total_amount_cents",
    "payment_status",
)


def _fill_fee(draft: FeeDraft) -> None:
    fee, line = draft.fee, draft.line
    fee.taxes_amount_cents = line.taxes_amount_cents
    fee.taxes_precise_amount_cents = line.taxes_precise_amount_cents
    fee.taxes_rate = line.taxes_rate
    fee.precise_coupons_amount_cents = line.precise_coupons_amount_cents


def _persist(invoice: Invoice, result: ComputedFees, *, now: datetime) -> None:
    """Fees, their taxes, the invoice taxes and the coupon credits (consumed here)."""
    tax_by_code: dict[str, Tax] = {}
    fees = []
    for draft in result.drafts:
        _fill_fee(draft)
        draft.fee.invoice = invoice
        draft.fee.payment_status = invoice.payment_status
        fees.append(draft.fee)
        tax_by_code.update((tax.code, tax) for tax in draft.taxes)
    Fee.objects.bulk_create(fees)
    _persist_taxes_and_credits(invoice, result, now=now, tax_by_code=tax_by_code)


def _persist_taxes_and_credits(
    invoice: Invoice,
    result: ComputedFees,
    *,
    now: datetime,
    tax_by_code: dict[str, Tax] | None = None,
) -> None:
    """Fee and invoice applied taxes, then the coupon credits (consumed here)."""
    organization_id = invoice.organization_id
    if tax_by_code is None:
        tax_by_code = {tax.code: tax for draft in result.drafts for tax in draft.taxes}
    FeeAppliedTax.objects.bulk_create(
        FeeAppliedTax(
            organization_id=organization_id,
            fee=draft.fee,
            tax=tax_by_code.get(applied.tax.code),
            tax_name=applied.tax.name,
            tax_code=applied.tax.code,
            tax_rate=applied.tax.rate,
            tax_description=applied.tax.description,
            amount_cents=applied.amount_cents,
            precise_amount_cents=applied.precise_amount_cents,
        )
        for draft in result.drafts
        for applied in draft.line.applied_taxes
    )
    InvoiceAppliedTax.objects.bulk_create(
        InvoiceAppliedTax(
            organization_id=organization_id,
            invoice=invoice,
            tax=tax_by_code.get(applied.tax.code),
            tax_name=applied.tax.name,
            tax_code=applied.tax.code,
            tax_rate=applied.tax.rate,
            tax_description=applied.tax.description,
            amount_cents=applied.amount_cents,
            fees_amount_cents=applied.fees_amount_cents,
        )
        for applied in result.computed.totals.applied_taxes
    )
    _consume_coupons(invoice, result, now=now)
    _draw_prepaid_credits(invoice, result, now=now)


def _draw_prepaid_credits(invoice: Invoice, result: ComputedFees, *, now: datetime) -> None:
    """The wallets pay what the allocator gave (one `invoiced` transaction per wallet) and
    the invoice keeps the granted / purchased split (spec §17.5 step 4); the caller saves
    `AMOUNT_FIELDS`."""
    if result.prepaid is None or not result.computed.totals.prepaid_credit_amount_cents:
        return
    split = result.prepaid.draw(invoice_id=invoice.pk, now=now)
    if split.amount_cents != invoice.prepaid_credit_amount_cents:
        raise RuntimeError(f"invoice {invoice.pk}: wallets drew {split.amount_cents} cents")
    invoice.prepaid_granted_credit_amount_cents = split.granted_amount_cents
    invoice.prepaid_purchased_credit_amount_cents = split.purchased_amount_cents


def _consume_coupons(invoice: Invoice, result: ComputedFees, *, now: datetime) -> None:
    """Credit rows and the applied coupons' new state (spec §15.3 steps 5-7)."""
    credits = []
    for credit in result.computed.coupon_credits:
        applied = result.applied_coupons.get(credit.coupon_key)
        if applied is None or credit.amount_cents <= 0:
            continue
        credits.append(
            Credit(
                organization_id=invoice.organization_id,
                invoice=invoice,
                applied_coupon=applied,
                amount_cents=credit.amount_cents,
                amount_currency=invoice.currency,
                before_taxes=True,
            )
        )
        changed = []
        if credit.frequency_duration_remaining is not None:
            applied.frequency_duration_remaining = credit.frequency_duration_remaining
            changed.append("frequency_duration_remaining")
        if credit.terminated:
            applied.status = AppliedCoupon.Status.TERMINATED
            applied.terminated_at = now
            changed += ["status", "terminated_at"]
        if changed:
            applied.save(update_fields=[*changed, "updated_at"])
    Credit.objects.bulk_create(credits)


def _clear_computation(invoice: Invoice) -> None:
    """Removes what a computation wrote on a draft (fees, taxes, coupon credits)."""
    Fee.objects.filter(invoice_id=invoice.pk, true_up_parent_fee__isnull=False).delete()
    Fee.objects.filter(invoice_id=invoice.pk).delete()
    InvoiceAppliedTax.objects.filter(invoice_id=invoice.pk).delete()
    Credit.objects.filter(invoice_id=invoice.pk, applied_coupon__isnull=False).delete()


def grace_period_days(customer: Customer) -> int:
    """Customer override, else the billing entity's (spec §2.4)."""
    if customer.invoice_grace_period is not None:
        return customer.invoice_grace_period
    return customer.billing_entity.invoice_grace_period or 0


def _issuing_date(customer: Customer, billing_date: date, grace: int, *, recurring: bool) -> date:
    entity = customer.billing_entity
    config = customer.billing_configuration or {}
    return calculation.issuing_date(
        billing_date,
        grace,
        config.get("subscription_invoice_issuing_date_anchor")
        or entity.subscription_invoice_issuing_date_anchor,
        config.get("subscription_invoice_issuing_date_adjustment")
        or entity.subscription_invoice_issuing_date_adjustment,
        recurring=recurring,
    )


def _invoice_subscription_rows(invoice: Invoice, items: Sequence[BillingItem]) -> list:
    return [
        InvoiceSubscription(
            organization_id=invoice.organization_id,
            invoice=invoice,
            subscription=item.subscription,
            invoicing_reason=item.reason,
            from_datetime=item.period.from_datetime,
            to_datetime=item.period.to_datetime,
            charges_from_datetime=item.period.charges_from_datetime,
            charges_to_datetime=item.period.charges_to_datetime,
            timestamp=item.period.timestamp,
            recurring=item.recurring,
        )
        for item in items
    ]


def invoice_create_for_items(
    *,
    context: BillingContext,
    items: Sequence[BillingItem],
    billing_date: date,
    now: datetime,
) -> Invoice:
    """One subscription invoice for these items, in the caller's transaction (spec §12.3).

    The `InvoiceSubscription` rows are written first: a concurrent or repeated run of the same
    items fails there with an `IntegrityError` before any usage is read (`bill_customer`
    returns the existing invoice). With a grace period the invoice is a draft
    (`invoice.drafted`); else it is finalized at once (coupons consumed, number,
    `invoice.created`) or closed (§12.6).
    """
    from invoicing.services.lifecycle import finalize_computed

    customer = context.customer
    entity = customer.billing_entity
    grace = grace_period_days(customer)
    draft = grace > 0
    recurring = any(item.recurring for item in items)
    issuing = _issuing_date(customer, billing_date, grace, recurring=recurring)
    net_payment_term = calculation.effective_net_payment_term(
        customer.net_payment_term, entity.net_payment_term
    )
    currency = _currency(customer, items)
    prefix = entity.document_number_prefix or customer.organization.document_number_prefix
    invoice = Invoice(
        organization_id=customer.organization_id,
        billing_entity=entity,
        customer=customer,
        invoice_type=Invoice.InvoiceType.SUBSCRIPTION,
        status=Invoice.Status.GENERATING,
        number=calculation.draft_number(prefix),
        issuing_date=issuing,
        payment_due_date=calculation.payment_due_date(issuing, net_payment_term),
        net_payment_term=net_payment_term,
        expected_finalization_date=(
            calculation.expected_finalization_date(billing_date, grace) if draft else None
        ),
        currency=currency,
    )
    invoice.save(force_insert=True)
    # the double-billing guard, before any usage is read: a second run of the same items fails
    # here with an IntegrityError (callers that expect races wrap this call in a savepoint)
    InvoiceSubscription.objects.bulk_create(_invoice_subscription_rows(invoice, items))
    result = compute_fees(
        context=context,
        items=items,
        invoice=invoice,
        currency=currency,
        finalizing=not draft,
        now=now,
    )
    _apply_totals(invoice, result.computed)
    _persist(invoice, result, now=now)
    non_invoiceable_renewals_create(context=context, items=items, currency=currency)
    if draft:
        invoice.status = Invoice.Status.DRAFT
        invoice.save(update_fields=[*AMOUNT_FIELDS, "status", "updated_at"])
        _emit(invoice, "invoice.drafted")
        return invoice
    return finalize_computed(invoice, now=now, update_fields=AMOUNT_FIELDS)


def invoice_recompute(*, invoice: Invoice, finalizing: bool, now: datetime) -> Invoice:
    """Recomputes a draft from its `InvoiceSubscription` rows (late events, catalog changes),
    with the coupons when finalizing; the caller holds the invoice lock (spec §12.5)."""
    customer = (
        Customer.objects.select_related("billing_entity", "organization")
        .prefetch_related("taxes")
        .get(pk=invoice.customer_id)
    )
    rows = list(
        InvoiceSubscription.objects.filter(invoice_id=invoice.pk)
        .select_related("subscription")
        .order_by("created_at", "id")
    )
    subscriptions = {
        s.pk: s
        for s in subscriptions_for_billing(
            Subscription.objects.filter(pk__in=[row.subscription_id for row in rows])
        )
    }
    context = BillingContext(customer=customer, exclude_invoice_id=invoice.pk)
    context.load(list(subscriptions.values()))
    items = []
    for row in rows:
        row.subscription = subscriptions[row.subscription_id]
        row.subscription.customer = customer
        item = item_for_row(row, context)
        if item is not None:
            items.append(item)
    _clear_computation(invoice)
    result = compute_fees(
        context=context,
        items=items,
        invoice=invoice,
        currency=invoice.currency,
        finalizing=finalizing,
        now=now,
    )
    _apply_totals(invoice, result.computed)
    _persist(invoice, result, now=now)
    invoice.save(update_fields=[*AMOUNT_FIELDS, "updated_at"])
    return invoice


def _emit(invoice: Invoice, event_type: str) -> OutboxEvent:
    from invoicing.services.payments import emit_invoice_event

    return emit_invoice_event(invoice, event_type)


# --------------------------------------------------------------------------------------------
# Invoices of subscription transitions (driven by `customers.hooks`, spec §9.3-§9.5, §11)


def lock_customer_for_billing(customer_id: UUID) -> Customer:
    """The customer, locked (customer first: the lock order of `customers.services`), with
    its billing entity and organization; `has_active_coupons` spares the coupon read of the
    customers without any (its taxes are read only when a fee needs them)."""
    return (
        Customer.objects.select_for_update(of=("self",), no_key=True)
        .select_related("billing_entity", "organization")
        .annotate(
            has_active_coupons=Exists(
                AppliedCoupon.objects.filter(
                    customer_id=OuterRef("pk"), status=AppliedCoupon.Status.ACTIVE
                )
            )
        )
        .get(pk=customer_id)
    )


def _load(ids: Iterable[UUID], customer: Customer) -> dict[UUID, Subscription]:
    rows = subscriptions_for_billing(Subscription.objects.filter(pk__in=list(ids)))
    loaded = {}
    for subscription in rows:
        subscription.customer = customer  # one customer object: its taxes are read once
        loaded[subscription.pk] = subscription
    return loaded


def billed_keys(subscription_ids: Iterable[UUID]) -> set[Key]:
    """What is already billed: (subscription, reason, None) for the reasons billed once per
    subscription, (subscription, periodic, billing instant) for periodic invoices."""
    rows = InvoiceSubscription.objects.filter(
        subscription_id__in=list(subscription_ids)
    ).values_list("subscription_id", "invoicing_reason", "timestamp")
    return {_key(subscription_id, reason, timestamp) for subscription_id, reason, timestamp in rows}


def item_key(item: BillingItem) -> Key:
    """The `billed_keys` key an item would take."""
    return _key(item.subscription.pk, item.reason, item.period.timestamp)


def _create_unless_billed(
    context: BillingContext, items: list[BillingItem], *, billing_date: date, now: datetime
) -> Invoice | None:
    billed = context.billed_keys(item.subscription for item in items)
    items = [item for item in items if item_key(item) not in billed]
    if not items:
        return None
    return invoice_create_for_items(
        context=context, items=items, billing_date=billing_date, now=now
    )


def _local_today(customer: Customer, now: datetime) -> date:
    return local_date(now, ZoneInfo(customer.applicable_timezone))


@transaction.atomic
def invoice_create_for_start(*, subscription: Subscription, now: datetime) -> Invoice | None:
    """The invoice of a pay-in-advance plan at its start (spec §9.3): none when the start is in
    the past (the current period counts as paid), during a free trial, or in arrears."""
    customer = lock_customer_for_billing(subscription.customer_id)
    subscription = _load([subscription.pk], customer).get(subscription.pk)
    if subscription is None or subscription.started_at is None:
        return None
    today = _local_today(customer, now)
    if local_date(subscription.started_at, ZoneInfo(customer.applicable_timezone)) < today:
        return None  # spec §9.3: a start in the past bills nothing now
    context = BillingContext(customer=customer)
    item = starting_item(subscription, context)
    if item is None:
        return None
    return _create_unless_billed(context, [item], billing_date=today, now=now)


@transaction.atomic
def invoice_create_for_termination(*, subscription: Subscription, now: datetime) -> Invoice | None:
    """The closing invoice of a terminated subscription (spec §9.5), unless
    `on_termination_invoice` is `skip`."""
    customer = lock_customer_for_billing(subscription.customer_id)
    subscription = _load([subscription.pk], customer).get(subscription.pk)
    if (
        subscription is None
        or subscription.status != Subscription.Status.TERMINATED
        or subscription.on_termination_invoice == Subscription.OnTerminationInvoice.SKIP
    ):
        return None
    context = BillingContext(customer=customer)
    item = termination_item(subscription, context)
    if item is None:
        return None
    return _create_unless_billed(context, [item], billing_date=_local_today(customer, now), now=now)


@transaction.atomic
def invoice_create_for_plan_change(
    *, previous_subscription: Subscription, subscription: Subscription, now: datetime
) -> Invoice | None:
    """One invoice for a plan change (spec §9.4): the closing of the previous subscription
    (usage, and the used days in arrears) and the first period of the new one when it is paid
    in advance (upgrade: from the upgrade day; downgrade: up to the kept anniversary)."""
    customer = lock_customer_for_billing(subscription.customer_id)
    loaded = _load([previous_subscription.pk, subscription.pk], customer)
    previous, new = loaded.get(previous_subscription.pk), loaded.get(subscription.pk)
    context = BillingContext(customer=customer)
    items: list[BillingItem] = []
    if previous is not None and previous.status == Subscription.Status.TERMINATED:
        item = termination_item(previous, context)
        if item is not None:
            items.append(item)
    if new is not None and new.started_at is not None:
        item = starting_item(new, context)
        if item is not None:
            items.append(item)
    if not items:
        return None
    return _create_unless_billed(context, items, billing_date=_local_today(customer, now), now=now)


@transaction.atomic
def invoice_create_for_trial_end(*, subscription: Subscription, now: datetime) -> Invoice | None:
    """The pay-in-advance fee billed when the free trial ends (spec §11, V63)."""
    customer = lock_customer_for_billing(subscription.customer_id)
    subscription = _load([subscription.pk], customer).get(subscription.pk)
    if subscription is None or subscription.started_at is None:
        return None
    context = BillingContext(customer=customer)
    item = trial_end_item(subscription, context)
    if item is None:
        return None
    context.load([subscription])
    if context.fee_window_billed(subscription, item.period):
        return None  # the periodic invoice of the trial-end day already billed it
    return _create_unless_billed(context, [item], billing_date=_local_today(customer, now), now=now)


@transaction.atomic
def invoice_create_for_in_advance_fee(*, fee: Fee, now: datetime) -> Invoice | None:
    """The invoice of one pay-in-advance charge fee (spec §7.14, §12.2): type `subscription`,
    reason `in_advance_charge`, finalized at once (never a draft), coupons and taxes apply.

    For the fee an ingested event billed on an invoiceable charge (`invoicing.services.
    in_advance`); a fee already invoiced, non-invoiceable or of zero amount gets no invoice.
    """
    customer = lock_customer_for_billing(fee.customer_id)
    fee = (
        Fee.objects.select_for_update(of=("self",))
        .select_related("charge__billable_metric", "subscription__plan__parent")
        .get(pk=fee.pk)
    )
    if fee.invoice_id is not None or not fee.invoiceable or fee.amount_cents <= 0:
        return None
    subscription = fee.subscription
    entity = customer.billing_entity
    today = _local_today(customer, now)
    net_payment_term = calculation.effective_net_payment_term(
        customer.net_payment_term, entity.net_payment_term
    )
    prefix = entity.document_number_prefix or customer.organization.document_number_prefix
    invoice = Invoice(
        organization_id=customer.organization_id,
        billing_entity=entity,
        customer=customer,
        invoice_type=Invoice.InvoiceType.SUBSCRIPTION,
        status=Invoice.Status.GENERATING,
        number=calculation.draft_number(prefix),
        issuing_date=today,
        payment_due_date=calculation.payment_due_date(today, net_payment_term),
        net_payment_term=net_payment_term,
        currency=fee.amount_currency,
    )
    invoice.save(force_insert=True)
    properties = fee.properties or {}
    timestamp = _parse(properties.get("timestamp")) or now
    InvoiceSubscription.objects.create(
        organization_id=invoice.organization_id,
        invoice=invoice,
        subscription=subscription,
        invoicing_reason=Reason.IN_ADVANCE_CHARGE,
        from_datetime=_parse(properties.get("from_datetime")) or timestamp,
        to_datetime=_parse(properties.get("to_datetime")) or timestamp,
        charges_from_datetime=_parse(properties.get("charges_from_datetime")),
        charges_to_datetime=_parse(properties.get("charges_to_datetime")),
        timestamp=timestamp,
    )
    taxes = [row.tax for row in fee.applied_taxes.select_related("tax") if row.tax is not None]
    line = calculation.FeeLine(
        key="0",
        fee_type=Fee.FeeType.CHARGE,
        amount_cents=fee.amount_cents,
        precise_amount_cents=Decimal(fee.precise_amount_cents),
        taxes=tuple(_tax_rate(tax) for tax in taxes),
        charge_metric_code=fee.charge.billable_metric.code if fee.charge_id else None,
        plan_code=_plan_code(subscription.plan),
    )
    coupons, applied = _coupons_for(customer, invoice, lock=True)
    prepaid = _prepaid_credits(customer, invoice.currency, [line], now=now)  # spec §17.5
    computed = calculation.compute_invoice(
        [line],
        coupons,
        currency=invoice.currency,
        prepaid_credit_allocator=prepaid.allocator if prepaid is not None else None,
    )
    fee.applied_taxes.all().delete()  # recomputed on the net of coupons (spec §14.2)
    fee.invoice = invoice
    draft = FeeDraft(fee=fee, line=line, taxes=taxes)
    result = ComputedFees(
        drafts=[draft], computed=computed, applied_coupons=applied, prepaid=prepaid
    )
    _apply_totals(invoice, computed)
    _fill_fee(draft)
    fee.payment_status = invoice.payment_status
    fee.save(
        update_fields=[
            "invoice", "taxes_amount_cents", "taxes_precise_amount_cents", "taxes_rate",
            "precise_coupons_amount_cents", "payment_status", "updated_at",
        ]
    )  # fmt: skip
    _persist_taxes_and_credits(invoice, result, now=now)
    from invoicing.services.lifecycle import finalize_computed

    return finalize_computed(invoice, now=now, update_fields=AMOUNT_FIELDS)


# --------------------------------------------------------------------------------------------
# Preview (spec §12.11): the same computation, nothing persisted


@dataclass(frozen=True)
class InvoicePreview:
    """An invoice computed but not saved: unsaved `Invoice`, fees (each with its
    `preview_applied_taxes`), invoice applied taxes, coupon credits and the subscriptions."""

    invoice: Invoice
    fees: list[Fee]
    applied_taxes: list[InvoiceAppliedTax]
    credits: list[Credit]
    subscriptions: list[Subscription]
    items: list[BillingItem]


def invoice_preview(
    *,
    customer: Customer,
    now: datetime,
    subscriptions: Sequence[Subscription] = (),
    plan: Plan | None = None,
    subscription_at: datetime | None = None,
    billing_time: str = Subscription.BillingTime.CALENDAR,
    terminated_at: datetime | None = None,
    target_plan: Plan | None = None,
    coupons: Sequence[calculation.CouponToApply] = (),
) -> InvoicePreview:
    """Computes the next invoice without writing anything (spec §12.11).

    - `plan` (with `subscription_at`, `billing_time`): a new subscription's first invoice, at its
      start for a pay-in-advance plan, else on its first billing day (prorated per billing time).
      The customer may be unsaved (inline customer data).
    - `subscriptions` (existing): their next invoice, usage to date included; with
      `terminated_at` (now or later, one subscription), their closing invoice at that instant
      instead; with `target_plan`, the invoice of a change to that plan (§9.4): the closing
      invoice of the current plan (now for an upgrade, at the end of the period for a
      downgrade) and the new plan's starting invoice if it bills one.
    The customer's active applied coupons apply (without being consumed), then `coupons`
    (ad-hoc definitions).
    """
    if target_plan is None and terminated_at is not None:
        if terminated_at < now:
            raise Invalid({"terminated_at": ["cannot_be_in_past"]})
        if len(subscriptions) > 1:
            raise Invalid({"subscriptions": ["only_one_subscription_allowed_for_termination"]})
    context = BillingContext(customer=customer)
    items: list[BillingItem] = []
    previewed: list[Subscription] = []
    if plan is not None:
        start = subscription_at or now
        subscription = Subscription(
            organization_id=customer.organization_id,
            customer=customer,
            plan=plan,
            external_id="preview",
            billing_time=billing_time,
            subscription_at=start,
            started_at=start,
            status=Subscription.Status.ACTIVE,
        )
        previewed.append(subscription)
        item = starting_item(subscription, context)
        if item is None or not plan.pay_in_advance:
            cycle = subscription_cycle(subscription)
            day = next_billing_day(cycle, local_date(start, cycle.timezone))
            item = periodic_item(subscription, day, context)
        if item is not None:
            items.append(replace(item, bills_charges=False, renewal_period=None))
    for subscription in subscriptions:
        subscription = _preview_copy(subscription, customer)
        previewed.append(subscription)
        if target_plan is not None:
            successor = _preview_plan_change(subscription, target_plan, context, now=now)
            item = termination_item(subscription, context)
            if item is not None:
                items.append(item)
            item = starting_item(successor, context)
            if item is not None:
                previewed.append(successor)
                items.append(item)
            continue
        if terminated_at is not None:
            subscription.status = Subscription.Status.TERMINATED
            subscription.terminated_at = terminated_at
            item = termination_item(subscription, context)
        else:
            tz = ZoneInfo(customer.applicable_timezone)
            day = next_periodic_billing_day(subscription, local_date(now, tz))
            item = periodic_item(subscription, day, context)
        if item is not None:
            items.append(item)
    context.load(previewed)
    currency = _currency(customer, items)
    applied, _ = _coupons_for(customer, None, lock=False)
    builder = _FeeBuilder(invoice=None, context=context, currency=currency)
    for item in items:
        builder.add_item(item)
    lines = [d.line for d in builder.drafts]
    # spec §12.11: the wallets' credits are estimated (balances read unlocked, nothing drawn)
    estimate = _prepaid_credits(customer, currency, lines, now=now, lock=False)
    computed = calculation.compute_invoice(
        lines,
        [*applied, *coupons],
        currency=currency,
        prepaid_credit_allocator=estimate.allocator if estimate is not None else None,
    )
    return _preview_result(customer, builder.drafts, computed, previewed, items, now=now)


def _preview_plan_change(
    current: Subscription, target_plan: Plan, context: BillingContext, *, now: datetime
) -> Subscription:
    """A plan change applied to an unsaved copy (spec §9.4, as `subscription_create` would do
    it): `current` is terminated (now for an upgrade, on the last second of its period for a
    downgrade) and the returned, unsaved successor starts right after on `target_plan`."""
    plan = current.plan
    if target_plan.pk in (plan.pk, plan.parent_id):
        raise Invalid({"base": ["new_plan_should_be_different_from_existing_plan"]})
    change = plan_change(
        current_amount_cents=plan.amount_cents,
        current_interval=plan.interval,
        new_amount_cents=target_plan.amount_cents,
        new_interval=target_plan.interval,
    )
    if change is PlanChange.UPGRADE:
        terminated_at = started_at = now
    else:
        cycle = subscription_cycle(current)
        day = next_billing_day(cycle, local_date(now, cycle.timezone))
        started_at = start_of_day(day, cycle.timezone)
        terminated_at = end_of_day(day - timedelta(days=1), cycle.timezone)
    current.status = Subscription.Status.TERMINATED
    current.terminated_at = terminated_at
    successor = Subscription(
        organization_id=current.organization_id,
        customer=current.customer,
        plan=target_plan,
        name=current.name,
        external_id=current.external_id,
        previous_subscription=current,
        subscription_at=current.subscription_at,  # same anniversary (spec §9.4)
        billing_time=current.billing_time,
        ending_at=current.ending_at,
        consolidate_invoice=current.consolidate_invoice,
        status=Subscription.Status.ACTIVE,
        started_at=started_at,
    )
    context.assume_successor(current, successor)
    return successor


def _preview_copy(subscription: Subscription, customer: Customer) -> Subscription:
    loaded = subscriptions_for_billing(Subscription.objects.filter(pk=subscription.pk)).first()
    if loaded is None:
        loaded = subscription
    loaded.customer = customer
    return loaded


def _preview_result(
    customer: Customer,
    drafts: list[FeeDraft],
    computed: calculation.ComputedInvoice,
    subscriptions: list[Subscription],
    items: list[BillingItem],
    *,
    now: datetime,
) -> InvoicePreview:
    entity = customer.billing_entity
    today = _local_today(customer, now)
    net_payment_term = calculation.effective_net_payment_term(
        customer.net_payment_term, entity.net_payment_term
    )
    prefix = entity.document_number_prefix or customer.organization.document_number_prefix
    invoice = Invoice(
        organization_id=customer.organization_id,
        billing_entity=entity,
        customer=customer,
        invoice_type=Invoice.InvoiceType.SUBSCRIPTION,
        status=Invoice.Status.DRAFT,
        number=calculation.draft_number(prefix),
        issuing_date=today,
        payment_due_date=calculation.payment_due_date(today, net_payment_term),
        net_payment_term=net_payment_term,
        currency=_currency(customer, items),
    )
    _apply_totals(invoice, computed)
    fees = []
    for draft in drafts:
        _fill_fee(draft)
        draft.fee.preview_applied_taxes = [  # type: ignore[attr-defined]
            FeeAppliedTax(
                organization_id=customer.organization_id,
                fee=draft.fee,
                tax_name=applied.tax.name,
                tax_code=applied.tax.code,
                tax_rate=applied.tax.rate,
                tax_description=applied.tax.description,
                amount_cents=applied.amount_cents,
                precise_amount_cents=applied.precise_amount_cents,
            )
            for applied in draft.line.applied_taxes
        ]
        fees.append(draft.fee)
    applied_taxes = [
        InvoiceAppliedTax(
            organization_id=customer.organization_id,
            invoice=invoice,
            tax_name=applied.tax.name,
            tax_code=applied.tax.code,
            tax_rate=applied.tax.rate,
            tax_description=applied.tax.description,
            amount_cents=applied.amount_cents,
            fees_amount_cents=applied.fees_amount_cents,
        )
        for applied in computed.totals.applied_taxes
    ]
    credits = [
        Credit(
            organization_id=customer.organization_id,
            invoice=invoice,
            amount_cents=credit.amount_cents,
            amount_currency=invoice.currency,
            before_taxes=True,
        )
        for credit in computed.coupon_credits
        if credit.amount_cents > 0
    ]
    return InvoicePreview(
        invoice=invoice,
        fees=fees,
        applied_taxes=applied_taxes,
        credits=credits,
        subscriptions=subscriptions,
        items=items,
    )


# --------------------------------------------------------------------------------------------
# Helpers shared with the billing run


def group_for_invoices(items: Sequence[BillingItem]) -> list[list[BillingItem]]:
    """Consolidation (spec §9.6): one invoice for the subscriptions billed together, one each
    for those with `consolidate_invoice: false`."""
    together: list[BillingItem] = []
    alone: dict[UUID, list[BillingItem]] = defaultdict(list)
    for item in items:
        if item.subscription.consolidate_invoice:
            together.append(item)
        else:
            alone[item.subscription.pk].append(item)
    groups = [together] if together else []
    groups.extend(alone.values())
    return groups
