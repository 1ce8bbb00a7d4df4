"""Payments of invoices and payment requests: the one module that records a payment and moves
what it pays (`Invoice.total_paid_amount_cents`, payment statuses).

Every function locks in one order: payment request, then its invoices (primary-key order),
then the payment row, then receipt counters and dunning state. An invoice's paid total only
changes under the invoice's row lock, so two payments finishing an invoice at once serialize:
the second sees the first and is refused if it would over-pay.

Manual payments (the API's `POST /payments`, the dashboard's "Record payment")
---------------------------------------------------------------------------------
``payment_create_manual(payable=..., amount_cents=..., reference=..., paid_at=..., actor=, now=)``
records a succeeded `manual` payment. Partial payments of an invoice are allowed; the invoice's
`payment_status` becomes `succeeded` only once nothing is left due (`total_paid_amount_cents`
plus credit note offsets reach `total_amount_cents`). A payment request is paid in full, and
then every invoice it lists is.

``invoice_payment_status_set(invoice=, payment_status=, actor=, now=)`` is "Mark paid" and
`PUT /invoices/{id}` `payment_status`: no payment is recorded, the paid total follows the
status (see its docstring).

Provider payments (the API a payment provider integration calls)
----------------------------------------------------------------
A provider (Stripe, ...) lives in `integrations`; it never writes a `Payment` itself:

``payment_provider_create(payable=, payment_provider_code=, payment_provider_type=,
provider_customer_id=, provider_payment_id=None, amount_cents=None, actor=, now=)``
    Records a `pending` provider payment of `amount_cents` (default: what the payable still
    owes) before or after asking the provider to charge. One collection is in flight per
    payable: while a pending/processing provider payment exists, the same call returns it
    (idempotent), unless it names another `provider_payment_id` (`NotAllowed
    payment_already_in_progress`). With a `provider_payment_id` already recorded in the
    organization, returns that payment.

``payment_provider_attach(payment=, provider_payment_id=, actor=, now=)``
    Stores the provider's id (the PaymentIntent id) on a payment created before the provider
    answered.

``payment_provider_update(organization=, provider_payment_id=, status=, payable_payment_status=,
provider_payment_data=None, error_code="", actor=, now=)``
    What a provider webhook reports: `status` is the provider's raw status, and
    `payable_payment_status` one of pending | processing | succeeded | failed. Idempotent:
    reporting the same state twice changes nothing and records nothing twice; a succeeded
    payment stays succeeded. `succeeded` settles the payable exactly as a manual payment does
    (paid totals, `invoice.payment_status_updated`, `payment.succeeded`, a receipt, dunning
    counters reset); `failed` marks the payable failed (`invoice.payment_failure` or
    `payment_request.payment_failure`); `requires_action` data is kept as `next_action`
    (`payment.requires_action`). Raises `NotFound("payment")` for an unknown id.

``payment_provider_fail(payment=, status=, error_code="", actor=, now=)``
    The provider refused the charge outright (no provider id to report on): the in-flight
    payment fails and its payable is marked failed, as a failed report does.

Every function takes `actor=` and `now=`, runs in one transaction and returns the payment.
"""

from __future__ import annotations

import logging
from datetime import datetime
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import Sum

from billing.actors import Actor
from billing.errors import Invalid, NotAllowed, NotFound
from billing.models import Organization
from invoicing.locks import (
    lock_invoice,
    lock_invoices,
    lock_payment,
    lock_payment_request,
)
from invoicing.models import Invoice, Payment, PaymentRequest
from invoicing.payment_models import REFERENCE_MAX, PayablePaymentStatus
from invoicing.payment_selectors import invoice_amount_due
from invoicing.services.credit_invoices import credit_invoice_payment_changed
from invoicing.services.dunning import dunning_reset_currency, dunning_reset_when_paid_up
from invoicing.services.events import emit_invoice_event
from invoicing.services.payment_events import (
    record_payment_recorded,
    record_payment_request_event,
    record_payment_requires_action,
    record_payment_succeeded,
)
from invoicing.services.payment_receipts import payment_receipt_create

logger = logging.getLogger(__name__)

Payable = Invoice | PaymentRequest

# invoices a manual payment may pay; an `open` credit invoice waits for the payment of its
# wallet top-up before it is finalized
MANUALLY_PAYABLE = (Invoice.Status.FINALIZED, Invoice.Status.OPEN)
_IN_FLIGHT = (PayablePaymentStatus.PENDING, PayablePaymentStatus.PROCESSING)


