"""The Stripe connection pages and the customer page's payment provider panel."""

from __future__ import annotations

import pytest

from billing.actors import SYSTEM
from customers.services.customers import customer_create
from customers.services.payment_methods import payment_method_record_from_provider
from integrations.models import PaymentProvider
from tests.integrations.conftest import SECRET_KEY

CHANGELIST = "/admin/integrations/paymentprovider/"
CONNECT = CHANGELIST + "add/"


def connect(admin_client, organization, **overrides):
    data = {
        "organization": str(organization.pk),
        "code": "stripe_eu",
        "name": "Stripe EU",
        "secret_key": SECRET_KEY,
        "success_redirect_url": "",
        **overrides,
    }
    return admin_client.post(CONNECT, data)


def test_the_connect_page_asks_for_the_key(admin_client, fake_stripe, organization):
    page = admin_client.get(CONNECT).content.decode()
    assert 'type="password"' in page
    assert "Connect a Stripe account" in page


def test_connecting_from_the_admin_registers_the_webhook(admin_client, fake_stripe, organization):
    response = connect(admin_client, organization)
    assert response.status_code == 302
    provider = PaymentProvider.objects.get()
    assert (provider.code, provider.name) == ("stripe_eu", "Stripe EU")
    assert len(fake_stripe.calls("POST", "/v1/webhook_endpoints")) == 1


def test_a_refused_key_is_shown_as_a_form_error_without_echoing_it(
    admin_client, fake_stripe, organization
):
    response = connect(admin_client, organization, secret_key="sk_test_invalid9")
    page = response.content.decode()
    assert response.status_code == 200
    assert "invalid api key" in page
    assert "sk_test_invalid9" not in page
    assert not PaymentProvider.objects.exists()


def test_a_taken_code_is_a_form_error(admin_client, stripe_connection, organization):
    page = connect(admin_client, organization, code="stripe_main").content.decode()
    assert "value already exist" in page
    assert PaymentProvider.objects.count() == 1


def test_pages_never_show_the_secrets(admin_client, stripe_connection):
    secret = stripe_connection.webhook_secret()
    listing = admin_client.get(CHANGELIST).content.decode()
    detail = admin_client.get(f"{CHANGELIST}{stripe_connection.pk}/change/").content.decode()
    for page in (listing, detail):
        assert SECRET_KEY not in page
        assert secret not in page
        assert stripe_connection.encrypted_secret_key not in page
    assert "sk_test_••••" in listing
    assert f"/webhooks/stripe/{stripe_connection.organization_id}?code=stripe_main" in detail


def test_the_remove_action_removes_the_connection_and_its_endpoint(
    admin_client, stripe_connection, fake_stripe
):
    response = admin_client.post(
        CHANGELIST,
        {"action": "remove_connections", "_selected_action": [str(stripe_connection.pk)]},
    )
    assert response.status_code == 302
    assert not PaymentProvider.objects.alive().exists()
    assert fake_stripe.calls("DELETE", "/v1/webhook_endpoints/")
    assert "stripe_main" not in admin_client.get(CHANGELIST).content.decode()


def test_staff_of_another_organization_does_not_see_the_connection(
    client, stripe_connection, other_organization, django_user_model
):
    from billing.services import membership_set

    user = django_user_model.objects.create_user("bob", password="pw", is_staff=True)
    from django.contrib.auth.models import Permission

    user.user_permissions.add(*Permission.objects.filter(codename="view_paymentprovider"))
    membership_set(organization=other_organization, user=user, role="admin")
    client.force_login(user)
    page = client.get(CHANGELIST).content.decode()
    assert "stripe_main" not in page


@pytest.fixture
def customer_with_card(stripe_connection, fake_stripe, organization):
    stripe_customer = fake_stripe.add_customer(SECRET_KEY, name="Ada")
    customer = customer_create(
        organization=organization,
        values={
            "external_id": "cus-1",
            "name": "Ada",
            "billing_configuration": {
                "payment_provider": "stripe",
                "payment_provider_code": "stripe_main",
                "provider_customer_id": stripe_customer["id"],
                "provider_payment_methods": ["card"],
            },
        },
        actor=SYSTEM,
    )
    payment_method_record_from_provider(
        customer=customer,
        payment_provider_type="stripe",
        payment_provider_code="stripe_main",
        provider_customer_id=stripe_customer["id"],
        provider_method_id="pm_card_1",
        provider_method_type="card",
        details={"brand": "visa", "last4": "4242", "expiration_month": 4, "expiration_year": 2031},
        actor=SYSTEM,
    )
    return customer


def test_the_customer_page_shows_the_stripe_customer_and_its_cards(
    admin_client, customer_with_card
):
    page = admin_client.get(f"/admin/customers/customer/{customer_with_card.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert customer_with_card.billing_configuration["provider_customer_id"] in html
    assert "visa •••• 4242" in html
    assert "04/2031" in html
    assert "pm_card_1" in html
    assert "c360-payment-provider" in html


def test_a_customer_without_provider_has_no_payment_panel(admin_client, organization):
    customer = customer_create(organization=organization, values={"external_id": "c"}, actor=SYSTEM)
    html = admin_client.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
    assert "c360-payment-provider" not in html


def test_the_customer_page_button_creates_a_checkout_link(
    admin_client, customer_with_card, fake_stripe
):
    page = admin_client.get(f"/admin/customers/customer/{customer_with_card.pk}/change/")
    url = f"{CHANGELIST}checkout-link/{customer_with_card.pk}/"
    assert url in page.content.decode()
    response = admin_client.post(url, follow=True)
    [call] = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert call.params["mode"] == "setup"
    assert f"{fake_stripe.url}/checkout/" in response.content.decode()


def test_the_checkout_link_page_refuses_a_get(admin_client, customer_with_card, fake_stripe):
    response = admin_client.get(f"{CHANGELIST}checkout-link/{customer_with_card.pk}/")
    assert response.status_code == 403
    assert fake_stripe.calls("POST", "/v1/checkout/sessions") == []
