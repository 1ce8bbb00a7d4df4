"""Payment methods saved at a payment provider, and the customer's provider customer id
(spec §19.1, §19.2).

The provider's app (integrations) talks to the provider and calls these services with what it
learned; the rows live here because subscriptions, wallets and invoices name a payment method.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction

from billing.activity import record_activity
from billing.actors import Actor
from billing.errors import NotFound
from customers.locks import lock_customer
from customers.models import Customer, PaymentMethod

# Stripe's payment method types Lago offers (spec §19.2), those needing a setup (a saved method
# through Checkout) first, and the one currency each is limited to.
STRIPE_PAYMENT_METHODS_WITH_SETUP = (
    "card", "sepa_debit", "us_bank_account", "bacs_debit", "link", "boleto",
)  # fmt: skip
STRIPE_PAYMENT_METHODS = (*STRIPE_PAYMENT_METHODS_WITH_SETUP, "crypto", "customer_balance")
STRIPE_PAYMENT_METHOD_CURRENCY = {
    "sepa_debit": "EUR",
    "us_bank_account": "USD",
    "bacs_debit": "GBP",
    "boleto": "BRL",
    "crypto": "USD",
}


def provider_payment_methods_errors(methods: list[str], currency: str) -> list[str]:
    """Lago's codes for a Stripe `provider_payment_methods` list; empty when it is valid.

    Known types only; `link` needs `card`; `customer_balance` stands alone; a type tied to a
    currency needs a customer of that currency (or none set yet)."""
    if not methods or any(method not in STRIPE_PAYMENT_METHODS for method in methods):
        return ["value_is_invalid"]
    if "link" in methods and "card" not in methods:
        return ["value_is_invalid"]
    if "customer_balance" in methods and list(methods) != ["customer_balance"]:
        return ["value_is_invalid"]
    if currency and any(
        STRIPE_PAYMENT_METHOD_CURRENCY.get(method, currency) != currency for method in methods
    ):
        return ["invalid_currency"]
    return []


def provider_payment_methods_with_setup(methods: list[str] | None) -> list[str]:
    """The methods a customer saves through a setup-mode checkout (Lago: `card` by default)."""
    return [m for m in (methods or ["card"]) if m in STRIPE_PAYMENT_METHODS_WITH_SETUP]


@transaction.atomic
def customer_provider_customer_set(
    *, customer: Customer, provider_customer_id: str, actor: Actor
) -> Customer:
    """Stores the id of the customer at its payment provider (created there or linked)."""
    customer = lock_customer(customer.pk)
    config = dict(customer.billing_configuration or {})
    config["provider_customer_id"] = provider_customer_id
    customer.billing_configuration = config
    customer.save(update_fields=["billing_configuration", "updated_at"])
    record_activity(activity_type="customer.updated", actor=actor, obj=customer)
    return customer


def _unset_other_defaults(payment_method: PaymentMethod) -> None:
    PaymentMethod.objects.alive().filter(customer_id=payment_method.customer_id).exclude(
        pk=payment_method.pk
    ).filter(is_default=True).update(is_default=False)


@transaction.atomic
def payment_method_record_from_provider(
    *,
    customer: Customer,
    payment_provider_type: str,
    payment_provider_code: str,
    provider_customer_id: str,
    provider_method_id: str,
    provider_method_type: str,
    details: dict,
    actor: Actor,
) -> PaymentMethod:
    """The customer's payment method with this provider id, created if new, made the default
    (a new payment method becomes the default, spec §19.2)."""
    lock_customer(customer.pk)  # one default at a time: changes of a customer's methods queue
    alive = PaymentMethod.objects.alive().filter(
        customer=customer,
        provider_customer_id=provider_customer_id,
        provider_method_id=provider_method_id,
    )
    payment_method = alive.first()
    creating = payment_method is None
    if payment_method is None:
        payment_method = PaymentMethod(
            organization_id=customer.organization_id,
            customer=customer,
            payment_provider_type=payment_provider_type,
            payment_provider_code=payment_provider_code,
            provider_customer_id=provider_customer_id,
            provider_method_id=provider_method_id,
        )
    payment_method.provider_method_type = provider_method_type
    payment_method.details = details
    _unset_other_defaults(payment_method)
    payment_method.is_default = True
    try:
        with transaction.atomic():
            payment_method.save()
    except IntegrityError:
        # the same method recorded meanwhile (a webhook and a sync at once): that row wins
        return alive.get()
    verb = "created" if creating else "updated"
    record_activity(activity_type=f"payment_method.{verb}", actor=actor, obj=payment_method)
    return payment_method


@transaction.atomic
def payment_method_set_as_default(*, payment_method: PaymentMethod, actor: Actor) -> PaymentMethod:
    """Makes this payment method the customer's default (the previous one is no longer)."""
    lock_customer(payment_method.customer_id)
    payment_method = PaymentMethod.objects.alive().filter(pk=payment_method.pk).first()
    if payment_method is None:
        raise NotFound("payment_method")
    if not payment_method.is_default:
        _unset_other_defaults(payment_method)
        payment_method.is_default = True
        payment_method.save(update_fields=["is_default", "updated_at"])
        record_activity(activity_type="payment_method.updated", actor=actor, obj=payment_method)
    return payment_method


@transaction.atomic
def payment_method_destroy(
    *, payment_method: PaymentMethod, actor: Actor, now: datetime
) -> PaymentMethod:
    """Soft-deletes the payment method: it is no longer listed nor the default (as Lago, the
    method stays saved at the provider)."""
    lock_customer(payment_method.customer_id)
    payment_method = PaymentMethod.objects.alive().filter(pk=payment_method.pk).first()
    if payment_method is None:
        raise NotFound("payment_method")
    payment_method.is_default = False
    payment_method.deleted_at = now
    payment_method.save(update_fields=["is_default", "deleted_at", "updated_at"])
    record_activity(activity_type="payment_method.deleted", actor=actor, obj=payment_method)
    return payment_method


@transaction.atomic
def payment_methods_forget_provider_method(
    *, customer: Customer, provider_method_id: str, actor: Actor, now: datetime
) -> list[PaymentMethod]:
    """The provider removed a payment method (Stripe `payment_method.detached`): its rows of
    this customer are soft-deleted."""
    lock_customer(customer.pk)
    rows = list(
        PaymentMethod.objects.alive().filter(
            customer=customer, provider_method_id=provider_method_id
        )
    )
    for row in rows:
        row.is_default = False
        row.deleted_at = now
        row.save(update_fields=["is_default", "deleted_at", "updated_at"])
        record_activity(activity_type="payment_method.deleted", actor=actor, obj=row)
    return rows
