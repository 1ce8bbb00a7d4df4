"""Invoice math as pure functions: coupons, taxes, totals, true-ups, dates, numbers.

No ORM here: stdlib, `billing.money` and the vocabularies (plain `TextChoices` that the models
reuse as field choices). The invoicing services load fees, applied coupons and taxes into the
dataclasses below, call these functions in the order of spec §12.3 and persist what comes back:

    apply_progressive_billing_credit(fees, ...)   # §12.3 step 6 (before coupons)
    credits = apply_coupons(fees, coupons, currency=..., progressive_billing_credit_cents=...)
    taxes = apply_taxes(fees, sub_total_excluding_taxes_amount_cents=...)
    totals = invoice_totals(fees, credits, taxes, ...)

or `compute_invoice(...)`, which does the three last steps at once.

Money is `int` cents or `Decimal`, never float. Every rounding of money goes through
`billing.money.round_cents` (half away from zero). Where several rounded figures describe one
amount, the invoice-level figure is the authority and absorbs the remainder (spec §12.4):
- coupons: each credit is a whole number of cents; its distribution on fees keeps 5 decimals
  (`precise_coupons_amount_cents`, Lago's numeric(30,5)), so the fees' net amounts may differ
  from the invoice `sub_total_excluding_taxes_amount_cents` by a few 1/100,000 of a cent - the
  invoice sub-total is the one that counts;
- taxes: each fee applied tax, each fee `taxes_amount_cents` and each invoice applied tax is
  rounded on its own; the invoice `taxes_amount_cents` is rounded once from the unrounded sum and
  is the figure the invoice totals use, so it absorbs the per-tax and per-fee remainders.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_FLOOR, Decimal, localcontext
from enum import StrEnum
from typing import ParamSpec, TypeVar

from django.db.models.enums import TextChoices
from django.utils.translation import gettext_lazy as _

from billing.money import round_cents
from billing.periods import IssuingDateAdjustment, IssuingDateAnchor
from customers.choices import ZeroAmountInvoice
from plans.choices import CouponFrequency, CouponType

ZERO = Decimal(0)
HUNDRED = Decimal(100)
# spec §28: fee coupon / credit-note shares are stored as numeric(30,5) and the next coupon reads
# the stored value, so every share is kept at 5 decimals right away.
SHARE_DECIMALS = 5
# invoice and fee `taxes_rate` are numeric(_, 5) (spec §14.2)
RATE_DECIMALS = 5
# Wide enough that products of large cent amounts and 5-decimal shares keep every digit.
_PRECISION = 60

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _precise(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run `fn` in a wide decimal context so only the explicit roundings lose digits."""

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with localcontext(prec=_PRECISION):
            return fn(*args, **kwargs)

    return wrapper


def _round_to_decimals(value: Decimal, decimals: int) -> Decimal:
    """Half away from zero to `decimals` places, through the one money rounding helper."""
    return Decimal(round_cents(value.scaleb(decimals))).scaleb(-decimals)


def _whole_cents_within(value: Decimal) -> int:
    """Largest whole number of cents not above `value` (>= 0).

    A coupon capped at a limited base such as 2,999.5 (fees already partly discounted by an earlier
    coupon) must not take more than the base, or its shares would overflow the fees; Lago's integer
    column truncates the same way. This is a cap, not a rounding of an amount owed.
    """
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


# --------------------------------------------------------------------------------------------
# Vocabulary


# `Fee.FeeType` and `Invoice.PaymentStatus` are these; coupon, issuing-date and zero-amount
# vocabularies come from the apps that store them (`plans.choices`, `billing.periods`,
# `customers.choices`).


class FeeType(TextChoices):
    CHARGE = "charge", _("Charge")
    ADD_ON = "add_on", _("Add-on")
    SUBSCRIPTION = "subscription", _("Subscription")
    CREDIT = "credit", _("Credit")
    COMMITMENT = "commitment", _("Commitment")
    FIXED_CHARGE = "fixed_charge", _("Fixed charge")


class PaymentStatus(TextChoices):
    """Payment status of an invoice."""

    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class ZeroAmountDecision(StrEnum):
    FINALIZE = "finalize"
    CLOSE = "close"  # internal `closed` status: not visible, no number (spec §12.6)


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class TaxRate:
    """A tax that applies to a fee (which ones: spec §14.1, resolved by the caller)."""

    code: str
    name: str
    rate: Decimal  # percent: 20 or 5.5
    description: str = ""


