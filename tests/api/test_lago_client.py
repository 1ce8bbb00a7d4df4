"""The official lago-python-client works against a live server (spec: wire compatibility)."""

import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models.billing_entity import BillingEntity
from lago_python_client.models.organization import (
    Organization,
    OrganizationBillingConfiguration,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_client_updates_the_organization(lago):
    result = lago.organizations.update(
        Organization(
            default_currency="EUR",
            legal_name="Acme SAS",
            net_payment_term=30,
            billing_configuration=OrganizationBillingConfiguration(
                invoice_grace_period=2, document_locale="fr"
            ),
        )
    )
    assert result.name == "Acme"
    assert result.legal_name == "Acme SAS"
    assert result.net_payment_term == 30
    assert result.billing_configuration.invoice_grace_period == 2
    assert result.billing_configuration.document_locale == "fr"


def test_client_creates_finds_and_lists_billing_entities(lago):
    created = lago.billing_entities.create(
        BillingEntity(code="eu", name="Acme Europe", default_currency="EUR")
    )
    assert created.code == "eu"
    found = lago.billing_entities.find("eu")
    assert found.lago_id == created.lago_id
    listing = lago.billing_entities.find_all()
    assert {e.code for e in listing["billing_entities"]} == {"default", "eu"}
    assert listing["meta"]["total_count"] == 2


def test_client_sees_not_found_as_a_lago_api_error(lago):
    with pytest.raises(LagoApiError) as raised:
        lago.billing_entities.find("missing")
    assert raised.value.status_code == 404


def test_client_updates_the_issuing_date_settings_of_a_billing_entity(lago):
    from lago_python_client.models.billing_entity import (
        BillingEntityBillingConfiguration,
        BillingEntityUpdate,
    )

    updated = lago.billing_entities.update(
        BillingEntityUpdate(
            name="Acme",
            billing_configuration=BillingEntityBillingConfiguration(
                subscription_invoice_issuing_date_anchor="current_period_end",
                subscription_invoice_issuing_date_adjustment="keep_anchor",
            ),
        ),
        "default",
    )
    assert updated.subscription_invoice_issuing_date_anchor == "current_period_end"
    assert updated.subscription_invoice_issuing_date_adjustment == "keep_anchor"


def test_client_lists_with_page_zero_as_lago_answers_it(lago):
    listing = lago.billing_entities.find_all({"page": 0, "per_page": 0})
    assert [e.code for e in listing["billing_entities"]] == ["default"]
    assert listing["meta"]["current_page"] == 1
