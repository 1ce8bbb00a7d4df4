"""Credit notes on a wallet top-up (credit) invoice: refunded when paid, taking the credits back
from the wallet; never credited."""

from __future__ import annotations

import pytest

from billing.actors import SYSTEM
from billing.errors import Invalid
from invoicing.models import Invoice
from invoicing.services.credit_notes import ItemInput, credit_note_create
from invoicing.services.payments import invoice_update
from tests.invoicing.billing_helpers import customer, utc
from tests.wallets.factories import WalletFactory
from wallets.models import WalletTransaction
from wallets.services.transactions import wallet_top_up

pytestmark = pytest.mark.django_db

NOW = utc(2026, 3, 1)


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def paid_top_up(organization):
    wallet = WalletFactory(organization=organization, customer=customer(organization))
    [purchase] = wallet_top_up(wallet=wallet, paid_credits="50", actor=SYSTEM, now=NOW)
    invoice = Invoice.objects.get(pk=purchase.invoice_id)
    invoice_update(invoice=invoice, payment_status="succeeded", actor=SYSTEM, now=NOW)
    invoice.refresh_from_db()
    wallet.refresh_from_db()
    return wallet, invoice


def test_refunding_a_top_up_voids_its_credits_in_the_wallet(organization):
    wallet, invoice = paid_top_up(organization)
    assert wallet.balance_cents == 5000
    fee = invoice.fees.get()
    note = credit_note_create(
        invoice=invoice,
        actor=SYSTEM,
        now=NOW,
        items=[ItemInput(str(fee.pk), 2000)],
        refund_amount_cents=2000,
    )
    wallet.refresh_from_db()
    assert wallet.balance_cents == 3000
    voided = WalletTransaction.objects.get(wallet=wallet, transaction_status="voided")
    assert (voided.amount_cents, voided.credit_note_id) == (2000, note.pk)


def test_a_top_up_cannot_be_credited(organization):
    _, invoice = paid_top_up(organization)
    fee = invoice.fees.get()
    with pytest.raises(Invalid) as error:
        credit_note_create(
            invoice=invoice,
            actor=SYSTEM,
            now=NOW,
            items=[ItemInput(str(fee.pk), 2000)],
            credit_amount_cents=2000,
        )
    assert error.value.details["credit_amount_cents"] == ["cannot_credit_invoice"]
