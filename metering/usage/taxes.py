"""Taxes of a usage (spec §14): the figures current usage and invoices show per fee."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing.money import round_cents
from customers.models import Subscription
from metering.usage.buckets import HUNDRED, ZERO
from plans.models import Charge, Tax
from plans.selectors import applicable_taxes


class FeeTaxes:
    """The taxes of the charge fees of one subscription (spec §14.1): the charge's own taxes,
    else the plan's, the customer's or the billing entity's, resolved once for all charges."""

    def __init__(self, *, subscription: Subscription) -> None:
        self.subscription = subscription
        self._inherited: list[Tax] | None = None

    def _fallback(self) -> list[Tax]:
        if self._inherited is None:
            customer = self.subscription.customer
            self._inherited = applicable_taxes(
                organization=self.subscription.organization,
                plan=self.subscription.plan,
                customer_taxes=list(customer.taxes.all()),
                billing_entity=customer.billing_entity,
            )
        return self._inherited

    def for_charge(self, charge: Charge) -> list[Tax]:
        own = applicable_taxes(organization=self.subscription.organization, charge=charge)
        return own or self._fallback()


@dataclass(frozen=True)
class FeeTaxFigures:
    """The taxes of one fee (spec §14.2): each tax on the fee's amount, rounded once."""

    amount_cents: int
    precise_amount_cents: Decimal
    rate: Decimal


def fee_tax_figures(amount_cents: int, taxes: Sequence[Tax]) -> FeeTaxFigures:
    """Taxes of a fee without coupons: sum of amount_cents x rate / 100, rounded once."""
    precise = sum((Decimal(amount_cents) * Decimal(t.rate) / HUNDRED for t in taxes), ZERO)
    rate = sum((Decimal(t.rate) for t in taxes), ZERO)
    return FeeTaxFigures(amount_cents=round_cents(precise), precise_amount_cents=precise, rate=rate)


def taxes_amount_cents(amounts: Iterable[tuple[int, Sequence[Tax]]]) -> int:
    """Invoice-level taxes of fees (spec §14.2): sum over fees and taxes of
    amount_cents x rate / 100, rounded once (no coupons in a usage)."""
    precise = ZERO
    for amount_cents, taxes in amounts:
        for tax in taxes:
            precise += Decimal(amount_cents) * Decimal(tax.rate) / HUNDRED
    return round_cents(precise)
