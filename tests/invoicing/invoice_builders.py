"""Builds invoices with fees, taxes and coupon credits straight in the database, so the invoice
surface (API, PDF, admin, void, payments) is tested without running a billing cycle.

Amounts go through `invoicing.calculation` so that every built invoice is consistent (fees,
coupons, taxes, totals), as the invoicing engine would have stored it.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from customers.models import AppliedCoupon, Customer, Subscription
from invoicing import calculation
from invoicing.models import (
    Credit,
    Fee,
    FeeAppliedTax,
    Invoice,
    InvoiceAppliedTax,
    InvoiceSubscription,
)
from plans import charge_models
from plans.models import Tax
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.plans.factories import (
    AddOnFactory,
    BillableMetricFactory,
    ChargeFactory,
    CouponFactory,
    PlanFactory,
    TaxFactory,
)

_numbers = itertools.count(1)

GRADUATED = {
    "graduated_ranges": [
        {"from_value": 0, "to_value": 1000, "per_unit_amount": "0.10", "flat_amount": "0"},
        {"from_value": 1001, "to_value": None, "per_unit_amount": "0.05", "flat_amount": "10"},
    ]
}


@dataclass
class FeeSpec:
    """A fee to build: `kind` is add_on, subscription or graduated (a charge)."""

    kind: str = "add_on"
    amount_cents: int | None = None
    units: Decimal = Decimal(1)
    name: str | None = None
    taxes: list[Tax] = field(default_factory=list)
    description: str = ""


def _local_period(start: dt.date, end: dt.date, timezone: str) -> tuple[dt.datetime, dt.datetime]:
    """Period boundaries as the engine stores them: the customer's local days, in UTC."""
    tz = ZoneInfo(timezone)
    return (
        dt.datetime.combine(start, dt.time.min, tzinfo=tz).astimezone(dt.UTC),
        dt.datetime.combine(end, dt.time(23, 59, 59), tzinfo=tz).astimezone(dt.UTC),
    )


