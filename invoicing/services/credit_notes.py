"""Credit notes: correcting a finalized invoice by credit, refund or offset; estimates; refund
status; voiding the remaining credit; metadata.

Amounts come from `invoicing.credit_note_math`; the invoice row is locked while a credit note
is numbered and validated against what earlier credit notes already took, so two credit notes
on one invoice never both spend the same remaining amount.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone as dj_timezone

from billing.activity import record_activity
from billing.actors import Actor
from billing.errors import Invalid, NotAllowed, NotFound
from billing.money import round_cents
from invoicing import calculation, hooks
from invoicing.credit_note_math import (
    CreditedItem,
    CreditNoteAmounts,
    ItemTax,
    credit_note_amounts,
    split_to_total,
)
from invoicing.locks import lock_credit_note, lock_draft_credit_notes, lock_invoice
from invoicing.models import (
    CreditNote,
    CreditNoteAppliedTax,
    CreditNoteItem,
    Fee,
    Invoice,
)
from invoicing.pdf_credit_notes import generate_credit_note_pdf_task
from invoicing.services.analytics_figures import figures_record_refund
from invoicing.services.credit_note_events import emit_credit_note_event
from invoicing.services.events import emit_invoice_event
from wallets.models import WalletTransaction
from wallets.services import ledger

REASONS = frozenset(CreditNote.Reason.values)
REFUND_STATUSES = frozenset(CreditNote.RefundStatus.values)
METADATA_KEY_MAX = 255
METADATA_VALUE_MAX = 1024
CREDIT_NOTES_MIN_VERSION = 2
TOLERANCE_CENTS = 1  # Lago compares rounded totals within a cent

Status = CreditNote.Status
CreditStatus = CreditNote.CreditStatus
RefundStatus = CreditNote.RefundStatus


@dataclass(frozen=True)
class ItemInput:
    """`items[]` of a create or estimate request: an amount excluding taxes on one fee."""

    fee_id: str
    amount_cents: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount_cents", Decimal(str(self.amount_cents)))


@dataclass
class CreditNoteEstimate:
    """What a credit note on these items would amount to, and how much of it may be credited,
    refunded or offset."""

    invoice: Invoice
    items: list[tuple[Fee, Decimal]]
    amounts: CreditNoteAmounts
    max_creditable_amount_cents: int
    max_refundable_amount_cents: int
    max_offsettable_amount_cents: int
    applied_taxes: list[CreditNoteAppliedTax] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# What an invoice still allows


def _invoice_fees(invoice: Invoice) -> list[Fee]:
    return list(
        invoice.fees.filter(deleted_at__isnull=True)
        .select_related("wallet_transaction__wallet")
        .prefetch_related("applied_taxes")
        .order_by("created_at", "id")
    )


def _previous(invoice: Invoice, *, exclude: UUID | None = None) -> dict[str, int]:
    """What the invoice's finalized credit notes already credited, refunded and offset."""
    notes = CreditNote.objects.filter(invoice_id=invoice.pk, status=Status.FINALIZED)
    if exclude is not None:
        notes = notes.exclude(pk=exclude)
    sums = notes.aggregate(
        credit=Sum("credit_amount_cents"),
        refund=Sum("refund_amount_cents"),
        offset=Sum("offset_amount_cents"),
    )
    return {key: value or 0 for key, value in sums.items()}


def _fee_credited_cents(fee_ids: Sequence[UUID]) -> dict[UUID, int]:
    rows = (
        CreditNoteItem.objects.filter(fee_id__in=fee_ids)
        .values("fee_id")
        .annotate(total=Sum("amount_cents"))
    )
    return {row["fee_id"]: row["total"] or 0 for row in rows}


def fee_total_amount_cents(fees: Sequence[Fee]) -> int:
    """The invoice's fees with their taxes, before coupons (Lago's `fee_total_amount_cents`):
    the ceiling of everything credit notes may give back."""
    amount = sum(fee.amount_cents for fee in fees)
    taxes = sum((Decimal(fee.amount_cents) * fee.taxes_rate for fee in fees), Decimal(0))
    return amount + round_cents(taxes / 100)


