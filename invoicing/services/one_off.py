"""One-off invoices billing add-ons (spec §12.10, §16)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction

from billing.actors import Actor
from billing.errors import Invalid, NotFound
from billing.models import BillingEntity, Organization
from billing.money import CURRENCIES, ONE, round_cents, to_major
from customers.locks import lock_customer
from customers.models import Customer
from customers.selectors import customer_is_editable
from invoicing import calculation
from invoicing.models import Fee, FeeAppliedTax, Invoice, InvoiceAppliedTax
from invoicing.services.applied_taxes import (
    fee_applied_taxes,
    fill_fee,
    invoice_applied_taxes,
    tax_rate,
)
from invoicing.services.events import emit_invoice_event
from invoicing.services.numbering import invoice_assign_number
from plans.models import AddOn, Tax
from plans.selectors import applicable_taxes


@dataclass(frozen=True)
class OneOffFee:
    """One line of `POST /invoices` (`invoice.fees[]`)."""

    add_on_code: str
    units: Decimal | None = None
    unit_amount_cents: int | None = None
    invoice_display_name: str | None = None
    description: str | None = None
    from_datetime: datetime | None = None
    to_datetime: datetime | None = None
    tax_codes: tuple[str, ...] | None = None


def _billing_entity(organization: Organization, customer: Customer, code: str | None):
    if not code:
        return customer.billing_entity
    entity = BillingEntity.objects.for_organization(organization).filter(code=code).first()
    if entity is None:
        raise NotFound("billing_entity")
    return entity


def _checked_currency(customer: Customer, currency: str | None) -> str:
    """spec §12.10 and §3.1: the customer's currency, or a first one it may still take."""
    currency = (currency or customer.currency or "").upper()
    if not currency:
        raise Invalid({"currency": ["value_is_mandatory"]})
    if currency not in CURRENCIES:
        raise Invalid({"currency": ["value_is_invalid"]})
    if customer.currency and customer.currency != currency:
        raise Invalid({"currency": ["currencies_does_not_match"]})
    if not customer.currency and not customer_is_editable(customer=customer):
        raise Invalid({"currency": ["currencies_does_not_match"]})
    return currency


def _currency(customer: Customer, currency: str | None) -> str:
    """The checked currency, set on the customer when it is its first one."""
    currency = _checked_currency(customer, currency)
    if not customer.currency:
        customer.currency = currency
        customer.save(update_fields=["currency", "updated_at"])
    return currency


def _validate_lines(lines: Sequence[OneOffFee]) -> None:
    errors: dict[str, list[str]] = {}
    for line in lines:
        if line.units is not None and line.units < 0:
            errors["units"] = ["value_is_invalid"]
        if line.unit_amount_cents is not None and line.unit_amount_cents < 0:
            errors["unit_amount_cents"] = ["value_is_invalid"]
        if line.from_datetime and line.to_datetime and line.from_datetime > line.to_datetime:
            errors["to_datetime"] = ["invalid_date"]
    if errors:
        raise Invalid(errors)


def _alive_customer(organization: Organization, external_customer_id: str | None) -> Customer:
    customer = (
        Customer.objects.for_organization(organization)
        .alive()
        .select_related("billing_entity", "organization")
        .filter(external_id=external_customer_id or "")
        .first()
    )
    if customer is None:
        raise NotFound("customer")
    return customer


def _add_ons(organization: Organization, fees: Sequence[OneOffFee]) -> dict[str, AddOn]:
    if not fees:
        raise NotFound("fees")
    codes = {line.add_on_code for line in fees}
    add_ons = {
        add_on.code: add_on
        for add_on in AddOn.objects.for_organization(organization)
        .alive()
        .filter(code__in=codes)
        .prefetch_related("taxes")
    }
    if len(add_ons) != len(codes):
        raise NotFound("add_on")
    _validate_lines(fees)
    return add_ons


@dataclass(frozen=True)
class _PricedLines:
    rows: list[tuple[Fee, calculation.FeeLine]]
    tax_by_code: dict[str, Tax]
    computed: calculation.ComputedInvoice


def _priced_lines(
    *,
    organization: Organization,
    customer: Customer,
    entity: BillingEntity,
    add_ons: dict[str, AddOn],
    fees: Sequence[OneOffFee],
    currency: str,
) -> _PricedLines:
    """The unsaved fees of the lines and the invoice totals they make (no database write)."""
    customer_taxes = list(customer.taxes.all())
    rows: list[tuple[Fee, calculation.FeeLine]] = []
    tax_by_code: dict[str, Tax] = {}
    for index, line in enumerate(fees):
        add_on = add_ons[line.add_on_code]
        unit_amount_cents = (
            line.unit_amount_cents if line.unit_amount_cents is not None else add_on.amount_cents
        )
        units = line.units if line.units is not None else ONE
        precise = units * unit_amount_cents
        taxes = applicable_taxes(
            organization=organization,
            tax_codes=list(line.tax_codes) if line.tax_codes is not None else None,
            add_on=add_on,
            customer_taxes=customer_taxes,
            billing_entity=entity,
        )
        tax_by_code.update((tax.code, tax) for tax in taxes)
        properties = {}
        if line.from_datetime:
            properties["from_datetime"] = line.from_datetime.isoformat()
        if line.to_datetime:
            properties["to_datetime"] = line.to_datetime.isoformat()
        fee = Fee(
            organization=organization,
            customer=customer,
            add_on=add_on,
            fee_type=Fee.FeeType.ADD_ON,
            amount_cents=round_cents(precise),
            precise_amount_cents=precise,
            amount_currency=currency,
            unit_amount_cents=unit_amount_cents,
            precise_unit_amount=to_major(unit_amount_cents, currency),
            units=units,
            invoice_display_name=line.invoice_display_name or "",
            description=line.description if line.description is not None else add_on.description,
            properties=properties,
        )
        fee_line = calculation.FeeLine(
            key=str(index),
            fee_type=calculation.FeeType.ADD_ON,
            amount_cents=fee.amount_cents,
            precise_amount_cents=precise,
            taxes=tuple(tax_rate(tax) for tax in taxes),
        )
        rows.append((fee, fee_line))
    # spec §15.3, §12.2: no coupon, credit note nor prepaid credit on a one-off invoice
    computed = calculation.compute_invoice([line for _, line in rows], currency=currency)
    return _PricedLines(rows=rows, tax_by_code=tax_by_code, computed=computed)


