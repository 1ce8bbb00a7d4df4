"""manage.py check_wallets: stored balances against the ledger (spec §17.3 integrity)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.wallets.factories import WalletFactory, fund_wallet
from wallets.models import Wallet

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    try:
        call_command("check_wallets", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code), out.getvalue() + err.getvalue()
    return 0, out.getvalue() + err.getvalue()


def test_clean_ledgers_exit_0(organization):
    wallet = WalletFactory(organization=organization)
    fund_wallet(wallet, "10")
    code, output = run()
    assert code == 0
    assert "1 wallets checked, no drift" in output


def test_a_corrupted_balance_is_reported_with_exit_1(organization):
    wallet = WalletFactory(organization=organization, code="main")
    fund_wallet(wallet, "10")
    Wallet.objects.filter(pk=wallet.pk).update(balance_cents=1_234)
    code, output = run()
    assert code == 1
    assert f"wallet {wallet.pk}" in output
    assert "balance_cents stored 1234, ledger 1000" in output
    assert "1 of 1 wallets drift" in output


def test_a_corrupted_credits_balance_is_reported(organization):
    wallet = WalletFactory(organization=organization)
    fund_wallet(wallet, "10")
    Wallet.objects.filter(pk=wallet.pk).update(credits_balance=11)
    code, output = run()
    assert code == 1
    assert "credits_balance" in output


def test_organization_option_limits_the_check(organization, other_organization):
    mine = WalletFactory(organization=organization)
    theirs = WalletFactory(organization=other_organization)
    fund_wallet(mine, "1")
    fund_wallet(theirs, "1")
    Wallet.objects.filter(pk=theirs.pk).update(balance_cents=5)
    assert run("--organization", organization.name)[0] == 0
    assert run("--organization", str(organization.pk))[0] == 0
    assert run("--organization", other_organization.name)[0] == 1


def test_unknown_organization_is_an_error(organization):
    with pytest.raises(CommandError):
        call_command("check_wallets", "--organization", "nobody")
