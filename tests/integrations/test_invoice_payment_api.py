"""`POST /invoices/{lago_id}/retry_payment` and `POST /invoices/{lago_id}/payment_url` through
DRF's client and the official lago-python-client, against the local fake Stripe."""

from __future__ import annotations

import pytest

from invoicing.models import Payment
from tests.integrations.conftest import SECRET_KEY
from tests.integrations.test_invoice_payment_intent import save_card
from tests.invoicing.invoice_builders import FeeSpec, build_invoice


@pytest.fixture(autouse=True)
def _no_pdfs(settings):
    settings.RECEIPT_PDF_ON_CREATE = False


def invoice_of(customer, organization, **options):
    return build_invoice(
        organization, customer=customer, fees=[FeeSpec(amount_cents=12000)], number="ACME-0042",
        **options,
    )  # fmt: skip


def retry(api, invoice):
    return api.post(f"/api/v1/invoices/{invoice.pk}/retry_payment")


def payment_url(api, invoice):
    return api.post(f"/api/v1/invoices/{invoice.pk}/payment_url")


def test_retry_payment_charges_a_failed_invoice_again(
    api, stripe_customer, organization, fake_stripe, django_capture_on_commit_callbacks
):
    save_card(stripe_customer, fake_stripe)
    invoice = invoice_of(stripe_customer, organization, payment_status="failed")
    with django_capture_on_commit_callbacks(execute=True):
        response = retry(api, invoice)
    assert response.status_code == 200
    invoice.refresh_from_db()
    assert invoice.payment_status == "succeeded"
    assert Payment.objects.get(invoice=invoice).payable_payment_status == "succeeded"
    assert len(fake_stripe.calls("POST", "/v1/payment_intents")) == 1


@pytest.mark.parametrize(
    ("status", "payment_status"), [("draft", None), ("voided", None), ("finalized", "succeeded")]
)
def test_retry_payment_refuses_an_invoice_not_awaiting_payment(
    api, stripe_customer, organization, fake_stripe, status, payment_status
):
    invoice = invoice_of(
        stripe_customer, organization, status=status, payment_status=payment_status
    )
    response = retry(api, invoice)
    assert response.status_code == 405
    assert response.json()["code"] == "invalid_status"
    assert fake_stripe.calls("POST", "/v1/payment_intents") == []


def test_retry_payment_refuses_while_a_charge_is_in_flight(
    api, stripe_customer, organization, fake_stripe
):
    from billing.actors import SYSTEM
    from integrations.services.invoice_collection import invoice_payment_collect

    save_card(stripe_customer, fake_stripe, requires_action=True)
    invoice = invoice_of(stripe_customer, organization)
    invoice_payment_collect(invoice_id=invoice.pk, actor=SYSTEM, now=invoice.created_at)
    response = retry(api, invoice)
    assert response.status_code == 405
    assert response.json()["code"] == "payment_processor_is_currently_handling_payment"
    assert len(fake_stripe.calls("POST", "/v1/payment_intents")) == 1


def test_retry_payment_of_another_organization_is_not_found(
    other_api, stripe_customer, organization, fake_stripe
):
    invoice = invoice_of(stripe_customer, organization, payment_status="failed")
    response = retry(other_api, invoice)
    assert response.status_code == 404
    assert response.json()["code"] == "invoice_not_found"


def test_payment_url_is_a_checkout_page_in_payment_mode(
    api, stripe_customer, organization, fake_stripe
):
    invoice = invoice_of(stripe_customer, organization)
    response = payment_url(api, invoice)
    assert response.status_code == 200
    details = response.json()["invoice_payment_details"]
    assert details["lago_invoice_id"] == str(invoice.pk)
    assert details["lago_customer_id"] == str(stripe_customer.pk)
    assert details["external_customer_id"] == stripe_customer.external_id
    assert details["payment_provider"] == "stripe"
    assert details["payment_url"].startswith(fake_stripe.url + "/checkout/cs_test")
    (call,) = fake_stripe.calls("POST", "/v1/checkout/sessions")
    assert call.params["mode"] == "payment"
    assert call.params["customer"] == stripe_customer.billing_configuration["provider_customer_id"]
    item = call.params["line_items"][0]
    assert item["price_data"]["unit_amount"] == str(invoice.total_amount_cents)
    assert item["price_data"]["currency"] == "eur"
    assert item["price_data"]["product_data"]["name"] == "ACME-0042"
    metadata = call.params["payment_intent_data"]["metadata"]
    assert metadata["lago_invoice_id"] == str(invoice.pk)
    assert metadata["payment_type"] == "one-time"
    assert call.params["payment_method_types"] == ["card", "sepa_debit"]


def test_payment_url_twice_answers_the_same_link(api, stripe_customer, organization, fake_stripe):
    invoice = invoice_of(stripe_customer, organization)
    first = payment_url(api, invoice).json()["invoice_payment_details"]["payment_url"]
    second = payment_url(api, invoice).json()["invoice_payment_details"]["payment_url"]
    assert first == second
    keys = {c.idempotency_key for c in fake_stripe.calls("POST", "/v1/checkout/sessions")}
    assert keys == {f"payment-url-{invoice.pk}-{invoice.total_amount_cents}"}


def test_payment_url_of_a_paid_invoice_is_refused(api, stripe_customer, organization, fake_stripe):
    invoice = invoice_of(stripe_customer, organization, payment_status="succeeded")
    response = payment_url(api, invoice)
    assert response.status_code == 422
    assert response.json()["error_details"] == {
        "base": ["invalid_invoice_status_or_payment_status"]
    }


def test_payment_url_without_a_payment_provider_is_refused(api, organization, stripe_connection):
    invoice = build_invoice(organization)
    response = payment_url(api, invoice)
    assert response.status_code == 422
    assert response.json()["error_details"] == {"base": ["no_linked_payment_provider"]}


def test_payment_url_of_another_organization_is_not_found(
    other_api, stripe_customer, organization, fake_stripe
):
    response = payment_url(other_api, invoice_of(stripe_customer, organization))
    assert response.status_code == 404


@pytest.mark.django_db(transaction=True)
def test_lago_client_gets_a_payment_url_and_retries_a_payment(
    lago, stripe_customer, organization, fake_stripe
):
    save_card(stripe_customer, fake_stripe)
    invoice = invoice_of(stripe_customer, organization, payment_status="failed")
    url = lago.invoices.payment_url(str(invoice.pk))
    assert url.startswith(fake_stripe.url + "/checkout/")
    assert lago.invoices.retry_payment(str(invoice.pk)) is None
    invoice.refresh_from_db()
    assert invoice.payment_status == "succeeded"
    assert SECRET_KEY in {c.api_key for c in fake_stripe.calls("POST", "/v1/payment_intents")}
