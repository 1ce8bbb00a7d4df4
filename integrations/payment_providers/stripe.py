"""Stripe through its official SDK, one `StripeClient` per connection (its own secret key):
nothing global is set, so two organizations' keys never meet.

`settings.STRIPE_API_BASE` says where Stripe's API is (tests point it at a local fake).
"""

from __future__ import annotations

import stripe
from django.conf import settings

from integrations.payment_providers.base import (
    CustomerDetails,
    GatewayAuthenticationError,
    GatewayConnectionError,
    GatewayError,
    PaymentGateway,
    PaymentRequestParams,
    ProviderEventData,
    ProviderPayment,
    ProviderPaymentMethod,
    ProviderRefund,
    WebhookEndpoint,
    WebhookSignatureError,
)

# The events Lago subscribes its Stripe webhook endpoint to.
WEBHOOK_EVENTS = [
    "setup_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.succeeded",
    "payment_intent.canceled",
    "payment_method.detached",
    "charge.refund.updated",
    "customer.updated",
    "charge.dispute.closed",
]
# Where Stripe Checkout sends the customer back when the connection names no page (as Lago).
DEFAULT_SUCCESS_REDIRECT_URL = "https://stripe.com/"


def _translate(exc: stripe.StripeError) -> GatewayError:
    message = exc.user_message or str(exc) or type(exc).__name__
    # the SDK leaves `code` unset on some errors (authentication) while the body carries it
    code = exc.code or (exc.error.code if exc.error is not None else None)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return GatewayAuthenticationError(message, code=code, http_status=exc.http_status)
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError):
        return GatewayConnectionError(message, code=code, http_status=exc.http_status)
    return GatewayError(message, code=code, http_status=exc.http_status)


def _method(obj: stripe.PaymentMethod) -> ProviderPaymentMethod:
    pm = obj.to_dict()  # StripeObject is no dict: read plain values
    details: dict = {"type": pm["type"]}
    card = pm.get("card")
    if card:
        details.update(
            brand=card.get("display_brand") or card.get("brand"),
            last4=card.get("last4"),
            expiration_month=card.get("exp_month"),
            expiration_year=card.get("exp_year"),
        )
    return ProviderPaymentMethod(
        provider_method_id=pm["id"],
        provider_customer_id=pm.get("customer"),
        method_type=pm["type"],
        details=details,
    )


def _payment(obj: stripe.PaymentIntent) -> ProviderPayment:
    intent = obj.to_dict()
    next_action = intent.get("next_action") or {}
    redirect = (next_action.get("redirect_to_url") or {}).get("url")
    error = intent.get("last_payment_error") or {}
    return ProviderPayment(
        provider_payment_id=intent["id"],
        status=intent["status"],
        amount_cents=intent["amount"],
        currency=intent["currency"].upper(),
        next_action_url=redirect,
        error_code=error.get("code"),
        next_action=intent.get("next_action") or None,
    )