def invoice_creditable_amount_cents(invoice: Invoice, fees: Sequence[Fee] | None = None) -> int:
    """What credit notes can still be issued for on the invoice, taxes included: the fees'
    uncredited amounts less their coupon share, plus their taxes. 0 for a credit (wallet)
    invoice, a draft, or an invoice older than credit notes."""
    if (
        invoice.version_number < CREDIT_NOTES_MIN_VERSION
        or invoice.status == Invoice.Status.DRAFT
        or invoice.invoice_type == Invoice.InvoiceType.CREDIT
    ):
        return 0
    fees = _invoice_fees(invoice) if fees is None else fees
    credited = _fee_credited_cents([fee.pk for fee in fees])
    creditable = {fee.pk: max(fee.amount_cents - credited.get(fee.pk, 0), 0) for fee in fees}
    total_creditable = sum(creditable.values())
    if total_creditable == 0 or invoice.fees_amount_cents == 0:
        return 0
    adjustment = (
        Decimal(invoice.coupons_amount_cents + invoice.progressive_billing_credit_amount_cents)
        / invoice.fees_amount_cents
        * total_creditable
    )
    vat = Decimal(0)
    for fee in fees:
        share = adjustment * creditable[fee.pk] / total_creditable
        vat += (creditable[fee.pk] - share) * fee.taxes_rate
    return round_cents(total_creditable - adjustment + round_cents(vat / 100))


def invoice_due_amount_cents(invoice: Invoice) -> int:
    """What the invoice still asks to be paid: total less payments and offsets (0 if voided)."""
    if invoice.status == Invoice.Status.VOIDED:
        return 0
    return max(
        invoice.total_amount_cents
        - invoice.total_paid_amount_cents
        - invoice.total_offsetted_credit_note_amount_cents,
        0,
    )


def invoice_refundable_amount_cents(invoice: Invoice, creditable: int | None = None) -> int:
    """Paid and not yet refunded, within what is still creditable (prepaid credits, credit
    notes and coupons are never paid, so never refunded)."""
    if invoice.version_number < CREDIT_NOTES_MIN_VERSION or invoice.status == Invoice.Status.DRAFT:
        return 0
    remaining_paid = invoice.total_paid_amount_cents - _previous(invoice)["refund"]
    if invoice.invoice_type == Invoice.InvoiceType.CREDIT:
        return max(remaining_paid, 0)
    creditable = invoice_creditable_amount_cents(invoice) if creditable is None else creditable
    return max(min(remaining_paid, creditable), 0)


def invoice_offsettable_amount_cents(invoice: Invoice, creditable: int | None = None) -> int:
    """What an offset may still take: the amount due, within what is still creditable."""
    due = invoice_due_amount_cents(invoice)
    if invoice.invoice_type == Invoice.InvoiceType.CREDIT:
        return invoice.total_amount_cents if due > 0 else 0
    creditable = invoice_creditable_amount_cents(invoice) if creditable is None else creditable
    return min(due, creditable)


# --------------------------------------------------------------------------------------------
# Items and amounts


def _check_invoice(invoice: Invoice, *, automatic: bool = False) -> None:
    if automatic:
        return
    if invoice.status != Invoice.Status.FINALIZED or (
        invoice.version_number < CREDIT_NOTES_MIN_VERSION
    ):
        raise NotAllowed("invalid_type_or_status")


def parse_items(raw: object) -> list[ItemInput]:
    """`items` as given: a list of `{fee_id, amount_cents}` (422 otherwise)."""
    if not isinstance(raw, list):
        raise Invalid({"items": ["must_be_an_array"]})
    items = []
    for entry in raw:
        if not isinstance(entry, Mapping):
            raise Invalid({"items": ["must_be_an_array"]})
        amount = entry.get("amount_cents")
        try:
            precise = Decimal(str(amount if amount is not None else 0))
        except ArithmeticError as exc:
            raise Invalid({"amount_cents": ["invalid_value"]}) from exc
        if not precise.is_finite() or abs(precise) >= Decimal(10) ** 18:
            raise Invalid({"amount_cents": ["invalid_value"]})
        items.append(ItemInput(fee_id=str(entry.get("fee_id") or ""), amount_cents=precise))
    return items


