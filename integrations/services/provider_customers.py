"""A customer at its payment provider: created or linked, its checkout link, its payment
methods (spec §19.2).

Provider calls happen outside any database transaction; what they answer is then written
through the customers services. Outcomes for the organization's webhooks are recorded in the
outbox: `customer.payment_provider_created`, `customer.checkout_url_generated`,
`customer.payment_provider_error`.
"""

from __future__ import annotations

import logging
from uuid import UUID

from django.db import transaction

from billing.actors import Actor
from billing.errors import Invalid, ProviderError
from billing.outbox import emit
from customers.models import Customer, PaymentMethod
from customers.services.payment_methods import (
    customer_provider_customer_set,
    payment_method_record_from_provider,
    payment_method_set_as_default,
    provider_payment_methods_with_setup,
)
from integrations.gateways import gateway_for
from integrations.models import PaymentProvider
from integrations.payment_providers.base import (
    CustomerDetails,
    GatewayConnectionError,
    GatewayError,
)
from integrations.payment_providers.stripe import DEFAULT_SUCCESS_REDIRECT_URL
from integrations.selectors import payment_provider_of_customer

logger = logging.getLogger(__name__)


def _customer_payload(customer: Customer) -> dict:
    config = customer.billing_configuration or {}
    return {
        "lago_customer_id": str(customer.pk),
        "external_customer_id": customer.external_id,
        "payment_provider": config.get("payment_provider"),
        "payment_provider_code": config.get("payment_provider_code"),
    }


def _record_error(customer: Customer, *, message: str, code: str | None, actor: Actor) -> None:
    """`customer.payment_provider_error` with the provider's message and code."""
    emit(
        event_type="customer.payment_provider_error",
        actor=actor,
        obj=customer,
        payload={
            **_customer_payload(customer),
            "provider_error": {"message": message, "error_code": code},
        },
    )


def customer_details(customer: Customer) -> CustomerDetails:
    """What the provider customer is made of (the first e-mail address of the list)."""
    name = customer.name or " ".join(p for p in (customer.firstname, customer.lastname) if p)
    address = {
        "line1": customer.address_line1,
        "line2": customer.address_line2,
        "city": customer.city,
        "postal_code": customer.zipcode,
        "state": customer.state,
        "country": customer.country,
    }
    return CustomerDetails(
        name=name,
        email=(customer.email or "").split(",")[0].strip(),
        phone=customer.phone,
        address={key: value for key, value in address.items() if value},
        metadata={"lago_customer_id": str(customer.pk), "customer_id": customer.external_id},
    )


def _checkout_url(provider: PaymentProvider, customer: Customer) -> str:
    config = customer.billing_configuration or {}
    return gateway_for(provider).setup_checkout_url(
        provider_customer_id=config["provider_customer_id"],
        payment_method_types=provider_payment_methods_with_setup(
            config.get("provider_payment_methods")
        ),
        success_url=provider.success_redirect_url or DEFAULT_SUCCESS_REDIRECT_URL,
    )


def _needs_setup(customer: Customer) -> bool:
    methods = (customer.billing_configuration or {}).get("provider_payment_methods")
    return bool(provider_payment_methods_with_setup(methods))


