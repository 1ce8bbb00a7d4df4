"""POST /customers/{external_id}/checkout_url and /customers/{external_id}/payment_methods."""

from __future__ import annotations

import pytest

from billing.actors import SYSTEM
from customers.models import Customer, PaymentMethod
from customers.services.customers import customer_create
from customers.services.payment_methods import payment_method_record_from_provider
from tests.integrations.conftest import SECRET_KEY


@pytest.fixture
def linked(stripe_connection, fake_stripe, organization):
    """A customer linked to a Stripe customer (no sync: the test drives Stripe itself)."""
    stripe_customer = fake_stripe.add_customer(SECRET_KEY, name="Ada")
    customer = customer_create(
        organization=organization,
        values={
            "external_id": "cus-1",
            "currency": "EUR",
            "billing_configuration": {
                "payment_provider": "stripe",
                "payment_provider_code": "stripe_main",
                "provider_customer_id": stripe_customer["id"],
                "provider_payment_methods": ["card", "sepa_debit"],
            },
        },
        actor=SYSTEM,
    )
    return customer


def record(customer: Customer, fake_stripe, *, last4: str = "4242") -> PaymentMethod:
    config = customer.billing_configuration
    pm = fake_stripe.add_payment_method(
        SECRET_KEY, customer=config["provider_customer_id"], last4=last4
    )
    return payment_method_record_from_provider(
        customer=customer,
        payment_provider_type="stripe",
        payment_provider_code="stripe_main",
        provider_customer_id=config["provider_customer_id"],
        provider_method_id=pm["id"],
        provider_method_type="card",
        details={"brand": "visa", "last4": last4},
        actor=SYSTEM,
    )


def test_checkout_url_answers_a_setup_checkout_link(linked, api, fake_stripe):
    response = api.post("/api/v1/customers/cus-1/checkout_url")
    assert response.status_code == 200, response.json()
    [call] = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert response.json() == {
        "customer": {
            "lago_customer_id": str(linked.pk),
            "external_customer_id": "cus-1",
            "payment_provider": "stripe",
            "payment_provider_code": "stripe_main",
            "checkout_url": fake_stripe.get(
                next(
                    o["id"]
                    for o in fake_stripe.objects.values()
                    if o["object"] == "checkout.session"
                )
            )["url"],
        }
    }
    assert call.params == {
        "mode": "setup",
        "customer": linked.billing_configuration["provider_customer_id"],
        "payment_method_types": ["card", "sepa_debit"],
        "success_url": "https://stripe.com/",
    }


def test_checkout_url_of_a_customer_without_provider_is_a_422(api, organization):
    customer_create(organization=organization, values={"external_id": "cus-2"}, actor=SYSTEM)
    response = api.post("/api/v1/customers/cus-2/checkout_url")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"base": ["no_linked_payment_provider"]}


def test_checkout_url_without_a_method_to_set_up_is_a_422(stripe_connection, api, organization):
    customer_create(
        organization=organization,
        values={
            "external_id": "cus-3",
            "currency": "USD",
            "billing_configuration": {
                "payment_provider": "stripe",
                "provider_customer_id": "cus_x",
                "provider_payment_methods": ["customer_balance"],
            },
        },
        actor=SYSTEM,
    )
    response = api.post("/api/v1/customers/cus-3/checkout_url")
    assert response.status_code == 422
    assert response.json()["error_details"] == {
        "provider_payment_methods": ["no_payment_methods_to_setup_available"]
    }


def test_checkout_url_of_an_unknown_customer_is_a_404(api, db):
    response = api.post("/api/v1/customers/nobody/checkout_url")
    assert response.status_code == 404
    assert response.json()["code"] == "customer_not_found"


def test_another_organization_cannot_get_a_checkout_link(linked, other_api, fake_stripe):
    assert other_api.post("/api/v1/customers/cus-1/checkout_url").status_code == 404
    assert fake_stripe.calls("POST", "/v1/checkout/sessions") == []


def test_payment_methods_are_listed_newest_first(linked, api, fake_stripe):
    first = record(linked, fake_stripe, last4="1111")
    second = record(linked, fake_stripe, last4="2222")
    body = api.get("/api/v1/customers/cus-1/payment_methods").json()
    assert [m["lago_id"] for m in body["payment_methods"]] == [str(second.pk), str(first.pk)]
    assert body["payment_methods"][0] == {
        "lago_id": str(second.pk),
        "is_default": True,
        "payment_provider_code": "stripe_main",
        "payment_provider_name": "Stripe",
        "payment_provider_type": "stripe",
        "provider_method_id": second.provider_method_id,
        "created_at": body["payment_methods"][0]["created_at"],
    }
    assert body["payment_methods"][1]["is_default"] is False
    assert body["meta"]["total_count"] == 2


def test_set_as_default_changes_the_default_here_and_at_stripe(linked, api, fake_stripe):
    first = record(linked, fake_stripe, last4="1111")
    record(linked, fake_stripe, last4="2222")
    response = api.put(f"/api/v1/customers/cus-1/payment_methods/{first.pk}/set_as_default")
    assert response.status_code == 200
    assert response.json()["payment_method"]["is_default"] is True
    assert PaymentMethod.objects.get(is_default=True) == first
    stripe_customer = fake_stripe.get(linked.billing_configuration["provider_customer_id"])
    assert stripe_customer["invoice_settings"]["default_payment_method"] == first.provider_method_id


def test_delete_removes_the_method_from_the_list(linked, api, fake_stripe):
    method = record(linked, fake_stripe)
    response = api.delete(f"/api/v1/customers/cus-1/payment_methods/{method.pk}")
    assert response.status_code == 200
    assert response.json()["payment_method"]["is_default"] is False
    assert api.get("/api/v1/customers/cus-1/payment_methods").json()["payment_methods"] == []


@pytest.mark.parametrize("lago_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_an_unknown_payment_method_is_a_404(linked, api, lago_id):
    response = api.delete(f"/api/v1/customers/cus-1/payment_methods/{lago_id}")
    assert response.status_code == 404
    assert response.json()["code"] == "payment_method_not_found"


def test_another_organization_sees_no_payment_method(linked, api, other_api, fake_stripe):
    method = record(linked, fake_stripe)
    assert other_api.get("/api/v1/customers/cus-1/payment_methods").status_code == 404
    url = f"/api/v1/customers/cus-1/payment_methods/{method.pk}"
    assert other_api.delete(url).status_code == 404
    assert other_api.put(url + "/set_as_default").status_code == 404
    assert PaymentMethod.objects.alive().count() == 1


def test_the_list_reads_a_bounded_number_of_queries(
    linked, api, fake_stripe, django_assert_max_num_queries
):
    for last4 in ("1111", "2222", "3333"):
        record(linked, fake_stripe, last4=last4)
    with django_assert_max_num_queries(12):
        assert api.get("/api/v1/customers/cus-1/payment_methods").status_code == 200
