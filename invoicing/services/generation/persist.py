"""Computing an invoice from its items (fees, coupons, prepaid credits, taxes, totals: spec
§12.3, §17.5) and persisting the result."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from billing.actors import Actor
from billing.rows import insert_rows
from customers.models import AppliedCoupon, Customer
from invoicing import calculation
from invoicing.models import Credit, Fee, Invoice, InvoiceAppliedTax
from invoicing.services.applied_taxes import fee_applied_taxes, fill_fee, invoice_applied_taxes
from invoicing.services.credit_note_consumption import (
    CreditNoteCredits,
    available_credit_notes,
    draw_credit_notes,
)
from invoicing.services.generation.context import BillingContext
from invoicing.services.generation.coupons import _consume_coupons, _coupons_for
from invoicing.services.generation.fees import FeeDraft, _FeeBuilder
from invoicing.services.generation.items import BillingItem
from invoicing.services.generation.progressive import (
    ProgressiveCredit,
    progressive_credit_rows,
    progressive_credits,
    return_excess,
)
from wallets.services import consumption

# --------------------------------------------------------------------------------------------
# Computing and persisting an invoice


@dataclass
class ComputedFees:
    """The result of a computation: fee drafts and the invoice math."""

    drafts: list[FeeDraft]
    computed: calculation.ComputedInvoice
    applied_coupons: dict[str, AppliedCoupon]
    prepaid: consumption.PrepaidCredits | None = None  # drawn when persisted (spec §17.5)
    credit_notes: CreditNoteCredits | None = None  # consumed when persisted (spec §12.3)
    # what the period's progressive billing invoices already billed (spec §21.3)
    progressive: list[ProgressiveCredit] = field(default_factory=list)


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
    lock: bool = True,
    now: datetime | None = None,
    actor: Actor | None = None,
) -> ComputedFees:
    """Fees of the items, the deduction of the period's progressive billing invoices, then
    coupons and prepaid credits (finalizing only), taxes and totals (spec §12.3). `lock=False`
    reads coupons and wallets without locking them (a preview). Finalizing an invoice (with
    `actor`) issues the credit notes returning what progressive billing invoices billed beyond
    the usage, before the credit notes are applied (§21.3)."""
    builder = _FeeBuilder(invoice=invoice, context=context, currency=currency)
    for item in items:
        builder.add_item(item)
    progressive = progressive_credits(
        builder.drafts, items, exclude_invoice_id=invoice.pk if invoice is not None else None
    )
    amounts = {key: cents for credit in progressive for key, cents in credit.fee_amounts.items()}
    if amounts:
        calculation.apply_progressive_billing_credit(
            [draft.line for draft in builder.drafts], amounts
        )
    if finalizing and lock and invoice is not None and actor is not None and now is not None:
        return_excess(progressive, actor=actor, now=now)
        if any(credit.credit_note_items for credit in progressive):
            # the credit notes just issued are available to this invoice, whatever the
            # billing run read before (`has_available_credit_notes`)
            context.customer.has_available_credit_notes = True
    result = compute_drafts(
        customer=context.customer,
        drafts=builder.drafts,
        invoice=invoice,
        currency=currency,
        finalizing=finalizing,
        extra_coupons=extra_coupons,
        lock=lock,
        now=now,
        progressive_billing_credit_cents=sum(credit.amount_cents for credit in progressive),
    )
    result.progressive = progressive
    return result


def compute_drafts(
    *,
    customer: Customer,
    drafts: list[FeeDraft],
    invoice: Invoice | None,
    currency: str,
    finalizing: bool,
    extra_coupons: Sequence[calculation.CouponToApply] = (),
    lock: bool = True,
    now: datetime | None = None,
    progressive_billing_credit_cents: int = 0,
) -> ComputedFees:
    """Coupons and prepaid credits (finalizing only), taxes and totals of built fees (the
    progressive billing credit already spread on them)."""
    lines = [draft.line for draft in drafts]
    coupons: list[calculation.CouponToApply] = []
    applied: dict[str, AppliedCoupon] = {}
    prepaid = None
    credit_notes = None
    if finalizing:
        coupons, applied = _coupons_for(customer, invoice, lock=lock)
        coupons.extend(extra_coupons)
        # a customer being previewed has no credit notes; the billing run knows who has none
        if not customer._state.adding and getattr(customer, "has_available_credit_notes", True):
            credit_notes = available_credit_notes(
                customer_id=customer.pk, currency=currency, lock=lock
            )
        prepaid = _prepaid_credits(customer, currency, lines, now=now, lock=lock)
    # spec §12.3: a draft never consumes coupons nor prepaid credits (applied at finalization)
    computed = calculation.compute_invoice(
        lines,
        coupons,
        currency=currency,
        progressive_billing_credit_cents=progressive_billing_credit_cents,
        credit_note_allocator=credit_notes.allocator() if credit_notes is not None else None,
        prepaid_credit_allocator=prepaid.allocator if prepaid is not None else None,
    )
    return ComputedFees(
        drafts=drafts,
        computed=computed,
        applied_coupons=applied,
        prepaid=prepaid,
        credit_notes=credit_notes,
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
    if customer._state.adding or getattr(customer, "has_active_wallets", True) is False:
        return None  # the billing run read that the customer has no active wallet
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


# Fee columns a computation sets on a fee already saved (a pay-in-advance fee, spec §7.14).
_COMPUTED_FEE_FIELDS = (
    "invoice",
    "taxes_amount_cents",
    "taxes_precise_amount_cents",
    "taxes_rate",
    "precise_coupons_amount_cents",
    "payment_status",
    "updated_at",
)


def _persist(
    invoice: Invoice, result: ComputedFees, *, actor: Actor, now: datetime, fees_saved: bool = False
) -> None:
    """The totals on the invoice (the caller saves `AMOUNT_FIELDS`), the fees (inserted, or
    updated when `fees_saved`), their taxes, the invoice taxes, the coupon credits and the
    prepaid credits (consumed here)."""
    _apply_totals(invoice, result.computed)
    for draft in result.drafts:
        fill_fee(draft.fee, draft.line)
        draft.fee.invoice = invoice
        draft.fee.payment_status = invoice.payment_status
        if fees_saved:
            draft.fee.save(update_fields=_COMPUTED_FEE_FIELDS)
    organization_id = invoice.organization_id
    tax_by_code = {tax.code: tax for draft in result.drafts for tax in draft.taxes}
    # one statement for the fees, their taxes, the invoice taxes and the progressive billing
    # deductions (children after their parents)
    insert_rows(
        () if fees_saved else [draft.fee for draft in result.drafts],
        [
            row
            for draft in result.drafts
            for row in fee_applied_taxes(
                draft.fee, draft.line, organization_id=organization_id, tax_by_code=tax_by_code
            )
        ],
        invoice_applied_taxes(
            invoice,
            result.computed.totals.applied_taxes,
            organization_id=organization_id,
            tax_by_code=tax_by_code,
        ),
        progressive_credit_rows(invoice, result.progressive),
    )
    _consume_coupons(invoice, result.computed.coupon_credits, result.applied_coupons, now=now)
    if result.computed.totals.credit_notes_amount_cents:
        draw_credit_notes(
            invoice,
            result.computed.totals.credit_note_details,
            [draft.fee for draft in result.drafts],
            now=now,
        )
    _draw_prepaid_credits(invoice, result, actor=actor, now=now)


def _draw_prepaid_credits(
    invoice: Invoice, result: ComputedFees, *, actor: Actor, now: datetime
) -> None:
    """The wallets pay what the allocator gave (one `invoiced` transaction per wallet) and
    the invoice keeps the granted / purchased split (spec §17.5 step 4); the caller saves
    `AMOUNT_FIELDS`."""
    if result.prepaid is None or not result.computed.totals.prepaid_credit_amount_cents:
        return
    split = result.prepaid.draw(invoice_id=invoice.pk, actor=actor, now=now)
    if split.amount_cents != invoice.prepaid_credit_amount_cents:
        raise RuntimeError(f"invoice {invoice.pk}: wallets drew {split.amount_cents} cents")
    invoice.prepaid_granted_credit_amount_cents = split.granted_amount_cents
    invoice.prepaid_purchased_credit_amount_cents = split.purchased_amount_cents


def _new_invoice(
    customer: Customer,
    *,
    status: str,
    issuing_date: date,
    currency: str,
    expected_finalization_date: date | None = None,
) -> Invoice:
    """An unsaved subscription invoice of the customer: draft number, payment term and due
    date of the customer or its billing entity (spec §12.2)."""
    entity = customer.billing_entity
    net_payment_term = calculation.effective_net_payment_term(
        customer.net_payment_term, entity.net_payment_term
    )
    prefix = entity.document_number_prefix or customer.organization.document_number_prefix
    return Invoice(
        organization_id=customer.organization_id,
        billing_entity=entity,
        customer=customer,
        invoice_type=Invoice.InvoiceType.SUBSCRIPTION,
        status=status,
        number=calculation.draft_number(prefix),
        issuing_date=issuing_date,
        payment_due_date=calculation.payment_due_date(issuing_date, net_payment_term),
        net_payment_term=net_payment_term,
        expected_finalization_date=expected_finalization_date,
        currency=currency,
    )


def _clear_computation(invoice: Invoice) -> None:
    """Removes what a computation wrote on a draft (fees, taxes, coupon credits)."""
    Fee.objects.filter(invoice_id=invoice.pk, true_up_parent_fee__isnull=False).delete()
    Fee.objects.filter(invoice_id=invoice.pk).delete()
    InvoiceAppliedTax.objects.filter(invoice_id=invoice.pk).delete()
    Credit.objects.filter(invoice_id=invoice.pk, applied_coupon__isnull=False).delete()
    Credit.objects.filter(invoice_id=invoice.pk, progressive_billing_invoice__isnull=False).delete()
