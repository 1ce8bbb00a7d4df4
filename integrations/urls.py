"""Incoming webhooks of payment providers: `/webhooks/stripe/<organization lago_id>?code=`."""

from django.urls import path

from integrations.views import stripe_webhook

app_name = "integrations"

urlpatterns = [
    path("webhooks/stripe/<str:organization_id>", stripe_webhook, name="stripe-webhook"),
]
