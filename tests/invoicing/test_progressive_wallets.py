"""The ongoing balance of a wallet once a progressive billing invoice drew on it: the usage that
invoice billed is no longer ongoing (spec §17.4, §21.2; Lago nets the period's progressive
billing fees out of the current usage, `Wallets::Balance::AllocateOngoingUsageByWalletsService`).

V92 plan: 0.0002 per unit, threshold 20,000; the wallet holds 1,000.00 granted credits."""

from __future__ import annotations

import pytest

from billing.actors import SYSTEM
from invoicing.models import Invoice
from tests.invoicing.progressive_builders import progressive_invoices, usage, v92_billing
from tests.metering.usage.conftest import at
from tests.wallets.factories import WalletFactory, fund_wallet
from wallets.services.ongoing import wallet_refresh_ongoing_balance

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing_with_wallet(api, organization):
    billing = v92_billing(api, organization, [(20_000, False)])
    wallet = WalletFactory(organization=organization, customer=billing.customer)
    fund_wallet(wallet, "1000")
    return billing, wallet


def test_usage_a_progressive_invoice_paid_from_the_wallet_is_not_ongoing_any_more(
    billing_with_wallet,
):
    billing, wallet = billing_with_wallet
    usage(billing, "2022-12-06T10:00:00")
    [progressive] = progressive_invoices(billing)
    assert (progressive.status, progressive.prepaid_credit_amount_cents) == (
        Invoice.Status.FINALIZED,
        20_000,
    )

    wallet = wallet_refresh_ongoing_balance(
        wallet=wallet, actor=SYSTEM, now=at("2022-12-06T11:00:00")
    )

    assert wallet.balance_cents == 80_000
    assert (wallet.ongoing_usage_balance_cents, wallet.ongoing_balance_cents) == (0, 80_000)


def test_usage_beyond_the_progressive_invoice_is_ongoing(billing_with_wallet):
    billing, wallet = billing_with_wallet
    usage(billing, "2022-12-06T10:00:00")
    usage(billing, "2022-12-16T10:00:00")  # 40,000 of usage, no second threshold

    wallet = wallet_refresh_ongoing_balance(
        wallet=wallet, actor=SYSTEM, now=at("2022-12-16T11:00:00")
    )

    assert (wallet.ongoing_usage_balance_cents, wallet.ongoing_balance_cents) == (20_000, 60_000)