def provider_customer_sync(
    *, customer_id: UUID, provider_customer_id_changed: bool, actor: Actor
) -> Customer | None:
    """Creates the customer at its provider when asked (`sync_with_provider`, no provider id
    yet) and records `customer.payment_provider_created`; then, or when an existing provider
    customer was just linked, records a checkout link to save a payment method. An already
    linked customer's details are copied to its Stripe customer, and one without payment
    method here takes its Stripe default one. A provider
    refusal records `customer.payment_provider_error`; an unreachable provider raises
    `GatewayConnectionError` for the task to retry. Running it again changes nothing once
    the provider id is stored."""
    customer = Customer.objects.select_related("organization").filter(pk=customer_id).first()
    if customer is None or customer.deleted_at is not None:
        return None  # deleted since: nothing to sync
    config = customer.billing_configuration or {}
    if not config.get("payment_provider"):
        return customer
    provider = payment_provider_of_customer(customer=customer)
    if provider is None:
        with transaction.atomic():
            _record_error(
                customer,
                message="No payment provider connection matches this customer's settings",
                code="payment_provider_not_found",
                actor=actor,
            )
        return customer
    gateway = gateway_for(provider)
    created = False
    try:
        if not config.get("provider_customer_id") and config.get("sync_with_provider"):
            # one creation per customer version: a retried task finds the first answer
            key = f"{customer.pk}-{int(customer.updated_at.timestamp())}"
            provider_customer_id = gateway.create_customer(
                details=customer_details(customer), idempotency_key=key
            )
            with transaction.atomic():
                customer = customer_provider_customer_set(
                    customer=customer, provider_customer_id=provider_customer_id, actor=actor
                )
                emit(
                    event_type="customer.payment_provider_created",
                    actor=actor,
                    obj=customer,
                    payload={
                        **_customer_payload(customer),
                        "provider_customer_id": provider_customer_id,
                    },
                )
            created = True
        linked_id = (customer.billing_configuration or {}).get("provider_customer_id")
        if not created and linked_id:
            # as Lago: saving a customer with its provider id refreshes the Stripe customer's
            # name, e-mail, phone and address
            gateway.update_customer(
                provider_customer_id=linked_id, details=customer_details(customer)
            )
        if (
            not created
            and linked_id
            and not PaymentMethod.objects.alive().filter(customer=customer).exists()
        ):
            # a Stripe customer linked with a card already saved: it is the default here too
            default_id = gateway.customer_default_payment_method_id(provider_customer_id=linked_id)
            if default_id:
                provider_payment_method_record(
                    provider=provider, customer=customer, provider_method_id=default_id, actor=actor
                )
        if (created or provider_customer_id_changed) and _needs_setup(customer):
            url = _checkout_url(provider, customer)
            with transaction.atomic():
                emit(
                    event_type="customer.checkout_url_generated",
                    actor=actor,
                    obj=customer,
                    payload={**_customer_payload(customer), "checkout_url": url},
                )
    except GatewayConnectionError:
        raise  # Stripe unreachable: the task retries later
    except GatewayError as exc:
        with transaction.atomic():
            _record_error(customer, message=exc.message, code=exc.code, actor=actor)
    return customer


def customer_checkout_url_generate(*, customer: Customer, actor: Actor) -> str:
    """A Stripe Checkout (setup mode) link where the customer saves a payment method."""
    config = customer.billing_configuration or {}
    provider = payment_provider_of_customer(customer=customer)
    if provider is None or not config.get("provider_customer_id"):
        raise Invalid({"base": ["no_linked_payment_provider"]})
    if not _needs_setup(customer):
        raise Invalid({"provider_payment_methods": ["no_payment_methods_to_setup_available"]})
    try:
        return _checkout_url(provider, customer)
    except GatewayError as exc:
        with transaction.atomic():
            _record_error(customer, message=exc.message, code=exc.code, actor=actor)
        raise ProviderError("stripe", {"code": exc.code, "message": exc.message}) from exc


def provider_payment_method_record(
    *, provider: PaymentProvider, customer: Customer, provider_method_id: str, actor: Actor
) -> PaymentMethod:
    """Reads the payment method at the provider and records it as the customer's default."""
    config = customer.billing_configuration or {}
    method = gateway_for(provider).retrieve_payment_method(provider_method_id=provider_method_id)
    return payment_method_record_from_provider(
        customer=customer,
        payment_provider_type=provider.provider_type,
        payment_provider_code=provider.code,
        provider_customer_id=config["provider_customer_id"],
        provider_method_id=method.provider_method_id,
        provider_method_type=method.method_type,
        details=method.details,
        actor=actor,
    )


def provider_payment_method_store(
    *, provider: PaymentProvider, customer: Customer, provider_method_id: str, actor: Actor
) -> PaymentMethod:
    """A payment method just saved at the provider: made the provider customer's default there,
    then recorded as the customer's default here."""
    gateway_for(provider).set_default_payment_method(
        provider_customer_id=(customer.billing_configuration or {})["provider_customer_id"],
        provider_method_id=provider_method_id,
    )
    return provider_payment_method_record(
        provider=provider, customer=customer, provider_method_id=provider_method_id, actor=actor
    )


def payment_method_set_as_default_everywhere(
    *, payment_method: PaymentMethod, actor: Actor
) -> PaymentMethod:
    """The customer's default payment method, here and at its provider (Stripe's invoice
    settings), so that both charge the same one."""
    provider = payment_provider_of_customer(customer=payment_method.customer)
    if provider is not None and provider.code == payment_method.payment_provider_code:
        try:
            gateway_for(provider).set_default_payment_method(
                provider_customer_id=payment_method.provider_customer_id,
                provider_method_id=payment_method.provider_method_id,
            )
        except GatewayError as exc:
            raise ProviderError("stripe", {"code": exc.code, "message": exc.message}) from exc
    return payment_method_set_as_default(payment_method=payment_method, actor=actor)
