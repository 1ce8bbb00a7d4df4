"""Payment provider connections: connect a Stripe account, remove a connection (spec §19.2).

Connecting registers our incoming-webhook URL with Stripe and keeps the signing secret it
answers; both secrets are stored encrypted (`integrations.crypto`) and never shown again.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from urllib.parse import quote

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from billing.actors import Actor
from billing.errors import Invalid, ProviderError
from billing.models import Organization
from integrations.gateways import gateway_for
from integrations.locks import lock_payment_provider
from integrations.models import PaymentProvider
from integrations.payment_providers.base import GatewayAuthenticationError, GatewayError
from integrations.payment_providers.stripe import WEBHOOK_EVENTS
from integrations.selectors import payment_provider_list

logger = logging.getLogger(__name__)

# Stripe secret keys (sk_) and restricted keys (rk_), test or live.
STRIPE_KEY = re.compile(r"^(sk|rk)_(test|live)_[A-Za-z0-9]+$")


def webhook_url(provider: PaymentProvider) -> str:
    """Where the provider sends its events for this connection."""
    path = reverse(
        "integrations:stripe-webhook", kwargs={"organization_id": provider.organization_id}
    )
    return f"{settings.PUBLIC_URL}{path}?code={quote(provider.code)}"


def stripe_connection_validate(
    *, organization: Organization, code: str, name: str, secret_key: str
) -> dict[str, list[str]]:
    """Lago's codes for the values of a new Stripe connection; empty when they are valid."""
    errors: dict[str, list[str]] = {}
    if not code.strip():
        errors["code"] = ["value_is_mandatory"]
    elif len(code) > 255:
        errors["code"] = ["value_is_too_long"]
    elif payment_provider_list(organization=organization).filter(code=code.strip()).exists():
        errors["code"] = ["value_already_exist"]
    if len(name) > 255:
        errors["name"] = ["value_is_too_long"]
    if not secret_key:
        errors["secret_key"] = ["value_is_mandatory"]
    elif not STRIPE_KEY.match(secret_key):
        errors["secret_key"] = ["value_is_invalid"]
    return errors


def stripe_connection_create(
    *,
    organization: Organization,
    code: str,
    name: str,
    secret_key: str,
    actor: Actor,
    success_redirect_url: str = "",
) -> PaymentProvider:
    """A new Stripe connection, its webhook endpoint registered at Stripe.

    Stripe is called before the row is written (no transaction is held open over the network);
    a connection that cannot be saved afterwards removes the endpoint it registered."""
    code, name = code.strip(), (name or code).strip()
    errors = stripe_connection_validate(
        organization=organization, code=code, name=name, secret_key=secret_key
    )
    if errors:
        raise Invalid(errors)
    provider = PaymentProvider(
        organization=organization,
        provider_type=PaymentProvider.ProviderType.STRIPE,
        code=code,
        name=name,
        success_redirect_url=success_redirect_url,
    )
    provider.set_secret_key(secret_key)
    gateway = gateway_for(provider)
    try:
        endpoint = gateway.register_webhook(url=webhook_url(provider), events=WEBHOOK_EVENTS)
    except GatewayAuthenticationError as exc:
        raise Invalid({"secret_key": ["invalid_api_key"]}) from exc
    except GatewayError as exc:
        raise ProviderError("stripe", {"code": exc.code, "message": exc.message}) from exc
    provider.webhook_id = endpoint.provider_webhook_id
    provider.set_webhook_secret(endpoint.secret)
    try:
        with transaction.atomic():
            provider.save(force_insert=True)
    except IntegrityError as exc:  # the same code connected meanwhile
        gateway.delete_webhook(provider_webhook_id=endpoint.provider_webhook_id)
        raise Invalid({"code": ["value_already_exist"]}) from exc
    logger.info(
        "stripe connection created",
        extra={"organization_id": str(organization.pk), "code": code},
    )
    return provider


def payment_provider_destroy(
    *, provider: PaymentProvider, actor: Actor, now: datetime
) -> PaymentProvider:
    """Removes a connection: its webhook endpoint is deleted at the provider (best effort; an
    unreachable provider does not keep the connection alive) and the row soft-deleted."""
    with transaction.atomic():
        provider = lock_payment_provider(provider.pk)
        if provider.deleted_at is not None:
            return provider
        provider.deleted_at = now
        provider.save(update_fields=["deleted_at", "updated_at"])
    if provider.webhook_id:
        try:
            gateway_for(provider).delete_webhook(provider_webhook_id=provider.webhook_id)
        except GatewayError as exc:
            logger.warning(
                "webhook endpoint not removed at the provider: %s",
                exc.code or type(exc).__name__,
                extra={"organization_id": str(provider.organization_id), "code": provider.code},
            )
    return provider