class StripeGateway(PaymentGateway):
    """One Stripe account, addressed with its secret key."""

    provider_type = "stripe"

    def __init__(self, secret_key: str, *, api_base: str | None = None) -> None:
        self._client = stripe.StripeClient(
            secret_key,
            base_addresses={"api": api_base or settings.STRIPE_API_BASE},
            max_network_retries=2,
        )

    @property
    def v1(self):
        return self._client.v1

    def register_webhook(self, *, url: str, events: list[str]) -> WebhookEndpoint:
        try:
            endpoint = self.v1.webhook_endpoints.create(
                {"url": url, "enabled_events": events, "api_version": stripe.api_version}
            )
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return WebhookEndpoint(provider_webhook_id=endpoint.id, secret=endpoint.secret)

    def delete_webhook(self, *, provider_webhook_id: str) -> None:
        try:
            self.v1.webhook_endpoints.delete(provider_webhook_id)
        except stripe.InvalidRequestError as exc:
            if exc.code != "resource_missing":  # already removed at Stripe: nothing to do
                raise _translate(exc) from exc
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def _customer_params(self, details: CustomerDetails) -> dict:
        params: dict = {"name": details.name, "email": details.email, "phone": details.phone}
        if details.address:
            params["address"] = details.address
        return params

    def create_customer(self, *, details: CustomerDetails, idempotency_key: str) -> str:
        params = {**self._customer_params(details), "metadata": details.metadata}
        try:
            customer = self.v1.customers.create(params, {"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return customer.id

    def update_customer(self, *, provider_customer_id: str, details: CustomerDetails) -> None:
        try:
            self.v1.customers.update(provider_customer_id, self._customer_params(details))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def customer_default_payment_method_id(self, *, provider_customer_id: str) -> str | None:
        try:
            customer = self.v1.customers.retrieve(provider_customer_id).to_dict()
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        if customer.get("deleted"):
            return None
        settings_ = customer.get("invoice_settings") or {}
        return settings_.get("default_payment_method") or customer.get("default_source")

    def setup_checkout_url(
        self, *, provider_customer_id: str, payment_method_types: list[str], success_url: str
    ) -> str:
        try:
            session = self.v1.checkout.sessions.create(
                {
                    "mode": "setup",
                    "customer": provider_customer_id,
                    "payment_method_types": payment_method_types,
                    "success_url": success_url,
                }
            )
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return session.url

    def payment_checkout_url(
        self, *, params: PaymentRequestParams, item_name: str, success_url: str
    ) -> str:
        try:
            session = self.v1.checkout.sessions.create(
                {
                    "mode": "payment",
                    "customer": params.provider_customer_id,
                    "payment_method_types": params.payment_method_types,
                    "success_url": success_url,
                    "line_items": [
                        {
                            "quantity": 1,
                            "price_data": {
                                "currency": params.currency.lower(),
                                "unit_amount": params.amount_cents,
                                "product_data": {"name": item_name},
                            },
                        }
                    ],
                    "payment_intent_data": {
                        "description": params.description,
                        "metadata": params.metadata,
                    },
                },
                {"idempotency_key": params.idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return session.url

    def list_payment_methods(self, *, provider_customer_id: str) -> list[ProviderPaymentMethod]:
        try:
            methods = self.v1.customers.payment_methods.list(provider_customer_id)
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return [_method(pm) for pm in methods.data]

    def retrieve_payment_method(self, *, provider_method_id: str) -> ProviderPaymentMethod:
        try:
            return _method(self.v1.payment_methods.retrieve(provider_method_id))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def detach_payment_method(self, *, provider_method_id: str) -> None:
        try:
            self.v1.payment_methods.detach(provider_method_id)
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def set_default_payment_method(
        self, *, provider_customer_id: str, provider_method_id: str
    ) -> None:
        try:
            self.v1.customers.update(
                provider_customer_id,
                {"invoice_settings": {"default_payment_method": provider_method_id}},
            )
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def create_payment(self, *, params: PaymentRequestParams) -> ProviderPayment:
        payload: dict = {
            "amount": params.amount_cents,
            "currency": params.currency.lower(),
            "customer": params.provider_customer_id,
            "payment_method_types": params.payment_method_types,
            "confirm": True,
            "off_session": params.off_session,
            "description": params.description,
            "metadata": params.metadata,
        }
        if params.payment_method_id:
            payload["payment_method"] = params.payment_method_id
        if params.return_url:
            payload["return_url"] = params.return_url
        try:
            intent = self.v1.payment_intents.create(
                payload, {"idempotency_key": params.idempotency_key}
            )
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return _payment(intent)

    def retrieve_payment(self, *, provider_payment_id: str) -> ProviderPayment:
        try:
            return _payment(self.v1.payment_intents.retrieve(provider_payment_id))
        except stripe.StripeError as exc:
            raise _translate(exc) from exc

    def refund(
        self,
        *,
        provider_payment_id: str,
        amount_cents: int,
        metadata: dict[str, str],
        idempotency_key: str,
    ) -> ProviderRefund:
        try:
            refund = self.v1.refunds.create(
                {
                    "payment_intent": provider_payment_id,
                    "amount": amount_cents,
                    "reason": "requested_by_customer",
                    "metadata": metadata,
                },
                {"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise _translate(exc) from exc
        return ProviderRefund(
            provider_refund_id=refund.id, status=refund.status, amount_cents=refund.amount
        )

    def parse_webhook(self, *, payload: bytes, signature: str, secret: str) -> ProviderEventData:
        try:
            event = stripe.Webhook.construct_event(payload, signature, secret)
        except (stripe.SignatureVerificationError, ValueError) as exc:
            raise WebhookSignatureError(str(exc)) from exc
        body = event.to_dict()
        data = body.get("data") or {}
        return ProviderEventData(
            event_id=body["id"],
            event_type=body["type"],
            obj=data.get("object") or {},
            previous_attributes=data.get("previous_attributes") or {},
            livemode=bool(body.get("livemode")),
        )
