"""An organization admin connects a Stripe account from the dashboard, sees the connection
without its key, then opens a customer whose card was saved at Stripe.

Screenshots go to $SCREENSHOT_DIR (stripe_*.png)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from billing.actors import SYSTEM
from billing.roles import ensure_role_groups
from billing.services import membership_set
from customers.services.customers import customer_create
from customers.services.payment_methods import payment_method_record_from_provider
from tests.e2e.conftest import SCREENSHOTS, admin_login
from tests.integrations.fake_stripe import FakeStripe

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

KEY = "sk_test_browser0123456789"


@pytest.fixture
def fake(settings, live_server):
    fake = FakeStripe().start()
    settings.STRIPE_API_BASE = fake.url
    settings.PUBLIC_URL = live_server.url
    yield fake
    fake.stop()


@pytest.fixture
def org_admin(organization):
    ensure_role_groups()
    user = get_user_model().objects.create_user("ops", "ops@example.com", "s3cret-pass")
    user.is_staff = True
    user.save()
    membership_set(organization=organization, user=user, role="admin")
    return user


def test_admin_connects_stripe_and_sees_a_customer_card(
    page, screenshot, live_server, fake, org_admin, organization
):
    admin_login(page, live_server.url, "ops", "s3cret-pass")
    page.goto(f"{live_server.url}/admin/integrations/paymentprovider/add/")
    page.fill("#id_code", "stripe_eu")
    page.fill("#id_name", "Stripe EU")
    page.fill("#id_secret_key", KEY)
    screenshot("stripe_connect")
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/integrations/paymentprovider/")
    listing = page.content()
    screenshot("stripe_connections")
    assert "Stripe EU" in listing
    assert KEY not in listing
    assert "sk_test_••••" in listing

    stripe_customer = fake.add_customer(KEY, name="Ada")
    customer = customer_create(
        organization=organization,
        values={
            "external_id": "ada",
            "name": "Ada Lovelace",
            "billing_configuration": {
                "payment_provider": "stripe",
                "payment_provider_code": "stripe_eu",
                "provider_customer_id": stripe_customer["id"],
                "provider_payment_methods": ["card", "sepa_debit"],
            },
        },
        actor=SYSTEM,
    )
    payment_method_record_from_provider(
        customer=customer,
        payment_provider_type="stripe",
        payment_provider_code="stripe_eu",
        provider_customer_id=stripe_customer["id"],
        provider_method_id="pm_browser_1",
        provider_method_type="card",
        details={"brand": "visa", "last4": "4242", "expiration_month": 4, "expiration_year": 2031},
        actor=SYSTEM,
    )
    page.goto(f"{live_server.url}/admin/customers/customer/{customer.pk}/change/")
    panel = page.locator("#c360-payment-provider")
    panel.scroll_into_view_if_needed()
    text = panel.inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    panel.screenshot(path=str(SCREENSHOTS / "stripe_customer_panel.png"))
    assert stripe_customer["id"] in text
    assert "visa •••• 4242" in text
    page.click("text=Create a checkout link to save a payment method")
    page.wait_for_selector(".messagelist .success")
    assert f"{fake.url}/checkout/" in page.locator(".messagelist").inner_text()
    screenshot("stripe_checkout_link")
