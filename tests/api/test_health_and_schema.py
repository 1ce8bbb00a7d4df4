"""`/health` and the OpenAPI schema."""

import pytest
from django.core.management import call_command
from django.db import OperationalError

pytestmark = pytest.mark.django_db


def test_health_reports_database_and_eager_broker(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "eager"}


def test_health_is_503_when_the_database_is_down(client, monkeypatch):
    from django.db import connection

    def refuse(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)  # the outside (database) fails
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "unreachable"


def test_health_reports_a_reachable_redis_broker(client, settings):
    import os

    settings.CELERY_BROKER_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    from billing.celery import app

    app.conf.broker_url = settings.CELERY_BROKER_URL
    try:
        assert client.get("/health").json()["broker"] == "ok"
    finally:
        app.conf.broker_url = None


def test_openapi_schema_generates_without_warnings(tmp_path):
    target = tmp_path / "schema.json"
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", str(target))
    assert target.stat().st_size > 1000


def test_openapi_schema_is_served_and_lists_the_endpoints(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert "/api/v1/organizations" in paths
    assert "/api/v1/billing_entities/{code}" in paths


def test_interactive_docs_are_served(client):
    assert client.get("/api/docs/").status_code == 200
