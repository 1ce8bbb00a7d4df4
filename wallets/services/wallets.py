"""Wallet writes: create, update, terminate, metadata (spec §17.1, §17.6, §17.7).

Services take Lago-shaped values (the keys of `wallet: {...}` on the wire, `applies_to` and
`recurring_transaction_rules` nested as there); only the keys present are changed on update.
Decimal inputs (`rate_amount`, credits) are strings or exact numbers, datetimes are aware
`datetime`s (the API layer parses them).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.db import IntegrityError, transaction

from billing.activity import record_activity
from billing.actors import Actor
from billing.errors import Invalid, NotAllowed, NotFound
from billing.money import CURRENCIES
from customers.locks import lock_customer
from customers.models import Customer
from customers.selectors import customer_is_editable
from plans.models import BillableMetric
from wallets.credits import CREDIT_QUANTUM, credits_in_range
from wallets.locks import lock_wallet
from wallets.models import MAX_PRIORITY, RecurringTransactionRule, Wallet, WalletTarget
from wallets.services import ledger
from wallets.services.transactions import (
    paid_top_up_limit_error,
    parse_credits,
    parse_decimal,
    validate_payment_method,
    validate_priority,
    validate_transaction_metadata,
    wallet_top_up,
)

Rule = RecurringTransactionRule
CODE_MAX_LENGTH = 255
NAME_MAX_LENGTH = 255
METADATA_KEY_MAX_LENGTH = 100
METADATA_VALUE_MAX_LENGTH = 255
RULE_FIELDS = (
    "trigger", "method", "interval", "threshold_credits", "paid_credits", "granted_credits",
    "target_ongoing_balance", "grants_target_top_up", "started_at", "expiration_at",
    "invoice_requires_successful_payment", "transaction_metadata", "transaction_name",
    "ignore_paid_top_up_limits", "payment_method", "purchase_order_number",
)  # fmt: skip


def _blank(value: object) -> bool:
    return value is None or value == ""


# --------------------------------------------------------------------------------------------
# Validation


def _future(value: object, now: datetime) -> bool:
    """Lago `ExpirationDateValidator`: absent, or a datetime after now."""
    return value is None or (isinstance(value, datetime) and value > now)


def _metadata_valid(metadata: object) -> bool:
    """Wallet metadata: `{key: string or null}` (keys <= 100, values <= 255 characters)."""
    return isinstance(metadata, dict) and all(
        isinstance(key, str)
        and 0 < len(key) <= METADATA_KEY_MAX_LENGTH
        and (value is None or (isinstance(value, str) and len(value) <= METADATA_VALUE_MAX_LENGTH))
        for key, value in metadata.items()
    )


def _cents_limit(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)


def _limitations(organization_id: object, applies_to: object, *, creating: bool) -> tuple:
    """`applies_to` checked as Lago does: on create a single `applies_to: invalid_limitations`,
    on update `allowed_fee_types: invalid_fee_types` / `billable_metrics: invalid_identifier`."""
    if applies_to is None:
        return None, None
    if not isinstance(applies_to, dict):
        raise Invalid({"applies_to": ["invalid_limitations"]})
    fee_types = applies_to.get("fee_types")
    codes = applies_to.get("billable_metric_codes")
    errors: dict[str, list[str]] = {}
    if fee_types is not None and (
        not isinstance(fee_types, list)
        or any(fee_type not in Wallet.FeeType.values for fee_type in fee_types)
    ):
        errors["allowed_fee_types"] = ["invalid_fee_types"]
    metrics = None
    if codes is not None:
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes if c):
            errors["billable_metrics"] = ["invalid_identifier"]
        else:
            wanted = list(dict.fromkeys(code for code in codes if code))
            metrics = list(
                BillableMetric.objects.filter(organization_id=organization_id, code__in=wanted)
                .alive()
                .order_by("code")
            )
            if len(metrics) != len(wanted):
                errors["billable_metrics"] = ["invalid_identifier"]
    if errors:
        raise Invalid({"applies_to": ["invalid_limitations"]} if creating else errors)
    fee_types = None if fee_types is None else list(dict.fromkeys(fee_types))
    return fee_types, metrics


def _rule_valid(rule: object, now: datetime) -> bool:
    """One recurring rule (spec §17.6, Lago `RecurringTransactionRules::ValidateService`)."""
    if not isinstance(rule, dict):
        return False
    trigger, method = rule.get("trigger"), rule.get("method") or Rule.Method.FIXED
    if trigger == Rule.Trigger.INTERVAL:
        if rule.get("interval") not in Rule.Interval.values:
            return False
    elif trigger == Rule.Trigger.THRESHOLD:
        if parse_decimal(rule.get("threshold_credits")) is None:
            return False
    else:
        return False
    if method not in Rule.Method.values:
        return False
    target = parse_decimal(rule.get("target_ongoing_balance"))
    if method == Rule.Method.TARGET and target is None:
        return False
    errors: dict[str, list[str]] = {}
    for field in ("paid_credits", "granted_credits"):
        parse_credits(rule.get(field), field, errors)
    validate_transaction_metadata(rule.get("transaction_metadata"), errors, "metadata")
    validate_payment_method(rule.get("payment_method"), errors)
    if errors:
        return False
    threshold = parse_decimal(rule.get("threshold_credits"))
    if (
        method == Rule.Method.TARGET
        and trigger == Rule.Trigger.THRESHOLD
        and target is not None
        and threshold is not None
        and target < threshold
    ):
        return False  # spec §17.6: target >= threshold
    started_at = rule.get("started_at")
    if started_at is not None and not isinstance(started_at, datetime):
        return False
    return _future(rule.get("expiration_at"), now)


def _rules_errors(rules: object, now: datetime, *, creating: bool) -> dict[str, list[str]]:
    """On update a rule naming an active rule (`lago_id`) is checked once merged with it."""
    if rules is None:
        return {}
    if not isinstance(rules, list) or len(rules) > 1:
        return {"recurring_transaction_rules": ["invalid_number_of_recurring_rules"]}
    if not rules:
        return {}
    names_an_existing_rule = isinstance(rules[0], dict) and bool(rules[0].get("lago_id"))
    if (creating or not names_an_existing_rule) and not _rule_valid(rules[0], now):
        return {"recurring_transaction_rules": ["invalid_recurring_rule"]}
    return {}


def _common_errors(values: dict, now: datetime, *, creating: bool) -> dict[str, list[str]]:
    """Field checks shared by create and update (record validations of Lago's `Wallet`)."""
    errors: dict[str, list[str]] = {}
    for field, max_length in (("name", NAME_MAX_LENGTH), ("code", CODE_MAX_LENGTH)):
        value = values.get(field)
        if value is not None and (not isinstance(value, str) or len(value) > max_length):
            errors[field] = ["value_is_invalid"]
    validate_priority(values.get("priority"), errors)  # null: the default / unchanged
    if not _future(values.get("expiration_at"), now):
        errors["expiration_at"] = ["invalid_date"]
    for field in ("paid_top_up_min_amount_cents", "paid_top_up_max_amount_cents"):
        if not _cents_limit(values.get(field)):
            errors[field] = ["value_is_out_of_range"]
    if values.get("metadata") is not None and not _metadata_valid(values["metadata"]):
        errors["metadata"] = ["value_is_invalid"]
    validate_payment_method(values.get("payment_method"), errors)
    errors.update(_rules_errors(values.get("recurring_transaction_rules"), now, creating=creating))
    return errors


def _check_limits_order(wallet: Wallet) -> None:
    low, high = wallet.paid_top_up_min_amount_cents, wallet.paid_top_up_max_amount_cents
    if low is not None and high is not None and high < low:
        raise Invalid({"paid_top_up_max_amount_cents": ["must_be_greater_than_or_equal_min"]})


# --------------------------------------------------------------------------------------------
# Codes


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")[:200]


def _code_taken(customer: Customer, code: str, exclude: Wallet | None = None) -> bool:
    wallets = Wallet.objects.filter(customer=customer, code=code, status=Wallet.Status.ACTIVE)
    if exclude is not None:
        wallets = wallets.exclude(pk=exclude.pk)
    return wallets.exists()


def _generated_code(customer: Customer, name: str) -> str:
    """A code from the name (`"Prepaid EUR"` -> `prepaid_eur`, else `wallet`), suffixed
    `_2`, `_3`... until no wallet of the customer (active or not) carries it."""
    base = _slug(name or "") or "wallet"
    used = set(
        Wallet.objects.filter(customer=customer, code__startswith=base).values_list(
            "code", flat=True
        )
    )
    code, index = base, 1
    while code in used:
        index += 1
        code = f"{base}_{index}"
    return code


# --------------------------------------------------------------------------------------------
# Recurring rules (stored here; their execution lives in wallets.services.recurring)


def _rule_attributes(wallet: Wallet, rule: dict, *, creating: bool, wallet_values: dict) -> dict:
    attributes: dict = {}
    method = rule.get("method") or Rule.Method.FIXED
    if creating or "method" in rule:
        attributes["method"] = method
    if creating or "trigger" in rule:
        attributes["trigger"] = rule.get("trigger")
    if creating or "interval" in rule:
        attributes["interval"] = rule.get("interval") or ""
    if creating or "threshold_credits" in rule:
        attributes["threshold_credits"] = parse_decimal(rule.get("threshold_credits")) or Decimal(0)
    if creating or "target_ongoing_balance" in rule:
        attributes["target_ongoing_balance"] = parse_decimal(rule.get("target_ongoing_balance"))
    paid, granted = rule.get("paid_credits"), rule.get("granted_credits")
    if creating and method == Rule.Method.FIXED and paid is None and granted is None:
        # Lago: a fixed rule without amounts tops up what the wallet was created with
        paid, granted = wallet_values.get("paid_credits"), wallet_values.get("granted_credits")
    for field, value in (("paid_credits", paid), ("granted_credits", granted)):
        if creating or field in rule:
            number = parse_decimal(value)
            attributes[field] = (
                Decimal(0) if number is None else number.quantize(CREDIT_QUANTUM, ROUND_DOWN)
            )
    for field in ("started_at", "expiration_at"):
        if creating or field in rule:
            attributes[field] = rule.get(field)
    for field in ("grants_target_top_up", "ignore_paid_top_up_limits"):
        if creating or field in rule:
            attributes[field] = bool(rule.get(field))
    if "invoice_requires_successful_payment" in rule and (
        rule["invoice_requires_successful_payment"] is not None
    ):
        attributes["invoice_requires_successful_payment"] = bool(
            rule["invoice_requires_successful_payment"]
        )
    elif creating:
        attributes["invoice_requires_successful_payment"] = (
            wallet.invoice_requires_successful_payment
        )
    if creating or "transaction_metadata" in rule:
        attributes["transaction_metadata"] = list(rule.get("transaction_metadata") or [])
    for field in ("transaction_name", "purchase_order_number"):
        if creating or field in rule:
            attributes[field] = rule.get(field) or ""
    if creating or "payment_method" in rule:
        attributes["payment_method"] = dict(rule.get("payment_method") or {})
    return attributes


def _check_rule_limits(wallet: Wallet, rule: Rule) -> None:
    """A fixed rule's paid credits must respect the wallet's paid top-up limits (Lago)."""
    if rule.method != Rule.Method.FIXED or not rule.paid_credits:
        return
    if paid_top_up_limit_error(wallet, rule.paid_credits, ignore=rule.ignore_paid_top_up_limits):
        raise Invalid({"recurring_transaction_rules": ["invalid_recurring_rule"]})


def _terminate_rule(rule: Rule, now: datetime) -> None:
    rule.status, rule.terminated_at = Rule.Status.TERMINATED, now
    rule.save(update_fields=["status", "terminated_at", "updated_at"])


def _save_rules(wallet: Wallet, rules: list[dict], *, now: datetime, wallet_values: dict) -> None:
    """Lago `RecurringTransactionRules::UpdateService`: a rule with the `lago_id` of an active
    rule updates it, one without is created, active rules not listed are terminated."""
    active = {str(rule.pk): rule for rule in wallet.recurring_transaction_rules.filter(
        status=Rule.Status.ACTIVE
    )}  # fmt: skip
    kept = {str(rule.get("lago_id")) for rule in rules if rule.get("lago_id")}
    for pk, rule in active.items():
        if pk not in kept:
            _terminate_rule(rule, now)
    for payload in rules:
        existing = active.get(str(payload.get("lago_id") or ""))
        if existing is not None:
            for field, value in _rule_attributes(
                wallet, payload, creating=False, wallet_values=wallet_values
            ).items():
                setattr(existing, field, value)
            merged = {**_rule_payload(existing), "expiration_at": payload.get("expiration_at")}
            if not _rule_valid(merged, now):
                raise Invalid({"recurring_transaction_rules": ["invalid_recurring_rule"]})
            existing.save()
            _check_rule_limits(wallet, existing)
        else:
            if not _rule_valid(payload, now):
                raise Invalid({"recurring_transaction_rules": ["invalid_recurring_rule"]})
            created = Rule(
                organization_id=wallet.organization_id,
                wallet=wallet,
                **_rule_attributes(wallet, payload, creating=True, wallet_values=wallet_values),
            )
            _check_rule_limits(wallet, created)
            created.save(force_insert=True)


def _rule_payload(rule: Rule) -> dict:
    """A stored rule as validation input (re-checked after a partial update)."""
    return {
        "trigger": rule.trigger,
        "method": rule.method,
        "interval": rule.interval or None,
        "threshold_credits": rule.threshold_credits,
        "target_ongoing_balance": rule.target_ongoing_balance,
        "paid_credits": rule.paid_credits,
        "granted_credits": rule.granted_credits,
        "transaction_metadata": rule.transaction_metadata,
        "payment_method": rule.payment_method,
        "started_at": rule.started_at,
        "expiration_at": None,  # an unchanged past expiration is the expiry job's business
    }


def _save_targets(wallet: Wallet, metrics: list[BillableMetric]) -> None:
    wanted = {metric.pk for metric in metrics}
    wallet.targets.exclude(billable_metric_id__in=wanted).delete()
    existing = set(wallet.targets.values_list("billable_metric_id", flat=True))
    WalletTarget.objects.bulk_create(
        WalletTarget(organization_id=wallet.organization_id, wallet=wallet, billable_metric=metric)
        for metric in metrics
        if metric.pk not in existing
    )


# --------------------------------------------------------------------------------------------
# Create / update / terminate


def _set_customer_currency(customer: Customer, currency: object) -> str:
    """Lago `Customers::UpdateCurrencyService`: the wallet sets a currency-less customer's
    currency; another currency than the customer's is refused."""
    if _blank(currency):
        if not customer.currency:
            raise Invalid({"currency": ["value_is_mandatory"]})
        return customer.currency
    currency = str(currency).upper()
    if currency not in CURRENCIES:
        raise Invalid({"currency": ["value_is_invalid"]})
    if customer.currency:
        if customer.currency != currency:
            raise Invalid({"currency": ["currencies_does_not_match"]})
        return currency
    if not customer_is_editable(customer=customer):
        raise Invalid({"currency": ["currencies_does_not_match"]})
    customer.currency = currency
    customer.save(update_fields=["currency", "updated_at"])
    return currency


def wallet_create(*, customer: Customer, values: dict, actor: Actor, now: datetime) -> Wallet:
    """A wallet for the customer, with its initial top-up (spec §17.1, §17.3).

    `values`: name, code (generated from the name when absent), currency, rate_amount,
    priority, expiration_at, invoice_requires_successful_payment, applies_to {fee_types,
    billable_metric_codes}, recurring_transaction_rules (at most one), paid_top_up_min/max_
    amount_cents, metadata, payment_method, purchase_order_number, and for the first top-up
    paid_credits, granted_credits, transaction_name, transaction_metadata,
    ignore_paid_top_up_limits_on_creation.
    """
    errors = _common_errors(values, now, creating=True)
    rate = parse_decimal(values.get("rate_amount"))
    if _blank(values.get("rate_amount")):
        errors["rate_amount"] = ["value_is_mandatory"]
    elif rate is None or not credits_in_range(rate):
        errors["rate_amount"] = ["value_is_invalid"]
    elif rate <= 0:
        errors["rate_amount"] = ["value_is_out_of_range"]
    parse_credits(values.get("paid_credits"), "paid_credits", errors)
    parse_credits(values.get("granted_credits"), "granted_credits", errors)
    validate_transaction_metadata(values.get("transaction_metadata"), errors, "metadata")
    if errors:
        raise Invalid(errors)
    fee_types, metrics = _limitations(
        customer.organization_id, values.get("applies_to"), creating=True
    )
    with transaction.atomic():
        customer = lock_customer(customer.pk)  # serializes the wallet count and the currency
        if customer.deleted_at is not None:
            raise NotFound("customer")
        active = Wallet.objects.filter(customer=customer, status=Wallet.Status.ACTIVE).count()
        if active >= customer.organization.max_wallets:
            raise Invalid({"customer": ["wallet_limit_reached"]})
        currency = _set_customer_currency(customer, values.get("currency"))
        name = values.get("name") or ""
        code = values.get("code") or _generated_code(customer, name)
        if _code_taken(customer, code):
            raise Invalid({"code": ["value_already_exist"]})
        wallet = Wallet(
            organization_id=customer.organization_id,
            customer=customer,
            name=name,
            code=code,
            currency=currency,
            rate_amount=rate,
            priority=MAX_PRIORITY if values.get("priority") is None else values["priority"],
            expiration_at=values.get("expiration_at"),
            invoice_requires_successful_payment=bool(
                values.get("invoice_requires_successful_payment")
            ),
            allowed_fee_types=fee_types or [],
            paid_top_up_min_amount_cents=values.get("paid_top_up_min_amount_cents"),
            paid_top_up_max_amount_cents=values.get("paid_top_up_max_amount_cents"),
            payment_method=dict(values.get("payment_method") or {}),
            purchase_order_number=values.get("purchase_order_number") or "",
            metadata=dict(values.get("metadata") or {}),
        )
        _check_limits_order(wallet)
        try:
            with transaction.atomic():
                wallet.save(force_insert=True)
        except IntegrityError:  # a concurrent twin took the code
            raise Invalid({"code": ["value_already_exist"]}) from None
        if metrics:
            _save_targets(wallet, metrics)
        if values.get("recurring_transaction_rules"):
            _save_rules(
                wallet, values["recurring_transaction_rules"], now=now, wallet_values=values
            )
        ledger.emit_wallet_event(wallet, "wallet.created", actor=actor)
        wallet_top_up(
            wallet=wallet,
            paid_credits=values.get("paid_credits"),
            granted_credits=values.get("granted_credits"),
            actor=actor,
            now=now,
            name=values.get("transaction_name") or "",
            metadata=values.get("transaction_metadata"),
            ignore_paid_top_up_limits=bool(values.get("ignore_paid_top_up_limits_on_creation")),
        )
    wallet.refresh_from_db()
    return wallet


def wallet_update(*, wallet: Wallet, values: dict, actor: Actor, now: datetime) -> Wallet:
    """Changes the keys present in `values` (Lago `Wallets::UpdateService`): name, code,
    priority, expiration_at, invoice_requires_successful_payment, paid_top_up_min/max_amount_
    cents, applies_to, recurring_transaction_rules, metadata, payment_method,
    purchase_order_number. A terminated wallet cannot change (405 `wallet_not_active`)."""
    errors = _common_errors(values, now, creating=False)
    if "code" in values and _blank(values["code"]):
        errors["code"] = ["value_is_mandatory"]
    if errors:
        raise Invalid(errors)
    fee_types, metrics = _limitations(
        wallet.organization_id, values.get("applies_to"), creating=False
    )
    with transaction.atomic():
        wallet = lock_wallet(wallet.pk)
        if not wallet.is_active:
            raise NotAllowed("wallet_not_active")
        for field in ("name", "purchase_order_number"):
            if field in values:
                setattr(wallet, field, values[field] or "")
        if values.get("priority") is not None:
            wallet.priority = values["priority"]
        for field in (
            "expiration_at",
            "paid_top_up_min_amount_cents",
            "paid_top_up_max_amount_cents",
        ):
            if field in values:
                setattr(wallet, field, values[field])
        if values.get("invoice_requires_successful_payment") is not None:
            wallet.invoice_requires_successful_payment = bool(
                values["invoice_requires_successful_payment"]
            )
        if "payment_method" in values:
            wallet.payment_method = dict(values["payment_method"] or {})
        if values.get("metadata") is not None:
            wallet.metadata = dict(values["metadata"])
        if "code" in values and values["code"] != wallet.code:
            if _code_taken(wallet.customer, values["code"], exclude=wallet):
                raise Invalid({"code": ["value_already_exist"]})
            wallet.code = values["code"]
        if fee_types is not None:
            wallet.allowed_fee_types = fee_types
        _check_limits_order(wallet)
        wallet.save()
        if metrics is not None:
            _save_targets(wallet, metrics)
        if values.get("recurring_transaction_rules") is not None:
            _save_rules(wallet, values["recurring_transaction_rules"], now=now, wallet_values={})
        for rule in wallet.recurring_transaction_rules.filter(status=Rule.Status.ACTIVE):
            _check_rule_limits(wallet, rule)  # new limits apply to the existing rule
        ledger.emit_wallet_event(wallet, "wallet.updated", actor=actor)
    wallet.refresh_from_db()
    return wallet


def wallet_terminate(*, wallet: Wallet, actor: Actor, now: datetime) -> Wallet:
    """Ends the wallet (spec §17.7): remaining credits voided, active rule terminated,
    `wallet.terminated`. Terminating a terminated wallet returns it unchanged (Lago)."""
    with transaction.atomic():
        wallet = lock_wallet(wallet.pk)
        if not wallet.is_active:
            return wallet
        if wallet.balance_cents > 0:
            ledger.draw(
                wallet=wallet,
                amount_cents=wallet.balance_cents,
                transaction_status=ledger.Tx.TransactionStatus.VOIDED,
                actor=actor,
                now=now,
            )
            wallet = lock_wallet(wallet.pk)
        for rule in wallet.recurring_transaction_rules.filter(status=Rule.Status.ACTIVE):
            _terminate_rule(rule, now)
        wallet.status, wallet.terminated_at = Wallet.Status.TERMINATED, now
        wallet.save(update_fields=["status", "terminated_at", "updated_at"])
        ledger.emit_wallet_event(wallet, "wallet.terminated", actor=actor)
    return wallet


# --------------------------------------------------------------------------------------------
# Metadata (POST replaces, PATCH merges, DELETE clears or drops a key)


def _given_metadata(metadata: object) -> dict:
    """The payload's metadata: an object, or nothing; anything else is a 422 (a list of
    pairs would otherwise turn into a dict, or fail to)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise Invalid({"metadata": ["value_is_invalid"]})
    return dict(metadata)


def _set_metadata(wallet: Wallet, metadata: object, *, actor: Actor) -> Wallet:
    if not _metadata_valid(metadata):
        raise Invalid({"metadata": ["value_is_invalid"]})
    wallet.metadata = metadata
    wallet.save(update_fields=["metadata", "updated_at"])
    record_activity(activity_type="wallet.updated", actor=actor, obj=wallet)
    return wallet


@transaction.atomic
def wallet_metadata_replace(*, wallet: Wallet, metadata: dict, actor: Actor) -> Wallet:
    """The wallet's metadata becomes `metadata`."""
    wallet = lock_wallet(wallet.pk)
    return _set_metadata(wallet, _given_metadata(metadata), actor=actor)


@transaction.atomic
def wallet_metadata_merge(*, wallet: Wallet, metadata: dict, actor: Actor) -> Wallet:
    """`metadata` keys are added to or overwrite the wallet's."""
    wallet = lock_wallet(wallet.pk)
    return _set_metadata(wallet, {**wallet.metadata, **_given_metadata(metadata)}, actor=actor)


@transaction.atomic
def wallet_metadata_clear(*, wallet: Wallet, actor: Actor) -> Wallet:
    """Removes every metadata key."""
    wallet = lock_wallet(wallet.pk)
    return _set_metadata(wallet, {}, actor=actor)


@transaction.atomic
def wallet_metadata_key_delete(*, wallet: Wallet, key: str, actor: Actor) -> Wallet:
    """Removes one key; a wallet without metadata is Lago's 404 `metadata_not_found`."""
    wallet = lock_wallet(wallet.pk)
    if not wallet.metadata:
        raise NotFound("metadata")
    return _set_metadata(
        wallet, {k: v for k, v in wallet.metadata.items() if k != key}, actor=actor
    )
