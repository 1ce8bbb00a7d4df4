"""manage.py connect_stripe."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from integrations.models import PaymentProvider
from tests.integrations.conftest import SECRET_KEY


def run(*args: str, stdin: str = "") -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    import sys

    saved = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        call_command("connect_stripe", *args, stdout=out, stderr=err)
    finally:
        sys.stdin = saved
    return out.getvalue(), err.getvalue()


def test_connects_and_prints_the_webhook_url_but_never_the_key(fake_stripe, organization):
    out, err = run(
        "--organization", "Acme", "--code", "stripe_eu", "--secret-key", SECRET_KEY, "--name", "EU"
    )
    provider = PaymentProvider.objects.get()
    assert (provider.code, provider.name) == ("stripe_eu", "EU")
    assert f"/webhooks/stripe/{organization.pk}?code=stripe_eu" in out
    assert SECRET_KEY not in out + err
    assert len(fake_stripe.calls("POST", "/v1/webhook_endpoints")) == 1


def test_reads_the_key_from_standard_input(fake_stripe, organization):
    run("--organization", "Acme", "--code", "s", "--secret-key", "-", stdin=SECRET_KEY + "\n")
    assert PaymentProvider.objects.get().secret_key() == SECRET_KEY


def test_dry_run_calls_stripe_for_nothing_and_stores_nothing(fake_stripe, organization):
    out, _ = run("--organization", "Acme", "--code", "s", "--secret-key", SECRET_KEY, "--dry-run")
    assert "would register" in out
    assert fake_stripe.requests == []
    assert not PaymentProvider.objects.exists()


def test_an_unknown_organization_fails(fake_stripe, organization):
    with pytest.raises(CommandError):
        run("--organization", "Nope", "--code", "s", "--secret-key", SECRET_KEY)


def test_a_refused_key_fails_without_printing_it(fake_stripe, organization):
    with pytest.raises(CommandError) as caught:
        run("--organization", "Acme", "--code", "s", "--secret-key", "sk_test_invalid1")
    assert "invalid_api_key" in str(caught.value)
    assert "sk_test_invalid1" not in str(caught.value)
