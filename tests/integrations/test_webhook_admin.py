"""The webhook pages of the dashboard: endpoints with the HMAC key, the delivery log, resend."""

from __future__ import annotations

import pytest
from django.urls import reverse

from billing.actors import SYSTEM
from customers.services.customers import customer_create
from integrations.models import WebhookDelivery, WebhookEndpoint
from tests.integrations.helpers import deliver, endpoint_for

pytestmark = pytest.mark.django_db

ENDPOINTS = reverse("admin:integrations_webhookendpoint_changelist")
DELIVERIES = reverse("admin:integrations_webhookdelivery_changelist")


def test_create_an_endpoint_with_filters(admin_client, organization):
    response = admin_client.post(
        reverse("admin:integrations_webhookendpoint_add"),
        {
            "organization": organization.pk,
            "name": "Ops",
            "webhook_url": "https://hooks.example.com/ops",
            "signature_algo": "hmac",
            "event_types": ["invoice.created", "invoice.voided"],
        },
    )

    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.name, endpoint.signature_algo) == ("Ops", "hmac")
    assert endpoint.event_types == ["invoice.created", "invoice.voided"]


def test_a_refused_url_is_explained(admin_client, organization, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False
    response = admin_client.post(
        reverse("admin:integrations_webhookendpoint_add"),
        {"organization": organization.pk, "webhook_url": "http://127.0.0.1:9/x",
         "signature_algo": "jwt"},
        follow=True,
    )  # fmt: skip

    assert "url not public" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_endpoint_page_shows_the_hmac_key(admin_client, organization):
    endpoint = endpoint_for(organization, "https://hooks.example.com/a")
    organization.refresh_from_db()

    page = admin_client.get(
        reverse("admin:integrations_webhookendpoint_change", args=[endpoint.pk])
    ).content.decode()

    assert organization.webhook_secret in page


def test_rotate_action_replaces_the_hmac_key(admin_client, organization):
    endpoint = endpoint_for(organization, "https://hooks.example.com/a")
    organization.refresh_from_db()
    before = organization.webhook_secret

    admin_client.post(
        ENDPOINTS, {"action": "rotate_hmac_key", "_selected_action": [str(endpoint.pk)]}
    )

    organization.refresh_from_db()
    assert organization.webhook_secret != before


def _failed_delivery(organization, receiver, settings):
    settings.WEBHOOK_ATTEMPTS = 1
    receiver.default_status = 500
    endpoint_for(organization, receiver.url)
    customer_create(organization=organization, values={"external_id": "c1"}, actor=SYSTEM)
    [delivery] = deliver()
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    return delivery


def test_delivery_log_filters_by_status_and_type(admin_client, organization, receiver, settings):
    _failed_delivery(organization, receiver, settings)

    def listed(query: str) -> list:
        return list(admin_client.get(f"{DELIVERIES}?{query}").context["cl"].result_list)

    [failed] = listed("status__exact=failed")
    assert failed.webhook_type == "customer.created"
    assert listed("status__exact=succeeded") == []
    assert [d.webhook_type for d in listed("webhook_type=customer.created")] == ["customer.created"]


def test_delivery_page_shows_payload_and_response(admin_client, organization, receiver, settings):
    delivery = _failed_delivery(organization, receiver, settings)

    page = admin_client.get(
        reverse("admin:integrations_webhookdelivery_change", args=[delivery.pk])
    ).content.decode()

    assert "&quot;webhook_type&quot;: &quot;customer.created&quot;" in page
    assert "try later" in page
    assert "Resend now" in page


def test_resend_sends_a_failed_delivery_again(admin_client, organization, receiver, settings):
    delivery = _failed_delivery(organization, receiver, settings)
    receiver.default_status = 200

    response = admin_client.post(
        reverse("admin:integrations_webhookdelivery_resend", args=[delivery.pk])
    )

    delivery.refresh_from_db()
    assert response.status_code == 302
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert len(receiver.requests) == 2


def test_another_organizations_deliveries_are_not_listed(
    client, django_user_model, organization, other_organization, receiver, settings
):
    from billing.models import Membership

    _failed_delivery(other_organization, receiver, settings)
    user = django_user_model.objects.create_user("fin", password="pw", is_staff=True)
    user.user_permissions.add(*_permissions())
    Membership.objects.create(organization=organization, user=user)
    client.force_login(user)

    page = client.get(DELIVERIES).content.decode()

    assert "customer.created" not in page


def _permissions():
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="integrations")
