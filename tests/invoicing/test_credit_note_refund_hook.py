"""The refund of a credit note is requested through a hook a payment provider connects to; the
provider reports the outcome with `credit_note_refund_settle`."""

from __future__ import annotations

import pytest

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from invoicing import hooks
from invoicing.models import CreditNote
from invoicing.services.credit_notes import (
    ItemInput,
    credit_note_create,
    credit_note_refund_settle,
)
from tests.invoicing.billing_helpers import utc
from tests.invoicing.credit_note_builders import simple_invoice

pytestmark = pytest.mark.django_db

NOW = utc(2026, 3, 5)


@pytest.fixture
def provider():
    """A payment provider stand-in: refunds succeed unless told otherwise."""
    outcome = {"succeeded": True, "asked": []}

    def refund(*, credit_note_id):
        outcome["asked"].append(credit_note_id)
        credit_note_refund_settle(
            credit_note_id=credit_note_id, succeeded=outcome["succeeded"], actor=SYSTEM, now=NOW
        )

    hooks.on_credit_note_refund_requested.connect(refund)
    yield outcome
    hooks.on_credit_note_refund_requested.disconnect(refund)


def refund_note(organization) -> CreditNote:
    invoice = simple_invoice(organization, paid=True)
    return credit_note_create(
        invoice=invoice,
        actor=SYSTEM,
        now=NOW,
        items=[ItemInput(str(invoice.fees.get().pk), 1000)],
        refund_amount_cents=1200,
    )


def test_a_connected_provider_settles_the_refund(
    organization, provider, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        note = refund_note(organization)
    assert provider["asked"] == [note.pk]
    note.refresh_from_db()
    assert note.refund_status == "succeeded"


def test_a_failed_refund_records_its_event(
    organization, provider, django_capture_on_commit_callbacks
):
    provider["succeeded"] = False
    with django_capture_on_commit_callbacks(execute=True):
        note = refund_note(organization)
    note.refresh_from_db()
    assert note.refund_status == "failed"
    assert OutboxEvent.objects.filter(event_type="credit_note.refund_failure").count() == 1


def test_without_a_provider_the_refund_stays_pending(
    organization, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        note = refund_note(organization)
    note.refresh_from_db()
    assert note.refund_status == "pending"


def test_a_credit_only_note_asks_no_refund(
    organization, provider, django_capture_on_commit_callbacks
):
    invoice = simple_invoice(organization)
    with django_capture_on_commit_callbacks(execute=True):
        credit_note_create(
            invoice=invoice,
            actor=SYSTEM,
            now=NOW,
            items=[ItemInput(str(invoice.fees.get().pk), 1000)],
            credit_amount_cents=1200,
        )
    assert provider["asked"] == []