def _request_amount_due(invoices: list[Invoice]) -> int:
    return sum(invoice_amount_due(invoice) for invoice in invoices)


# --- what a succeeded or failed payment does to its payable --------------------------------


def _invoice_payment_status(
    invoice: Invoice, payment_status: str, *, actor: Actor, now: datetime
) -> None:
    """Sets a locked invoice's payment status and records `invoice.payment_status_updated`
    when it changes; a paid invoice is no longer overdue, a paid top-up settles its credits."""
    if invoice.payment_status == payment_status:
        return
    invoice.payment_status = payment_status
    fields = ["payment_status", "total_paid_amount_cents"]
    if payment_status == Invoice.PaymentStatus.SUCCEEDED:
        invoice.payment_overdue = False
        fields.append("payment_overdue")
    invoice.save(update_fields=[*fields, "updated_at"])
    credit_invoice_payment_changed(invoice=invoice, actor=actor, now=now)
    emit_invoice_event(invoice, "invoice.payment_status_updated", actor=actor)


def _settle_invoice(invoice: Invoice, amount_cents: int, *, actor: Actor, now: datetime) -> None:
    """Adds a succeeded payment to a locked invoice's paid total, never beyond what it owes;
    nothing left due (credit note offsets deducted): paid."""
    invoice.total_paid_amount_cents += min(amount_cents, invoice_amount_due(invoice))
    if invoice_amount_due(invoice) == 0:
        was_overdue = invoice.payment_overdue
        _invoice_payment_status(invoice, Invoice.PaymentStatus.SUCCEEDED, actor=actor, now=now)
        if was_overdue:
            _reset_dunning_when_paid_up(invoice, actor=actor)
    else:
        invoice.save(update_fields=["total_paid_amount_cents", "updated_at"])


def _reset_dunning_when_paid_up(invoice: Invoice, *, actor: Actor) -> None:
    dunning_reset_when_paid_up(customer=invoice.customer, currency=invoice.currency)


def _settle_request(
    request: PaymentRequest, invoices: list[Invoice], *, actor: Actor, now: datetime
) -> None:
    """A paid payment request pays every invoice it lists in full; a campaign's request
    restarts the campaign's attempts in its currency (Lago)."""
    for invoice in invoices:
        due = invoice_amount_due(invoice)
        if due > 0 or invoice.payment_status != Invoice.PaymentStatus.SUCCEEDED:
            _settle_invoice(invoice, due, actor=actor, now=now)
    _request_payment_status(request, PaymentRequest.PaymentStatus.SUCCEEDED, actor=actor)
    if request.dunning_campaign_id is not None:
        dunning_reset_currency(customer=request.customer, currency=request.amount_currency)


def _payable_paid(payable: Payable, invoices: list[Invoice]) -> bool:
    """The locked payable owes nothing any more (paid by another payment meanwhile)."""
    if isinstance(payable, PaymentRequest):
        return payable.payment_status == PaymentRequest.PaymentStatus.SUCCEEDED or all(
            invoice_amount_due(invoice) == 0 for invoice in invoices
        )
    return (
        payable.payment_status == Invoice.PaymentStatus.SUCCEEDED
        and invoice_amount_due(payable) == 0
    )


def _request_payment_status(request: PaymentRequest, payment_status: str, *, actor: Actor) -> None:
    if request.payment_status == payment_status:
        return
    request.payment_status = payment_status
    request.save(update_fields=["payment_status", "updated_at"])
    record_payment_request_event(request, "payment_request.payment_status_updated", actor=actor)


def _after_success(payment: Payment, *, actor: Actor, now: datetime) -> None:
    payment_receipt_create(payment=payment, actor=actor, now=now)


def _lock_payable(payable: Payable) -> tuple[Payable, list[Invoice]]:
    """The payable locked, and the invoices it pays locked after it."""
    if isinstance(payable, Invoice):
        invoice = lock_invoice(payable.pk)
        return invoice, [invoice]
    request = lock_payment_request(payable.pk)
    invoice_ids = list(request.applied_invoices.values_list("invoice_id", flat=True))
    return request, lock_invoices(invoice_ids)


# --- manual payments -------------------------------------------------------------------------


def _validate_manual(amount_cents: object, reference: object) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if isinstance(amount_cents, bool) or not isinstance(amount_cents, int) or amount_cents <= 0:
        errors["amount_cents"] = ["invalid_value"]
    if not isinstance(reference, str) or not reference.strip():
        errors["reference"] = ["value_is_mandatory"]
    elif len(reference) > REFERENCE_MAX:
        errors["reference"] = ["value_is_too_long"]
    return errors


