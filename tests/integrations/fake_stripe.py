"""A local stand-in for Stripe's REST API, spoken to by the real `stripe` SDK.

It keeps its objects in memory, one account per secret key (an object made with one key is a
404 for another), answers in Stripe's JSON shapes and error envelope, honours `Idempotency-Key`
(the same key replays the first answer), and records every request with its decoded parameters
so that tests can assert exactly what was sent. `send_event` delivers a webhook event signed as
Stripe signs them (`Stripe-Signature: t=<unix time>,v1=<HMAC-SHA256 of "t.payload">`).

Behaviours a test can ask for:
- a secret key containing `invalid` is refused (401 `authentication_error`);
- a payment method added with `decline=True` makes a confirmed payment intent fail (402
  `card_error`, code `card_declined`); `requires_action=True` answers `requires_action`
  (3-D Secure) unless confirmed on-session;
- an amount below 50 minor units is refused (400 `amount_too_small`), as Stripe does for USD/EUR.

It never reaches the internet: it listens on 127.0.0.1 on a free port.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit
from urllib.request import Request, urlopen

MINIMUM_CHARGE = 50


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict
    api_key: str
    idempotency_key: str | None


class StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, code: str | None = None, **extra):
        super().__init__(message)
        self.status, self.body = status, {"type": type_, "message": message, **extra}
        if code:
            self.body["code"] = code


def decode_form(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding (`a[b][0]=c`) back into nested dicts and lists."""
    root: dict = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+|\[\]", key)
        node = root
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _listify(root)


def _listify(node: object) -> object:
    if isinstance(node, dict):
        converted = {key: _listify(value) for key, value in node.items()}
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    return node


def _bool(value: object) -> bool:
    return value in (True, "true", "True", "1")


