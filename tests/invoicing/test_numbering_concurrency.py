"""Gapless invoice numbers under concurrent finalization (spec §2.3, STYLE §7): twenty drafts
finalized at once by real threads on PostgreSQL take twenty consecutive numbers."""

import threading
from datetime import date

import pytest
from django.db import close_old_connections, connections

from billing.actors import SYSTEM
from invoicing.models import Invoice, InvoiceSequence
from invoicing.services.lifecycle import invoice_finalize
from tests.invoicing.billing_helpers import bill, customer, plan, set_entity, subscribe, utc

pytestmark = pytest.mark.django_db(transaction=True)
DRAFTS = 20


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def finalize_all_at_once(drafts: list[Invoice]) -> list[Exception]:
    barrier = threading.Barrier(len(drafts))
    errors: list[Exception] = []

    def finalize(draft: Invoice) -> None:
        close_old_connections()
        try:
            barrier.wait()
            invoice_finalize(invoice=draft, actor=SYSTEM, now=utc(2024, 2, 5))
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=finalize, args=(draft,)) for draft in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_twenty_drafts_of_one_customer_take_consecutive_numbers(organization):
    set_entity(organization, invoice_grace_period=3, document_number_prefix="ACM-0001")
    acme = customer(organization, external_id="acme", sequential_id=5)
    for _ in range(DRAFTS):
        subscribe(
            organization, acme, plan(organization), utc(2024, 1, 1), consolidate_invoice=False
        )
    drafts = list(bill(acme, date(2024, 2, 1)).invoices)
    assert len(drafts) == DRAFTS

    assert finalize_all_at_once(drafts) == []

    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"ACM-0001-005-{n:03d}" for n in range(1, DRAFTS + 1)]
    assert InvoiceSequence.objects.get(customer=acme).last_value == DRAFTS


def test_twenty_drafts_of_an_entity_take_consecutive_entity_numbers(organization):
    set_entity(
        organization,
        invoice_grace_period=3,
        document_numbering="per_billing_entity",
        document_number_prefix="ORG-0001",
    )
    drafts = []
    for index in range(DRAFTS):
        who = customer(organization, external_id=f"c{index}")
        subscribe(organization, who, plan(organization), utc(2024, 1, 1))
        drafts.extend(bill(who, date(2024, 2, 1)).invoices)

    assert finalize_all_at_once(drafts) == []

    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"ORG-0001-202402-{n:03d}" for n in range(1, DRAFTS + 1)]
    assert sorted(Invoice.objects.values_list("sequential_id", flat=True)) == [1] * DRAFTS
