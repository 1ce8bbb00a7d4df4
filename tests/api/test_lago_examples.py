"""Lago's own documented request examples (getlago/lago-openapi `src/schemas/`) are accepted
and answered as Lago's serializers answer them."""

from __future__ import annotations

import pytest

from billing.models import BillingEntity

pytestmark = pytest.mark.django_db

# `BillingEntityUpdateInput` built from the `example` of each documented property (the enum
# fields without an example take their documented default); `logo` and
# `invoice_custom_section_codes` are left out: their examples are placeholders.
BILLING_ENTITY_UPDATE_EXAMPLE = {
    "name": "Acme Corp",
    "default_currency": "USD",
    "document_numbering": "per_customer",
    "document_number_prefix": "ABC-123",
    "finalize_zero_amount_invoice": True,
    "billing_configuration": {
        "invoice_footer": "Thank you for your business",
        "document_locale": "en",
        "invoice_grace_period": 0,
        "subscription_invoice_issuing_date_anchor": "next_period_start",
        "subscription_invoice_issuing_date_adjustment": "align_with_finalization_date",
    },
    "net_payment_term": 0,
    "address_line1": "5230 Penfield Ave",
    "address_line2": "Suite 100",
    "city": "Woodland Hills",
    "state": "CA",
    "country": "US",
    "zipcode": "91364",
    "email": "billing@acme.com",
    "legal_name": "Acme Corporation",
    "legal_number": "US123456789",
    "tax_identification_number": "EU123456789",
    "timezone": "UTC",
    "email_settings": ["invoice.finalized", "credit_note.created"],
    "eu_tax_management": False,
}


def test_put_billing_entity_accepts_lagos_documented_example(api, organization):
    response = api.put(
        "/api/v1/billing_entities/default",
        {"billing_entity": BILLING_ENTITY_UPDATE_EXAMPLE},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()["billing_entity"]
    # Lago's V1::BillingEntitySerializer answers these settings at the top level.
    assert body["subscription_invoice_issuing_date_anchor"] == "next_period_start"
    assert body["subscription_invoice_issuing_date_adjustment"] == "align_with_finalization_date"
    assert (body["invoice_footer"], body["invoice_grace_period"]) == (
        "Thank you for your business",
        0,
    )
    entity = BillingEntity.objects.get(organization=organization, code="default")
    assert entity.subscription_invoice_issuing_date_anchor == "next_period_start"
    assert entity.subscription_invoice_issuing_date_adjustment == "align_with_finalization_date"


@pytest.mark.parametrize("method", ["put", "post"])
def test_billing_entity_with_an_unknown_issuing_date_anchor_is_422(api, method):
    body = {"code": "eu", "name": "EU", "billing_configuration": {
        "subscription_invoice_issuing_date_anchor": "whenever"
    }}  # fmt: skip
    url = "/api/v1/billing_entities" + ("/default" if method == "put" else "")
    response = getattr(api, method)(url, {"billing_entity": body}, format="json")
    assert response.status_code == 422
    assert response.json()["error_details"] == {
        "subscription_invoice_issuing_date_anchor": ["value_is_invalid"]
    }
