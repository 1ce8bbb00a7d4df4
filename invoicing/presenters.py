"""How fees and invoices read, for every surface: the API, the admin and the PDF.

One place answers what a fee bills (Lago's `Fee#item_*` readers), the name it is shown under,
the window it covers and its presentation breakdowns (spec §7.13), so the three surfaces cannot
drift apart. Pure readers over loaded rows: no writes, no formatting of money (that is
`billing.money`'s), no locale (the PDF's `invoicing.locale` words them).
"""

from __future__ import annotations

from django.utils.html import format_html

from billing.money import format_money
from invoicing.models import Fee, Invoice
from metering.presentation import (
    PresentationBreakdown,
    breakdowns_from_payload,
    displayed_on_invoice,
    label,
)

# badge colours shared with the wallet admin: ok = green, warn = amber, off = red
_TAG = {
    Invoice.Status.FINALIZED: "ok",
    Invoice.PaymentStatus.SUCCEEDED: "ok",
    Invoice.Status.DRAFT: "warn",
    Invoice.PaymentStatus.PENDING: "warn",  # and Invoice.Status.PENDING
    Invoice.Status.VOIDED: "off",
    Invoice.PaymentStatus.FAILED: "off",  # and Invoice.Status.FAILED
    "overdue": "off",
    "available": "ok",  # a credit note's credit left to use
}


def tag(label: str, kind: str) -> str:
    """A coloured badge of an invoice or payment status (admin pages)."""
    return format_html('<span class="inv-tag {}">{}</span>', _TAG.get(kind, ""), label)


def payment_state(invoice: Invoice) -> tuple[str, str]:
    """Label and tag kind of the invoice's payment for people. A voided invoice leaves nothing
    to pay: it shows as voided, though its `payment_status` stays as Lago keeps it (pending)."""
    if invoice.status == Invoice.Status.VOIDED and (
        invoice.payment_status != Invoice.PaymentStatus.SUCCEEDED
    ):
        return "Voided", "voided"
    return invoice.get_payment_status_display(), invoice.payment_status


MINUS = "\u2212 "  # typographic minus before a deducted amount, as on the PDF


def total_rows(invoice: Invoice) -> list[dict]:
    """The invoice's totals in Lago's order (spec §12.3), each deduction signed, so that the
    rows add up: fees - discounts = subtotal excl. tax, + taxes = subtotal incl. tax, - credit
    notes - prepaid credits = amount due. Deductions of 0 are left out."""
    currency = invoice.currency
    rows: list[dict] = []

    def row(label: str, cents: int, kind: str = "") -> None:
        text = format_money(abs(cents), currency)
        rows.append({"label": label, "cents": cents, "kind": kind,
                     "amount": f"{MINUS}{text}" if cents < 0 else text})  # fmt: skip

    def deduction(label: str, cents: int) -> None:
        if cents:
            row(label, -cents, "deduction")

    row("Fees", invoice.fees_amount_cents)
    deduction("Progressive billing credit", invoice.progressive_billing_credit_amount_cents)
    deduction("Coupons", invoice.coupons_amount_cents)
    row("Subtotal excl. tax", invoice.sub_total_excluding_taxes_amount_cents, "subtotal")
    row("Taxes", invoice.taxes_amount_cents)
    row("Subtotal incl. tax", invoice.sub_total_including_taxes_amount_cents, "subtotal")
    deduction("Credit notes", invoice.credit_notes_amount_cents)
    deduction("Prepaid credits", invoice.prepaid_credit_amount_cents)
    row("Amount due", invoice.total_amount_cents, "total")
    return rows


