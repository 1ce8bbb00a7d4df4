"""One tenant never sees another's data: 404, never 403 (STYLE §8)."""

import pytest
from django.apps import apps

pytestmark = pytest.mark.django_db


def test_other_tenant_billing_entity_is_404(api, other_api):
    other_api.post(
        "/api/v1/billing_entities", {"billing_entity": {"code": "eu", "name": "EU"}}, format="json"
    )
    response = api.get("/api/v1/billing_entities/eu")
    assert response.status_code == 404
    assert response.json()["code"] == "billing_entity_not_found"


def test_other_tenant_billing_entity_cannot_be_updated(api, other_api):
    other_api.post(
        "/api/v1/billing_entities", {"billing_entity": {"code": "eu", "name": "EU"}}, format="json"
    )
    response = api.put(
        "/api/v1/billing_entities/eu", {"billing_entity": {"name": "Hijacked"}}, format="json"
    )
    assert response.status_code == 404
    assert other_api.get("/api/v1/billing_entities/eu").json()["billing_entity"]["name"] == "EU"


def test_list_shows_only_own_billing_entities(api, other_api):
    other_api.post(
        "/api/v1/billing_entities", {"billing_entity": {"code": "eu", "name": "EU"}}, format="json"
    )
    codes = [e["code"] for e in api.get("/api/v1/billing_entities").json()["billing_entities"]]
    assert codes == ["default"]


def test_same_code_is_allowed_in_two_tenants(api, other_api):
    payload = {"billing_entity": {"code": "eu", "name": "EU"}}
    assert api.post("/api/v1/billing_entities", payload, format="json").status_code == 200
    assert other_api.post("/api/v1/billing_entities", payload, format="json").status_code == 200


def test_organization_endpoint_answers_the_keys_own_organization(api, other_api):
    assert api.get("/api/v1/organizations").json()["organization"]["name"] == "Acme"
    assert other_api.get("/api/v1/organizations").json()["organization"]["name"] == "Globex"


# Rows that are not tenant data, or that are the tenant itself.
NOT_TENANT_SCOPED = {
    "billing.Organization",
    "billing.ApiRequestLog",
    "integrations.WebhookSigningKey",  # one key pair signs every organization's JWT webhooks
}
DOMAIN_APPS = ("billing", "plans", "customers", "metering", "wallets", "invoicing", "integrations")


def test_every_domain_model_carries_its_organization():
    missing = [
        model._meta.label
        for model in apps.get_models()
        if model._meta.app_label in DOMAIN_APPS
        and model._meta.label not in NOT_TENANT_SCOPED
        and "organization" not in {f.name for f in model._meta.get_fields()}
    ]
    assert missing == []