@transaction.atomic
def payment_create_manual(
    *,
    payable: Payable,
    amount_cents: int,
    reference: str,
    paid_at: datetime | None,
    actor: Actor,
    now: datetime,
) -> Payment:
    """Records money received outside a provider (a transfer, a cheque) for an invoice, in
    part or in full, or for a payment request, in full."""
    errors = _validate_manual(amount_cents, reference)
    if errors:
        raise Invalid(errors)
    payable, invoices = _lock_payable(payable)
    if isinstance(payable, Invoice):
        invoice = payable
        if invoice.status not in MANUALLY_PAYABLE or (
            invoice.status == Invoice.Status.OPEN
            and invoice.invoice_type != Invoice.InvoiceType.CREDIT
        ):
            raise NotAllowed("invoice_not_finalized")
        if invoice.payment_requests.filter(
            payment_status=PaymentRequest.PaymentStatus.SUCCEEDED
        ).exists():
            raise Invalid({"base": ["payment_request_is_already_succeeded"]})
        if amount_cents > invoice_amount_due(invoice):
            raise Invalid({"amount_cents": ["value_is_out_of_range"]})
        if (
            invoice.invoice_type == Invoice.InvoiceType.CREDIT
            and amount_cents != invoice.total_amount_cents
        ):
            # a wallet top-up's credits settle only with its whole price
            raise Invalid({"amount_cents": ["invalid_amount"]})
        customer_id, currency = invoice.customer_id, invoice.currency
    else:
        request = payable
        if request.payment_status == PaymentRequest.PaymentStatus.SUCCEEDED:
            raise NotAllowed("payment_request_already_succeeded")
        if amount_cents != _request_amount_due(invoices):
            raise Invalid({"amount_cents": ["invalid_amount"]})
        customer_id, currency = request.customer_id, request.amount_currency
    payment = Payment.objects.create(
        organization_id=payable.organization_id,
        customer_id=customer_id,
        invoice=payable if isinstance(payable, Invoice) else None,
        payment_request=payable if isinstance(payable, PaymentRequest) else None,
        amount_cents=amount_cents,
        amount_currency=currency,
        payment_type=Payment.PaymentType.MANUAL,
        status="succeeded",
        payable_payment_status=PayablePaymentStatus.SUCCEEDED,
        reference=reference.strip(),
    )
    if paid_at is not None:
        # Lago: the payment is dated when the money was paid
        payment.created_at = paid_at
        Payment.objects.filter(pk=payment.pk).update(created_at=paid_at)
    if isinstance(payable, Invoice):
        _settle_invoice(payable, amount_cents, actor=actor, now=now)
    else:
        _settle_request(payable, invoices, actor=actor, now=now)
    record_payment_recorded(payment, actor=actor)
    _after_success(payment, actor=actor, now=now)
    return payment


# --- provider payments -----------------------------------------------------------------------


@transaction.atomic
def payment_provider_create(
    *,
    payable: Payable,
    payment_provider_code: str,
    payment_provider_type: str,
    provider_customer_id: str = "",
    provider_payment_id: str | None = None,
    amount_cents: int | None = None,
    actor: Actor,
    now: datetime,
) -> Payment:
    """Records a pending provider payment of the payable (see the module docstring)."""
    if provider_payment_id is not None:
        known = Payment.objects.filter(
            organization_id=payable.organization_id, provider_payment_id=provider_payment_id
        ).first()
        if known is not None:
            return known
    payable, invoices = _lock_payable(payable)
    in_flight = _in_flight_payment(payable)
    if in_flight is not None:
        if provider_payment_id and in_flight.provider_payment_id not in (
            None,
            provider_payment_id,
        ):
            raise NotAllowed("payment_already_in_progress")
        return in_flight
    due = (
        invoice_amount_due(payable)
        if isinstance(payable, Invoice)
        else _request_amount_due(invoices)
    )
    amount = due if amount_cents is None else amount_cents
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0 or amount > due:
        raise Invalid({"amount_cents": ["value_is_out_of_range"]})
    if isinstance(payable, PaymentRequest):
        payable.payment_attempts += 1
        payable.save(update_fields=["payment_attempts", "updated_at"])
    try:
        with transaction.atomic():
            return Payment.objects.create(
                organization_id=payable.organization_id,
                customer_id=payable.customer_id,
                invoice=payable if isinstance(payable, Invoice) else None,
                payment_request=payable if isinstance(payable, PaymentRequest) else None,
                amount_cents=amount,
                amount_currency=payable.currency
                if isinstance(payable, Invoice)
                else payable.amount_currency,
                payment_type=Payment.PaymentType.PROVIDER,
                status="pending",
                payable_payment_status=PayablePaymentStatus.PENDING,
                payment_provider_code=payment_provider_code,
                payment_provider_type=payment_provider_type,
                provider_customer_id=provider_customer_id,
                provider_payment_id=provider_payment_id,
            )
    except IntegrityError:
        # the same provider id recorded meanwhile for another payable of the organization
        raise Invalid({"provider_payment_id": ["value_already_exist"]}) from None


