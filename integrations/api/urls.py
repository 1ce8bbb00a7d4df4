"""Routes of `/webhook_endpoints` and `/webhooks/*public_key` (Appendix A)."""

from django.urls import path

from integrations.api.views import (
    WebhookEndpointViewSet,
    WebhookJsonPublicKeyView,
    WebhookPublicKeyView,
)

urlpatterns = [
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
