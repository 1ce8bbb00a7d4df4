"""API-key authentication and permissions (spec §1.1, §1.5)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import ApiKey
from billing.services import api_key_create, api_key_revoke, api_key_rotate
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

UNAUTHORIZED = {"status": 401, "error": "Unauthorized"}


def test_request_without_key_is_401_envelope():
    response = client_for(None).get("/api/v1/organizations")
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_wrong_key_is_401(organization):
    response = client_for("lago_not-a-real-key").get("/api/v1/organizations")
    assert (response.status_code, response.json()) == (401, UNAUTHORIZED)


def test_malformed_authorization_header_is_401(organization):
    client = client_for(None)
    client.credentials(HTTP_AUTHORIZATION="Token abc")
    assert client.get("/api/v1/organizations").status_code == 401


def test_revoked_key_is_401(organization, api_key):
    _spare, _ = api_key_create(organization=organization, name="spare")
    api_key_revoke(api_key=api_key[0], now=timezone.now())
    assert client_for(api_key[1]).get("/api/v1/organizations").status_code == 401


def test_last_key_cannot_be_revoked(api_key):
    from billing.errors import NotAllowed

    with pytest.raises(NotAllowed):
        api_key_revoke(api_key=api_key[0], now=timezone.now())


def test_rotated_key_stays_valid_until_its_scheduled_expiry(api_key):
    _new, new_raw = api_key_rotate(api_key=api_key[0], now=timezone.now(), expires_in="24h")
    assert client_for(api_key[1]).get("/api/v1/organizations").status_code == 200
    assert client_for(new_raw).get("/api/v1/organizations").status_code == 200


def test_expired_rotated_key_is_401(api_key):
    past = timezone.now() - timedelta(hours=2)
    _, new_raw = api_key_rotate(api_key=api_key[0], now=past, expires_in="1h")
    assert client_for(api_key[1]).get("/api/v1/organizations").json() == UNAUTHORIZED
    assert client_for(new_raw).get("/api/v1/organizations").status_code == 200


def test_key_is_stored_hashed_and_shown_once(organization):
    api_key, raw = api_key_create(organization=organization, name="shown once")
    stored = ApiKey.objects.get(pk=api_key.pk)
    assert raw not in (stored.key_hash, stored.prefix)
    assert stored.prefix == raw[:9]


def test_successful_call_records_last_used_at(api, api_key):
    assert api.get("/api/v1/organizations").status_code == 200
    assert ApiKey.objects.get(pk=api_key[0].pk).last_used_at is not None


def test_missing_resource_permission_is_403(organization):
    _, raw = api_key_create(organization=organization, permissions={"customer": ["read"]})
    response = client_for(raw).get("/api/v1/billing_entities")
    assert response.status_code == 403
    assert response.json()["status"] == 403
    assert response.json()["error"] == "Forbidden"


def test_read_permission_allows_get_but_not_write(organization):
    _, raw = api_key_create(organization=organization, permissions={"organization": ["read"]})
    client = client_for(raw)
    assert client.get("/api/v1/organizations").status_code == 200
    response = client.put(
        "/api/v1/organizations", {"organization": {"city": "Lyon"}}, format="json"
    )
    assert response.status_code == 403