def fee_item(fee: Fee) -> dict:
    """Lago's `Fee#item_*` readers, per fee type (the `item` of a `FeeObject`)."""
    item = {
        "type": fee.fee_type,
        "code": None,
        "name": None,
        "description": None,
        "invoice_display_name": None,
        "filters": None,
        "filter_invoice_display_name": None,
        "lago_item_id": None,
        "item_type": "Subscription",
        "grouped_by": fee.grouped_by or {},
    }
    own_name = fee.invoice_display_name or None
    match fee.fee_type:
        case Fee.FeeType.CHARGE if fee.charge_id:
            metric = fee.charge.billable_metric
            item.update(
                code=metric.code,
                name=metric.name,
                description=metric.description or None,
                invoice_display_name=own_name or fee.charge.invoice_display_name or metric.name,
                lago_item_id=str(metric.id),
                item_type="BillableMetric",
            )
            if fee.charge_filter_id:
                charge_filter = fee.charge_filter
                values = charge_filter.values or {}
                item["filters"] = {key: list(value) for key, value in values.items()}
                item["filter_invoice_display_name"] = charge_filter.invoice_display_name or (
                    ", ".join(str(v) for value in values.values() for v in value) or None
                )
        case Fee.FeeType.ADD_ON if fee.add_on_id:
            add_on = fee.add_on
            item.update(
                code=add_on.code,
                name=add_on.name,
                description=add_on.description or None,
                invoice_display_name=own_name or add_on.invoice_display_name or add_on.name,
                lago_item_id=str(add_on.id),
                item_type="AddOn",
            )
        case Fee.FeeType.FIXED_CHARGE if fee.fixed_charge_id:
            fixed_charge = fee.fixed_charge
            add_on = fixed_charge.add_on
            item.update(
                code=add_on.code,
                name=add_on.name,
                description=add_on.description or None,
                invoice_display_name=own_name
                or fixed_charge.invoice_display_name
                or add_on.invoice_display_name
                or add_on.name,
                lago_item_id=str(add_on.id),
                item_type="AddOn",
            )
        case Fee.FeeType.CREDIT:
            item.update(
                code="credit",
                name="credit",
                invoice_display_name=own_name or "credit",
                lago_item_id=str(fee.wallet_transaction_id) if fee.wallet_transaction_id else None,
                item_type="WalletTransaction",
            )
        case Fee.FeeType.COMMITMENT if fee.subscription_id:
            # Lago's Fee#item_* readers treat a commitment fee as a subscription one (item_type
            # "Subscription", the plan's code/name/description, the subscription's id); only its
            # display name is the commitment's, stored on the fee when it is built. The OpenAPI
            # text of `lago_item_id` also names "the commitment": V1::FeeSerializer answers the
            # subscription id, which is followed here.
            plan = fee.subscription.plan
            commitment = getattr(plan, "minimum_commitment", None)
            item.update(
                code=plan.code,
                name=plan.name,
                description=plan.description or None,
                invoice_display_name=own_name
                or (commitment.invoice_display_name if commitment else None)
                or "Minimum commitment",
                lago_item_id=str(fee.subscription_id),
                item_type="Subscription",
            )
        case _ if fee.subscription_id:
            plan = fee.subscription.plan
            item.update(
                code=plan.code,
                name=plan.name,
                description=plan.description or None,
                invoice_display_name=own_name or plan.invoice_display_name or plan.name,
                lago_item_id=str(fee.subscription_id),
                item_type="Subscription",
            )
    return item


def fee_display_name(fee: Fee, item: dict | None = None) -> str:
    """The name a fee line is shown under: its item's display name, else its type."""
    item = item if item is not None else fee_item(fee)
    return item["invoice_display_name"] or item["name"] or fee.fee_type


def fee_window(fee: Fee) -> tuple[str | None, str | None]:
    """(from, to) as stored ISO strings: the charges window of a charge fee, else the fee's own
    period (a subscription fee billed in advance covers the next period, its charges the last)."""
    props = fee.properties or {}
    if fee.fee_type == Fee.FeeType.CHARGE:
        start = props.get("charges_from_datetime") or props.get("from_datetime")
        end = props.get("charges_to_datetime") or props.get("to_datetime")
    else:
        start, end = props.get("from_datetime"), props.get("to_datetime")
    return start, end


def fee_breakdowns(fee: Fee) -> list[PresentationBreakdown]:
    """The fee's units per presentation values (spec §7.13), as stored on the fee."""
    return breakdowns_from_payload(fee.presentation_breakdowns)


def fee_breakdown_labels(fee: Fee) -> list[str]:
    """ "eu: 25.0" per presentation breakdown of the fee (admin pages)."""
    return [label(breakdown) for breakdown in fee_breakdowns(fee)]


def fee_breakdowns_on_invoice(fee: Fee) -> list[PresentationBreakdown]:
    """The breakdowns the invoice document shows: none unless the fee is a charge's and one of
    its presentation keys keeps `display_in_invoice` (the API always returns them)."""
    if not fee.presentation_breakdowns or fee.charge_id is None:
        return []
    filter_properties = fee.charge_filter.properties if fee.charge_filter_id else None
    if not displayed_on_invoice(filter_properties, fee.charge.properties):
        return []
    return fee_breakdowns(fee)
