"""Columns of the exports of the invoicing lists (invoices, fees, credit notes, payments):
django-import-export resources read by `billing.admin_export`.

Money columns are decimals in the currency's unit, each list with its currency column; days are
ISO dates; the fee and payment lists name their invoice by number.
"""

from __future__ import annotations

from billing.admin_export import ListResource, money_column, text_column, value_column
from invoicing.presenters import fee_display_name


class InvoiceResource(ListResource):
    """One row per invoice, as in the invoice list."""

    number = text_column("number")
    lago_id = value_column("lago_id", lambda invoice: str(invoice.pk))
    invoice_type = text_column("invoice_type")
    status = text_column("status")
    payment_status = text_column("payment_status")
    payment_overdue = value_column("payment_overdue", lambda invoice: invoice.payment_overdue)
    issuing_date = value_column("issuing_date", lambda invoice: invoice.issuing_date)
    payment_due_date = value_column("payment_due_date", lambda invoice: invoice.payment_due_date)
    customer_external_id = text_column("customer__external_id", "customer_external_id")
    customer_name = text_column("customer__name", "customer_name")
    billing_entity = text_column("billing_entity__code", "billing_entity")
    currency = text_column("currency")
    fees_amount = money_column("fees_amount", "fees_amount_cents")
    coupons_amount = money_column("coupons_amount", "coupons_amount_cents")
    taxes_amount = money_column("taxes_amount", "taxes_amount_cents")
    total_amount = money_column("total_amount", "total_amount_cents")
    total_paid_amount = money_column("total_paid_amount", "total_paid_amount_cents")

    class Meta:
        name = "Invoices"


class FeeResource(ListResource):
    """One row per fee, with its invoice and customer."""

    lago_id = value_column("lago_id", lambda fee: str(fee.pk))
    invoice_number = text_column("invoice__number", "invoice_number")
    customer_external_id = text_column("customer__external_id", "customer_external_id")
    subscription_external_id = text_column("subscription__external_id", "subscription_external_id")
    fee_type = text_column("fee_type")
    item = value_column("item", fee_display_name)
    units = value_column("units", lambda fee: fee.units)
    payment_status = text_column("payment_status")
    created_at = value_column("created_at", lambda fee: fee.created_at)
    currency = text_column("amount_currency", "currency")
    amount = money_column("amount", "amount_cents", "amount_currency")
    taxes_amount = money_column("taxes_amount", "taxes_amount_cents", "amount_currency")

    class Meta:
        name = "Fees"


class CreditNoteResource(ListResource):
    """One row per credit note, as in the credit note list."""

    number = text_column("number")
    lago_id = value_column("lago_id", lambda note: str(note.pk))
    invoice_number = text_column("invoice__number", "invoice_number")
    customer_external_id = text_column("customer__external_id", "customer_external_id")
    customer_name = text_column("customer__name", "customer_name")
    issuing_date = value_column("issuing_date", lambda note: note.issuing_date)
    reason = text_column("reason")
    credit_status = text_column("credit_status")
    refund_status = text_column("refund_status")
    currency = text_column("currency")
    taxes_amount = money_column("taxes_amount", "taxes_amount_cents")
    total_amount = money_column("total_amount", "total_amount_cents")
    credit_amount = money_column("credit_amount", "credit_amount_cents")
    refund_amount = money_column("refund_amount", "refund_amount_cents")
    offset_amount = money_column("offset_amount", "offset_amount_cents")
    balance_amount = money_column("balance_amount", "balance_amount_cents")

    class Meta:
        name = "Credit notes"


class PaymentResource(ListResource):
    """One row per payment, as in the payment list."""

    lago_id = value_column("lago_id", lambda payment: str(payment.pk))
    created_at = value_column("created_at", lambda payment: payment.created_at)
    customer_external_id = text_column("customer__external_id", "customer_external_id")
    customer_name = text_column("customer__name", "customer_name")
    invoice_number = text_column("invoice__number", "invoice_number")
    payment_type = text_column("payment_type")
    payment_status = text_column("payable_payment_status", "payment_status")
    reference = text_column("reference")
    provider_payment_id = text_column("provider_payment_id")
    payment_provider_code = text_column("payment_provider_code")
    currency = text_column("amount_currency", "currency")
    amount = money_column("amount", "amount_cents", "amount_currency")

    class Meta:
        name = "Payments"
