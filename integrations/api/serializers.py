"""Wire shapes of payment methods and checkout links (Lago's V1 serializers).

Lago wire shapes of webhook endpoints (`WebhookEndpointObject`) and the JWT public key.
"""

from __future__ import annotations

from rest_framework import serializers

from billing.api.fields import LagoDateTimeField
from customers.models import PaymentMethod
from integrations.models import SignatureAlgo, WebhookEndpoint


class PaymentMethodSerializer(serializers.Serializer):
    """Lago's `payment_method` object."""

    lago_id = serializers.UUIDField(source="id")
    is_default = serializers.BooleanField()
    payment_provider_code = serializers.CharField()
    payment_provider_name = serializers.SerializerMethodField()
    payment_provider_type = serializers.CharField()
    provider_method_id = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_payment_provider_name(self, payment_method: PaymentMethod) -> str | None:
        names = self.context.get("provider_names") or {}
        return names.get(payment_method.payment_provider_code)


class CustomerCheckoutSerializer(serializers.Serializer):
    """Lago's answer to POST /customers/{external_id}/checkout_url."""

    lago_customer_id = serializers.UUIDField()
    external_customer_id = serializers.CharField()
    payment_provider = serializers.CharField(allow_null=True)
    payment_provider_code = serializers.CharField(allow_null=True)
    checkout_url = serializers.CharField()


class WebhookEndpointSerializer(serializers.ModelSerializer):
    """`WebhookEndpointObject`."""

    lago_id = serializers.UUIDField(source="id")
    lago_organization_id = serializers.UUIDField(source="organization_id")
    webhook_url = serializers.CharField()
    signature_algo = serializers.ChoiceField(choices=SignatureAlgo.choices)
    name = serializers.CharField(allow_null=True)
    event_types = serializers.ListField(child=serializers.CharField(), allow_null=True)
    created_at = LagoDateTimeField()

    class Meta:
        model = WebhookEndpoint
        fields = ("lago_id", "lago_organization_id", "webhook_url", "signature_algo", "name",
                  "event_types", "created_at")  # fmt: skip


class WebhookEndpointInput(serializers.Serializer):
    """`webhook_endpoint` of POST and PUT (documentation; the service checks the values)."""

    webhook_url = serializers.CharField(required=False)
    signature_algo = serializers.ChoiceField(
        choices=SignatureAlgo.choices, required=False, help_text="jwt (default) or hmac"
    )
    name = serializers.CharField(required=False, allow_null=True)
    event_types = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_null=True,
        help_text='Webhook types to receive; null or ["*"] for every type.',
    )


class PublicKeySerializer(serializers.Serializer):
    public_key = serializers.CharField(help_text="The PEM public key, in base64")
