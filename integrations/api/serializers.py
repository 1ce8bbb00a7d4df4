"""Wire shapes of payment methods and checkout links (Lago's V1 serializers)."""

from __future__ import annotations

from rest_framework import serializers

from customers.models import PaymentMethod


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
