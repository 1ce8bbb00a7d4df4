"""Payment request e-mails through Django's e-mail backend (the in-memory outbox here), as
Lago's `PaymentRequestMailer#requested`: when no provider collects the request, and whenever
its collection fails; in the customer's document language, with the campaign's BCC."""

from __future__ import annotations

import pytest

from billing.actors import SYSTEM
from integrations.services.payment_request_emails import payment_request_email_send
from invoicing.models import Payment, PaymentRequest
from invoicing.services.payment_settlement import payment_create_manual
from tests.customers.factories import CustomerFactory
from tests.integrations.test_invoice_collection import intent_event
from tests.integrations.test_invoice_payment_intent import save_card
from tests.integrations.test_payable_collection import dunned, overdue, request_for
from tests.integrations.test_stripe_webhooks import post


@pytest.fixture(autouse=True)
def _no_pdfs(settings):
    settings.RECEIPT_PDF_ON_CREATE = False
    settings.INVOICE_PDF_ON_FINALIZE = False


@pytest.fixture
def customer(organization):
    return CustomerFactory(
        organization=organization, currency="EUR", name="Globex", email="ap@globex.test"
    )


def test_a_request_no_provider_collects_is_e_mailed(
    customer, organization, mailoutbox, django_capture_on_commit_callbacks
):
    first = overdue(customer, organization, 12000, "ACME-0001")
    second = overdue(customer, organization, 3050, "ACME-0002")

    request_for(customer, [first, second], django_capture_on_commit_callbacks)

    [mail] = mailoutbox
    entity = customer.billing_entity.legal_name or customer.billing_entity.name
    assert mail.subject == f"Overdue invoices from {entity}"
    assert mail.to == ["ap@globex.test"]
    assert mail.bcc == []
    assert "Hello Globex," in mail.body
    assert "Please pay €150.50." in mail.body
    invoice_lines = [line for line in mail.body.splitlines() if line.startswith("- Invoice")]
    assert [line.split(" · ")[0] for line in invoice_lines] == [
        "- Invoice ACME-0001",
        "- Invoice ACME-0002",
    ]
    assert [line.split(" · ")[2] for line in invoice_lines] == [
        "Amount due €120.00",
        "Amount due €30.50",
    ]
    assert "Total due: €150.50" in mail.body


def test_the_e_mail_speaks_the_customer_document_language(
    organization, mailoutbox, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(
        organization=organization, currency="EUR", name="Globex", email="ap@globex.test",
        document_locale="fr",
    )  # fmt: skip
    invoice = overdue(customer, organization, 12000, "ACME-0001")

    request_for(customer, [invoice], django_capture_on_commit_callbacks)

    [mail] = mailoutbox
    assert mail.subject.startswith("Factures en retard de ")
    assert "Bonjour Globex," in mail.body
    assert "Facture ACME-0001" in mail.body
    assert "120,00\u00a0€" in mail.body


def test_a_campaign_request_copies_the_campaign_bcc(
    customer, organization, mailoutbox, django_capture_on_commit_callbacks
):
    overdue(customer, organization, 12000, "ACME-0001")
    dunned(organization, customer, django_capture_on_commit_callbacks, bcc_emails=["ar@acme.test"])

    [mail] = mailoutbox
    assert PaymentRequest.objects.get().dunning_campaign is not None
    assert (mail.to, mail.bcc) == (["ap@globex.test"], ["ar@acme.test"])


def test_a_request_stripe_collects_is_not_e_mailed(
    stripe_customer, organization, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    save_card(stripe_customer, fake_stripe)
    invoice = overdue(stripe_customer, organization, 12000, "ACME-0001")
    request = request_for(stripe_customer, [invoice], django_capture_on_commit_callbacks)
    assert request.payment_status == "succeeded"
    assert mailoutbox == []


def test_a_refused_charge_e_mails_the_request(
    stripe_customer, organization, fake_stripe, mailoutbox, django_capture_on_commit_callbacks
):
    stripe_customer.email = "ap@globex.test"
    stripe_customer.save(update_fields=["email"])
    save_card(stripe_customer, fake_stripe, decline=True)
    invoice = overdue(stripe_customer, organization, 12000, "ACME-0001")
    request_for(stripe_customer, [invoice], django_capture_on_commit_callbacks)
    assert [mail.to for mail in mailoutbox] == [["ap@globex.test"]]


def test_a_failure_reported_by_stripe_e_mails_the_request_once(
    stripe_customer, organization, fake_stripe, stripe_connection, mailoutbox,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    stripe_customer.email = "ap@globex.test"
    stripe_customer.save(update_fields=["email"])
    save_card(stripe_customer, fake_stripe, requires_action=True)
    invoice = overdue(stripe_customer, organization, 12000, "ACME-0001")
    request = request_for(stripe_customer, [invoice], django_capture_on_commit_callbacks)
    assert mailoutbox == []  # waiting for 3-D Secure
    payment = Payment.objects.get(payment_request=request)
    event = intent_event(fake_stripe, payment, "payment_intent.payment_failed", "failed")

    with django_capture_on_commit_callbacks(execute=True):
        assert post(stripe_connection, event).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert post(stripe_connection, event).status_code == 200  # Stripe's retry

    assert len(mailoutbox) == 1


def test_a_request_whose_invoices_were_paid_meanwhile_is_not_e_mailed(
    customer, organization, mailoutbox, django_capture_on_commit_callbacks
):
    invoice = overdue(customer, organization, 12000, "ACME-0001")
    request = request_for(customer, [invoice], django_capture_on_commit_callbacks)
    payment_create_manual(
        payable=invoice, amount_cents=12000, reference="wire", paid_at=None, actor=SYSTEM,
        now=request.created_at,
    )  # fmt: skip
    mailoutbox.clear()

    assert payment_request_email_send(payment_request_id=request.pk) is False
    assert mailoutbox == []