@dataclass(frozen=True)
class FeeAppliedTax:
    """One tax on one fee (spec §14.2): rounded per fee and tax."""

    tax: TaxRate
    amount_cents: int
    precise_amount_cents: Decimal


@dataclass
class FeeLine:
    """One fee of the invoice: inputs, then the outputs the functions below fill in.

    `plan_code` is the code of the subscription's plan, or of its parent when the plan is an
    override (spec §15.3: a plan-limited coupon covers the plan and its overridden children).
    `charge_metric_code` is the billable metric code of a charge fee (true-up fees included).
    `precise_coupons_amount_cents` may arrive non-zero: the progressive billing credit is part of
    the share (spec §12.3 step 6, §14.2).
    """

    key: str
    fee_type: str
    amount_cents: int
    precise_amount_cents: Decimal | None = None  # defaults to amount_cents
    taxes: tuple[TaxRate, ...] = ()
    charge_metric_code: str | None = None
    plan_code: str | None = None
    # outputs
    precise_coupons_amount_cents: Decimal = ZERO
    taxes_amount_cents: int = 0
    taxes_precise_amount_cents: Decimal = ZERO
    taxes_rate: Decimal = ZERO
    applied_taxes: list[FeeAppliedTax] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.precise_amount_cents is None:
            self.precise_amount_cents = Decimal(self.amount_cents)
        self.taxes = tuple(self.taxes)

    @property
    def sub_total_excluding_taxes_amount_cents(self) -> Decimal:
        """N_f of spec §14.2: amount after coupons and progressive credit (precise)."""
        return self.amount_cents - self.precise_coupons_amount_cents

    @property
    def sub_total_excluding_taxes_precise_amount_cents(self) -> Decimal:
        assert self.precise_amount_cents is not None
        return self.precise_amount_cents - self.precise_coupons_amount_cents

    @property
    def total_amount_cents(self) -> int:
        """Fee `total_amount_cents` (spec §13): amount + taxes."""
        return self.amount_cents + self.taxes_amount_cents


@dataclass(frozen=True)
class CouponToApply:
    """An active applied coupon of the customer, as it stands before this invoice (spec §15.2).

    `remaining_cents` (fixed once coupons) = amount_cents - the coupon's active credits; None means
    untouched (= amount_cents). `frequency_duration_remaining` is required for recurring coupons.
    `already_applied` marks a coupon that already has a credit on this invoice (spec §15.3 step 1).
    """

    key: str
    coupon_type: str
    frequency: str
    applied_at: datetime
    amount_cents: int | None = None
    currency: str | None = None
    percentage_rate: Decimal | None = None
    remaining_cents: int | None = None
    frequency_duration_remaining: int | None = None
    limited_plan_codes: frozenset[str] = frozenset()
    limited_metric_codes: frozenset[str] = frozenset()
    already_applied: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "limited_plan_codes", frozenset(self.limited_plan_codes))
        object.__setattr__(self, "limited_metric_codes", frozenset(self.limited_metric_codes))
        if self.coupon_type not in set(CouponType):
            raise ValueError(f"unknown coupon_type {self.coupon_type!r}")
        if self.frequency not in set(CouponFrequency):
            raise ValueError(f"unknown frequency {self.frequency!r}")
        if self.limited_plan_codes and self.limited_metric_codes:
            # spec §15.1: only_one_limitation_type_per_coupon_allowed
            raise ValueError("a coupon is limited to plans or to billable metrics, not both")
        if self.coupon_type == CouponType.FIXED_AMOUNT and (
            self.amount_cents is None or not self.currency
        ):
            raise ValueError("a fixed_amount coupon needs amount_cents and currency")
        if self.coupon_type == CouponType.PERCENTAGE and self.percentage_rate is None:
            raise ValueError("a percentage coupon needs percentage_rate")
        if (
            self.frequency == CouponFrequency.RECURRING
            and self.frequency_duration_remaining is None
        ):
            raise ValueError("a recurring coupon needs frequency_duration_remaining")

    @property
    def is_fixed(self) -> bool:
        return self.coupon_type == CouponType.FIXED_AMOUNT

    @property
    def remaining(self) -> int:
        """What a fixed once coupon can still give."""
        assert self.amount_cents is not None
        return self.amount_cents if self.remaining_cents is None else self.remaining_cents

    @property
    def application_group(self) -> int:
        """0 metric-limited, 1 plan-limited, 2 unlimited."""
        # spec §15.3: metric-limited coupons first, then plan-limited, then unlimited
        if self.limited_metric_codes:
            return 0
        if self.limited_plan_codes:
            return 1
        return 2

    def is_eligible(self, fee: FeeLine) -> bool:
        """Does this coupon cover the fee (spec §15.3 step 2)?"""
        if self.limited_metric_codes:
            return fee.fee_type == FeeType.CHARGE and (
                fee.charge_metric_code in self.limited_metric_codes
            )
        if self.limited_plan_codes:
            return fee.plan_code in self.limited_plan_codes
        return True