def _in_flight_payment(payable: Payable) -> Payment | None:
    payments = Payment.objects.filter(
        payment_type=Payment.PaymentType.PROVIDER, payable_payment_status__in=_IN_FLIGHT
    )
    if isinstance(payable, Invoice):
        return payments.filter(invoice=payable).first()
    return payments.filter(payment_request=payable).first()


@transaction.atomic
def payment_provider_attach(
    *, payment: Payment, provider_payment_id: str, actor: Actor, now: datetime
) -> Payment:
    """Stores the provider's id on a payment recorded before the provider answered."""
    payment = lock_payment(payment.pk)
    if payment.provider_payment_id == provider_payment_id:
        return payment
    if payment.provider_payment_id is not None:
        raise NotAllowed("provider_payment_id_already_set")
    payment.provider_payment_id = provider_payment_id
    try:
        with transaction.atomic():
            payment.save(update_fields=["provider_payment_id", "updated_at"])
    except IntegrityError:
        raise Invalid({"provider_payment_id": ["value_already_exist"]}) from None
    return payment


@transaction.atomic
def payment_provider_update(
    *,
    organization: Organization,
    provider_payment_id: str,
    status: str,
    payable_payment_status: str,
    provider_payment_data: dict | None = None,
    error_code: str = "",
    actor: Actor,
    now: datetime,
) -> Payment:
    """Applies what the provider reports about a payment (see the module docstring)."""
    if payable_payment_status not in PayablePaymentStatus.values:
        raise Invalid({"payable_payment_status": ["value_is_invalid"]})
    found = (
        Payment.objects.for_organization(organization)
        .filter(provider_payment_id=provider_payment_id)
        .values_list("pk", "invoice_id", "payment_request_id")
        .first()
    )
    if found is None:
        raise NotFound("payment")
    payment_id, invoice_id, request_id = found
    # lock order: payable first, then the payment
    if invoice_id is not None:
        payable, invoices = _lock_payable(Invoice(pk=invoice_id))
    else:
        payable, invoices = _lock_payable(PaymentRequest(pk=request_id))
    payment = lock_payment(payment_id)
    before = payment.payable_payment_status
    if before == PayablePaymentStatus.SUCCEEDED:
        return payment  # final: a late or repeated report changes nothing
    if _payable_paid(payable, invoices):
        # paid meanwhile by another payment (a manual one, a payment request): as Lago, the
        # report changes nothing here, so the payable is paid once, with one receipt; money
        # Stripe took on top is for the user to refund there
        logger.warning(
            "payment %s reported %s for a payable already paid: nothing recorded",
            payment.pk,
            payable_payment_status,
        )
        return payment
    changed = before != payable_payment_status or payment.status != status
    new_action = provider_payment_data is not None and (
        provider_payment_data != payment.provider_payment_data
    )
    if not changed and not new_action:
        return payment
    payment.status = status
    payment.payable_payment_status = payable_payment_status
    if provider_payment_data is not None:
        payment.provider_payment_data = provider_payment_data
    payment.error_code = error_code or ""
    payment.save(
        update_fields=[
            "status",
            "payable_payment_status",
            "provider_payment_data",
            "error_code",
            "updated_at",
        ]
    )
    if payable_payment_status == PayablePaymentStatus.SUCCEEDED:
        if isinstance(payable, Invoice):
            _settle_invoice(payable, payment.amount_cents, actor=actor, now=now)
        else:
            _settle_request(payable, invoices, actor=actor, now=now)
        record_payment_succeeded(payment, actor=actor)
        _after_success(payment, actor=actor, now=now)
    elif payable_payment_status == PayablePaymentStatus.FAILED and before != payable_payment_status:
        _payable_failed(payable, invoices, payment, actor=actor, now=now)
    elif new_action:
        record_payment_requires_action(payment, actor=actor)
    return payment