def invoice_one_off_estimate(
    *,
    organization: Organization,
    external_customer_id: str | None,
    fees: Sequence[OneOffFee],
    currency: str | None = None,
    billing_entity_code: str | None = None,
) -> calculation.InvoiceTotals:
    """The totals `invoice_create_one_off` would issue for these lines, read only (the admin's
    preview): the same validation, add-ons, taxes and rounding, without setting the customer's
    currency nor writing anything."""
    customer = _alive_customer(organization, external_customer_id)
    add_ons = _add_ons(organization, fees)
    entity = _billing_entity(organization, customer, billing_entity_code)
    currency = _checked_currency(customer, currency)
    priced = _priced_lines(
        organization=organization,
        customer=customer,
        entity=entity,
        add_ons=add_ons,
        fees=fees,
        currency=currency,
    )
    return priced.computed.totals


@transaction.atomic
def invoice_create_one_off(
    *,
    organization: Organization,
    external_customer_id: str | None,
    fees: Sequence[OneOffFee],
    actor: Actor,
    now: datetime,
    currency: str | None = None,
    billing_entity_code: str | None = None,
) -> Invoice:
    """POST /invoices: an invoice of add-on fees, issued and finalized at once (spec §12.10).

    Fee amount = round(units x unit_amount_cents) (unit amount defaults to the add-on's, units to
    1); taxes: the fee's `tax_codes` > the add-on's > the customer's > the billing entity's. No
    coupons, credit notes nor prepaid credits. Records the `invoice.one_off_created` webhook; the
    PDF is rendered after commit.
    """
    customer = _alive_customer(organization, external_customer_id)
    add_ons = _add_ons(organization, fees)
    entity = _billing_entity(organization, customer, billing_entity_code)
    customer = lock_customer(customer.pk)
    currency = _currency(customer, currency)
    priced = _priced_lines(
        organization=organization,
        customer=customer,
        entity=entity,
        add_ons=add_ons,
        fees=fees,
        currency=currency,
    )
    rows, tax_by_code, computed = priced.rows, priced.tax_by_code, priced.computed
    totals = computed.totals
    issuing_date = now.astimezone(ZoneInfo(customer.applicable_timezone)).date()
    net_payment_term = calculation.effective_net_payment_term(
        customer.net_payment_term, entity.net_payment_term
    )
    decision = calculation.zero_amount_decision(
        totals.fees_amount_cents,
        customer.finalize_zero_amount_invoice,
        entity.finalize_zero_amount_invoice,
    )
    invoice = Invoice.objects.create(
        organization=organization,
        billing_entity=entity,
        customer=customer,
        invoice_type=Invoice.InvoiceType.ONE_OFF,
        status=(
            Invoice.Status.FINALIZED
            if decision == calculation.ZeroAmountDecision.FINALIZE
            else Invoice.Status.CLOSED
        ),
        payment_status=totals.payment_status,
        issuing_date=issuing_date,
        payment_due_date=calculation.payment_due_date(issuing_date, net_payment_term),
        net_payment_term=net_payment_term,
        currency=currency,
        fees_amount_cents=totals.fees_amount_cents,
        sub_total_excluding_taxes_amount_cents=totals.sub_total_excluding_taxes_amount_cents,
        taxes_amount_cents=totals.taxes_amount_cents,
        taxes_rate=totals.taxes_rate,
        sub_total_including_taxes_amount_cents=totals.sub_total_including_taxes_amount_cents,
        total_amount_cents=totals.total_amount_cents,
        finalized_at=now,
    )
    for fee, line in rows:
        fee.invoice = invoice
        fill_fee(fee, line)
        fee.payment_status = totals.payment_status
        fee.save()
        FeeAppliedTax.objects.bulk_create(
            fee_applied_taxes(fee, line, organization_id=organization.pk, tax_by_code=tax_by_code)
        )
    InvoiceAppliedTax.objects.bulk_create(
        invoice_applied_taxes(
            invoice, totals.applied_taxes, organization_id=organization.pk, tax_by_code=tax_by_code
        )
    )
    if invoice.status == Invoice.Status.CLOSED:
        return invoice  # spec §12.6: skipped silently, no number, no webhook
    invoice_assign_number(invoice=invoice, now=now)  # spec §2.3: the engine's one sequence
    emit_invoice_event(invoice, "invoice.one_off_created", actor=actor)
    invoice_id = str(invoice.pk)
    transaction.on_commit(lambda: _render_pdf_later(invoice_id), robust=True)
    return invoice


def _render_pdf_later(invoice_id: str) -> None:
    if not getattr(settings, "INVOICE_PDF_ON_FINALIZE", True):
        return
    from invoicing.pdf import generate_invoice_pdf_task

    generate_invoice_pdf_task.delay(invoice_id)
