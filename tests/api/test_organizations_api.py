"""`/organizations` and `/billing_entities` (spec §2)."""

import pytest

from billing.models import BillingEntity

pytestmark = pytest.mark.django_db


def test_get_organization_renders_lago_fields(api, organization):
    body = api.get("/api/v1/organizations").json()["organization"]
    assert body["lago_id"] == str(organization.id)
    assert body["default_currency"] == "EUR"
    assert body["timezone"] == "Europe/Paris"
    assert body["billing_configuration"] == {
        "invoice_footer": None,
        "invoice_grace_period": 0,
        "document_locale": "en",
    }
    assert body["document_numbering"] == "per_customer"


def test_put_organization_updates_and_mirrors_the_default_billing_entity(api, organization):
    payload = {
        "organization": {
            "legal_name": "Acme SAS",
            "net_payment_term": 15,
            "document_numbering": "per_organization",
            "billing_configuration": {"invoice_grace_period": 3, "document_locale": "fr"},
        }
    }
    body = api.put("/api/v1/organizations", payload, format="json").json()["organization"]
    assert body["legal_name"] == "Acme SAS"
    assert body["net_payment_term"] == 15
    assert body["billing_configuration"]["invoice_grace_period"] == 3
    entity = BillingEntity.objects.get(organization=organization, is_default=True)
    assert (entity.legal_name, entity.net_payment_term, entity.document_locale) == (
        "Acme SAS",
        15,
        "fr",
    )
    assert entity.document_numbering == "per_billing_entity"


def test_put_organization_rejects_an_unknown_timezone(api):
    response = api.put(
        "/api/v1/organizations", {"organization": {"timezone": "Mars/Olympus"}}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == {"timezone": ["invalid_timezone"]}


def test_new_organization_has_a_default_billing_entity(organization):
    entity = organization.default_billing_entity()
    assert entity is not None
    assert entity.code == "default"
    assert entity.document_number_prefix.startswith("ACM-")
    assert len(entity.document_number_prefix) == 8


def test_create_billing_entity(api):
    payload = {
        "billing_entity": {
            "code": "eu",
            "name": "Acme Europe",
            "default_currency": "EUR",
            "document_number_prefix": "acme-eu",
            "billing_configuration": {"invoice_grace_period": 2, "document_locale": "de"},
        }
    }
    response = api.post("/api/v1/billing_entities", payload, format="json")
    assert response.status_code == 200
    body = response.json()["billing_entity"]
    assert body["code"] == "eu"
    assert body["is_default"] is False
    assert body["document_number_prefix"] == "ACME-EU"
    assert body["invoice_grace_period"] == 2
    assert body["document_locale"] == "de"


def test_billing_entity_code_is_immutable(api):
    response = api.put(
        "/api/v1/billing_entities/default",
        {"billing_entity": {"code": "renamed", "name": "Renamed"}},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["billing_entity"]["code"] == "default"
    assert response.json()["billing_entity"]["name"] == "Renamed"


def test_billing_entity_requires_a_name(api):
    response = api.post(
        "/api/v1/billing_entities", {"billing_entity": {"code": "x"}}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["error_details"] == {"name": ["value_is_mandatory"]}


def test_billing_entity_default_taxes_by_code(api):
    api.post(
        "/api/v1/taxes", {"tax": {"name": "VAT", "code": "vat_fr", "rate": "20"}}, format="json"
    )
    payload = {"billing_entity": {"code": "fr", "name": "Acme FR", "tax_codes": ["vat_fr"]}}
    body = api.post("/api/v1/billing_entities", payload, format="json").json()["billing_entity"]
    assert [t["code"] for t in body["taxes"]] == ["vat_fr"]
    cleared = api.put(
        "/api/v1/billing_entities/fr", {"billing_entity": {"tax_codes": []}}, format="json"
    ).json()["billing_entity"]
    assert cleared["taxes"] == []


def test_billing_entity_with_an_unknown_tax_code_is_refused_whole(api):
    payload = {"billing_entity": {"code": "fr", "name": "Acme FR", "tax_codes": ["nope"]}}
    response = api.post("/api/v1/billing_entities", payload, format="json")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"tax_codes": ["tax_not_found"]}
    assert api.get("/api/v1/billing_entities/fr").status_code == 404