@transaction.atomic
def payment_provider_fail(
    *, payment: Payment, status: str, error_code: str = "", actor: Actor, now: datetime
) -> Payment:
    """The provider refused to charge before creating anything (a declined card, an amount
    below its minimum, no payment method): the payment fails without a provider id and the
    payable is marked failed, once. A payment no longer in flight is returned unchanged."""
    if payment.invoice_id is not None:
        payable, invoices = _lock_payable(Invoice(pk=payment.invoice_id))
    else:
        payable, invoices = _lock_payable(PaymentRequest(pk=payment.payment_request_id))
    payment = lock_payment(payment.pk)
    if payment.payable_payment_status not in _IN_FLIGHT:
        return payment
    payment.status = status
    payment.payable_payment_status = PayablePaymentStatus.FAILED
    payment.error_code = error_code or ""
    payment.save(update_fields=["status", "payable_payment_status", "error_code", "updated_at"])
    _payable_failed(payable, invoices, payment, actor=actor, now=now)
    return payment


def _payable_failed(
    payable: Payable, invoices: list[Invoice], payment: Payment, *, actor: Actor, now: datetime
) -> None:
    error = {"provider_payment_id": payment.provider_payment_id, "error_code": payment.error_code}
    for invoice in invoices:
        if invoice.payment_status != Invoice.PaymentStatus.SUCCEEDED:
            _invoice_payment_status(invoice, Invoice.PaymentStatus.FAILED, actor=actor, now=now)
    if isinstance(payable, Invoice):
        emit_invoice_event(payable, "invoice.payment_failure", actor=actor, **error)
    else:
        _request_payment_status(payable, PaymentRequest.PaymentStatus.FAILED, actor=actor)
        record_payment_request_event(
            payable, "payment_request.payment_failure", actor=actor, **error
        )


# --- a payment status set by hand -----------------------------------------------------------


def _recorded_paid_cents(invoice: Invoice) -> int:
    """What recorded payments paid of a locked invoice: its own succeeded payments, or its
    paid total as it stands when a succeeded payment request paid it (a request's payment is
    not split per invoice)."""
    if invoice.payment_requests.filter(
        payment_status=PaymentRequest.PaymentStatus.SUCCEEDED
    ).exists():
        return invoice.total_paid_amount_cents
    return payments_total_succeeded(invoice_id=invoice.pk)


def invoice_payment_status_set(
    *, invoice: Invoice, payment_status: str, actor: Actor, now: datetime
) -> Invoice:
    """`PUT /invoices/{id}` `payment_status` and the dashboard's "Mark paid", on a locked
    invoice (the caller's transaction), keeping the books consistent.

    Lago's `Invoices::UpdateService` only sets the status (and clears `payment_overdue`), so
    its `total_due_amount_cents` keeps asking for money an invoice marked paid no longer owes.
    Here no `Payment` is recorded either (nothing was received that a payment, its receipt or
    `payment.succeeded` could describe), but the paid total follows the status so that every
    figure read from it agrees:
    - `succeeded`: what is still due counts as paid (`total_paid_amount_cents` + offsets =
      total, `total_due_amount_cents` 0), no longer overdue, a wallet top-up's credits settle;
    - `pending` / `failed` after `succeeded`: the paid total falls back to what recorded
      payments paid, so the part only marked paid is due again.
    Records `invoice.payment_status_updated` when the status changes."""
    if invoice.payment_status == payment_status:
        return invoice
    was_overdue = invoice.payment_overdue
    if payment_status == Invoice.PaymentStatus.SUCCEEDED:
        invoice.total_paid_amount_cents += invoice_amount_due(invoice)
    elif invoice.payment_status == Invoice.PaymentStatus.SUCCEEDED:
        invoice.total_paid_amount_cents = min(
            _recorded_paid_cents(invoice), invoice.total_paid_amount_cents
        )
    _invoice_payment_status(invoice, payment_status, actor=actor, now=now)
    if was_overdue and payment_status == Invoice.PaymentStatus.SUCCEEDED:
        _reset_dunning_when_paid_up(invoice, actor=actor)
    return invoice


def payments_total_succeeded(*, invoice_id: UUID) -> int:
    """The sum of an invoice's succeeded payments (a check against its paid total)."""
    return (
        Payment.objects.filter(
            invoice_id=invoice_id, payable_payment_status=PayablePaymentStatus.SUCCEEDED
        ).aggregate(total=Sum("amount_cents"))["total"]
        or 0
    )
