"""The customer-scoped lists of lago-python-client (`customer_payments`,
`customer_payment_requests`, `customer_payment_methods`) answer 401 because the client sends no
API key with them: its `FindAllChildrenCommandMixin.find_all` builds no headers (every other
command passes `make_headers(api_key=...)`). Our routes answer those paths once the key is
sent, and the same lists are read through the parts of the client that do send it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from lago_python_client.client import Client
from lago_python_client.models.payment import Payment

from invoicing.models import Invoice
from tests.customers.factories import CustomerFactory
from tests.invoicing.invoice_builders import FeeSpec, build_invoice

CHILD_LISTS = [
    pytest.param("customer_payments", "payments", id="payments"),
    pytest.param("customer_payment_requests", "payment_requests", id="payment_requests"),
    pytest.param("customer_payment_methods", "payment_methods", id="payment_methods"),
]


@contextmanager
def recording_server() -> Iterator[tuple[str, list[tuple[str, dict]]]]:
    """A local HTTP server answering every GET with an empty Lago list, recording path and
    headers of each request."""
    seen: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            resource = self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
            body = json.dumps({resource: [], "meta": {"current_page": 1, "total_count": 0}})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("attribute", "resource"), CHILD_LISTS)
def test_the_client_child_lists_send_no_api_key(attribute, resource):
    with recording_server() as (url, seen):
        getattr(Client(api_key="lago_key", api_url=url), attribute).find_all("globex")
    [(path, headers)] = seen
    assert path == f"/api/v1/customers/globex/{resource}"
    assert "authorization" not in headers


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("attribute", "resource"), CHILD_LISTS)
def test_the_same_paths_answer_with_the_api_key(live_server, api_key, organization, resource,
                                                attribute):  # fmt: skip
    CustomerFactory(organization=organization, external_id="globex")
    answer = httpx.get(
        f"{live_server.url}/api/v1/customers/globex/{resource}",
        headers={"Authorization": f"Bearer {api_key[1]}"},
    )
    assert answer.status_code == 200
    assert answer.json()[resource] == []
    assert answer.json()["meta"]["total_count"] == 0


@pytest.mark.django_db(transaction=True)
def test_a_customer_payments_are_read_through_the_client_filters(lago, organization, settings):
    settings.RECEIPT_PDF_ON_CREATE = False
    customer = CustomerFactory(organization=organization, external_id="globex")
    other = CustomerFactory(organization=organization, external_id="initech")
    invoice = build_invoice(organization, customer=customer, fees=[FeeSpec(amount_cents=5000)])
    build_invoice(organization, customer=other, fees=[FeeSpec(amount_cents=5000)])
    Invoice.objects.filter(pk=invoice.pk).update(payment_overdue=True)
    paid = lago.payments.create(
        Payment(invoice_id=str(invoice.pk), amount_cents=2000, reference="wire", paid_at=None)
    )

    payments = lago.payments.find_all({"external_customer_id": "globex"})["payments"]
    assert [p.lago_id for p in payments] == [paid.lago_id]
    requests = lago.payment_requests.find_all({"external_customer_id": "globex"})
    assert requests["payment_requests"] == []
