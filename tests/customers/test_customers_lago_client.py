"""The official lago-python-client against a live server: customers and applied coupons."""

import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models.applied_coupon import AppliedCoupon
from lago_python_client.models.customer import (
    Address,
    Customer,
    CustomerBillingConfiguration,
    Metadata,
    MetadataList,
)

from tests.plans.factories import CouponFactory, TaxFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_client_creates_a_customer_with_every_nested_object(lago, organization):
    TaxFactory(organization=organization, code="vat_20")
    created = lago.customers.create(
        Customer(
            external_id="acme",
            name="Acme",
            customer_type="company",
            country="FR",
            currency="EUR",
            timezone="Europe/Paris",
            email="billing@acme.example",
            net_payment_term=30,
            finalize_zero_amount_invoice="skip",
            billing_configuration=CustomerBillingConfiguration(
                invoice_grace_period=3, document_locale="fr"
            ),
            shipping_address=Address(city="Rouen", country="FR"),
            metadata=MetadataList(
                __root__=[Metadata(key="crm_id", value="42", display_in_invoice=True)]
            ),
            tax_codes=["vat_20"],
        )
    )
    assert created.external_id == "acme"
    assert created.applicable_timezone == "Europe/Paris"
    assert created.billing_configuration.invoice_grace_period == 3
    assert created.shipping_address.city == "Rouen"
    assert created.metadata.__root__[0].key == "crm_id"
    assert created.taxes.__root__[0].code == "vat_20"
    assert created.billing_entity_code == "default"


def test_client_upserts_finds_and_lists_customers(lago):
    first = lago.customers.create(Customer(external_id="acme", name="Acme"))
    second = lago.customers.create(Customer(external_id="acme", name="Acme Corp"))
    assert second.lago_id == first.lago_id
    assert lago.customers.find("acme").name == "Acme Corp"
    lago.customers.create(Customer(external_id="globex", name="Globex", country="US"))
    listing = lago.customers.find_all({"countries[]": ["US"]})
    assert [c.external_id for c in listing["customers"]] == ["globex"]
    assert lago.customers.find_all()["meta"]["total_count"] == 2


def test_client_destroys_a_customer(lago):
    lago.customers.create(Customer(external_id="acme", name="Acme"))
    assert lago.customers.destroy("acme").external_id == "acme"
    with pytest.raises(LagoApiError) as raised:
        lago.customers.find("acme")
    assert raised.value.status_code == 404


def test_client_sees_validation_errors(lago):
    with pytest.raises(LagoApiError) as raised:
        lago.customers.create(Customer(external_id="acme", country="XX"))
    assert raised.value.status_code == 422


def test_client_applies_and_lists_applied_coupons(lago, organization):
    lago.customers.create(Customer(external_id="acme", name="Acme"))
    CouponFactory(organization=organization, code="welcome", amount_cents=1500)
    created = lago.applied_coupons.create(
        AppliedCoupon(external_customer_id="acme", coupon_code="welcome", amount_cents=1200)
    )
    assert (created.coupon_code, created.amount_cents, created.status) == (
        "welcome",
        1200,
        "active",
    )
    listing = lago.applied_coupons.find_all({"external_customer_id": "acme"})
    assert [c.lago_id for c in listing["applied_coupons"]] == [created.lago_id]
    assert listing["applied_coupons"][0].credits.__root__ == []
    terminated = lago.applied_coupons.destroy("acme", created.lago_id)
    assert terminated.status == "terminated"


def test_client_reads_a_billing_configuration_without_provider_keys(lago):
    created = lago.customers.create(
        Customer(
            external_id="bare",
            billing_configuration=CustomerBillingConfiguration(invoice_grace_period=1),
        )
    )
    config = created.billing_configuration
    assert config.invoice_grace_period == 1
    assert (config.payment_provider, config.provider_customer_id, config.sync) == (
        None,
        None,
        None,
    )
