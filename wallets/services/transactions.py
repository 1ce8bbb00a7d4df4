"""Wallet top-ups: purchased, granted and voided credits (spec §17.2, §17.3).

One request may create up to three transactions, in Lago's order: the purchase (pending until
its `credit` invoice is paid), the grant (settled at once) and the void (settled at once). Every
balance change goes through `wallets.services.ledger`, inside one database transaction that
holds the wallet row lock, so concurrent top-ups and invoice draws serialize on the wallet.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.db import transaction

from billing.actors import Actor
from billing.errors import Invalid
from billing.money import parse_decimal as money_parse_decimal
from wallets import ports
from wallets.credits import (
    credits_in_range,
    credits_to_cents,
    purchased_credits,
    quantize_credits,
)
from wallets.locks import lock_wallet
from wallets.models import MAX_PRIORITY, Wallet, WalletTransaction
from wallets.services import ledger

Tx = WalletTransaction
NAME_MAX_LENGTH = 255
METADATA_MAX_COUNT = 10  # Lago `Validators::MetadataValidator` (max_keys 10, 20 / 100 chars)
METADATA_KEY_MAX_LENGTH = 20
METADATA_VALUE_MAX_LENGTH = 100
PAYMENT_METHOD_TYPES = ("provider", "manual")


def parse_decimal(value: object) -> Decimal | None:
    """A finite decimal from a wire value (string or number, `billing.money.parse_decimal`),
    else None (Lago `DecimalAmountService#valid_decimal?`)."""
    if value is None:
        return None
    try:
        return money_parse_decimal(value)
    except (ValueError, TypeError):
        return None


def parse_credits(value: object, field: str, errors: dict[str, list[str]]) -> Decimal | None:
    """A credit amount (>= 0) kept to 5 decimals, half away from zero (V86: granted
    "17.9699999999999988631316" -> 17.97; Lago's code floors to 17.96999, the vector wins).

    None when absent; an invalid one adds Lago's two codes for the field to `errors`."""
    if value is None:
        return None
    number = parse_decimal(value)
    if number is None or not credits_in_range(number) or number < 0:
        errors.setdefault(field, []).extend([f"invalid_{field}", "invalid_amount"])
        return None
    return quantize_credits(number)


def validate_transaction_metadata(items: object, errors: dict[str, list[str]], field: str) -> None:
    """`[{key, value}]` pairs (Lago `Validators::MetadataValidator`)."""
    if items in (None, {}):
        return
    if not isinstance(items, list):
        errors.setdefault(field, []).append("invalid_type")
        return
    if len(items) > METADATA_MAX_COUNT:
        errors.setdefault(field, []).append("too_many_keys")
        return
    for item in items:
        if not isinstance(item, dict):
            errors.setdefault(field, []).append("invalid_key")
            return
        key, value = item.get("key"), item.get("value")
        if not isinstance(key, str) or not key:
            errors.setdefault(field, []).append("invalid_key")
            return
        if len(key) > METADATA_KEY_MAX_LENGTH:
            errors.setdefault(field, []).append("key_too_long")
            return
        if isinstance(value, dict | list):
            errors.setdefault(field, []).append("nested_structure_not_allowed")
            return
        if value is not None and len(str(value)) > METADATA_VALUE_MAX_LENGTH:
            errors.setdefault(field, []).append("value_too_long")
            return


def normalize_metadata(items: object) -> list[dict]:
    if not items or not isinstance(items, list):
        return []
    return [{"key": item["key"], "value": item.get("value")} for item in items]


def validate_payment_method(payment_method: object, errors: dict[str, list[str]]) -> None:
    if not payment_method:
        return
    if not isinstance(payment_method, dict) or (
        payment_method.get("payment_method_type") not in (None, *PAYMENT_METHOD_TYPES)
    ):
        errors["payment_method"] = ["invalid_payment_method"]


def validate_priority(priority: object, errors: dict[str, list[str]]) -> None:
    if priority is None:
        return
    valid = isinstance(priority, int) and not isinstance(priority, bool)
    if not valid or not 1 <= priority <= MAX_PRIORITY:
        errors["priority"] = ["value_is_invalid"]


def paid_top_up_limit_error(
    wallet: Wallet, credits: Decimal, *, ignore: bool = False
) -> str | None:
    """`amount_below_minimum` / `amount_above_maximum` for a paid top-up of `credits` outside
    the wallet's `paid_top_up_*_amount_cents`, else None (Lago
    `WalletTransactionAmountLimitsValidator`)."""
    if ignore or credits <= 0:
        return None
    cents = credits_to_cents(credits, wallet.rate_amount, wallet.currency)
    if wallet.paid_top_up_min_amount_cents is not None and (
        cents < wallet.paid_top_up_min_amount_cents
    ):
        return "amount_below_minimum"
    if wallet.paid_top_up_max_amount_cents is not None and (
        cents > wallet.paid_top_up_max_amount_cents
    ):
        return "amount_above_maximum"
    return None


def wallet_top_up(
    *,
    wallet: Wallet,
    paid_credits: object = Decimal(0),
    granted_credits: object = Decimal(0),
    voided_credits: object = Decimal(0),
    actor: Actor,
    now: datetime,
    source: str = Tx.Source.MANUAL,
    name: str = "",
    metadata: list | None = None,
    invoice_requires_successful_payment: bool | None = None,
    ignore_paid_top_up_limits: bool = False,
    priority: int | None = None,
    payment_method: dict | None = None,
    purchase_order_number: str = "",
    recurring_transaction_rule_id: UUID | None = None,
    trigger_key: str = "",
) -> list[WalletTransaction]:
    """Purchased, granted and voided credits in one go (spec §17.3); `[]` when all are zero.

    Purchased credits are rounded to whole cents (V86) and stay `pending` until their `credit`
    invoice (`ports.create_paid_credits_invoice`) is paid; granted credits settle now; voided
    credits draw on the balance now. Amounts are decimal strings or exact numbers.
    `invoice_requires_successful_payment=None` takes the wallet's setting.
    """
    errors: dict[str, list[str]] = {}
    paid = parse_credits(paid_credits, "paid_credits", errors)
    granted = parse_credits(granted_credits, "granted_credits", errors)
    voided = parse_credits(voided_credits, "voided_credits", errors)
    validate_transaction_metadata(metadata, errors, "metadata")
    validate_priority(priority, errors)
    validate_payment_method(payment_method, errors)
    if name is not None and not isinstance(name, str):
        errors["name"] = ["invalid_value"]
    elif name and len(name) > NAME_MAX_LENGTH:
        errors["name"] = ["too_long"]
    if errors:
        raise Invalid(errors)
    with transaction.atomic():
        wallet = lock_wallet(wallet.pk)
        if not wallet.is_active:
            raise Invalid({"wallet_id": ["wallet_is_terminated"]})
        if voided and voided > wallet.credits_balance:
            raise Invalid({"voided_credits": ["insufficient_credits"]})
        purchased = purchased_credits(paid, wallet.rate_amount, wallet.currency) if paid else None
        if paid:
            limit = paid_top_up_limit_error(wallet, paid, ignore=bool(ignore_paid_top_up_limits))
            if limit:
                raise Invalid({"paid_credits": [limit]})
        common = {
            "source": source,
            "priority": MAX_PRIORITY if priority is None else priority,
            "name": name or "",
            "metadata": normalize_metadata(metadata),
            "recurring_transaction_rule_id": recurring_transaction_rule_id,
        }
        created: list[WalletTransaction] = []
        if purchased:
            requires_payment = (
                wallet.invoice_requires_successful_payment
                if invoice_requires_successful_payment is None
                else bool(invoice_requires_successful_payment)
            )
            tx = ledger.inbound_create(
                wallet=wallet,
                credit_amount=purchased,
                transaction_status=Tx.TransactionStatus.PURCHASED,
                settled=False,
                actor=actor,
                now=now,
                invoice_requires_successful_payment=requires_payment,
                payment_method=payment_method or wallet.payment_method or {},
                purchase_order_number=purchase_order_number or "",
                trigger_key=_key(trigger_key, created, "purchased"),
                **common,
            )
            ports.create_paid_credits_invoice(transaction=tx, actor=actor, now=now)
            created.append(tx)
        if granted:
            created.append(
                ledger.inbound_create(
                    wallet=wallet,
                    credit_amount=granted,
                    transaction_status=Tx.TransactionStatus.GRANTED,
                    settled=True,
                    actor=actor,
                    now=now,
                    trigger_key=_key(trigger_key, created, "granted"),
                    **common,
                )
            )
        if voided:
            created.extend(
                _void(wallet.pk, voided, actor=actor, now=now, name=name or "", metadata=metadata)
            )
    return created


def _key(trigger_key: str, created: list, status: str) -> str:
    """The occurrence key goes to the first transaction of the occurrence as given (what the
    recurring jobs look up); a second one gets a suffix (the key is unique per wallet)."""
    if not trigger_key:
        return ""
    return trigger_key if not created else f"{trigger_key}:{status}"


def _void(
    wallet_id: UUID,
    credits: Decimal,
    *,
    actor: Actor,
    now: datetime,
    name: str,
    metadata: list | None,
) -> list[WalletTransaction]:
    wallet = lock_wallet(wallet_id)  # re-read: a grant above may have moved it
    if credits >= wallet.credits_balance:
        cents = wallet.balance_cents
    else:
        cents = min(
            credits_to_cents(credits, wallet.rate_amount, wallet.currency), wallet.balance_cents
        )
    if cents <= 0:
        return []
    drawn = ledger.draw(
        wallet=wallet,
        amount_cents=cents,
        transaction_status=Tx.TransactionStatus.VOIDED,
        actor=actor,
        now=now,
        name=name,
        metadata=normalize_metadata(metadata),
    )
    return [drawn.transaction]