class FakeStripe:
    """The state of the fake and the helpers tests use; `handler` serves it over HTTP."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.objects: dict[str, dict] = {}  # id -> object (with a private `_account`)
        self.requests: list[RecordedRequest] = []
        self.idempotent: dict[tuple[str, str], tuple[int, dict]] = {}
        self.webhook_secrets: dict[str, str] = {}
        self._counter = itertools.count(1)
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # --- life ---------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeStripe:
        fake = self

        class Handler(_Handler):
            stripe = fake

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # --- helpers for tests --------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._counter):06d}"

    def calls(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        """Recorded requests with this method whose path starts with `path_prefix`."""
        return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    def public(self, obj: dict) -> dict:
        return {key: value for key, value in obj.items() if not key.startswith("_")}

    def get(self, object_id: str) -> dict:
        return self.public(self.objects[object_id])

    def store(self, account: str, obj: dict) -> dict:
        obj["_account"] = account
        obj.setdefault("livemode", False)
        obj.setdefault("created", int(time.time()))
        self.objects[obj["id"]] = obj
        return obj

    def add_customer(self, api_key: str, **fields: object) -> dict:
        """A customer made directly in Stripe (as in Stripe's dashboard)."""
        with self.lock:
            return self.public(self._create_customer(api_key, fields))

    def add_payment_method(
        self,
        api_key: str,
        *,
        customer: str | None = None,
        type_: str = "card",
        brand: str = "visa",
        last4: str = "4242",
        decline: bool = False,
        requires_action: bool = False,
    ) -> dict:
        """A payment method the customer entered at Stripe, attached to `customer` if given."""
        with self.lock:
            pm = {
                "id": self.new_id("pm"),
                "object": "payment_method",
                "type": type_,
                "customer": customer,
                "metadata": {},
                "billing_details": {},
                "_decline": decline,
                "_requires_action": requires_action,
            }
            if type_ == "card":
                pm["card"] = {
                    "brand": brand,
                    "display_brand": brand,
                    "last4": last4,
                    "exp_month": 12,
                    "exp_year": 2030,
                    "country": "FR",
                }
            return self.public(self.store(api_key, pm))

    def complete_checkout_setup(self, session_id: str, *, brand: str = "visa") -> dict:
        """The customer saves a card on a setup-mode Checkout page: a payment method is
        attached and a succeeded SetupIntent created. Returns the SetupIntent."""
        session = self.objects[session_id]
        account = session["_account"]
        pm = self.add_payment_method(account, customer=session["customer"], brand=brand)
        with self.lock:
            intent = self.store(
                account,
                {
                    "id": self.new_id("seti"),
                    "object": "setup_intent",
                    "customer": session["customer"],
                    "payment_method": pm["id"],
                    "status": "succeeded",
                    "usage": "off_session",
                    "metadata": {},
                },
            )
            session["setup_intent"] = intent["id"]
            session["status"] = "complete"
            return self.public(intent)

    def detach(self, payment_method_id: str) -> dict:
        """The payment method is removed at Stripe (its customer is forgotten)."""
        with self.lock:
            pm = self.objects[payment_method_id]
            pm["customer"] = None
            return self.public(pm)

    def event(self, type_: str, obj: dict, *, previous_attributes: dict | None = None) -> dict:
        """A Stripe event object wrapping `obj` (not sent)."""
        data: dict = {"object": obj}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        return {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": "2026-10-28.endive",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "type": type_,
            "data": data,
        }

    @staticmethod
    def sign(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
        """The `Stripe-Signature` header of a payload, as Stripe computes it."""
        timestamp = int(time.time()) if timestamp is None else timestamp
        signed = f"{timestamp}.".encode() + payload
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        return f"t={timestamp},v1={digest}"

    def send_event(
        self, url: str, event: dict, *, secret: str, signature: str | None = None
    ) -> tuple[int, bytes]:
        """POSTs `event` to `url` signed with `secret` (or with `signature` as given)."""
        payload = json.dumps(event).encode()
        header = signature if signature is not None else self.sign(payload, secret)
        request = Request(
            url,
            data=payload,
            method="POST",
            headers={"Content-Type": "application/json", "Stripe-Signature": header},
        )
        try:
            with urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except Exception as exc:  # urllib raises HTTPError for 4xx/5xx
            status = getattr(exc, "code", None)
            if status is None:
                raise
            return status, exc.read()

    # --- the API --------------------------------------------------------------------------------

    def handle(self, method: str, path: str, params: dict, account: str) -> tuple[int, dict]:
        routes: list[tuple[str, str, object]] = [
            ("POST", r"/v1/customers", self._customers_create),
            ("GET", r"/v1/customers", self._customers_list),
            ("GET", r"/v1/customers/(?P<id>[^/]+)", self._retrieve),
            ("POST", r"/v1/customers/(?P<id>[^/]+)", self._customers_update),
            ("GET", r"/v1/customers/(?P<id>[^/]+)/payment_methods", self._customer_pms),
            ("GET", r"/v1/payment_methods", self._pms_list),
            ("GET", r"/v1/payment_methods/(?P<id>[^/]+)", self._retrieve),
            ("POST", r"/v1/payment_methods/(?P<id>[^/]+)/attach", self._pm_attach),
            ("POST", r"/v1/payment_methods/(?P<id>[^/]+)/detach", self._pm_detach),
            ("POST", r"/v1/setup_intents", self._setup_intents_create),
            ("GET", r"/v1/setup_intents/(?P<id>[^/]+)", self._retrieve),
            ("POST", r"/v1/checkout/sessions", self._checkout_create),
            ("GET", r"/v1/checkout/sessions/(?P<id>[^/]+)", self._retrieve),
            ("POST", r"/v1/payment_intents", self._pi_create),
            ("GET", r"/v1/payment_intents/(?P<id>[^/]+)", self._retrieve),
            ("POST", r"/v1/payment_intents/(?P<id>[^/]+)/confirm", self._pi_confirm),
            ("POST", r"/v1/refunds", self._refunds_create),
            ("GET", r"/v1/refunds/(?P<id>[^/]+)", self._retrieve),
            ("POST", r"/v1/webhook_endpoints", self._webhook_create),
            ("GET", r"/v1/webhook_endpoints/(?P<id>[^/]+)", self._retrieve),
            ("DELETE", r"/v1/webhook_endpoints/(?P<id>[^/]+)", self._webhook_delete),
        ]
        for verb, pattern, action in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                return 200, action(account, params, **match.groupdict())  # type: ignore[operator]
        raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({path}).")

    def _own(self, account: str, object_id: str) -> dict:
        obj = self.objects.get(object_id)
        if obj is None or obj["_account"] != account:
            raise StripeError(
                404,
                "invalid_request_error",
                f"No such object: '{object_id}'",
                code="resource_missing",
                param="id",
            )
        return obj

    def _retrieve(self, account: str, params: dict, id: str) -> dict:
        return self.public(self._own(account, id))

    def _list(self, items: list[dict], url: str) -> dict:
        return {
            "object": "list",
            "url": url,
            "has_more": False,
            "data": [self.public(i) for i in items],
        }

    def _create_customer(self, account: str, params: dict) -> dict:
        return self.store(
            account,
            {
                "id": self.new_id("cus"),
                "object": "customer",
                "name": params.get("name"),
                "email": params.get("email"),
                "phone": params.get("phone"),
                "address": params.get("address"),
                "metadata": params.get("metadata") or {},
                "invoice_settings": {"default_payment_method": None},
                "default_source": None,
            },
        )

    def _customers_create(self, account: str, params: dict) -> dict:
        return self.public(self._create_customer(account, params))

    def _customers_list(self, account: str, params: dict) -> dict:
        items = [
            o
            for o in self.objects.values()
            if o["_account"] == account
            and o["object"] == "customer"
            and (not params.get("email") or o.get("email") == params["email"])
        ]
        return self._list(items, "/v1/customers")

    def _customers_update(self, account: str, params: dict, id: str) -> dict:
        customer = self._own(account, id)
        for key, value in params.items():
            if key == "invoice_settings":
                customer["invoice_settings"].update(value or {})
            elif key == "metadata":
                customer["metadata"].update(value or {})
            else:
                customer[key] = value
        return self.public(customer)

    def _payment_methods_of(self, account: str, customer: str) -> list[dict]:
        return [
            o
            for o in self.objects.values()
            if o["_account"] == account
            and o["object"] == "payment_method"
            and o["customer"] == customer
        ]

    def _customer_pms(self, account: str, params: dict, id: str) -> dict:
        self._own(account, id)
        return self._list(
            self._payment_methods_of(account, id), f"/v1/customers/{id}/payment_methods"
        )

    def _pms_list(self, account: str, params: dict) -> dict:
        return self._list(
            self._payment_methods_of(account, params.get("customer")), "/v1/payment_methods"
        )

    def _pm_attach(self, account: str, params: dict, id: str) -> dict:
        pm = self._own(account, id)
        self._own(account, params.get("customer", ""))
        pm["customer"] = params["customer"]
        return self.public(pm)

    def _pm_detach(self, account: str, params: dict, id: str) -> dict:
        pm = self._own(account, id)
        pm["customer"] = None
        return self.public(pm)

    def _setup_intents_create(self, account: str, params: dict) -> dict:
        if params.get("customer"):
            self._own(account, params["customer"])
        intent = {
            "id": self.new_id("seti"),
            "object": "setup_intent",
            "customer": params.get("customer"),
            "payment_method": params.get("payment_method"),
            "payment_method_types": params.get("payment_method_types") or ["card"],
            "status": "requires_payment_method",
            "usage": params.get("usage") or "off_session",
            "metadata": params.get("metadata") or {},
        }
        intent["client_secret"] = f"{intent['id']}_secret_{secrets.token_hex(8)}"
        return self.public(self.store(account, intent))

    def _checkout_create(self, account: str, params: dict) -> dict:
        mode = params.get("mode")
        if mode not in ("setup", "payment"):
            raise StripeError(400, "invalid_request_error", "Invalid mode", param="mode")
        if params.get("customer"):
            self._own(account, params["customer"])
        session_id = self.new_id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": mode,
            "customer": params.get("customer"),
            "payment_method_types": params.get("payment_method_types") or [],
            "success_url": params.get("success_url"),
            "status": "open",
            "url": f"{self.url}/checkout/{session_id}",
            "expires_at": int(time.time()) + 24 * 3600,
            "setup_intent": None,
            "payment_intent": None,
            "metadata": params.get("metadata") or {},
            "line_items": params.get("line_items"),
        }
        return self.public(self.store(account, session))

    def _confirm(self, account: str, intent: dict, params: dict) -> None:
        pm_id = intent.get("payment_method")
        if not pm_id:
            intent["status"] = "requires_payment_method"
            raise StripeError(
                400,
                "invalid_request_error",
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                code="payment_intent_unexpected_state",
                payment_intent=self.public(intent),
            )
        pm = self._own(account, pm_id)
        if pm.get("_decline"):
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {"code": "card_declined", "type": "card_error"}
            raise StripeError(
                402,
                "card_error",
                "Your card was declined.",
                code="card_declined",
                decline_code="generic_decline",
                payment_intent=self.public(intent),
            )
        if pm.get("_requires_action") and _bool(intent.get("off_session")):
            intent["status"] = "requires_action"
            intent["next_action"] = {
                "type": "redirect_to_url",
                "redirect_to_url": {"url": f"{self.url}/3ds/{intent['id']}", "return_url": None},
            }
            return
        charge_id = self.new_id("ch")
        self.store(
            account,
            {
                "id": charge_id,
                "object": "charge",
                "amount": intent["amount"],
                "currency": intent["currency"],
                "payment_intent": intent["id"],
                "customer": intent.get("customer"),
                "refunded": False,
            },
        )
        intent["status"] = "succeeded"
        intent["latest_charge"] = charge_id
        intent["amount_received"] = intent["amount"]

    def _pi_create(self, account: str, params: dict) -> dict:
        amount = int(params.get("amount", 0))
        if amount < MINIMUM_CHARGE:
            raise StripeError(
                400,
                "invalid_request_error",
                "Amount must be at least 50 cents",
                code="amount_too_small",
                param="amount",
            )
        if params.get("customer"):
            self._own(account, params["customer"])
        intent = {
            "id": self.new_id("pi"),
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": params.get("currency"),
            "customer": params.get("customer"),
            "payment_method": params.get("payment_method"),
            "payment_method_types": params.get("payment_method_types") or ["card"],
            "description": params.get("description"),
            "metadata": params.get("metadata") or {},
            "off_session": params.get("off_session"),
            "status": "requires_confirmation",
            "latest_charge": None,
            "next_action": None,
            "last_payment_error": None,
        }
        intent["client_secret"] = f"{intent['id']}_secret_{secrets.token_hex(8)}"
        self.store(account, intent)
        if _bool(params.get("confirm")):
            self._confirm(account, intent, params)
        return self.public(intent)

    def _pi_confirm(self, account: str, params: dict, id: str) -> dict:
        intent = self._own(account, id)
        if params.get("payment_method"):
            intent["payment_method"] = params["payment_method"]
        intent["off_session"] = params.get("off_session", intent.get("off_session"))
        self._confirm(account, intent, params)
        return self.public(intent)

    def _refunds_create(self, account: str, params: dict) -> dict:
        charge_id = params.get("charge")
        if not charge_id and params.get("payment_intent"):
            charge_id = self._own(account, params["payment_intent"]).get("latest_charge")
        if not charge_id:
            raise StripeError(400, "invalid_request_error", "No charge to refund", param="charge")
        charge = self._own(account, charge_id)
        amount = int(params.get("amount") or charge["amount"])
        if amount > charge["amount"]:
            raise StripeError(
                400,
                "invalid_request_error",
                "Refund amount is greater than the charge amount",
                code="amount_too_large",
            )
        refund = {
            "id": self.new_id("re"),
            "object": "refund",
            "amount": amount,
            "currency": charge["currency"],
            "charge": charge_id,
            "payment_intent": charge.get("payment_intent"),
            "status": "pending",
            "reason": params.get("reason"),
            "metadata": params.get("metadata") or {},
        }
        charge["refunded"] = amount == charge["amount"]
        return self.public(self.store(account, refund))

    def _webhook_create(self, account: str, params: dict) -> dict:
        if not params.get("url"):
            raise StripeError(400, "invalid_request_error", "Missing url", param="url")
        endpoint = {
            "id": self.new_id("we"),
            "object": "webhook_endpoint",
            "url": params["url"],
            "enabled_events": params.get("enabled_events") or [],
            "api_version": params.get("api_version"),
            "status": "enabled",
        }
        secret = f"whsec_{secrets.token_hex(16)}"
        self.webhook_secrets[endpoint["id"]] = secret
        answer = self.public(self.store(account, endpoint))
        return {**answer, "secret": secret}  # Stripe shows the secret only on creation

    def _webhook_delete(self, account: str, params: dict, id: str) -> dict:
        self._own(account, id)
        del self.objects[id]
        return {"id": id, "object": "webhook_endpoint", "deleted": True}


class _Handler(BaseHTTPRequestHandler):
    stripe: FakeStripe
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet in test output

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
        self.end_headers()
        self.wfile.write(data)

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        pairs = parse_qsl(url.query, keep_blank_values=True) + parse_qsl(
            body, keep_blank_values=True
        )
        params = decode_form(pairs)
        auth = self.headers.get("Authorization", "")
        api_key = auth.removeprefix("Bearer ").strip()
        idempotency_key = self.headers.get("Idempotency-Key")
        fake = self.stripe
        with fake.lock:
            fake.requests.append(
                RecordedRequest(self.command, url.path, params, api_key, idempotency_key)
            )
            if not api_key.startswith("sk_") or "invalid" in api_key:
                self._answer(
                    401,
                    {
                        "error": {
                            "type": "invalid_request_error",
                            "message": "Invalid API Key provided",
                            "code": "api_key_invalid",
                        }
                    },
                )
                return
            replay_key = (api_key, idempotency_key) if idempotency_key else None
            if replay_key and replay_key in fake.idempotent:
                status, answer = fake.idempotent[replay_key]
            else:
                try:
                    status, answer = fake.handle(self.command, url.path, params, api_key)
                except StripeError as exc:
                    status, answer = exc.status, {"error": exc.body}
                if replay_key:
                    fake.idempotent[replay_key] = (status, answer)
        self._answer(status, answer)

    do_GET = do_POST = do_DELETE = _serve
