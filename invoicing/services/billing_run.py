"""The billing run (spec §10.3, §27): which customers have something to bill today in their own
timezone, and one invoice for everything a customer owes on a billing date (§9.6).

What a billing date D bills (the same for the hourly job and `manage.py bill --date D`):
- periodic invoices of the subscriptions whose billing day is D (periods ending on D - 1 in
  arrears, periods starting on D in advance, usage of the period that ended; every month for
  the fixed charges of yearly and semiannual plans with `bill_fixed_charges_monthly`), for every
  subscription active at the start of D, whenever its row was created;
- as a safety net for the hooks of `customers.hooks` (a worker down at the wrong time): the
  starting invoice of pay-in-advance subscriptions started on D, the closing invoice of
  subscriptions terminated on D (a downgrade's predecessor ends on the last second of D - 1 and
  closes on D) and the trial-end invoice of trials ended on D.
Everything already billed is skipped (`InvoiceSubscription` rows), so a run repeated or run twice
at once bills nothing twice; the unique constraints are the last line (`IntegrityError` ->
the existing invoice is returned).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, Q

from billing.actors import Actor
from billing.models import BillingEntity, Organization
from billing.periods import local_date, start_of_day
from billing.queries import ReusableQuery
from customers.locks import lock_customer_for_billing
from customers.models import Customer, Subscription
from invoicing.models import CreditNote, Invoice, InvoiceSubscription, InvoicingReason
from invoicing.services.generation import (
    BillingContext,
    BillingItem,
    billed_keys,
    group_for_invoices,
    has_advance_fixed_charges,
    invoice_create_for_items,
    is_periodic_billing_day,
    item_key,
    periodic_item,
    starting_item,
    subscriptions_for_billing,
    termination_item,
    trial_end_item,
)
from invoicing.services.generation.catalog import Catalog
from metering.usage import UsageAnswers, read_usage_ahead, window_of
from plans.models import FixedCharge
from wallets.models import Wallet

logger = logging.getLogger(__name__)

Reason = InvoicingReason
Status = Subscription.Status
ONE_SECOND = timedelta(seconds=1)
# A termination is closed on the local day after its last second; look back far enough for
# every timezone (UTC-12..UTC+14) and for the hourly job's retry of yesterday.
_LOOKBACK = timedelta(days=3)

Key = tuple[UUID, str, datetime | None]


@dataclass(frozen=True)
class CustomerBilling:
    """What `bill_customer` did: invoices created now, and those found already billed."""

    customer_id: UUID
    billing_date: date
    invoices: tuple[Invoice, ...]
    already_billed: tuple[Invoice, ...]


# --------------------------------------------------------------------------------------------
# What is due on a day


def _zone(subscription: Subscription) -> ZoneInfo:
    return ZoneInfo(subscription.customer.applicable_timezone)


def due_keys(
    subscription: Subscription,
    day: date,
    *,
    now: datetime,
    trial_end_at: datetime | None,
    has_advance_fixed: bool,
    has_successor: bool,
    reasons: frozenset[str] | None = None,
) -> list[Key]:
    """The invoices a subscription owes on local day `day` (see the module docstring)."""
    tz = _zone(subscription)
    plan = subscription.plan
    started_at = subscription.started_at
    if started_at is None:
        return []
    keys: list[Key] = []
    start_day = local_date(started_at, tz)
    day_start = start_of_day(day, tz)
    terminated_at = subscription.terminated_at

    def wanted(reason: str) -> bool:
        return reasons is None or reason in reasons

    if (
        wanted(Reason.SUBSCRIPTION_PERIODIC)
        and start_day < day
        and (terminated_at is None or terminated_at >= day_start)
        and not (subscription.status == Status.ACTIVE and subscription.downgrade_plan_date == day)
        and is_periodic_billing_day(subscription, day)
    ):
        keys.append((subscription.pk, Reason.SUBSCRIPTION_PERIODIC, day_start))
    in_trial_at_start = trial_end_at is not None and trial_end_at > started_at
    if (
        wanted(Reason.SUBSCRIPTION_STARTING)
        and start_day == day
        and ((plan.pay_in_advance and not in_trial_at_start) or has_advance_fixed)
    ):
        keys.append((subscription.pk, Reason.SUBSCRIPTION_STARTING, None))
    if (
        wanted(Reason.SUBSCRIPTION_TERMINATING)
        and terminated_at is not None
        and terminated_at <= now
        and local_date(terminated_at + ONE_SECOND, tz) == day
        and (
            subscription.on_termination_invoice == Subscription.OnTerminationInvoice.GENERATE
            or has_successor
        )
    ):
        keys.append((subscription.pk, Reason.SUBSCRIPTION_TERMINATING, None))
    if (
        wanted(Reason.SUBSCRIPTION_TRIAL_ENDED)
        and plan.pay_in_advance
        and in_trial_at_start
        and trial_end_at is not None
        and trial_end_at <= now
        and local_date(trial_end_at, tz) == day
        and (terminated_at is None or terminated_at > trial_end_at)
    ):
        keys.append((subscription.pk, Reason.SUBSCRIPTION_TRIAL_ENDED, None))
    return keys


def _candidates(since: datetime) -> Q:
    return Q(status=Status.ACTIVE) | Q(status=Status.TERMINATED, terminated_at__gte=since)


def _annotated(queryset):  # -> QuerySet[Subscription]
    return queryset.annotate(
        has_advance_fixed=Exists(
            FixedCharge.objects.filter(
                plan_id=OuterRef("plan_id"), pay_in_advance=True, deleted_at__isnull=True
            )
        ),
        has_successor=Exists(
            Subscription.objects.filter(previous_subscription_id=OuterRef("pk")).exclude(
                status__in=(Status.PENDING, Status.CANCELED)
            )
        ),
    )


def customers_due(
    *,
    now: datetime,
    billing_date: date | None = None,
    organization: Organization | None = None,
    customer_ids: Collection[UUID] | None = None,
) -> list[tuple[UUID, date]]:
    """(customer id, billing date) pairs with something left to bill (spec §27 hourly :10).

    Without `billing_date`: each customer's local today (and yesterday's closing invoices,
    should their hook have failed). With it: that date for every customer (`bill --date`).
    """
    lowest = (
        start_of_day(billing_date, ZoneInfo("UTC")) - _LOOKBACK if billing_date else now - _LOOKBACK
    )
    rows = Subscription.objects.filter(_candidates(lowest), started_at__isnull=False)
    if organization is not None:
        rows = rows.filter(organization=organization)
    if customer_ids is not None:
        rows = rows.filter(customer_id__in=list(customer_ids))
    rows = _annotated(
        rows.select_related("plan", "customer__billing_entity", "customer__organization")
    ).order_by("customer_id", "pk")
    subscriptions = list(rows)
    context_by_customer: dict[UUID, BillingContext] = {}
    wanted: dict[Key, tuple[UUID, date]] = {}
    for subscription in subscriptions:
        context = context_by_customer.get(subscription.customer_id)
        if context is None:
            context = BillingContext(customer=subscription.customer)
            context_by_customer[subscription.customer_id] = context
        trial_end_at = context.trial_end(subscription) if subscription.plan.trial_period else None
        days = [billing_date]
        if billing_date is None:
            today = local_date(now, _zone(subscription))
            days = [today, today - timedelta(days=1)]
        for index, day in enumerate(days):
            assert day is not None
            reasons = None if index == 0 else frozenset({Reason.SUBSCRIPTION_TERMINATING})
            for key in due_keys(
                subscription,
                day,
                now=now,
                trial_end_at=trial_end_at,
                has_advance_fixed=subscription.has_advance_fixed,
                has_successor=subscription.has_successor,
                reasons=reasons,
            ):
                wanted.setdefault(key, (subscription.customer_id, day))
    if not wanted:
        return []
    billed = billed_keys({key[0] for key in wanted})
    due = {target for key, target in wanted.items() if key not in billed}
    return sorted(due, key=lambda pair: (pair[1], str(pair[0])))


# --------------------------------------------------------------------------------------------
# Billing one customer


def _item(key: Key, subscription: Subscription, day: date, context: BillingContext):
    reason = key[1]
    if reason == Reason.SUBSCRIPTION_PERIODIC:
        return periodic_item(subscription, day, context)
    if reason == Reason.SUBSCRIPTION_STARTING:
        return starting_item(subscription, context)
    if reason == Reason.SUBSCRIPTION_TERMINATING:
        return termination_item(subscription, context)
    item = trial_end_item(subscription, context)
    if item is not None and context.fee_window_billed(subscription, item.period):
        return None  # billed by the periodic invoice of the trial-end day
    return item


def _existing_invoices(keys: list[Key]) -> list[Invoice]:
    if not keys:
        return []
    condition = Q()
    for subscription_id, reason, timestamp in keys:
        part = Q(subscription_id=subscription_id, invoicing_reason=reason)
        if timestamp is not None:
            part &= Q(timestamp=timestamp)
        condition |= part
    invoice_ids = InvoiceSubscription.objects.filter(condition).values("invoice_id")
    return list(Invoice.objects.filter(pk__in=invoice_ids).order_by("created_at", "pk"))


def _invoices_of_periods(items: list[BillingItem]) -> list[Invoice]:
    """The invoices already holding these items' periods (the unique constraints' rows)."""
    if not items:
        return []
    condition = Q()
    for item in items:
        condition |= Q(
            subscription_id=item.subscription.pk,
            invoicing_reason=item.reason,
            from_datetime=item.period.from_datetime,
            to_datetime=item.period.to_datetime,
        )
        if item.reason in (Reason.SUBSCRIPTION_STARTING, Reason.SUBSCRIPTION_TERMINATING):
            condition |= Q(subscription_id=item.subscription.pk, invoicing_reason=item.reason)
    invoice_ids = InvoiceSubscription.objects.filter(condition).values("invoice_id")
    return list(Invoice.objects.filter(pk__in=invoice_ids).order_by("created_at", "pk"))


def _with_credit_flags(rows):  # -> QuerySet[Subscription]
    """Each row says whether its customer has active wallets and credit notes with credit left,
    and whether the subscription has progressive billing invoices: read with the
    subscriptions, after the customer lock (what was created under the lock before is seen);
    the invoices of the customers without any skip their wallet and credit-note reads, those of
    the subscriptions without progressive billing skip its deduction read."""
    wallets = Wallet.objects.filter(
        customer_id=OuterRef("customer_id"), status=Wallet.Status.ACTIVE
    )
    notes = CreditNote.objects.filter(
        customer_id=OuterRef("customer_id"),
        status=CreditNote.Status.FINALIZED,
        credit_status=CreditNote.CreditStatus.AVAILABLE,
        balance_amount_cents__gt=0,
    )
    progressive = InvoiceSubscription.objects.filter(
        subscription_id=OuterRef("pk"), invoicing_reason=Reason.PROGRESSIVE_BILLING
    )
    return rows.annotate(
        customer_has_active_wallets=Exists(wallets),
        customer_has_available_credit_notes=Exists(notes),
        has_progressive_billing_invoices=Exists(progressive),
    )


def _candidate_rows(customer_id: UUID, lowest: datetime):  # -> QuerySet[Subscription]
    return _with_credit_flags(
        Subscription.objects.filter(
            _candidates(lowest), customer_id=customer_id, started_at__isnull=False
        ).order_by("started_at", "pk")
    )


# compiled once per process: a chunk reads one customer's subscriptions after the other
_CANDIDATE_ROWS = ReusableQuery(_candidate_rows, customer_id=UUID, lowest=datetime)


def _subscriptions(customer: Customer, lowest: datetime, catalog: Catalog | None):
    if catalog is None:
        subscriptions = list(subscriptions_for_billing(_candidate_rows(customer.pk, lowest)))
    else:  # the plans come from the run's catalog: one statement (a plan change's previous
        # subscription is read when its items need it, few subscriptions have one)
        subscriptions = _CANDIDATE_ROWS(customer_id=customer.pk, lowest=lowest)
        catalog.attach_plans(subscriptions)
    for subscription in subscriptions:
        subscription.customer = customer
    if subscriptions:
        customer.has_active_wallets = subscriptions[0].customer_has_active_wallets
        customer.has_available_credit_notes = subscriptions[0].customer_has_available_credit_notes
    return subscriptions


@transaction.atomic
def bill_customer(
    *,
    customer: Customer,
    billing_date: date,
    actor: Actor,
    now: datetime,
    catalog: Catalog | None = None,
    usage_answers: UsageAnswers | None = None,
) -> CustomerBilling:
    """Bills everything a customer owes on `billing_date` (spec §9.6): one invoice for the
    subscriptions that consolidate, one for each that does not. Idempotent: what is already
    billed is skipped and returned in `already_billed`. `catalog`: the plans and charges a
    billing run shares between its customers (`bill_customers`); `usage_answers`: the usage
    it read ahead for them (a query not found there is read now)."""
    customer = lock_customer_for_billing(customer.pk, related=catalog is None)
    if catalog is not None:
        catalog.attach_issuers(customer)
    tz = ZoneInfo(customer.applicable_timezone)
    if billing_date > local_date(now, tz):
        return CustomerBilling(customer.pk, billing_date, (), ())  # a day yet to come
    lowest = start_of_day(billing_date, tz) - _LOOKBACK
    subscriptions = _subscriptions(customer, lowest, catalog)
    context = BillingContext(customer=customer, catalog=catalog, usage_answers=usage_answers)
    context.load(subscriptions)
    billed = context.billed_keys(subscriptions)
    items: list[BillingItem] = []
    found: list[Key] = []
    for subscription in subscriptions:
        trial_end_at = context.trial_end(subscription) if subscription.plan.trial_period else None
        for key in due_keys(
            subscription,
            billing_date,
            now=now,
            trial_end_at=trial_end_at,
            has_advance_fixed=has_advance_fixed_charges(subscription.plan),
            # a terminated subscription's successor (plan change) is read only for those
            has_successor=(
                subscription.terminated_at is not None
                and context.successor(subscription) is not None
            ),
        ):
            if key in billed:
                found.append(key)
                continue
            item = _item(key, subscription, billing_date, context)
            if item is not None and item_key(item) == key:
                items.append(item)
    created: list[Invoice] = []
    conflicts: list[BillingItem] = []
    for group in group_for_invoices(items):
        try:
            with transaction.atomic():
                invoice = invoice_create_for_items(
                    context=context, items=group, billing_date=billing_date, actor=actor, now=now
                )
        except IntegrityError:
            # spec §29: the same periods were billed meanwhile; that invoice is the answer
            logger.info("customer %s already billed on %s", customer.pk, billing_date)
            conflicts.extend(group)
            continue
        created.append(invoice)
    existing = {invoice.pk: invoice for invoice in _existing_invoices(found)}
    existing.update((invoice.pk, invoice) for invoice in _invoices_of_periods(conflicts))
    return CustomerBilling(
        customer_id=customer.pk,
        billing_date=billing_date,
        invoices=tuple(created),
        already_billed=tuple(existing.values()),
    )


def _usage_ahead(
    pairs: Sequence[tuple[UUID, date]], *, catalog: Catalog, now: datetime
) -> UsageAnswers:
    """The usage of the chunk's periodic invoices, read before the customers are locked in
    one statement per aggregation shape (`read_usage_ahead`) instead of one per subscription
    and charge. A guess made without the customer locks: `bill_customer` takes an answer only
    for the very same query (same subscription, window, filters, groups) and reads any other
    itself. Left out (read by `bill_customer`): trials and plan changes (their windows depend
    on the chain of subscriptions), recurring metrics (carried over from the chain's start),
    pay-in-advance charges and the other invoicing reasons. An event stored between this read
    and the customer's turn in the chunk is missed as it would be by a customer billed
    earlier in the run."""
    # by the text of the id: a chunk's ids may come as text (a task's arguments)
    customers = {
        str(customer.pk): customer
        for customer in Customer.objects.filter(pk__in=[pk for pk, _ in pairs])
    }
    if not customers:
        return UsageAnswers()
    for customer in customers.values():
        catalog.attach_issuers(customer)
    lowest = min(
        start_of_day(day, ZoneInfo(customers[str(pk)].applicable_timezone))
        for pk, day in pairs
        if str(pk) in customers
    )
    subscriptions = list(
        Subscription.objects.filter(
            _candidates(lowest - _LOOKBACK),
            customer_id__in=[customer.pk for customer in customers.values()],
            started_at__isnull=False,
            previous_subscription__isnull=True,
        ).order_by("customer_id", "started_at", "pk")
    )
    catalog.attach_plans(subscriptions)
    subscriptions = [s for s in subscriptions if not s.plan.trial_period]
    if not subscriptions:
        return UsageAnswers()
    by_customer: dict[str, list[Subscription]] = {}
    for subscription in subscriptions:
        subscription.customer = customers[str(subscription.customer_id)]
        by_customer.setdefault(str(subscription.customer_id), []).append(subscription)
    # one history for the chunk (it is keyed by subscription): what is billed, the usage
    # windows of earlier invoices
    history = BillingContext(customer=subscriptions[0].customer, catalog=catalog)
    history.load(subscriptions)
    billed = history.billed_keys(subscriptions)
    reads = []
    periodic = frozenset({Reason.SUBSCRIPTION_PERIODIC})
    for customer_id, day in pairs:
        customer = customers.get(str(customer_id))
        if customer is None or day > local_date(now, ZoneInfo(customer.applicable_timezone)):
            continue
        for subscription in by_customer.get(str(customer_id), ()):
            keys = due_keys(
                subscription,
                day,
                now=now,
                trial_end_at=None,
                has_advance_fixed=has_advance_fixed_charges(subscription.plan),
                has_successor=False,
                reasons=periodic,
            )
            if not keys or keys[0] in billed:
                continue
            item = periodic_item(subscription, day, history)
            if item is None or not item.bills_charges:
                continue
            window = window_of(item.period)
            reads += [
                (subscription, charge, window, subscription.started_at)
                for charge in catalog.charges(subscription)
                if charge.invoiceable
                and not charge.pay_in_advance
                and not charge.billable_metric.recurring
            ]
    return read_usage_ahead(reads)


def _numbered_per_entity(customer_ids: Collection[UUID]) -> set[str]:
    """The customers whose billing entity numbers invoices per billing entity: their number
    comes from the entity's counter row, locked until commit, which every invoice of the entity
    takes (one statement for the chunk)."""
    per_entity = BillingEntity.DocumentNumbering.PER_BILLING_ENTITY
    return {
        str(pk)  # by the text of the id, as `_usage_ahead`
        for pk in Customer.objects.filter(
            pk__in=list(customer_ids), billing_entity__document_numbering=per_entity
        ).values_list("pk", flat=True)
    }


def bill_customers(
    *, due: Iterable[tuple[UUID, date]], actor: Actor, now: datetime
) -> list[CustomerBilling]:
    """Bills a chunk of `customers_due`'s pairs, each customer all-or-nothing (as
    `bill_customer`), with one catalog for the whole chunk. A customer deleted since the
    pairs were read is skipped. Idempotent as `bill_customer`: a chunk delivered twice bills
    nothing twice.

    One commit for the chunk: the customers are billed in one transaction, each in its own
    savepoint, so a commit (a disk flush) is paid once per chunk instead of once per customer,
    and the webhook drain is notified once. Foreign keys are checked at each statement during
    the chunk (not at commit), so a customer's bad row fails in its savepoint, not the chunk's
    commit. The customers whose billing entity numbers invoices per billing entity are billed
    in a transaction each, after the others: the entity's counter row stays locked until
    commit, and a chunk holding it would stop every other worker billing that entity.

    A customer whose billing fails (its savepoint rolled back) does not stop the others:
    it is logged, the rest of the chunk is billed and committed, then the first error is
    raised (the task fails, or is retried on a lost connection or a lock timeout, skipping
    what is billed; the next hourly run finds the customer still due)."""
    pairs = list(due)
    catalog = Catalog()
    usage_answers = _usage_ahead(pairs, catalog=catalog, now=now) if pairs else None
    found: dict[int, CustomerBilling] = {}
    errors: list[Exception] = []

    def bill(index: int, customer_id: UUID, billing_date: date) -> None:
        try:
            found[index] = bill_customer(
                customer=Customer(pk=customer_id),
                billing_date=billing_date,
                actor=actor,
                now=now,
                catalog=catalog,
                usage_answers=usage_answers,
            )
        except Customer.DoesNotExist:
            return  # deleted since the run read who is due: nothing to bill
        except Exception as error:  # one customer's failure: the others are still billed
            logger.exception("billing customer %s on %s failed", customer_id, billing_date)
            errors.append(error)

    apart = _numbered_per_entity({customer_id for customer_id, _ in pairs}) if pairs else set()
    shared = [(i, pair) for i, pair in enumerate(pairs) if str(pair[0]) not in apart]
    if shared:
        with transaction.atomic(), _constraints_immediate():
            for index, (customer_id, billing_date) in shared:
                bill(index, customer_id, billing_date)
    for index, (customer_id, billing_date) in enumerate(pairs):
        if str(customer_id) in apart:
            bill(index, customer_id, billing_date)
    if errors:
        raise errors[0]
    return [found[index] for index in sorted(found)]


@contextmanager
def _constraints_immediate() -> Iterator[None]:
    """Deferred constraints (Django's foreign keys) checked at each statement inside the block,
    deferred again after it (every deferrable constraint of the schema is initially deferred)."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    yield  # an exception leaves the mode as it is: the transaction is rolled back
    if not connection.needs_rollback:  # (a savepoint that could not be rolled back)
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def chunked(due: Sequence[tuple[UUID, date]], size: int) -> list[list[tuple[UUID, date]]]:
    """`customers_due`'s pairs in chunks of at most `size` (the billing run's tasks)."""
    return [list(due[index : index + size]) for index in range(0, len(due), size)]