@dataclass(frozen=True)
class CouponCredit:
    """A coupon credit on the invoice (`before_taxes: true`, item type `coupon`) and what becomes of
    the applied coupon.

    `fee_shares` is this credit's part of each eligible fee (already added to the fees'
    `precise_coupons_amount_cents`). `remaining_cents` is what a fixed once coupon can still give
    after this invoice (None for other coupons); `frequency_duration_remaining` is the recurring
    coupon's new count (None for other coupons).
    """

    coupon_key: str
    amount_cents: int
    terminated: bool
    frequency_duration_remaining: int | None
    remaining_cents: int | None
    fee_shares: dict[str, Decimal]


@dataclass(frozen=True)
class InvoiceAppliedTax:
    """One tax summed over the invoice's fees (spec §14.2): rounded once per invoice and tax."""

    tax: TaxRate
    amount_cents: int
    precise_amount_cents: Decimal
    fees_amount_cents: int  # rounded sum of the taxed fees' net amounts
    precise_fees_amount_cents: Decimal


@dataclass(frozen=True)
class InvoiceTaxes:
    """Invoice-level tax figures (spec §14.2)."""

    applied_taxes: tuple[InvoiceAppliedTax, ...]
    taxes_amount_cents: int
    taxes_precise_amount_cents: Decimal
    taxes_rate: Decimal


@dataclass(frozen=True)
class Allocation:
    """What an after-tax allocator (credit notes, prepaid credits) consumed from the total.

    `details` is the allocator's own record (credit notes and amounts, wallet transactions...);
    prepaid allocators may split their amount into granted and purchased credits (spec §17.5).
    """

    amount_cents: int
    details: tuple[object, ...] = ()
    granted_amount_cents: int = 0
    purchased_amount_cents: int = 0


# Receives the invoice total still to pay (>= 0) and returns what it consumes (<= that total).
Allocator = Callable[[int], Allocation]


@dataclass(frozen=True)
class InvoiceTotals:
    """The invoice amounts of spec §12.1 / §12.3 steps 5-14."""

    fees_amount_cents: int
    progressive_billing_credit_amount_cents: int
    coupons_amount_cents: int
    sub_total_excluding_taxes_amount_cents: int
    taxes_amount_cents: int
    taxes_rate: Decimal
    applied_taxes: tuple[InvoiceAppliedTax, ...]
    sub_total_including_taxes_amount_cents: int
    credit_notes_amount_cents: int
    credit_note_details: tuple[object, ...]
    prepaid_credit_amount_cents: int
    prepaid_granted_credit_amount_cents: int
    prepaid_purchased_credit_amount_cents: int
    prepaid_credit_details: tuple[object, ...]
    total_amount_cents: int
    payment_status: str


# --------------------------------------------------------------------------------------------
# Progressive billing credit (spec §12.3 step 6, §21.3)


def cap_progressive_billing_credit(
    amount_to_credit_cents: int, matching_charge_fees_cents: int
) -> tuple[int, int]:
    """(credit on this invoice, excess to return by credit note on the progressive invoice).

    The credit is capped at the invoice's charge fees for the charges the progressive invoice
    billed (spec §21.3); a negative amount to credit credits nothing.
    """
    to_credit = max(amount_to_credit_cents, 0)
    credit = min(to_credit, max(matching_charge_fees_cents, 0))
    return credit, to_credit - credit


@_precise
def apply_progressive_billing_credit(
    fees: Sequence[FeeLine], amounts_by_fee_key: Mapping[str, int | Decimal]
) -> None:
    """Add what progressive invoices already billed to the matching fees' coupon share.

    Lago adds each progressive fee's amount to the fee of the same charge, filter and grouping,
    capped at the fee's amount (spec §12.3 step 6); the caller does the matching.
    """
    by_key = {fee.key: fee for fee in fees}
    for key, amount in amounts_by_fee_key.items():
        fee = by_key[key]
        share = fee.precise_coupons_amount_cents + Decimal(amount)
        fee.precise_coupons_amount_cents = min(
            _round_to_decimals(share, SHARE_DECIMALS), Decimal(fee.amount_cents)
        )


