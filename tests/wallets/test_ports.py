"""The wallets ports: what wallets need from invoicing, bound at start-up, never defaulted."""

from __future__ import annotations

from uuid import UUID

import pytest
from django.core.checks import run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from invoicing.models import Invoice
from tests.invoicing.invoice_builders import build_invoice
from wallets import ports
from wallets.models import WalletTransaction


def test_every_port_is_bound_once_invoicing_is_ready():
    assert [port.name for port in ports.PORTS if not port.is_bound] == []
    assert [m for m in run_checks() if m.id == "wallets.E001"] == []


def test_start_up_check_fails_while_a_port_is_unbound(monkeypatch):
    monkeypatch.setattr(ports.draft_invoices_for_customer, "_impl", None)
    with pytest.raises(SystemCheckError, match="draft_invoices_for_customer is not bound"):
        call_command("check")


def test_an_unbound_port_raises_instead_of_answering():
    port = ports.Port("draft_invoices_for_customer", ports.DraftInvoicesForCustomer)
    with pytest.raises(ports.PortNotBound, match="draft_invoices_for_customer is not bound"):
        port(customer_id=UUID(int=1))


def test_a_bound_port_passes_the_keywords_through():
    port = ports.Port("invoice_labels", ports.InvoiceLabels)
    port.bind(lambda *, invoice_ids: dict.fromkeys(invoice_ids, "F-1"))
    assert port(invoice_ids=[UUID(int=1)]) == {UUID(int=1): "F-1"}


def test_binding_refuses_an_implementation_missing_a_declared_keyword():
    port = ports.Port("create_paid_credits_invoice", ports.CreatePaidCreditsInvoice)

    def without_now(*, transaction: WalletTransaction) -> None:
        return None

    with pytest.raises(ImproperlyConfigured, match="does not accept now"):
        port.bind(without_now)
    assert not port.is_bound


@pytest.mark.django_db
def test_invoice_labels_name_invoices_by_number_and_drafts_as_such(organization):
    numbered = build_invoice(organization, number="ACM-001")
    draft = build_invoice(organization, status="draft")
    Invoice.objects.filter(pk=draft.pk).update(number="")  # drafts have no number yet
    labels = ports.invoice_labels(invoice_ids=[numbered.pk, draft.pk])
    assert labels == {numbered.pk: "ACM-001", draft.pk: "Draft invoice"}
