"""Fixtures shared by every app's tests: tenants, API keys and authenticated API clients."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from billing.services import api_key_create, organization_create


@pytest.fixture(autouse=True)
def _celery_join_guard_reset():
    """Eager tasks run from other threads (concurrency tests) toggle Celery's process-wide
    "a task is running" flag; a stale True makes any later `result.get()` refuse."""
    from celery.result import _set_task_join_will_block

    _set_task_join_will_block(False)


@pytest.fixture
def organization(db):
    return organization_create(name="Acme", default_currency="EUR", timezone="Europe/Paris")


@pytest.fixture
def other_organization(db):
    return organization_create(name="Globex", default_currency="USD")


@pytest.fixture
def api_key(organization):
    """(ApiKey, raw key) of the main test organization, with every permission."""
    return api_key_create(organization=organization, name="tests")


def client_for(raw_key: str | None) -> APIClient:
    client = APIClient()
    if raw_key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def api(api_key) -> APIClient:
    """DRF client authenticated as the main organization."""
    return client_for(api_key[1])


@pytest.fixture
def other_api(other_organization) -> APIClient:
    """DRF client authenticated as another tenant."""
    return client_for(api_key_create(organization=other_organization)[1])


@pytest.fixture
def lago(live_server, api_key):
    """The official lago-python-client pointed at a live test server."""
    from lago_python_client.client import Client

    return Client(api_key=api_key[1], api_url=live_server.url)