# --------------------------------------------------------------------------------------------
# Coupons (spec §15.3)


def coupon_application_order(coupons: Iterable[CouponToApply]) -> list[CouponToApply]:
    """Metric-limited, then plan-limited, then unlimited; each group by application date."""
    return sorted(coupons, key=lambda coupon: (coupon.application_group, coupon.applied_at))


def coupon_amount_cents(coupon: CouponToApply, base_amount_cents: Decimal | int) -> int:
    """The credit a coupon gives on a base (spec §15.3 step 4, `AppliedCoupons::AmountService`)."""
    base = Decimal(base_amount_cents)
    if base <= 0:
        return 0
    if coupon.coupon_type == CouponType.PERCENTAGE:
        assert coupon.percentage_rate is not None
        discounted = base * Decimal(coupon.percentage_rate) / HUNDRED
        if discounted >= base:  # 100 % or more: the whole base
            return _whole_cents_within(base)
        return round_cents(discounted)
    assert coupon.amount_cents is not None
    # recurring / forever: the coupon amount each period, any unused part of that period is lost;
    # once: what is left of it, the remainder carries over to later invoices.
    available = (
        coupon.remaining if coupon.frequency == CouponFrequency.ONCE else coupon.amount_cents
    )
    if available > base:
        return _whole_cents_within(base)
    return max(available, 0)


def _coupon_outcome(
    coupon: CouponToApply, credit_cents: int
) -> tuple[bool, int | None, int | None]:
    """(terminated, frequency_duration_remaining, remaining_cents) after a credit (steps 6-7)."""
    if coupon.frequency == CouponFrequency.FOREVER:
        return False, None, None
    if coupon.frequency == CouponFrequency.RECURRING:
        assert coupon.frequency_duration_remaining is not None
        left = max(coupon.frequency_duration_remaining - 1, 0)
        return left <= 0, left, None
    if coupon.coupon_type == CouponType.PERCENTAGE:  # once + percentage: used up at first use
        return True, None, None
    remaining = coupon.remaining
    return credit_cents >= remaining, None, max(remaining - credit_cents, 0)


@_precise
def apply_coupons(
    fees: Sequence[FeeLine],
    coupons: Iterable[CouponToApply],
    *,
    currency: str,
    progressive_billing_credit_cents: int = 0,
) -> list[CouponCredit]:
    """Apply the customer's coupons to the invoice's fees (spec §15.3); fees are updated in place.

    Only for subscription and progressive billing invoices: the caller skips one-off, credit and
    advance-charges invoices. Coupons of another currency (fixed amounts) and coupons already
    applied to this invoice are skipped; application stops once the sub-total reaches 0.
    """
    fees_amount_cents = sum(fee.amount_cents for fee in fees)
    credits: list[CouponCredit] = []
    if fees_amount_cents == 0:
        return credits
    sub_total = fees_amount_cents - progressive_billing_credit_cents
    for coupon in coupon_application_order(coupons):
        if sub_total <= 0:
            break
        if coupon.already_applied:
            continue
        if coupon.is_fixed and (coupon.currency or "").upper() != currency.upper():
            continue
        eligible = [fee for fee in fees if coupon.is_eligible(fee)]
        if not eligible:
            continue
        if coupon.limited_metric_codes or coupon.limited_plan_codes:
            base = sum((fee.sub_total_excluding_taxes_amount_cents for fee in eligible), ZERO)
        else:
            base = Decimal(sub_total)
        amount = coupon_amount_cents(coupon, base)
        shares = _distribute(amount, base, eligible)
        terminated, duration_left, remaining = _coupon_outcome(coupon, amount)
        credits.append(
            CouponCredit(
                coupon_key=coupon.key,
                amount_cents=amount,
                terminated=terminated,
                frequency_duration_remaining=duration_left,
                remaining_cents=remaining,
                fee_shares=shares,
            )
        )
        sub_total -= amount
    return credits


