"""What one invoice computation reads once: the subscriptions with their catalog, the
customer's billing history (spec §11, §9.4, §10.5) and what is already billed."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Min, Prefetch, QuerySet

from billing.periods import Period, PlanChange, local_date, trial_end
from customers.models import Customer, Subscription
from invoicing.models import Fee, Invoice, InvoiceSubscription, InvoicingReason
from invoicing.services.generation.catalog import Catalog
from metering.usage import UsageAnswers
from plans.models import Charge, FixedCharge, MinimumCommitment, Plan, Tax
from plans.selectors import billing_entity_taxes

Reason = InvoicingReason
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


# --------------------------------------------------------------------------------------------
# Context: what one invoice computation reads once

# Invoices whose fees no longer count for anything (never paid, or deleted drafts).
DEAD_INVOICE_STATUSES = (Invoice.Status.VOIDED, Invoice.Status.DELETED)


@dataclass(frozen=True)
class AdvanceFixedFee:
    """A fixed-charge fee billed in advance: its add-on, window and amount."""

    add_on_id: UUID
    from_datetime: datetime
    to_datetime: datetime
    amount_cents: int


@dataclass
class BillingContext:
    """Reads shared by the items of one customer's invoices (cached per computation).

    `exclude_invoice_id`: the invoice being recomputed, ignored in the history (a refreshed draft
    is not its own "earlier fee").
    """

    customer: Customer
    exclude_invoice_id: UUID | None = None
    # a billing run's catalog, shared by its customers (None: read for this computation)
    catalog: Catalog | None = None
    # usage a billing run read ahead for its chunk (`metering.usage.read_usage_ahead`)
    usage_answers: UsageAnswers | None = None
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
    _advance_fixed_fees: dict[UUID, list[AdvanceFixedFee]] = field(default_factory=dict)

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

    def advance_fixed_fees(self, subscription: Subscription) -> list[AdvanceFixedFee]:
        """The in-advance fixed-charge fees billed to a subscription on live invoices, newest
        first (what an upgrade deducts, spec §8)."""
        if subscription._state.adding:
            return []
        if subscription.pk not in self._advance_fixed_fees:
            rows = (
                Fee.objects.filter(
                    subscription_id=subscription.pk,
                    fee_type=Fee.FeeType.FIXED_CHARGE,
                    pay_in_advance=True,
                    deleted_at__isnull=True,
                )
                .exclude(invoice__status__in=DEAD_INVOICE_STATUSES)
                .order_by("-created_at", "-id")
                .values_list("fixed_charge__add_on_id", "amount_cents", "properties")
            )
            fees = []
            for add_on_id, amount_cents, properties in rows:
                from_datetime = _parse((properties or {}).get("from_datetime"))
                to_datetime = _parse((properties or {}).get("to_datetime"))
                if from_datetime is not None and to_datetime is not None:
                    fees.append(
                        AdvanceFixedFee(add_on_id, from_datetime, to_datetime, amount_cents)
                    )
            self._advance_fixed_fees[subscription.pk] = fees
        return self._advance_fixed_fees[subscription.pk]

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
        if self.catalog is not None:
            return self.catalog.charges(subscription)
        if subscription.plan_id not in self._charges:
            from metering.usage import plan_charges

            self._charges[subscription.plan_id] = plan_charges(subscription)
        return self._charges[subscription.plan_id]

    def fallback_taxes(self) -> list[Tax]:
        """Levels 7-8 of spec §14.1: the customer's taxes, else the billing entity's."""
        if self._fallback_taxes is None:
            # an inline (unsaved) preview customer has no taxes of its own
            taxes = [] if self.customer._state.adding else list(self.customer.taxes.all())
            if not taxes and self.catalog is not None:
                taxes = self.catalog.entity_taxes(self.customer.billing_entity)
            elif not taxes:
                taxes = billing_entity_taxes(billing_entity=self.customer.billing_entity)
            self._fallback_taxes = taxes
        return self._fallback_taxes


def billed_keys(subscription_ids: Iterable[UUID]) -> set[Key]:
    """What is already billed: (subscription, reason, None) for the reasons billed once per
    subscription, (subscription, periodic, billing instant) for periodic invoices."""
    rows = InvoiceSubscription.objects.filter(
        subscription_id__in=list(subscription_ids)
    ).values_list("subscription_id", "invoicing_reason", "timestamp")
    return {_key(subscription_id, reason, timestamp) for subscription_id, reason, timestamp in rows}


def _local_today(customer: Customer, now: datetime) -> date:
    return local_date(now, ZoneInfo(customer.applicable_timezone))