def _resolve_items(
    invoice: Invoice, fees: Sequence[Fee], items: Sequence[ItemInput]
) -> list[tuple[Fee, Decimal]]:
    """Each item's fee (404 `fee_not_found` outside the invoice) and checked amount."""
    by_id = {str(fee.pk): fee for fee in fees}
    credited = _fee_credited_cents([fee.pk for fee in fees])
    resolved: list[tuple[Fee, Decimal]] = []
    taken: dict[UUID, Decimal] = {}
    for item in items:
        fee = by_id.get(item.fee_id)
        if fee is None:
            raise NotFound("fee")
        if item.amount_cents < 0:
            raise Invalid({"amount_cents": ["invalid_value"]})
        taken[fee.pk] = taken.get(fee.pk, Decimal(0)) + item.amount_cents
        remaining = fee.amount_cents - credited.get(fee.pk, 0)
        if invoice.invoice_type != Invoice.InvoiceType.CREDIT:
            if taken[fee.pk] > remaining:
                raise Invalid({"amount_cents": ["higher_than_remaining_fee_amount"]})
        elif _beyond_wallet(invoice, fee, taken[fee.pk]):
            raise Invalid({"amount_cents": ["higher_than_wallet_balance"]})
        resolved.append((fee, item.amount_cents))
    return resolved


def _beyond_wallet(invoice: Invoice, fee: Fee, amount: Decimal) -> bool:
    """A paid top-up's credit fee gives back at most what its wallet still holds of it: the
    purchase's unspent credits (its `remaining_amount_cents`), nothing once the wallet is
    terminated. A top-up not paid yet (pending, failed) is not limited."""
    transaction = fee.wallet_transaction
    if transaction is None or invoice.payment_status in (
        Invoice.PaymentStatus.PENDING,
        Invoice.PaymentStatus.FAILED,
    ):
        return False
    wallet = transaction.wallet
    if wallet.status != wallet.Status.ACTIVE:
        held = 0
    elif transaction.remaining_amount_cents is not None:
        held = transaction.remaining_amount_cents
    else:
        held = wallet.balance_cents
    return amount > held


def _amounts(items: Sequence[tuple[Fee, Decimal]], invoice: Invoice) -> CreditNoteAmounts:
    # coupons apply before taxes only since invoice version 3 (Lago's COUPON_BEFORE_VAT_VERSION)
    with_coupons = invoice.version_number >= 3
    return credit_note_amounts(
        [
            CreditedItem(
                amount=amount,
                fee_amount_cents=fee.amount_cents,
                fee_precise_coupons_amount_cents=(
                    fee.precise_coupons_amount_cents if with_coupons else Decimal(0)
                ),
                taxes=tuple(
                    ItemTax(tax.tax_code, Decimal(tax.tax_rate)) for tax in fee.applied_taxes.all()
                ),
            )
            for fee, amount in items
        ]
    )


def _applied_taxes(
    invoice: Invoice, items: Sequence[tuple[Fee, Decimal]], amounts: CreditNoteAmounts
) -> list[CreditNoteAppliedTax]:
    """Unsaved applied taxes, named after the fee taxes they credit."""
    by_code = {tax.tax_code: tax for fee, _ in items for tax in fee.applied_taxes.all()}
    rows = []
    for tax in amounts.taxes:
        source = by_code[tax.code]
        rows.append(
            CreditNoteAppliedTax(
                organization_id=invoice.organization_id,
                tax_id=source.tax_id,
                tax_name=source.tax_name,
                tax_code=source.tax_code,
                tax_rate=source.tax_rate,
                tax_description=source.tax_description,
                base_amount_cents=tax.base_amount_cents,
                amount_cents=tax.amount_cents,
                precise_amount_cents=tax.precise_amount_cents,
                amount_currency=invoice.currency,
            )
        )
    return rows


def credit_note_estimate(*, invoice: Invoice, items: Sequence[ItemInput]) -> CreditNoteEstimate:
    """POST /credit_notes/estimate: the amounts of a credit note on these items and the most
    that could be credited, refunded or offset. Writes nothing."""
    _check_invoice(invoice)
    if invoice.invoice_type == Invoice.InvoiceType.CREDIT and (
        invoice.payment_status != Invoice.PaymentStatus.SUCCEEDED
    ):
        raise NotAllowed("invalid_type_or_status")
    fees = _invoice_fees(invoice)
    resolved = _resolve_items(invoice, fees, items)
    amounts = _amounts(resolved, invoice)
    creditable = invoice_creditable_amount_cents(invoice, fees)
    total = amounts.total_amount_cents
    is_credit_invoice = invoice.invoice_type == Invoice.InvoiceType.CREDIT
    return CreditNoteEstimate(
        invoice=invoice,
        items=resolved,
        amounts=amounts,
        max_creditable_amount_cents=0 if is_credit_invoice else total,
        max_refundable_amount_cents=min(
            total, invoice_refundable_amount_cents(invoice, creditable)
        ),
        max_offsettable_amount_cents=min(
            total, invoice_offsettable_amount_cents(invoice, creditable)
        ),
        applied_taxes=_applied_taxes(invoice, resolved, amounts),
    )


