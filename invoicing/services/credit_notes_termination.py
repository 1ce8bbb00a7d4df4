"""The automatic credit note of a pay-in-advance plan terminated or upgraded before the end of
the period it already paid for: the unused days of its last subscription fee.

remaining days = E - T (the days after the termination day T up to the period's last day E;
an upgrade also credits T itself); days before the end of a free trial are not credited;
unused = plan amount / days of the full period x remaining days, capped at the fee, less what
credit notes already took on that fee. The split follows `on_termination_credit_note`:
`credit` credits it all, `refund` refunds the paid share of the unused part and credits the
rest, `offset` refunds the paid share and offsets the rest, `skip` issues nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from zoneinfo import ZoneInfo

from django.db.models import Sum

from billing.actors import Actor
from billing.money import round_cents
from billing.periods import full_period, local_date, single_day_price
from customers.models import Subscription
from customers.services.subscription_reads import subscription_cycle
from invoicing.models import CreditNote, CreditNoteItem, Fee, Invoice
from invoicing.services.credit_notes import ItemInput, _amounts, credit_note_create

OnTermination = Subscription.OnTerminationCreditNote
PRECISION = Decimal("0.00001")  # items keep five decimals (Lago's DB_PRECISION_SCALE)


def _last_subscription_fee(subscription: Subscription) -> Fee | None:
    return (
        Fee.objects.filter(
            subscription_id=subscription.pk,
            fee_type=Fee.FeeType.SUBSCRIPTION,
            invoice__isnull=False,
            deleted_at__isnull=True,
        )
        .exclude(invoice__status__in=[Invoice.Status.DELETED, Invoice.Status.CLOSED])
        .select_related("invoice__customer")
        .prefetch_related("applied_taxes")
        .order_by("-created_at", "-id")
        .first()
    )


def _days(
    subscription: Subscription, *, upgrade: bool, trial_end_at: datetime | None
) -> tuple[int, int, int]:
    """(remaining days, used days, days of the full period containing the termination)."""
    tz = ZoneInfo(subscription.customer.applicable_timezone)
    terminated_on = local_date(subscription.terminated_at, tz)
    period = full_period(subscription_cycle(subscription), terminated_on)
    billed_from = terminated_on - timedelta(days=1) if upgrade else terminated_on
    trial_end: date | None = local_date(trial_end_at, tz) if trial_end_at else None
    if trial_end is not None and trial_end >= billed_from:
        billed_from = period.last if trial_end > period.last else trial_end - timedelta(days=1)
    remaining = max((period.last - billed_from).days, 0)
    used_from = period.first
    if subscription.started_at is not None:
        used_from = max(used_from, local_date(subscription.started_at, tz))
    if trial_end is not None and trial_end > used_from:
        used_from = trial_end
    used = max((min(terminated_on, period.last) - used_from).days + 1, 0)
    return remaining, used, period.days


def _total_with_taxes(fee: Fee, amount: Decimal) -> int:
    amounts = _amounts([(fee, amount)], fee.invoice)
    return round_cents(amounts.precise_total)


def credit_note_for_termination(
    *,
    subscription: Subscription,
    upgrade: bool,
    trial_end_at: datetime | None,
    actor: Actor,
    now: datetime,
) -> CreditNote | None:
    """The credit note of the unused days of a terminated pay-in-advance subscription (None
    when nothing is left to credit, when `skip`, or for a plan billed in arrears). Running it
    twice credits nothing more: what credit notes already took on the fee is deducted."""
    on_termination = subscription.on_termination_credit_note or OnTermination.CREDIT
    plan = subscription.plan
    if (
        on_termination == OnTermination.SKIP
        or not plan.pay_in_advance
        or subscription.terminated_at is None
    ):
        return None
    fee = _last_subscription_fee(subscription)
    if fee is None or fee.amount_cents <= 0:
        return None
    if fee.invoice.status not in (Invoice.Status.FINALIZED, Invoice.Status.DRAFT):
        return None
    # on a draft (grace period) the note is a draft too: it follows the draft's refreshes
    # (`credit_notes_drafts`) and takes effect when the invoice is finalized (Lago)
    remaining, used, period_days = _days(subscription, upgrade=upgrade, trial_end_at=trial_end_at)
    plan_amount = (fee.amount_details or {}).get("plan_amount_cents") or plan.amount_cents
    day_price = single_day_price(plan_amount, period_days)
    unused = min(day_price * remaining, Decimal(fee.amount_cents))
    credited = CreditNoteItem.objects.filter(fee=fee).aggregate(total=Sum("precise_amount_cents"))
    unused -= credited["total"] or 0
    unused = unused.quantize(PRECISION, rounding=ROUND_DOWN)
    if unused <= 0:
        return None
    total = _total_with_taxes(fee, unused)
    refund = 0
    if on_termination in (OnTermination.REFUND, OnTermination.OFFSET):
        refund = _refund(fee, day_price * used, total)
    credit, offset = total - refund, 0
    if on_termination == OnTermination.OFFSET:
        credit, offset = 0, total - refund
    if credit + refund + offset <= 0:
        return None
    return credit_note_create(
        invoice=fee.invoice,
        actor=actor,
        now=now,
        items=[ItemInput(str(fee.pk), unused)],
        reason=CreditNote.Reason.ORDER_CHANGE if upgrade else CreditNote.Reason.ORDER_CANCELLATION,
        credit_amount_cents=credit,
        refund_amount_cents=refund,
        offset_amount_cents=offset,
        automatic=True,
    )


def _refund(fee: Fee, used_amount: Decimal, total: int) -> int:
    """The paid share of the fee (pro rata of the invoice's payments) less what was used,
    within the credit note's total."""
    invoice = fee.invoice
    if invoice.sub_total_including_taxes_amount_cents <= 0:
        return 0
    fee_amount = (
        fee.precise_amount_cents - fee.precise_coupons_amount_cents + fee.taxes_precise_amount_cents
    )
    paid_share = (
        fee_amount
        / invoice.sub_total_including_taxes_amount_cents
        * (invoice.total_paid_amount_cents)
    )
    used = (
        _total_with_taxes(fee, used_amount.quantize(PRECISION, rounding=ROUND_DOWN))
        if used_amount > 0
        else 0
    )
    potential = paid_share - used
    if potential <= 0:
        return 0
    return round_cents(min(potential, Decimal(total)))
