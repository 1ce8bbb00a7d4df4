"""manage.py webhook_hmac_key prints the HMAC key alone on the last line, and rotates it."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("webhook_hmac_key", *args, stdout=out, stderr=StringIO())
    return out.getvalue().splitlines()[-1]


def test_prints_the_organization_key_alone_on_the_last_line(organization):
    key = _run("--organization", "Acme")

    organization.refresh_from_db()
    assert key == organization.webhook_secret
    assert len(key) == 64


def test_rotate_replaces_the_key(organization):
    before = _run("--organization", "Acme")

    after = _run("--organization", "Acme", "--rotate")

    organization.refresh_from_db()
    assert after != before
    assert organization.webhook_secret == after


def test_rotate_dry_run_keeps_the_key(organization):
    before = _run("--organization", "Acme")

    _run("--organization", "Acme", "--rotate", "--dry-run")

    organization.refresh_from_db()
    assert organization.webhook_secret == before


def test_an_unknown_organization_is_an_error(db):
    with pytest.raises(CommandError):
        _run("--organization", "Nobody")