def _distribute(amount: int, base: Decimal, fees: Sequence[FeeLine]) -> dict[str, Decimal]:
    """share_f += amount * (amount_cents_f - share_f) / base, at 5 decimals, capped at the fee.

    The base is fixed before the first fee moves (spec §15.3 step 5).
    """
    shares: dict[str, Decimal] = {}
    for fee in fees:
        before = fee.precise_coupons_amount_cents
        after = before
        if base != 0:
            increment = Decimal(amount) * (fee.amount_cents - before) / base
            after = before + _round_to_decimals(increment, SHARE_DECIMALS)
        after = min(after, Decimal(fee.amount_cents))
        fee.precise_coupons_amount_cents = after
        shares[fee.key] = after - before
    return shares


# --------------------------------------------------------------------------------------------
# Taxes (spec §14.2, §12.4)


@_precise
def apply_fee_taxes(fee: FeeLine) -> None:
    """Fee taxes on its net amount N_f; each applied tax rounded, the fee total rounded once."""
    net = fee.sub_total_excluding_taxes_amount_cents
    applied: list[FeeAppliedTax] = []
    precise_total = ZERO
    rate_total = ZERO
    for tax in fee.taxes:
        precise = net * Decimal(tax.rate) / HUNDRED
        applied.append(FeeAppliedTax(tax, round_cents(precise), precise))
        precise_total += precise
        rate_total += Decimal(tax.rate)
    fee.applied_taxes = applied
    fee.taxes_precise_amount_cents = precise_total
    fee.taxes_amount_cents = round_cents(precise_total)
    fee.taxes_rate = rate_total


@_precise
def apply_taxes(
    fees: Sequence[FeeLine], *, sub_total_excluding_taxes_amount_cents: int | None = None
) -> InvoiceTaxes:
    """Fee taxes (in place) and the invoice's taxes (spec §14.2).

    `sub_total_excluding_taxes_amount_cents` is the invoice's (fees - progressive credit -
    coupons), which weights `taxes_rate`; without it the rounded sum of the fees' net amounts.
    """
    for fee in fees:
        apply_fee_taxes(fee)
    if sub_total_excluding_taxes_amount_cents is None:
        sub_total_excluding_taxes_amount_cents = round_cents(
            sum((fee.sub_total_excluding_taxes_amount_cents for fee in fees), ZERO)
        )
    # taxes in order of first appearance; a tax is identified by its code
    taxed: dict[str, tuple[TaxRate, list[FeeLine]]] = {}
    for fee in fees:
        for tax in fee.taxes:
            taxed.setdefault(tax.code, (tax, []))[1].append(fee)

    applied: list[InvoiceAppliedTax] = []
    precise_total = ZERO
    rate = ZERO
    for tax, taxed_fees in taxed.values():
        fees_net = sum((fee.sub_total_excluding_taxes_amount_cents for fee in taxed_fees), ZERO)
        precise = fees_net * Decimal(tax.rate) / HUNDRED
        applied.append(
            InvoiceAppliedTax(
                tax=tax,
                amount_cents=round_cents(precise),
                precise_amount_cents=precise,
                fees_amount_cents=round_cents(fees_net),
                precise_fees_amount_cents=fees_net,
            )
        )
        precise_total += precise
        if sub_total_excluding_taxes_amount_cents > 0:
            weight = fees_net / sub_total_excluding_taxes_amount_cents
        else:  # nothing left to pay: weight by the number of fees carrying the tax
            weight = Decimal(len(taxed_fees)) / len(fees)
        rate += Decimal(tax.rate) * weight
    return InvoiceTaxes(
        applied_taxes=tuple(applied),
        # rounded once on the unrounded sum: absorbs the per-tax remainders (spec §12.4)
        taxes_amount_cents=round_cents(precise_total),
        taxes_precise_amount_cents=precise_total,
        taxes_rate=_round_to_decimals(rate, RATE_DECIMALS),
    )


# --------------------------------------------------------------------------------------------
# Totals (spec §12.3 steps 5-14)


def _allocate(allocator: Allocator | None, remaining: int, what: str) -> Allocation:
    if allocator is None or remaining <= 0:
        return Allocation(0)
    allocation = allocator(remaining)
    if not 0 <= allocation.amount_cents <= remaining:
        raise ValueError(
            f"{what} allocator consumed {allocation.amount_cents} of a {remaining} total"
        )
    return allocation


