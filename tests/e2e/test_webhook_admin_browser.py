"""An admin registers a webhook endpoint, finds a failed delivery in the log, reads its payload
and response, and resends it. Screenshots go to $SCREENSHOT_DIR (webhook_*.png)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from billing.actors import SYSTEM
from customers.services.customers import customer_create
from integrations.models import WebhookDelivery
from tests.e2e.conftest import admin_login
from tests.integrations.helpers import deliver
from tests.integrations.receiver import running_receiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_register_an_endpoint_then_resend_a_failed_delivery(
    live_server, page, screenshot, organization, settings
):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = True
    settings.WEBHOOK_ATTEMPTS = 1
    get_user_model().objects.create_superuser("boss", "boss@example.com", "s3cret-pass")
    with running_receiver(default_status=503) as receiver:
        admin_login(page, live_server.url, "boss", "s3cret-pass")
        page.goto(f"{live_server.url}/admin/integrations/webhookendpoint/add/")
        page.fill("#id_name", "Finance ERP")
        page.fill("#id_webhook_url", receiver.url)
        page.select_option("#id_signature_algo", "hmac")
        page.check("input[value='invoice.created']")
        page.check("input[value='customer.created']")
        page.click("[name=_continue]")
        page.wait_for_selector("text=HMAC key of the organization")
        screenshot("webhook_endpoint")

        customer_create(organization=organization, values={"external_id": "c1"}, actor=SYSTEM)
        deliver()
        page.goto(f"{live_server.url}/admin/integrations/webhookdelivery/?status__exact=failed")
        page.wait_for_selector("text=customer.created")
        screenshot("webhook_delivery_log")

        delivery = WebhookDelivery.objects.get()
        receiver.default_status = 200
        page.goto(f"{live_server.url}/admin/integrations/webhookdelivery/{delivery.pk}/change/")
        screenshot("webhook_delivery")
        page.click("text=Resend now")
        page.wait_for_selector("text=Queued for one more attempt")

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert len(receiver.requests) == 2
