"""The API-key cache (`billing.api.authentication`): a cached key is refused as soon as it is
revoked, rotated away or expired, and a changed organization is read again."""

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from billing.models import ApiKey, hash_api_key
from billing.services import (
    api_key_create,
    api_key_revoke,
    api_key_rotate,
    organization_update,
)
from tests.conftest import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def key_cache(settings):
    settings.API_KEY_CACHE_SECONDS = 60
    cache.clear()
    yield
    cache.clear()


def _key_reads(client, path="/api/v1/events"):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return sum(1 for query in queries if 'FROM "billing_apikey"' in query["sql"])


def test_a_cached_key_is_not_read_again(api_key):
    client = client_for(api_key[1])
    assert _key_reads(client) == 1
    assert _key_reads(client) == 0


def test_the_cache_is_keyed_by_the_hash_never_the_raw_key(api_key):
    assert client_for(api_key[1]).get("/api/v1/events").status_code == 200
    assert cache.get(f"api-key:v1:{hash_api_key(api_key[1])}") == api_key[0]
    assert cache.get(f"api-key:v1:{api_key[1]}") is None


def test_a_revoked_key_is_refused_on_the_next_call(organization, api_key):
    api_key_create(organization=organization, name="spare")
    client = client_for(api_key[1])
    assert client.get("/api/v1/events").status_code == 200
    api_key_revoke(api_key=api_key[0], now=timezone.now())
    assert client.get("/api/v1/events").status_code == 401


def test_a_key_rotated_with_immediate_expiry_is_refused_on_the_next_call(api_key):
    client = client_for(api_key[1])
    assert client.get("/api/v1/events").status_code == 200
    _, new_raw = api_key_rotate(api_key=api_key[0], now=timezone.now(), expires_in="now")
    assert client.get("/api/v1/events").status_code == 401
    assert client_for(new_raw).get("/api/v1/events").status_code == 200


def test_a_cached_key_is_refused_once_its_rotation_delay_ends(api_key):
    client = client_for(api_key[1])
    api_key_rotate(api_key=api_key[0], now=timezone.now(), expires_in="1h")
    assert client.get("/api/v1/events").status_code == 200  # cached with its expiry
    with time_machine.travel(timezone.now() + timedelta(hours=1, seconds=1)):
        assert client.get("/api/v1/events").status_code == 401


def test_a_deleted_key_is_refused_on_the_next_call(api_key):
    client = client_for(api_key[1])
    assert client.get("/api/v1/events").status_code == 200
    ApiKey.objects.get(pk=api_key[0].pk).delete()
    assert client.get("/api/v1/events").status_code == 401


def test_a_changed_organization_drops_its_cached_keys(organization, api_key):
    """The cached key carries a copy of its organization: a change reads both again."""
    client = client_for(api_key[1])
    assert client.get("/api/v1/events").status_code == 200
    organization_update(organization=organization, values={"name": "Acme Renamed"})
    assert cache.get(f"api-key:v1:{hash_api_key(api_key[1])}") is None
    assert _key_reads(client) == 1
