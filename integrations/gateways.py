"""The gateway of a connection: the one place that picks a provider's implementation."""

from __future__ import annotations

from integrations.models import PaymentProvider
from integrations.payment_providers.base import PaymentGateway
from integrations.payment_providers.stripe import StripeGateway


def gateway_for(provider: PaymentProvider) -> PaymentGateway:
    """A gateway speaking to the provider account of this connection, with its own key."""
    if provider.provider_type == PaymentProvider.ProviderType.STRIPE:
        return StripeGateway(provider.secret_key())
    raise ValueError(f"no gateway for {provider.provider_type}")
