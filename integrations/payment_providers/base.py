"""What the billing back office asks of any payment provider (Stripe now; GoCardless or Adyen
implement the same), in provider-neutral values.

A gateway is built for one connection (one secret key) and holds no state shared between
organizations. Errors the provider answers are raised as `GatewayError` with the provider's
code and message; the caller decides what they mean (a 422, a `*_error` webhook, a retry).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


class GatewayError(Exception):
    """The provider refused or failed a call (`code` as the provider names it)."""

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None):
        super().__init__(message)
        self.message, self.code, self.http_status = message, code, http_status


class GatewayAuthenticationError(GatewayError):
    """The secret key was refused."""


class GatewayConnectionError(GatewayError):
    """The provider could not be reached: worth retrying later."""


class WebhookSignatureError(Exception):
    """An incoming webhook's signature or payload is not valid."""


@dataclass(frozen=True)
class CustomerDetails:
    """What a provider customer is created or updated with."""

    name: str
    email: str
    phone: str = ""
    address: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderPaymentMethod:
    """A payment method saved at the provider."""

    provider_method_id: str
    provider_customer_id: str | None
    method_type: str
    details: dict = field(default_factory=dict)  # brand, last4, expiration (for people)


@dataclass(frozen=True)
class PaymentRequestParams:
    """One charge of an amount due to the provider."""

    amount_cents: int
    currency: str
    provider_customer_id: str
    payment_method_id: str | None
    payment_method_types: list[str]
    description: str
    metadata: dict[str, str]
    idempotency_key: str
    off_session: bool = True
    return_url: str | None = None


@dataclass(frozen=True)
class ProviderPayment:
    """A payment as the provider reports it."""

    provider_payment_id: str
    status: str  # the provider's raw status
    amount_cents: int
    currency: str
    next_action_url: str | None = None
    error_code: str | None = None
    next_action: dict | None = None  # the provider's description of what the payer must do


@dataclass(frozen=True)
class ProviderRefund:
    provider_refund_id: str
    status: str
    amount_cents: int


@dataclass(frozen=True)
class WebhookEndpoint:
    provider_webhook_id: str
    secret: str


@dataclass(frozen=True)
class ProviderEventData:
    """An incoming event, verified: its id, type and object (the provider's JSON)."""

    event_id: str
    event_type: str
    obj: dict
    previous_attributes: dict = field(default_factory=dict)
    livemode: bool = False


class PaymentGateway(ABC):
    """The calls a payment provider connection answers."""

    provider_type: str

    @abstractmethod
    def register_webhook(self, *, url: str, events: list[str]) -> WebhookEndpoint:
        """Registers our incoming-webhook URL; returns its id and signing secret."""

    @abstractmethod
    def delete_webhook(self, *, provider_webhook_id: str) -> None: ...

    @abstractmethod
    def create_customer(self, *, details: CustomerDetails, idempotency_key: str) -> str:
        """Creates the customer at the provider; returns its provider id."""

    @abstractmethod
    def update_customer(self, *, provider_customer_id: str, details: CustomerDetails) -> None: ...

    @abstractmethod
    def customer_default_payment_method_id(self, *, provider_customer_id: str) -> str | None:
        """The provider customer's default payment method, if it has one."""

    @abstractmethod
    def setup_checkout_url(
        self, *, provider_customer_id: str, payment_method_types: list[str], success_url: str
    ) -> str:
        """A hosted page where the customer saves a payment method."""

    @abstractmethod
    def payment_checkout_url(
        self, *, params: PaymentRequestParams, item_name: str, success_url: str
    ) -> str:
        """A hosted page where the customer pays `params.amount_cents` once (its
        `idempotency_key` makes a repeated request answer the same page)."""

    @abstractmethod
    def list_payment_methods(self, *, provider_customer_id: str) -> list[ProviderPaymentMethod]: ...

    @abstractmethod
    def retrieve_payment_method(self, *, provider_method_id: str) -> ProviderPaymentMethod: ...

    @abstractmethod
    def detach_payment_method(self, *, provider_method_id: str) -> None: ...

    @abstractmethod
    def set_default_payment_method(
        self, *, provider_customer_id: str, provider_method_id: str
    ) -> None: ...

    @abstractmethod
    def create_payment(self, *, params: PaymentRequestParams) -> ProviderPayment:
        """Charges an amount; a refusal (declined card, amount too small) is a GatewayError."""

    @abstractmethod
    def retrieve_payment(self, *, provider_payment_id: str) -> ProviderPayment: ...

    @abstractmethod
    def refund(
        self,
        *,
        provider_payment_id: str,
        amount_cents: int,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> ProviderRefund: ...

    @abstractmethod
    def parse_webhook(self, *, payload: bytes, signature: str, secret: str) -> ProviderEventData:
        """Verifies and decodes an incoming webhook; raises WebhookSignatureError if invalid."""
