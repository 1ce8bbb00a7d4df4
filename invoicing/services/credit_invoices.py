"""Credit invoices: the invoice of a paid wallet top-up (spec §12.2 `credit`, §17.3, §19.3).

A top-up with paid credits creates a pending `purchased` wallet transaction; `wallets` then
asks for its invoice through the `wallets.ports.create_paid_credits_invoice` port, which
`invoicing/apps.py` binds to `credit_invoice_create`. The invoice has one `credit` fee for
the transaction's amount: no taxes, coupons, credit notes nor prepaid credits.

- `invoice_requires_successful_payment` false: finalized at once (number, PDF after commit,
  `invoice.paid_credit_added`); the credits settle when the invoice payment succeeds.
- true: the invoice stays `open` (internal, not visible, no number) until its payment succeeds;
  then the credits settle and it is finalized (issuing and due dates = that day, number,
  `invoice.paid_credit_added`, PDF) - Lago's `Invoices::FinalizeOpenCreditService`.
- payment failed: the transaction fails (the balance never moved); the invoice stays as it is.
- void of a credit invoice whose credits are still pending: the transaction fails (it can no
  longer be paid). Credits already settled stay in the wallet.

Lock order (shared with the finalization of subscription invoices): invoice row, then wallet,
then the numbering sequences - the wallet is settled before an open invoice takes its number.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction

from billing.actors import Actor
from billing.errors import NotAllowed
from billing.money import round_cents, to_minor
from billing.periods import local_date
from customers.models import Customer
from invoicing import calculation, hooks
from invoicing.models import Fee, Invoice
from invoicing.services.analytics_figures import figures_record, invoice_is_counted
from invoicing.services.events import emit_invoice_event
from invoicing.services.numbering import invoice_assign_number
from wallets.locks import lock_wallet
from wallets.models import Wallet, WalletTransaction
from wallets.services import ledger

logger = logging.getLogger(__name__)

Status = Invoice.Status
PAID_CREDIT_ADDED = "invoice.paid_credit_added"


def _render_pdf_after_commit(invoice_id: str) -> None:
    if not getattr(settings, "INVOICE_PDF_ON_FINALIZE", True):
        return
    from invoicing.pdf import generate_invoice_pdf_task

    generate_invoice_pdf_task.delay(invoice_id)


def _today(customer: Customer, now: datetime) -> date:
    return local_date(now, ZoneInfo(customer.applicable_timezone))


def _finalize(
    invoice: Invoice, *, actor: Actor, now: datetime, update_fields: tuple[str, ...] = ()
) -> None:
    """Number, `finalized`, `invoice.paid_credit_added`, PDF after commit."""
    invoice.status = Status.FINALIZED
    invoice.finalized_at = now
    invoice_assign_number(invoice=invoice, now=now, save=False)
    invoice.save(
        update_fields=[
            *update_fields, "status", "finalized_at", "number", "sequential_id",
            "billing_entity_sequential_id", "updated_at",
        ]
    )  # fmt: skip
    if invoice_is_counted(invoice):
        figures_record(invoice=invoice, sign=1)
    emit_invoice_event(invoice, PAID_CREDIT_ADDED, actor=actor)
    invoice_id = str(invoice.pk)
    transaction.on_commit(lambda: _render_pdf_after_commit(invoice_id), robust=True)


def credit_invoice_create(
    *, transaction: WalletTransaction, actor: Actor, now: datetime
) -> Invoice:
    """The `credit` invoice of a pending purchased transaction, in the caller's transaction
    (bound to the `wallets.ports.create_paid_credits_invoice` port).

    The transaction gets the invoice's id (`invoice_id`). Never locks the customer: the caller
    holds the wallet lock, and billing locks the customer before the wallet.
    """
    tx = transaction
    if (
        tx.transaction_type != WalletTransaction.TransactionType.INBOUND
        or tx.transaction_status != WalletTransaction.TransactionStatus.PURCHASED
        or tx.status != WalletTransaction.Status.PENDING
    ):
        raise NotAllowed("transaction_not_pending")
    wallet: Wallet = lock_wallet(tx.wallet_id)  # held already by a top-up: no new wait
    customer = Customer.objects.select_related("billing_entity", "organization").get(
        pk=wallet.customer_id
    )
    entity = customer.billing_entity
    currency = wallet.currency
    today = _today(customer, now)
    net_payment_term = calculation.effective_net_payment_term(
        customer.net_payment_term, entity.net_payment_term
    )
    amount_cents = tx.amount_cents
    paid = amount_cents == 0
    open_until_paid = tx.invoice_requires_successful_payment and not paid
    invoice = Invoice(
        organization_id=wallet.organization_id,
        billing_entity=entity,
        customer=customer,
        invoice_type=Invoice.InvoiceType.CREDIT,
        status=Status.OPEN if open_until_paid else Status.GENERATING,
        payment_status=(Invoice.PaymentStatus.SUCCEEDED if paid else Invoice.PaymentStatus.PENDING),
        issuing_date=today,
        payment_due_date=calculation.payment_due_date(today, net_payment_term),
        net_payment_term=net_payment_term,
        currency=currency,
        fees_amount_cents=amount_cents,
        sub_total_excluding_taxes_amount_cents=amount_cents,
        sub_total_including_taxes_amount_cents=amount_cents,
        total_amount_cents=amount_cents,
    )
    invoice.save(force_insert=True)
    rate = Decimal(wallet.rate_amount)
    Fee.objects.create(
        organization_id=wallet.organization_id,
        invoice=invoice,
        customer=customer,
        wallet_transaction=tx,
        fee_type=Fee.FeeType.CREDIT,
        amount_cents=amount_cents,
        precise_amount_cents=Decimal(amount_cents),
        amount_currency=currency,
        units=tx.credit_amount,
        unit_amount_cents=round_cents(to_minor(rate, currency)),
        precise_unit_amount=rate,
        payment_status=invoice.payment_status,
    )
    WalletTransaction.objects.filter(pk=tx.pk).update(invoice_id=invoice.pk)
    tx.invoice_id = invoice.pk
    if not open_until_paid:
        _finalize(invoice, actor=actor, now=now)
    if paid:  # nothing to pay: the credits are there at once
        ledger.inbound_settle(transaction_id=tx.pk, actor=actor, now=now)
    else:  # Lago: a payment provider collects it, open or finalized
        hooks.on_credit_invoice_created.fire_after_commit(invoice_id=invoice.pk)
    return invoice


def purchase_of(invoice: Invoice) -> UUID | None:
    """The wallet transaction a credit invoice bills."""
    return (
        Fee.objects.filter(
            invoice_id=invoice.pk,
            fee_type=Fee.FeeType.CREDIT,
            wallet_transaction__isnull=False,
        )
        .values_list("wallet_transaction_id", flat=True)
        .first()
    )


def credit_invoice_payment_changed(*, invoice: Invoice, actor: Actor, now: datetime) -> None:
    """After the payment status of a credit invoice changed (its row locked by the caller):
    succeeded settles the credits (and finalizes an open invoice), failed fails them."""
    if invoice.invoice_type != Invoice.InvoiceType.CREDIT:
        return
    transaction_id = purchase_of(invoice)
    if transaction_id is None:
        return
    if invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED:
        ledger.inbound_settle(
            transaction_id=transaction_id, actor=actor, now=now
        )  # failed ones too
        Fee.objects.filter(invoice_id=invoice.pk).update(
            payment_status=Fee.PaymentStatus.SUCCEEDED, succeeded_at=now
        )
        if invoice.status == Status.OPEN:
            today = _today(invoice.customer, now)
            invoice.issuing_date = invoice.payment_due_date = today
            _finalize(
                invoice, actor=actor, now=now, update_fields=("issuing_date", "payment_due_date")
            )
    elif invoice.payment_status == Invoice.PaymentStatus.FAILED:
        ledger.inbound_fail(transaction_id=transaction_id, actor=actor, now=now)
        Fee.objects.filter(invoice_id=invoice.pk).update(
            payment_status=Fee.PaymentStatus.FAILED, failed_at=now
        )


def credit_invoice_voided(*, invoice: Invoice, actor: Actor, now: datetime) -> None:
    """A voided credit invoice can no longer be paid: its pending purchase fails."""
    if invoice.invoice_type != Invoice.InvoiceType.CREDIT:
        return
    transaction_id = purchase_of(invoice)
    if transaction_id is not None:
        ledger.inbound_fail(transaction_id=transaction_id, actor=actor, now=now)
