"""Invoices to correct with credit notes, built with the amounts of the vectors."""

from __future__ import annotations

from decimal import Decimal

from invoicing.models import Fee, FeeAppliedTax, Invoice, InvoiceAppliedTax
from plans.models import Tax
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice, vat


def v75_invoice(organization, *, customer=None, total_paid_amount_cents: int = 1200) -> Invoice:
    """Two subscription fees: 17,900 (tax 10%) and 39,900 carrying a 25,000 coupon (taxes 10% +
    10%); fees 57,800, coupons 25,000, taxes 4,770, total 37,570."""
    customer = customer or CustomerFactory(organization=organization, currency="EUR")
    be_tax = vat(organization, rate="10", name="BE tax", code="be_10")
    tax_a = vat(organization, rate="10", name="Plan tax A", code="plan_a_10")
    tax_b = vat(organization, rate="10", name="Plan tax B", code="plan_b_10")
    invoice = build_invoice(
        organization,
        customer=customer,
        fees=[
            FeeSpec(amount_cents=17900, name="Plan 1"),
            FeeSpec(amount_cents=39900, name="Plan 2"),
        ],
        payment_status="pending",
    )
    fee1, fee2 = invoice.fees.order_by("created_at", "id")
    _tax_fee(fee1, [be_tax], coupons=Decimal(0))
    _tax_fee(fee2, [tax_a, tax_b], coupons=Decimal(25000))
    for tax, base, amount in ((be_tax, 17900, 1790), (tax_a, 14900, 1490), (tax_b, 14900, 1490)):
        InvoiceAppliedTax.objects.create(
            organization=organization,
            invoice=invoice,
            tax=tax,
            tax_name=tax.name,
            tax_code=tax.code,
            tax_rate=tax.rate,
            amount_cents=amount,
            fees_amount_cents=base,
        )
    Invoice.objects.filter(pk=invoice.pk).update(
        fees_amount_cents=57800,
        coupons_amount_cents=25000,
        sub_total_excluding_taxes_amount_cents=32800,
        taxes_amount_cents=4770,
        taxes_rate=Decimal("14.54268"),
        sub_total_including_taxes_amount_cents=37570,
        total_amount_cents=37570,
        total_paid_amount_cents=total_paid_amount_cents,
    )
    invoice.refresh_from_db()
    return invoice


def _tax_fee(fee: Fee, taxes: list, *, coupons: Decimal) -> None:
    net = Decimal(fee.amount_cents) - coupons
    total_rate = sum(Decimal(tax.rate) for tax in taxes)
    fee.precise_coupons_amount_cents = coupons
    fee.taxes_rate = total_rate
    fee.taxes_precise_amount_cents = net * total_rate / 100
    fee.taxes_amount_cents = int(fee.taxes_precise_amount_cents)
    fee.save()
    for tax in taxes:
        FeeAppliedTax.objects.create(
            organization=fee.organization,
            fee=fee,
            tax=tax,
            tax_name=tax.name,
            tax_code=tax.code,
            tax_rate=tax.rate,
            amount_cents=int(net * Decimal(tax.rate) / 100),
            precise_amount_cents=net * Decimal(tax.rate) / 100,
        )


def vat20(organization) -> Tax:
    """The organization's 20% VAT (created once)."""
    return Tax.objects.filter(organization=organization, code="vat_20").first() or vat(organization)


def v76_invoice(organization, *, customer=None) -> Invoice:
    """A one-off invoice of two add-ons of 6,833 each, tax 20%: taxes 2,733, total 16,399."""
    tax = vat20(organization)
    return build_invoice(
        organization,
        customer=customer,
        fees=[FeeSpec(amount_cents=6833, taxes=[tax]), FeeSpec(amount_cents=6833, taxes=[tax])],
        payment_status="pending",
    )


def simple_invoice(
    organization, *, customer=None, amount_cents: int = 10000, paid: bool = False, **kwargs
) -> Invoice:
    """One add-on fee taxed 20%: total amount_cents x 1.2."""
    invoice = build_invoice(
        organization,
        customer=customer,
        fees=[FeeSpec(amount_cents=amount_cents, taxes=[vat20(organization)])]
        if not kwargs.get("fees")
        else kwargs.pop("fees"),
        payment_status="succeeded" if paid else "pending",
        **kwargs,
    )
    if paid:
        Invoice.objects.filter(pk=invoice.pk).update(
            total_paid_amount_cents=invoice.total_amount_cents
        )
        invoice.refresh_from_db()
    return invoice