# --------------------------------------------------------------------------------------------
# Validation of the split (credit + refund + offset)


def _validate_split(
    invoice: Invoice,
    fees: Sequence[Fee],
    amounts: CreditNoteAmounts,
    *,
    credit: int,
    refund: int,
    offset: int,
) -> None:
    """The split against the items' total and what the invoice still allows; every failure is
    a 422 with Lago's code."""
    errors: dict[str, list[str]] = {}
    total = credit + refund + offset
    previous = _previous(invoice)
    is_credit_invoice = invoice.invoice_type == Invoice.InvoiceType.CREDIT
    if abs(total - round_cents(amounts.precise_total)) > TOLERANCE_CENTS:
        errors.setdefault("base", []).append("does_not_match_item_amounts")
    if refund > 0:
        if invoice.total_paid_amount_cents <= 0:
            errors.setdefault("refund_amount_cents", []).append("cannot_refund_unpaid_invoice")
        elif refund > invoice.total_paid_amount_cents - previous["refund"]:
            errors.setdefault("refund_amount_cents", []).append(
                "higher_than_remaining_invoice_amount"
            )
    fee_total = fee_total_amount_cents(fees)
    creditable = fee_total - previous["credit"] - previous["offset"]
    if is_credit_invoice and credit > 0:
        errors.setdefault("credit_amount_cents", []).append("cannot_credit_invoice")
    elif credit - creditable > TOLERANCE_CENTS:
        errors.setdefault("credit_amount_cents", []).append("higher_than_remaining_invoice_amount")
    if offset > 0:
        due = (
            invoice.total_amount_cents
            - invoice.total_paid_amount_cents
            - invoice.total_offsetted_credit_note_amount_cents
        )
        if is_credit_invoice:
            if invoice.total_paid_amount_cents > 0:
                errors.setdefault("offset_amount_cents", []).append("cannot_apply_to_paid_invoice")
            elif offset != invoice.total_amount_cents:
                errors.setdefault("offset_amount_cents", []).append("not_equal_to_total_amount")
        elif offset > min(due, creditable):
            errors.setdefault("offset_amount_cents", []).append(
                "higher_than_remaining_invoice_amount"
            )
    remaining = fee_total - previous["credit"] - previous["refund"] - previous["offset"]
    if total - remaining > TOLERANCE_CENTS:
        errors.setdefault("base", []).append("higher_than_remaining_invoice_amount")
    if total <= 0:
        errors.setdefault("base", []).append("total_amount_must_be_positive")
    if errors:
        raise Invalid(errors)


# --------------------------------------------------------------------------------------------
# Create


def _validate_reason(reason: str | None) -> str:
    reason = reason or CreditNote.Reason.OTHER
    if reason not in REASONS:
        raise Invalid({"reason": ["value_is_invalid"]})
    return reason


def _validate_metadata(metadata: object) -> dict[str, str | None] | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise Invalid({"metadata": ["invalid_type"]})
    clean: dict[str, str | None] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or len(key) > METADATA_KEY_MAX:
            raise Invalid({"metadata": ["invalid_key"]})
        if value is not None and not isinstance(value, str | int | float | bool):
            raise Invalid({"metadata": ["invalid_value"]})
        text = None if value is None else str(value)
        if text is not None and len(text) > METADATA_VALUE_MAX:
            raise Invalid({"metadata": ["value_is_too_long"]})
        clean[key] = text
    return clean


