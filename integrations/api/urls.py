"""Routes of the integrations API: payment methods and checkout links of customers (payment
providers), `/webhook_endpoints` and `/webhooks/*public_key`."""

from django.urls import path

from integrations.api.invoice_payments import InvoicePaymentUrlView, InvoiceRetryPaymentView
from integrations.api.views import (
    CustomerCheckoutUrlView,
    CustomerPaymentMethodViewSet,
    WebhookEndpointViewSet,
    WebhookJsonPublicKeyView,
    WebhookPublicKeyView,
)

urlpatterns = [
    path(
        "invoices/<str:lago_id>/retry_payment",
        InvoiceRetryPaymentView.as_view(),
        name="invoice-retry-payment",
    ),
    path(
        "invoices/<str:lago_id>/payment_url",
        InvoicePaymentUrlView.as_view(),
        name="invoice-payment-url",
    ),
    path(
        "customers/<str:external_customer_id>/checkout_url",
        CustomerCheckoutUrlView.as_view({"post": "create"}),
        name="customer-checkout-url",
    ),
    path(
        "customers/<str:external_customer_id>/payment_methods",
        CustomerPaymentMethodViewSet.as_view({"get": "list"}),
        name="customer-payment-method-list",
    ),
    path(
        "customers/<str:external_customer_id>/payment_methods/<str:lago_id>",
        CustomerPaymentMethodViewSet.as_view({"delete": "destroy"}),
        name="customer-payment-method-detail",
    ),
    path(
        "customers/<str:external_customer_id>/payment_methods/<str:lago_id>/set_as_default",
        CustomerPaymentMethodViewSet.as_view({"put": "set_as_default"}),
        name="customer-payment-method-set-as-default",
    ),
    path(
        "webhook_endpoints",
        WebhookEndpointViewSet.as_view({"get": "list", "post": "create"}),
        name="webhook-endpoint-list",
    ),
    path(
        "webhook_endpoints/<str:lago_id>",
        WebhookEndpointViewSet.as_view({"get": "retrieve", "put": "update", "delete": "destroy"}),
        name="webhook-endpoint-detail",
    ),
    path("webhooks/public_key", WebhookPublicKeyView.as_view(), name="webhook-public-key"),
    path(
        "webhooks/json_public_key",
        WebhookJsonPublicKeyView.as_view(),
        name="webhook-json-public-key",
    ),
]