def invoice_totals(
    fees: Sequence[FeeLine],
    coupon_credits: Sequence[CouponCredit],
    taxes: InvoiceTaxes,
    *,
    progressive_billing_credit_cents: int = 0,
    credit_note_allocator: Allocator | None = None,
    prepaid_credit_allocator: Allocator | None = None,
) -> InvoiceTotals:
    """The invoice amounts, in Lago's order (spec §12.3 steps 5-14).

    Credit notes, then prepaid credits, are applied after taxes through the allocators, each given
    the total still to pay; the total is never negative and a total of 0 is paid.
    """
    fees_amount_cents = sum(fee.amount_cents for fee in fees)  # step 5
    coupons_amount_cents = sum(credit.amount_cents for credit in coupon_credits)  # step 7
    # step 8; never below 0 (coupons and progressive credit are capped at what is left)
    sub_total_excl = max(
        fees_amount_cents - progressive_billing_credit_cents - coupons_amount_cents, 0
    )
    sub_total_incl = sub_total_excl + taxes.taxes_amount_cents  # steps 9-10
    credit_notes = _allocate(credit_note_allocator, sub_total_incl, "credit note")  # step 11
    after_credit_notes = sub_total_incl - credit_notes.amount_cents
    prepaid = _allocate(prepaid_credit_allocator, after_credit_notes, "prepaid credit")  # step 12
    total = max(after_credit_notes - prepaid.amount_cents, 0)  # step 13
    return InvoiceTotals(
        fees_amount_cents=fees_amount_cents,
        progressive_billing_credit_amount_cents=progressive_billing_credit_cents,
        coupons_amount_cents=coupons_amount_cents,
        sub_total_excluding_taxes_amount_cents=sub_total_excl,
        taxes_amount_cents=taxes.taxes_amount_cents,
        taxes_rate=taxes.taxes_rate,
        applied_taxes=taxes.applied_taxes,
        sub_total_including_taxes_amount_cents=sub_total_incl,
        credit_notes_amount_cents=credit_notes.amount_cents,
        credit_note_details=credit_notes.details,
        prepaid_credit_amount_cents=prepaid.amount_cents,
        prepaid_granted_credit_amount_cents=prepaid.granted_amount_cents,
        prepaid_purchased_credit_amount_cents=prepaid.purchased_amount_cents,
        prepaid_credit_details=prepaid.details,
        total_amount_cents=total,
        # step 14
        payment_status=PaymentStatus.SUCCEEDED if total == 0 else PaymentStatus.PENDING,
    )


@dataclass(frozen=True)
class ComputedInvoice:
    """Result of `compute_invoice`: the coupon credits, the invoice taxes and the totals."""

    coupon_credits: tuple[CouponCredit, ...]
    taxes: InvoiceTaxes
    totals: InvoiceTotals


def compute_invoice(
    fees: Sequence[FeeLine],
    coupons: Iterable[CouponToApply] = (),
    *,
    currency: str,
    progressive_billing_credit_cents: int = 0,
    credit_note_allocator: Allocator | None = None,
    prepaid_credit_allocator: Allocator | None = None,
) -> ComputedInvoice:
    """Coupons, taxes and totals in the order of spec §12.3 (fees are updated in place).

    The progressive billing credit must already be spread on the fees
    (`apply_progressive_billing_credit`); its total is passed here.
    """
    credits = apply_coupons(
        fees,
        coupons,
        currency=currency,
        progressive_billing_credit_cents=progressive_billing_credit_cents,
    )
    fees_amount_cents = sum(fee.amount_cents for fee in fees)
    sub_total = max(
        fees_amount_cents
        - progressive_billing_credit_cents
        - sum(credit.amount_cents for credit in credits),
        0,
    )
    taxes = apply_taxes(fees, sub_total_excluding_taxes_amount_cents=sub_total)
    totals = invoice_totals(
        fees,
        credits,
        taxes,
        progressive_billing_credit_cents=progressive_billing_credit_cents,
        credit_note_allocator=credit_note_allocator,
        prepaid_credit_allocator=prepaid_credit_allocator,
    )
    return ComputedInvoice(coupon_credits=tuple(credits), taxes=taxes, totals=totals)


def balances_allocator(balances: Sequence[tuple[object, int]]) -> Allocator:
    """An allocator consuming balances in the given order, each min(balance, remaining).

    Credit notes use it oldest first (spec §12.3 step 11); details are (key, consumed) pairs.
    """

    def allocate(remaining: int) -> Allocation:
        consumed: list[tuple[object, int]] = []
        for key, balance in balances:
            if remaining <= 0:
                break
            amount = min(max(balance, 0), remaining)
            if amount:
                consumed.append((key, amount))
                remaining -= amount
        return Allocation(sum(amount for _, amount in consumed), tuple(consumed))

    return allocate


