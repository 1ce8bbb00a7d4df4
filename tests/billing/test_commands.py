"""Ops commands: create_organization, create_api_key, seed_demo."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from billing.models import ApiKey, BillingEntity, Organization
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_create_organization_comes_with_a_default_billing_entity():
    run("create_organization", "Initech", "--currency", "GBP", "--timezone", "Europe/London")
    organization = Organization.objects.get(name="Initech")
    assert organization.default_currency == "GBP"
    assert BillingEntity.objects.get(organization=organization).is_default


def test_create_organization_refuses_a_bad_currency():
    with pytest.raises(CommandError):
        run("create_organization", "Initech", "--currency", "ZZZ")


def test_create_api_key_prints_a_working_key_on_its_last_line(organization):
    output = run("create_api_key", "--organization", "Acme", "--name", "ops")
    raw = output.strip().splitlines()[-1]
    assert client_for(raw).get("/api/v1/organizations").status_code == 200


def test_create_api_key_for_an_unknown_organization_fails():
    with pytest.raises(CommandError):
        run("create_api_key", "--organization", "Nobody")


def _table_counts() -> dict[str, int]:
    counts = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            if table.startswith(("billing_", "plans_", "customers_", "wallets_", "invoicing_")):
                cursor.execute(f'SELECT COUNT(*) FROM "{table}"')
                counts[table] = cursor.fetchone()[0]
    return counts


def test_seed_demo_is_idempotent_and_prints_credentials():
    first = run("seed_demo")
    counts = _table_counts()
    second = run("seed_demo")
    assert _table_counts() == counts
    assert first == second
    raw = first.split("api key: ")[1].strip()
    assert client_for(raw).get("/api/v1/organizations").json()["organization"]["name"] == (
        "Demo Company"
    )
    assert get_user_model().objects.get(username="admin").check_password("admin")
    assert ApiKey.objects.count() == 1
