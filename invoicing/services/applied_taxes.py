"""What `invoicing.calculation` computed, as rows: a fee's taxes and coupon share, the fee and
invoice applied taxes (spec §14.2). Shared by the subscription and one-off invoices; nothing is
saved here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

from invoicing import calculation
from invoicing.models import Fee, FeeAppliedTax, Invoice, InvoiceAppliedTax
from plans.models import Tax


def tax_rate(tax: Tax) -> calculation.TaxRate:
    """A tax as `calculation` reads it."""
    return calculation.TaxRate(
        code=tax.code, name=tax.name, rate=Decimal(tax.rate), description=tax.description
    )


def fill_fee(fee: Fee, line: calculation.FeeLine) -> None:
    """The fee's taxes and coupon share, from its computed line."""
    fee.taxes_amount_cents = line.taxes_amount_cents
    fee.taxes_precise_amount_cents = line.taxes_precise_amount_cents
    fee.taxes_rate = line.taxes_rate
    fee.precise_coupons_amount_cents = line.precise_coupons_amount_cents


def _tax_columns(
    applied: calculation.FeeAppliedTax | calculation.InvoiceAppliedTax,
    tax_by_code: Mapping[str, Tax],
) -> dict[str, Any]:
    """The columns a fee and an invoice applied tax share."""
    return {
        "tax": tax_by_code.get(applied.tax.code),
        "tax_name": applied.tax.name,
        "tax_code": applied.tax.code,
        "tax_rate": applied.tax.rate,
        "tax_description": applied.tax.description,
        "amount_cents": applied.amount_cents,
    }


def fee_applied_taxes(
    fee: Fee,
    line: calculation.FeeLine,
    *,
    organization_id: UUID,
    tax_by_code: Mapping[str, Tax],
) -> list[FeeAppliedTax]:
    """The unsaved applied-tax rows of one fee (`tax` None for a code not in `tax_by_code`)."""
    return [
        FeeAppliedTax(
            organization_id=organization_id,
            fee=fee,
            **_tax_columns(applied, tax_by_code),
            precise_amount_cents=applied.precise_amount_cents,
        )
        for applied in line.applied_taxes
    ]


def invoice_applied_taxes(
    invoice: Invoice,
    applied_taxes: Iterable[calculation.InvoiceAppliedTax],
    *,
    organization_id: UUID,
    tax_by_code: Mapping[str, Tax],
) -> list[InvoiceAppliedTax]:
    """The unsaved applied-tax rows of an invoice (`tax` None for a code not in `tax_by_code`)."""
    return [
        InvoiceAppliedTax(
            organization_id=organization_id,
            invoice=invoice,
            **_tax_columns(applied, tax_by_code),
            fees_amount_cents=applied.fees_amount_cents,
        )
        for applied in applied_taxes
    ]