# --------------------------------------------------------------------------------------------
# True-ups


@_precise
def spending_minimum_true_up_cents(
    min_amount_cents: int, used_cents: int, days_billed: int, charges_duration_days: int
) -> int:
    """True-up fee of a charge's spending minimum (spec §7.16); 0 when none is due.

    prorated_min = min_amount_cents * days_billed / charges_duration; the fee is
    round(prorated_min - used) when used is below it.
    """
    if min_amount_cents <= 0 or charges_duration_days <= 0:
        return 0
    prorated_min = Decimal(min_amount_cents) * days_billed / charges_duration_days
    if used_cents >= prorated_min:
        return 0
    return round_cents(prorated_min - used_cents)


@_precise
def commitment_prorated_cents(
    commitment_amount_cents: int, days_covered: int, days_in_period: int
) -> int:
    """round(commitment * days_covered / days_in_period) (spec §22)."""
    if days_in_period <= 0:
        return 0
    return round_cents(Decimal(commitment_amount_cents) * days_covered / days_in_period)


def commitment_true_up_cents(
    commitment_amount_cents: int, fees_total_cents: int, days_covered: int, days_in_period: int
) -> int:
    """Minimum commitment fee (spec §22): prorated commitment - fees of the period, or 0.

    `fees_total_cents` is the pre-tax, before-coupons sum of the subscription's fees attributable to
    the period (subscription, charges in arrears and in advance, fixed charges).
    """
    if commitment_amount_cents <= 0:
        return 0
    prorated = commitment_prorated_cents(commitment_amount_cents, days_covered, days_in_period)
    return max(prorated - fees_total_cents, 0)


# --------------------------------------------------------------------------------------------
# Dates (spec §12.5, §12.7)


def issuing_date(
    billing_date: date,
    grace_period_days: int,
    anchor: str = IssuingDateAnchor.NEXT_PERIOD_START,
    adjustment: str = IssuingDateAdjustment.ALIGN_WITH_FINALIZATION_DATE,
    *,
    recurring: bool,
) -> date:
    """Invoice `issuing_date` from the billing date B and grace period G (spec §12.7).

    Non-recurring invoices: B + G (the caller passes G = 0 where no grace period applies).
    """
    grace = max(grace_period_days, 0)
    if not recurring:
        return billing_date + timedelta(days=grace)
    anchor, adjustment = IssuingDateAnchor(anchor), IssuingDateAdjustment(adjustment)
    if adjustment == IssuingDateAdjustment.KEEP_ANCHOR:
        offset = 0 if anchor == IssuingDateAnchor.NEXT_PERIOD_START else -1
    elif anchor == IssuingDateAnchor.NEXT_PERIOD_START:
        offset = grace
    else:  # current_period_end aligned: the period's last day when there is no grace period
        offset = grace if grace > 0 else -1
    return billing_date + timedelta(days=offset)


def effective_net_payment_term(
    customer_net_payment_term: int | None, billing_entity_net_payment_term: int | None
) -> int:
    """Customer value if set, else the billing entity's, else 0 (spec §2.4)."""
    if customer_net_payment_term is not None:
        return customer_net_payment_term
    return billing_entity_net_payment_term or 0


def payment_due_date(issuing_date: date, net_payment_term: int) -> date:
    """issuing_date + net payment term days (spec §12.7)."""
    return issuing_date + timedelta(days=net_payment_term)


def expected_finalization_date(billing_date: date, grace_period_days: int) -> date:
    """When the hourly job finalizes a draft: billing date + grace period (spec §12.5)."""
    return billing_date + timedelta(days=max(grace_period_days, 0))


def is_payment_overdue_by_date(payment_due_date: date, now: datetime) -> bool:
    """Lago's `payment_due_date < now` on a DATE column: true from 00:00 UTC of the due date.

    The other conditions (finalized, payment not succeeded, no lost dispute) are the caller's.
    """
    return datetime.combine(payment_due_date, time.min, tzinfo=UTC) < now


# --------------------------------------------------------------------------------------------
# Zero-amount invoices (spec §12.6)


def is_empty_invoice(fees_amount_cents: int) -> bool:
    """Empty = no fee amount before any discount; discounted to 0 is not empty."""
    return fees_amount_cents == 0