def _cents(value: int | None, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid({name: ["invalid_value"]})
    return value


def _issuing_date(invoice: Invoice, now: datetime) -> date:
    return dj_timezone.localtime(now, ZoneInfo(invoice.customer.applicable_timezone)).date()


@transaction.atomic
def credit_note_create(
    *,
    invoice: Invoice,
    actor: Actor,
    now: datetime,
    items: Sequence[ItemInput],
    reason: str | None = None,
    description: str | None = None,
    credit_amount_cents: int | None = None,
    refund_amount_cents: int | None = None,
    offset_amount_cents: int | None = None,
    metadata: object = None,
    automatic: bool = False,
) -> CreditNote:
    """POST /credit_notes: one credit note on a finalized invoice.

    Numbered `<invoice number>-CN<nnn>` per invoice under the invoice's row lock. The credit
    part becomes the note's balance (`available`), the refund part waits for its outcome
    (`pending`, the refund hook is fired), the offset part lowers what the invoice still asks
    (paid once nothing is due). Records `credit_note.created`. A credit note on a draft invoice
    (automatic only) stays a draft until the invoice is finalized.
    """
    reason = _validate_reason(reason)
    clean_metadata = _validate_metadata(metadata)
    credit = _cents(credit_amount_cents, "credit_amount_cents")
    refund = _cents(refund_amount_cents, "refund_amount_cents")
    offset = _cents(offset_amount_cents, "offset_amount_cents")
    invoice = lock_invoice(invoice.pk)
    _check_invoice(invoice, automatic=automatic)
    fees = _invoice_fees(invoice)
    resolved = _resolve_items(invoice, fees, items)
    if not resolved:
        raise Invalid({"items": ["must_be_an_array"]})
    amounts = _amounts(resolved, invoice)
    _validate_split(invoice, fees, amounts, credit=credit, refund=refund, offset=offset)
    credit, refund, offset = split_to_total(credit, refund, offset, amounts.total_amount_cents)
    draft = invoice.status == Invoice.Status.DRAFT
    sequential_id = (
        CreditNote.objects.filter(invoice_id=invoice.pk).order_by("-sequential_id")
        .values_list("sequential_id", flat=True).first() or 0
    ) + 1  # fmt: skip
    credit_note = CreditNote.objects.create(
        organization_id=invoice.organization_id,
        customer=invoice.customer,
        invoice=invoice,
        sequential_id=sequential_id,
        # a draft invoice has no number yet: its notes are numbered when it is finalized
        number="" if draft else calculation.credit_note_number(invoice.number, sequential_id),
        issuing_date=_issuing_date(invoice, now),
        status=Status.DRAFT if draft else Status.FINALIZED,
        credit_status=CreditStatus.AVAILABLE if credit > 0 else None,
        refund_status=RefundStatus.PENDING if refund > 0 else None,
        reason=reason,
        description=description or "",
        currency=invoice.currency,
        total_amount_cents=amounts.total_amount_cents,
        credit_amount_cents=credit,
        refund_amount_cents=refund,
        offset_amount_cents=offset,
        balance_amount_cents=credit,
        taxes_amount_cents=amounts.taxes_amount_cents,
        precise_taxes_amount_cents=amounts.precise_taxes_amount_cents,
        taxes_rate=amounts.taxes_rate,
        coupons_adjustment_amount_cents=amounts.coupons_adjustment_amount_cents,
        precise_coupons_adjustment_amount_cents=amounts.precise_coupons_adjustment_amount_cents,
        sub_total_excluding_taxes_amount_cents=amounts.sub_total_excluding_taxes_amount_cents,
        metadata=clean_metadata,
        automatic=automatic,
    )
    CreditNoteItem.objects.bulk_create(
        CreditNoteItem(
            organization_id=invoice.organization_id,
            credit_note=credit_note,
            fee=fee,
            amount_cents=round_cents(amount),
            precise_amount_cents=amount,
            amount_currency=invoice.currency,
        )
        for fee, amount in resolved
    )
    for row in _applied_taxes(invoice, resolved, amounts):
        row.credit_note = credit_note
        row.save(force_insert=True)
    if not draft:
        figures_record_refund(invoice=invoice, refund_amount_cents=refund)
        if invoice.invoice_type == Invoice.InvoiceType.CREDIT and refund > 0:
            _void_refunded_wallet_credits(credit_note, fees, actor=actor, now=now)
        _after_finalized(credit_note, invoice, actor=actor, now=now)
    return credit_note


def credit_notes_finalize_drafts(
    *, invoice: Invoice, actor: Actor, now: datetime
) -> list[CreditNote]:
    """The draft credit notes of an invoice being finalized (its row locked, its number just
    assigned, in the caller's transaction) become final with it, as Lago's
    `RefreshDraftAndFinalizeService`: numbered `<invoice number>-CN<nnn>` now, then their
    effects run (refund figures, offset, refund request, `credit_note.created`, PDF). Until
    then a draft note's credit is never consumed (consumption reads finalized notes only)."""
    drafts = lock_draft_credit_notes(invoice.pk)
    for credit_note in drafts:
        credit_note.status = Status.FINALIZED
        credit_note.number = calculation.credit_note_number(
            invoice.number, credit_note.sequential_id
        )
        credit_note.save(update_fields=["status", "number", "updated_at"])
        figures_record_refund(invoice=invoice, refund_amount_cents=credit_note.refund_amount_cents)
        _after_finalized(credit_note, invoice, actor=actor, now=now)
    return drafts


def _void_refunded_wallet_credits(
    credit_note: CreditNote, fees: Sequence[Fee], *, actor: Actor, now: datetime
) -> None:
    """A refunded wallet top-up takes its credits back: a voided outbound transaction of the
    refunded amount (at most the balance) on the wallet it funded, naming the credit note."""
    purchase = next((fee.wallet_transaction for fee in fees if fee.wallet_transaction_id), None)
    if purchase is None:
        return
    wallet = purchase.wallet
    amount = min(credit_note.refund_amount_cents, wallet.balance_cents)
    if amount <= 0 or not wallet.is_active:
        return
    drawn = ledger.draw(
        wallet=wallet,
        amount_cents=amount,
        transaction_status=WalletTransaction.TransactionStatus.VOIDED,
        actor=actor,
        now=now,
        name=f"Refund {credit_note.number}",
    )
    drawn.transaction.credit_note_id = credit_note.pk
    drawn.transaction.save(update_fields=["credit_note_id", "updated_at"])


def _after_finalized(
    credit_note: CreditNote, invoice: Invoice, *, actor: Actor, now: datetime
) -> None:
    """The effects of a finalized credit note: the offset on its invoice, the refund request,
    `credit_note.created`."""
    if credit_note.offset_amount_cents > 0:
        _offset_invoice(invoice, credit_note.offset_amount_cents, actor=actor, now=now)
    if credit_note.refund_amount_cents > 0:
        hooks.on_credit_note_refund_requested.fire_after_commit(credit_note_id=credit_note.pk)
    emit_credit_note_event(credit_note, "credit_note.created", actor=actor)
    credit_note_id = str(credit_note.pk)
    transaction.on_commit(lambda: _render_pdf_after_commit(credit_note_id), robust=True)


def _render_pdf_after_commit(credit_note_id: str) -> None:
    """Queues the credit note PDF (unless turned off by `INVOICE_PDF_ON_FINALIZE`)."""
    if getattr(settings, "INVOICE_PDF_ON_FINALIZE", True):
        generate_credit_note_pdf_task.delay(credit_note_id)


def _offset_invoice(invoice: Invoice, amount_cents: int, *, actor: Actor, now: datetime) -> None:
    """The invoice (locked by the caller) asks `amount_cents` less; nothing left due: paid."""
    invoice.total_offsetted_credit_note_amount_cents += amount_cents
    changed = ["total_offsetted_credit_note_amount_cents", "updated_at"]
    settled = invoice_due_amount_cents(invoice) == 0
    if settled and invoice.payment_status != Invoice.PaymentStatus.SUCCEEDED:
        invoice.payment_status = Invoice.PaymentStatus.SUCCEEDED
        invoice.payment_overdue = False
        changed += ["payment_status", "payment_overdue"]
        invoice.save(update_fields=changed)
        emit_invoice_event(invoice, "invoice.payment_status_updated", actor=actor)
        return
    invoice.save(update_fields=changed)


# --------------------------------------------------------------------------------------------
# Update, refund outcome, void, metadata


@transaction.atomic
def credit_note_update(
    *,
    credit_note: CreditNote,
    actor: Actor,
    now: datetime,
    refund_status: str | None = None,
    metadata: object = None,
    set_metadata: bool = False,
) -> CreditNote:
    """PUT /credit_notes/{id}: the refund's outcome recorded by the user, and metadata."""
    if refund_status is not None and refund_status not in REFUND_STATUSES:
        raise Invalid({"refund_status": ["value_is_invalid"]})
    clean = _validate_metadata(metadata) if set_metadata else None
    credit_note = lock_credit_note(credit_note.pk)
    if refund_status is not None:
        _set_refund_status(credit_note, refund_status, actor=actor, now=now)
    if set_metadata:
        credit_note.metadata = clean
        credit_note.save(update_fields=["metadata", "updated_at"])
    record_activity(activity_type="credit_note.updated", actor=actor, obj=credit_note)
    return credit_note


def _set_refund_status(
    credit_note: CreditNote, refund_status: str, *, actor: Actor, now: datetime
) -> None:
    if credit_note.refund_amount_cents <= 0:
        raise Invalid({"refund_status": ["no_refund_amount"]})
    if refund_status == credit_note.refund_status:
        return
    credit_note.refund_status = refund_status
    credit_note.refunded_at = now if refund_status == RefundStatus.SUCCEEDED else None
    credit_note.save(update_fields=["refund_status", "refunded_at", "updated_at"])
    if refund_status == RefundStatus.FAILED:
        emit_credit_note_event(credit_note, "credit_note.refund_failure", actor=actor)


@transaction.atomic
def credit_note_refund_settle(
    *, credit_note_id: UUID, succeeded: bool, actor: Actor, now: datetime
) -> CreditNote:
    """A payment provider reports the outcome of a refund it was asked for (the receiver of
    `on_credit_note_refund_requested`): `succeeded`, or `failed` (records
    `credit_note.refund_failure`)."""
    credit_note = lock_credit_note(credit_note_id)
    _set_refund_status(
        credit_note,
        RefundStatus.SUCCEEDED if succeeded else RefundStatus.FAILED,
        actor=actor,
        now=now,
    )
    return credit_note


@transaction.atomic
def credit_note_void(*, credit_note: CreditNote, actor: Actor, now: datetime) -> CreditNote:
    """PUT /credit_notes/{id}/void: the credit left is given up (`voided`, balance 0).

    Only a finalized credit note with a balance left (405 `no_voidable_amount` otherwise)."""
    credit_note = lock_credit_note(credit_note.pk)
    if credit_note.status != Status.FINALIZED:
        raise NotFound("credit_note")
    if credit_note.credit_status == CreditStatus.VOIDED or credit_note.balance_amount_cents <= 0:
        raise NotAllowed("no_voidable_amount")
    credit_note.credit_status = CreditStatus.VOIDED
    credit_note.balance_amount_cents = 0
    credit_note.voided_at = now
    credit_note.save(
        update_fields=["credit_status", "balance_amount_cents", "voided_at", "updated_at"]
    )
    record_activity(activity_type="credit_note.voided", actor=actor, obj=credit_note)
    return credit_note


@transaction.atomic
def credit_note_metadata_replace(
    *, credit_note: CreditNote, metadata: object, actor: Actor
) -> CreditNote:
    """POST .../metadata: the metadata becomes exactly `metadata`."""
    clean = _validate_metadata(metadata) or {}
    credit_note = lock_credit_note(credit_note.pk)
    credit_note.metadata = clean
    credit_note.save(update_fields=["metadata", "updated_at"])
    record_activity(activity_type="credit_note.updated", actor=actor, obj=credit_note)
    return credit_note


@transaction.atomic
def credit_note_metadata_merge(
    *, credit_note: CreditNote, metadata: object, actor: Actor
) -> CreditNote:
    """PATCH .../metadata: the given keys are set, the others kept."""
    clean = _validate_metadata(metadata) or {}
    credit_note = lock_credit_note(credit_note.pk)
    credit_note.metadata = {**(credit_note.metadata or {}), **clean}
    credit_note.save(update_fields=["metadata", "updated_at"])
    record_activity(activity_type="credit_note.updated", actor=actor, obj=credit_note)
    return credit_note


@transaction.atomic
def credit_note_metadata_delete(
    *, credit_note: CreditNote, actor: Actor, key: str | None = None
) -> CreditNote:
    """DELETE .../metadata (all) or .../metadata/{key} (one key)."""
    credit_note = lock_credit_note(credit_note.pk)
    if key is None:
        credit_note.metadata = None
    else:
        remaining = dict(credit_note.metadata or {})
        remaining.pop(key, None)
        credit_note.metadata = remaining
    credit_note.save(update_fields=["metadata", "updated_at"])
    record_activity(activity_type="credit_note.updated", actor=actor, obj=credit_note)
    return credit_note
