"""Crediting a wallet top-up's credit fee beyond what the wallet still holds of the purchase
answers 422 `higher_than_wallet_balance`."""

from __future__ import annotations

import pytest

from invoicing.models import CreditNote
from tests.wallets.test_credit_invoices import buy, pay, wallet  # noqa: F401
from wallets.models import Wallet, WalletTransaction

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def _create(api, invoice, amount_cents):
    fee = invoice.fees.get()
    body = {
        "invoice_id": str(invoice.pk),
        "items": [{"fee_id": str(fee.pk), "amount_cents": amount_cents}],
        "refund_amount_cents": amount_cents,
    }
    return api.post("/api/v1/credit_notes", {"credit_note": body}, format="json")


@pytest.fixture
def spent_top_up(wallet):  # noqa: F811
    """A paid 100.00 top-up of which 70.00 were spent since: 30.00 left in the wallet."""
    tx, invoice = buy(wallet, "100")
    invoice = pay(invoice)
    WalletTransaction.objects.filter(pk=tx.pk).update(remaining_amount_cents=3000)
    Wallet.objects.filter(pk=wallet.pk).update(balance_cents=3000)
    return invoice


def test_beyond_what_the_wallet_holds_is_refused(api, spent_top_up):
    response = _create(api, spent_top_up, 5000)
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_errors"
    assert body["error_details"]["amount_cents"] == ["higher_than_wallet_balance"]
    assert not CreditNote.objects.exists()


def test_within_what_the_wallet_holds_is_accepted(api, spent_top_up):
    response = _create(api, spent_top_up, 3000)
    assert response.status_code == 200, response.json()
    assert response.json()["credit_note"]["refund_amount_cents"] == 3000


def test_a_terminated_wallet_holds_nothing(api, spent_top_up, wallet):  # noqa: F811
    Wallet.objects.filter(pk=wallet.pk).update(status=Wallet.Status.TERMINATED)
    response = _create(api, spent_top_up, 100)
    assert response.status_code == 422
    assert response.json()["error_details"]["amount_cents"] == ["higher_than_wallet_balance"]