def build_invoice(
    organization,
    *,
    customer: Customer | None = None,
    fees: list[FeeSpec] | None = None,
    status: str = "finalized",
    payment_status: str | None = None,
    invoice_type: str = "one_off",
    currency: str = "EUR",
    issuing_date: dt.date = dt.date(2026, 3, 1),
    net_payment_term: int = 30,
    number: str | None = None,
    applied_coupon: AppliedCoupon | None = None,
    coupon_amount_cents: int = 0,
    subscription: Subscription | None = None,
    period: tuple[dt.date, dt.date] = (dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
) -> Invoice:
    customer = customer or CustomerFactory(organization=organization, currency=currency)
    entity = customer.billing_entity
    fees = fees if fees is not None else [FeeSpec(amount_cents=10000)]
    start, end = _local_period(*period, customer.applicable_timezone)
    lines, models = [], []
    for index, spec in enumerate(fees):
        fee = Fee(
            organization=organization,
            customer=customer,
            amount_currency=currency,
            units=spec.units,
            description=spec.description,
        )
        if spec.kind == "add_on":
            add_on = AddOnFactory(
                organization=organization,
                name=spec.name or f"Onboarding {index}",
                amount_cents=spec.amount_cents or 0,
                amount_currency=currency,
            )
            fee.fee_type, fee.add_on = Fee.FeeType.ADD_ON, add_on
            fee.unit_amount_cents = spec.amount_cents or 0
            fee.amount_cents = calculation.round_cents(spec.units * fee.unit_amount_cents)
            fee.precise_unit_amount = Decimal(fee.unit_amount_cents) / 100
        elif spec.kind == "subscription":
            subscription = subscription or SubscriptionFactory(
                organization=organization,
                customer=customer,
                plan=PlanFactory(
                    organization=organization,
                    name=spec.name or "Pro plan",
                    amount_cents=spec.amount_cents or 0,
                    amount_currency=currency,
                ),
            )
            fee.fee_type, fee.subscription = Fee.FeeType.SUBSCRIPTION, subscription
            fee.amount_cents = spec.amount_cents or 0
            fee.unit_amount_cents = fee.amount_cents
            fee.precise_unit_amount = Decimal(fee.amount_cents) / 100
            fee.properties = {"from_datetime": start.isoformat(), "to_datetime": end.isoformat()}
        else:  # a graduated charge
            subscription = subscription or SubscriptionFactory(
                organization=organization, customer=customer
            )
            metric = BillableMetricFactory(organization=organization, name=spec.name or "API calls")
            charge = ChargeFactory(
                organization=organization,
                plan=subscription.plan,
                billable_metric=metric,
                charge_model="graduated",
                properties=GRADUATED,
            )
            result = charge_models.graduated_amount(GRADUATED, units=spec.units)
            fee.fee_type, fee.charge, fee.subscription = Fee.FeeType.CHARGE, charge, subscription
            fee.amount_cents = result.amount_cents(currency)
            fee.precise_unit_amount = result.unit_amount
            fee.amount_details = result.amount_details
            fee.properties = {
                "charges_from_datetime": start.isoformat(),
                "charges_to_datetime": end.isoformat(),
            }
        fee.precise_amount_cents = Decimal(fee.amount_cents)
        models.append((fee, spec))
        lines.append(
            calculation.FeeLine(
                key=str(index),
                fee_type=fee.fee_type,
                amount_cents=fee.amount_cents,
                taxes=tuple(
                    calculation.TaxRate(tax.code, tax.name, Decimal(tax.rate)) for tax in spec.taxes
                ),
            )
        )
    coupons = []
    if applied_coupon is not None:
        coupons.append(
            calculation.CouponToApply(
                key="coupon",
                coupon_type="fixed_amount",
                frequency="once",
                applied_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                amount_cents=coupon_amount_cents,
                currency=currency,
            )
        )
    computed = calculation.compute_invoice(lines, coupons, currency=currency)
    totals = computed.totals
    finalized = status in ("finalized", "voided")
    invoice = Invoice.objects.create(
        organization=organization,
        billing_entity=entity,
        customer=customer,
        invoice_type=invoice_type,
        status=status,
        payment_status=payment_status or totals.payment_status,
        number=number or (f"ACM-{next(_numbers):04d}" if finalized else "ACM-DRAFT"),
        issuing_date=issuing_date,
        payment_due_date=issuing_date + dt.timedelta(days=net_payment_term),
        net_payment_term=net_payment_term,
        currency=currency,
        fees_amount_cents=totals.fees_amount_cents,
        coupons_amount_cents=totals.coupons_amount_cents,
        sub_total_excluding_taxes_amount_cents=totals.sub_total_excluding_taxes_amount_cents,
        taxes_amount_cents=totals.taxes_amount_cents,
        taxes_rate=totals.taxes_rate,
        sub_total_including_taxes_amount_cents=totals.sub_total_including_taxes_amount_cents,
        total_amount_cents=totals.total_amount_cents,
    )
    for (fee, spec), line in zip(models, lines, strict=True):
        fee.invoice = invoice
        fee.taxes_amount_cents = line.taxes_amount_cents
        fee.taxes_precise_amount_cents = line.taxes_precise_amount_cents
        fee.taxes_rate = line.taxes_rate
        fee.precise_coupons_amount_cents = line.precise_coupons_amount_cents
        fee.save()
        for applied in line.applied_taxes:
            tax = next(t for t in spec.taxes if t.code == applied.tax.code)
            FeeAppliedTax.objects.create(
                organization=organization,
                fee=fee,
                tax=tax,
                tax_name=tax.name,
                tax_code=tax.code,
                tax_rate=tax.rate,
                amount_cents=applied.amount_cents,
                precise_amount_cents=applied.precise_amount_cents,
            )
    all_taxes = {tax.code: tax for spec in fees for tax in spec.taxes}
    for applied in totals.applied_taxes:
        tax = all_taxes[applied.tax.code]
        InvoiceAppliedTax.objects.create(
            organization=organization,
            invoice=invoice,
            tax=tax,
            tax_name=tax.name,
            tax_code=tax.code,
            tax_rate=tax.rate,
            amount_cents=applied.amount_cents,
            fees_amount_cents=applied.fees_amount_cents,
        )
    for credit in computed.coupon_credits:
        Credit.objects.create(
            organization=organization,
            invoice=invoice,
            applied_coupon=applied_coupon,
            amount_cents=credit.amount_cents,
            amount_currency=currency,
        )
    for subscription in {fee.subscription for fee, _ in models if fee.subscription_id}:
        InvoiceSubscription.objects.create(
            organization=organization,
            invoice=invoice,
            subscription=subscription,
            invoicing_reason="subscription_periodic",
            from_datetime=start,
            to_datetime=end,
            charges_from_datetime=start,
            charges_to_datetime=end,
            timestamp=end,
        )
    return invoice


def apply_coupon(organization, customer: Customer, **coupon_fields) -> AppliedCoupon:
    """An applied coupon of the customer (fixed once by default)."""
    coupon = CouponFactory(organization=organization, **coupon_fields)
    return AppliedCoupon.objects.create(
        organization=organization,
        coupon=coupon,
        customer=customer,
        amount_cents=coupon.amount_cents,
        amount_currency=coupon.amount_currency,
        percentage_rate=coupon.percentage_rate,
        frequency=coupon.frequency,
        frequency_duration=coupon.frequency_duration,
        frequency_duration_remaining=coupon.frequency_duration,
    )


def vat(organization, rate: str = "20", name: str = "VAT", code: str | None = None) -> Tax:
    return TaxFactory(organization=organization, name=name, rate=rate, code=code or f"vat_{rate}")
