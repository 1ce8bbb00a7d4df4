"""Payment requests: one request to pay several overdue invoices of a customer, in one currency
and for one billing entity.

The request itself records `payment_request.created` and fires
`invoicing.hooks.on_payment_request_created` after commit; a payment provider integration reacts
by collecting the request's amount through
`invoicing.services.payment_settlement.payment_provider_create(payable=request, ...)`, then
reports the outcome with `payment_provider_update` (a success pays every invoice of the request
and records `payment_request.payment_status_updated`; a failure records
`payment_request.payment_failure`). Without a provider the request is an e-mail, and it is
paid by hand (`payment_create_manual(payable=request, ...)`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from django.db import transaction

from billing.actors import Actor
from billing.errors import Invalid, NotAllowed, NotFound
from billing.models import Organization
from customers.models import Customer
from invoicing import hooks
from invoicing.models import DunningCampaign, Invoice, PaymentRequest, PaymentRequestInvoice
from invoicing.payment_selectors import invoice_amount_due
from invoicing.services.payment_events import record_payment_request_event


def _uuids(values: Sequence[object]) -> list[uuid.UUID]:
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue  # an id that names no invoice
    return ids


@transaction.atomic
def payment_request_create(
    *,
    organization: Organization,
    external_customer_id: str | None,
    lago_invoice_ids: Sequence[object] | None,
    email: str | None = None,
    dunning_campaign: DunningCampaign | None = None,
    actor: Actor,
    now: datetime,
) -> PaymentRequest:
    """Requests the payment of overdue invoices of one customer (all in one currency and one
    billing entity); the amount is what they still owe. Records `payment_request.created`."""
    if lago_invoice_ids is not None and not isinstance(lago_invoice_ids, list | tuple):
        raise Invalid({"lago_invoice_ids": ["invalid_value"]})
    customer = (
        Customer.objects.for_organization(organization)
        .filter(external_id=external_customer_id or "", deleted_at__isnull=True)
        .first()
    )
    if customer is None:
        raise NotFound("customer")
    invoices = list(
        Invoice.objects.filter(customer=customer, pk__in=_uuids(lago_invoice_ids or []))
        .exclude(status__in=(Invoice.Status.DELETED, Invoice.Status.CLOSED))
        .order_by("issuing_date", "number", "pk")
    )
    if not invoices:
        raise NotFound("invoice")
    if any(not invoice.payment_overdue for invoice in invoices):
        raise NotAllowed("invoices_not_overdue")
    if len({invoice.currency for invoice in invoices}) > 1:
        raise NotAllowed("invoices_have_different_currencies")
    if len({invoice.billing_entity_id for invoice in invoices}) > 1:
        raise NotAllowed("invoices_have_different_billing_entities")
    request = PaymentRequest.objects.create(
        organization=organization,
        customer=customer,
        billing_entity_id=invoices[0].billing_entity_id,
        dunning_campaign=dunning_campaign,
        email=(email if email is not None else customer.email) or "",
        amount_cents=sum(invoice_amount_due(invoice) for invoice in invoices),
        amount_currency=invoices[0].currency,
    )
    PaymentRequestInvoice.objects.bulk_create(
        PaymentRequestInvoice(organization=organization, payment_request=request, invoice=invoice)
        for invoice in invoices
    )
    # the e-mail of a campaign's reminder copies the campaign's BCC addresses
    extra = (
        {
            "dunning_campaign_code": dunning_campaign.code,
            "bcc_emails": list(dunning_campaign.bcc_emails),
        }
        if dunning_campaign
        else {}
    )
    record_payment_request_event(request, "payment_request.created", actor=actor, **extra)
    hooks.on_payment_request_created.fire_after_commit(payment_request_id=request.pk)
    return request
