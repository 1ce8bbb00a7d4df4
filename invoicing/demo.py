"""Demo invoices for `manage.py seed_demo`: one-off invoices through the same service as the API."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from billing.actors import SYSTEM
from billing.models import Organization
from invoicing import demo_history
from invoicing.models import CreditNote, Invoice
from invoicing.services.credit_notes import ItemInput, credit_note_create, credit_note_estimate
from invoicing.services.one_off import OneOffFee, invoice_create_one_off
from plans.models import AddOn

# (customer external id, add-on code, units)
DEMO_ONE_OFFS = (
    ("demo_bergmann_de", "onboarding", Decimal(1)),
    ("demo_marie_dupont", "premium_support", Decimal(2)),
)


def seed(*, organization: Organization, now: datetime) -> str:
    """A finalized one-off invoice per demo customer that has none yet."""
    created = 0
    for customer_id, add_on_code, units in DEMO_ONE_OFFS:
        if (
            Invoice.objects.for_organization(organization)
            .filter(customer__external_id=customer_id, invoice_type=Invoice.InvoiceType.ONE_OFF)
            .exists()
        ):
            continue
        if not AddOn.objects.for_organization(organization).filter(code=add_on_code).exists():
            continue  # the catalog demo did not run
        invoice_create_one_off(
            organization=organization,
            external_customer_id=customer_id,
            fees=[OneOffFee(add_on_code=add_on_code, units=units)],
            actor=SYSTEM,
            now=now,
        )
        created += 1
    paid = _pay_demo_credit_invoices(organization=organization, now=now)
    credited = _demo_credit_note(organization=organization, now=now)
    history = demo_history.seed(organization=organization, now=now)
    return (
        f"{created} one-off invoices created, {paid} wallet top-ups paid, "
        f"{credited} credit notes issued; history: {history}"
    )


def _demo_credit_note(*, organization: Organization, now: datetime) -> int:
    """A credit note of half a unit on Marie Dupont's one-off invoice (once), so that the credit
    note pages and the customer's available credit have something to show."""
    invoice = (
        Invoice.objects.for_organization(organization)
        .filter(
            customer__external_id="demo_marie_dupont",
            invoice_type=Invoice.InvoiceType.ONE_OFF,
            status=Invoice.Status.FINALIZED,
        )
        .first()
    )
    if invoice is None or CreditNote.objects.filter(invoice=invoice).exists():
        return 0
    fee = invoice.fees.filter(deleted_at__isnull=True).first()
    if fee is None or fee.amount_cents < 2:
        return 0
    items = [ItemInput(str(fee.pk), Decimal(fee.unit_amount_cents or fee.amount_cents) / 2)]
    estimate = credit_note_estimate(invoice=invoice, items=items)
    credit_note_create(
        invoice=invoice,
        actor=SYSTEM,
        now=now,
        items=items,
        reason=CreditNote.Reason.PRODUCT_UNSATISFACTORY,
        description="Support session cut short",
        credit_amount_cents=estimate.amounts.total_amount_cents,
    )
    return 1


def _pay_demo_credit_invoices(*, organization: Organization, now: datetime) -> int:
    """The credit invoices of the demo wallets' purchases (wallets demo, which runs before this
    one) are paid, so their credits settle as after a real payment (spec §17.3)."""
    from invoicing.services.payments import invoice_mark_paid
    from wallets.demo import DEMO_WALLETS

    unpaid = Invoice.objects.for_organization(organization).filter(
        invoice_type=Invoice.InvoiceType.CREDIT,
        status=Invoice.Status.FINALIZED,
        payment_status=Invoice.PaymentStatus.PENDING,
        customer__external_id__in=[demo["customer"] for demo in DEMO_WALLETS],
    )
    paid = 0
    for invoice in unpaid:
        invoice_mark_paid(invoice=invoice, actor=SYSTEM, now=now)
        paid += 1
    return paid