def zero_amount_decision(
    fees_amount_cents: int, customer_setting: str, entity_finalize_zero_amount: bool
) -> ZeroAmountDecision:
    """Finalize, or close silently an empty invoice the effective setting skips (spec §12.6)."""
    setting = ZeroAmountInvoice(customer_setting)
    if not is_empty_invoice(fees_amount_cents):
        return ZeroAmountDecision.FINALIZE
    if setting == ZeroAmountInvoice.INHERIT:
        finalize = entity_finalize_zero_amount
    else:
        finalize = setting == ZeroAmountInvoice.FINALIZE
    return ZeroAmountDecision.FINALIZE if finalize else ZeroAmountDecision.CLOSE


# --------------------------------------------------------------------------------------------
# Numbering (spec §2.3)


def draft_number(prefix: str) -> str:
    """Placeholder number of a draft: `<prefix>-DRAFT`."""
    return f"{prefix}-DRAFT"


def per_customer_number(
    prefix: str, customer_sequential_id: int, invoice_sequential_id: int
) -> str:
    """`<prefix>-<customer seq:03d>-<invoice seq:03d>`, e.g. `LAG-1234-001-002`."""
    return f"{prefix}-{customer_sequential_id:03d}-{invoice_sequential_id:03d}"


def per_entity_number(prefix: str, yyyymm: str, seq: int) -> str:
    """`<prefix>-<YYYYMM>-<seq:03d>`; YYYYMM = finalization month in the entity's timezone.

    The counter runs over all the entity's finalized invoices; the month is only a label.
    """
    if len(yyyymm) != 6 or not yyyymm.isdigit():
        raise ValueError(f"yyyymm must be six digits, got {yyyymm!r}")
    return f"{prefix}-{yyyymm}-{seq:03d}"


def customer_slug(prefix: str, sequential_id: int) -> str:
    """Customer `slug`: `<org prefix>-<customer seq:03d>`."""
    return f"{prefix}-{sequential_id:03d}"


def credit_note_number(invoice_number: str, seq: int) -> str:
    """`<invoice number>-CN<seq:03d>`, the sequence running per invoice."""
    return f"{invoice_number}-CN{seq:03d}"


# --------------------------------------------------------------------------------------------
# Progressive billing: usage thresholds passed (spec §21.2)


@dataclass(frozen=True)
class ThresholdCrossing:
    """A usage threshold a progressive billing invoice is due for: `occurrence` is 0 for a
    one-time threshold, the step number (1, 2, ...) above the largest one-time threshold for the
    recurring one."""

    amount_cents: int
    recurring: bool
    occurrence: int


def passed_usage_thresholds(
    thresholds: Iterable[tuple[int, bool]],
    *,
    historical_cents: int,
    invoiced_cents: int,
    current_cents: int,
    progressive_billed_cents: int,
) -> list[ThresholdCrossing]:
    """The thresholds (`(amount_cents, recurring)`) the lifetime usage has just passed, as
    Lago's `UsageThresholds::CheckService` finds them (one-time ones by amount, then the
    recurring one).

    P = `progressive_billed_cents` (fees of the period's latest progressive invoice) is already
    billed: the period's usage not billed yet is C = current - P, what is billed I = historical
    + invoiced + P. Below the largest one-time threshold L, every one-time threshold in (I, I +
    C] is passed, and the recurring one R when I + C - L >= R; at or above L, R is passed when
    C + (I - L) mod R >= R. A negative C passes nothing.
    """
    thresholds = list(thresholds)
    one_time = sorted(amount for amount, recurring in thresholds if not recurring)
    recurring = next((amount for amount, is_recurring in thresholds if is_recurring), None)
    not_billed = current_cents - progressive_billed_cents
    if not_billed < 0:
        return []
    billed = historical_cents + invoiced_cents + progressive_billed_cents
    total = billed + not_billed
    largest = one_time[-1] if one_time else 0
    passed: list[ThresholdCrossing] = []
    recurring_passed = False
    if billed < largest:
        passed = [
            ThresholdCrossing(amount, False, 0) for amount in one_time if billed < amount <= total
        ]
        recurring_passed = recurring is not None and total - largest >= recurring
    elif recurring:
        recurring_passed = not_billed + billed % recurring >= recurring
    if recurring_passed and recurring:
        passed.append(ThresholdCrossing(recurring, True, total // recurring))
    return passed
