"""Wallet alerts (spec §17.8): thresholds watched on a wallet balance, `alert.triggered` when the
balance falls to or below one of them.

One alert per type and wallet; each type watches one figure of the wallet:

    wallet_balance_amount           balance_cents               (cents)
    wallet_credits_balance          credits_balance             (credits)
    wallet_ongoing_balance_amount   ongoing_balance_cents       (cents, may be negative)
    wallet_credits_ongoing_balance  credits_ongoing_balance     (credits, may be negative)

Thresholds are decreasing values (up to 20, >= 0 for the non-ongoing types) plus an optional
recurring one: a step that repeats below the lowest threshold (lowest - step, lowest - 2 x step,
...). Evaluation compares the figure with the value recorded at the previous evaluation
(`previous_value`, set to the figure when the alert is created): a move from above a threshold
to at or below it crosses the threshold; one evaluation records at most one `TriggeredAlert`
with every threshold crossed since the previous one, and a threshold fires again only after the
figure went back above it. Evaluation runs after each ongoing balance refresh and automatic
top-up, and the 5-minute job evaluates every alert whose figure moved (balance changes made by
invoices and manual top-ups included).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from uuid import UUID

from django.db import IntegrityError, transaction

from billing.activity import record_activity
from billing.actors import Actor
from billing.errors import Invalid
from billing.money import decimal_string
from billing.outbox import emit
from billing.periods import iso_utc
from wallets.locks import lock_wallet_alert
from wallets.models import TriggeredAlert, Wallet, WalletAlert

logger = logging.getLogger(__name__)

AlertType = WalletAlert.AlertType
MAX_THRESHOLDS = 20
_ONGOING_TYPES = {AlertType.ONGOING_BALANCE_AMOUNT, AlertType.CREDITS_ONGOING_BALANCE}
_FIGURE = {
    AlertType.BALANCE_AMOUNT: "balance_cents",
    AlertType.CREDITS_BALANCE: "credits_balance",
    AlertType.ONGOING_BALANCE_AMOUNT: "ongoing_balance_cents",
    AlertType.CREDITS_ONGOING_BALANCE: "credits_ongoing_balance",
}


def alert_value(alert_type: str, wallet: Wallet) -> Decimal:
    """The wallet figure an alert type watches."""
    return Decimal(getattr(wallet, _FIGURE[alert_type]))


def _number(value: Decimal) -> str:
    """A value as Lago renders a BigDecimal ("99.0", "-12.5")."""
    return decimal_string(value)


# --------------------------------------------------------------------------------------------
# Crossing (pure)


def crossed_thresholds(
    thresholds: Iterable[dict], previous: Decimal | None, current: Decimal
) -> list[dict]:
    """The thresholds crossed by a move from `previous` down to `current`: every value v
    with current <= v < previous, one-time thresholds first (decreasing), then each step of
    the recurring threshold below the lowest one-time threshold."""
    if previous is None or current >= previous:
        return []
    one_time = [t for t in thresholds if not t.get("recurring")]
    recurring = next((t for t in thresholds if t.get("recurring")), None)
    crossed = [
        {"code": t.get("code"), "value": t["value"], "recurring": False}
        for t in sorted(one_time, key=lambda t: Decimal(t["value"]), reverse=True)
        if current <= Decimal(t["value"]) < previous
    ]
    if recurring is not None and one_time:
        step = Decimal(recurring["value"])
        base = min(Decimal(t["value"]) for t in one_time)
        if step > 0:
            # values base - k * step (k >= 1) with current <= value < previous
            first = max(1, math.floor((base - previous) / step) + 1)
            last = math.floor((base - current) / step)
            for k in range(first, last + 1):
                value = base - k * step
                if current <= value < previous:
                    crossed.append(
                        {"code": recurring.get("code"), "value": _number(value), "recurring": True}
                    )
    return crossed


# --------------------------------------------------------------------------------------------
# Validation


def _parse_value(raw: object) -> Decimal | None:
    """A threshold value: a decimal string or a JSON number, finite."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        return None
    try:
        value = Decimal(repr(raw) if isinstance(raw, float) else str(raw).strip())
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def clean_thresholds(alert_type: str, raw: object) -> list[dict]:
    """Validated thresholds, one-time ones by decreasing value then the recurring one."""
    if not isinstance(raw, list) or not raw:
        raise Invalid({"thresholds": ["value_is_mandatory"]})
    cleaned: list[dict] = []
    for item in raw:
        if not isinstance(item, dict):
            raise Invalid({"thresholds": ["invalid_value"]})
        if item.get("value") in (None, ""):
            raise Invalid({"thresholds": ["value_is_mandatory"]})
        value = _parse_value(item.get("value"))
        code = item.get("code")
        if value is None or (code is not None and not isinstance(code, str)):
            raise Invalid({"thresholds": ["invalid_value"]})
        cleaned.append(
            {"code": code or None, "value": value, "recurring": bool(item.get("recurring"))}
        )
    one_time = [t for t in cleaned if not t["recurring"]]
    recurring = [t for t in cleaned if t["recurring"]]
    if len(one_time) > MAX_THRESHOLDS:
        raise Invalid({"thresholds": ["too_many_thresholds"]})
    if len(recurring) > 1:
        raise Invalid({"thresholds": ["too_many_recurring_thresholds"]})
    if not one_time:
        raise Invalid({"thresholds": ["value_is_mandatory"]})
    values = [t["value"] for t in one_time]
    if len(values) != len(set(values)):
        raise Invalid({"thresholds": ["duplicate_threshold_values"]})
    if alert_type not in _ONGOING_TYPES and any(v < 0 for v in values):
        raise Invalid({"thresholds": ["value_is_out_of_range"]})
    if recurring and recurring[0]["value"] <= 0:
        raise Invalid({"thresholds": ["value_is_out_of_range"]})
    ordered = sorted(one_time, key=lambda t: t["value"], reverse=True) + recurring
    return [{**t, "value": _number(t["value"])} for t in ordered]


def _clean_code(code: object) -> str:
    if not isinstance(code, str) or not code.strip():
        raise Invalid({"code": ["value_is_mandatory"]})
    if len(code) > 255:
        raise Invalid({"code": ["value_is_too_long"]})
    return code


def _clean_name(name: object) -> str:
    if name is None:
        return ""
    if not isinstance(name, str) or len(name) > 255:
        raise Invalid({"name": ["value_is_invalid"]})
    return name


def _save(alert: WalletAlert, *, creating: bool) -> WalletAlert:
    try:
        with transaction.atomic():
            if creating:
                alert.save(force_insert=True)
            else:
                alert.save()
    except IntegrityError as exc:
        if "wallets_walletalert_code" in str(exc):
            raise Invalid({"code": ["value_already_exist"]}) from None
        if "wallets_walletalert_type_once" in str(exc):
            raise Invalid({"base": ["alert_already_exists"]}) from None
        raise
    return alert


# --------------------------------------------------------------------------------------------
# CRUD


def alert_create(*, wallet: Wallet, values: dict, actor: Actor, now: datetime) -> WalletAlert:
    """A new alert on the wallet; its `previous_value` is the wallet's figure now, so only
    later moves trigger it."""
    alert_type = values.get("alert_type")
    if alert_type not in AlertType.values:
        raise Invalid({"alert_type": ["invalid_type"]})
    code = _clean_code(values.get("code"))
    thresholds = clean_thresholds(alert_type, values.get("thresholds"))
    wallet = Wallet.objects.get(pk=wallet.pk)
    alert = WalletAlert(
        organization_id=wallet.organization_id,
        wallet=wallet,
        alert_type=alert_type,
        code=code,
        name=_clean_name(values.get("name")),
        thresholds=thresholds,
        previous_value=alert_value(alert_type, wallet),
        last_processed_at=now,
    )
    _save(alert, creating=True)
    record_activity(activity_type="wallet_alert.created", actor=actor, obj=alert)
    return alert


@transaction.atomic
def alert_create_batch(
    *, wallet: Wallet, alerts: object, actor: Actor, now: datetime
) -> list[WalletAlert]:
    """Several alerts at once, all or none (`POST ... /alerts` with `alerts: [...]`); errors
    are keyed by the index of the failing alert."""
    if not isinstance(alerts, list) or not alerts:
        raise Invalid({"alerts": ["no_alerts"]})
    created = []
    for index, values in enumerate(alerts):
        if not isinstance(values, dict):
            raise Invalid({str(index): ["invalid_value"]})
        try:
            created.append(alert_create(wallet=wallet, values=values, actor=actor, now=now))
        except Invalid as exc:
            raise Invalid({str(index): exc.details}) from None  # type: ignore[dict-item]
    return created


def alert_update(*, alert: WalletAlert, values: dict, actor: Actor, now: datetime) -> WalletAlert:
    """`code`, `name` and `thresholds` (replaced when given); the type never changes."""
    if "code" in values:
        alert.code = _clean_code(values["code"])
    if "name" in values:
        alert.name = _clean_name(values["name"])
    if values.get("thresholds") is not None:
        alert.thresholds = clean_thresholds(alert.alert_type, values["thresholds"])
    _save(alert, creating=False)
    record_activity(activity_type="wallet_alert.updated", actor=actor, obj=alert)
    return alert


def alert_delete(*, alert: WalletAlert, actor: Actor) -> WalletAlert:
    record_activity(activity_type="wallet_alert.deleted", actor=actor, obj=alert)
    alert.delete()
    return alert


@transaction.atomic
def alert_delete_all(*, wallet: Wallet, actor: Actor) -> list[WalletAlert]:
    alerts = list(WalletAlert.objects.filter(wallet_id=wallet.pk).order_by("created_at", "id"))
    for alert in alerts:
        record_activity(activity_type="wallet_alert.deleted", actor=actor, obj=alert)
    WalletAlert.objects.filter(pk__in=[a.pk for a in alerts]).delete()
    return alerts


# --------------------------------------------------------------------------------------------
# Evaluation


def triggered_alert_payload(triggered: TriggeredAlert) -> dict:
    """The `alert.triggered` webhook object (Lago `TriggeredAlertSerializer`)."""
    alert, wallet = triggered.alert, triggered.wallet
    return {
        "lago_id": str(triggered.pk),
        "lago_organization_id": str(triggered.organization_id),
        "lago_alert_id": str(alert.pk),
        "lago_subscription_id": None,
        "external_subscription_id": None,
        "lago_wallet_id": str(wallet.pk),
        "wallet_code": wallet.code,
        "external_customer_id": wallet.customer.external_id,
        "billable_metric_code": None,
        "alert_name": alert.name or None,
        "alert_code": alert.code,
        "alert_type": alert.alert_type,
        "current_value": _number(triggered.current_value),
        "previous_value": (
            None if triggered.previous_value is None else _number(triggered.previous_value)
        ),
        "crossed_thresholds": triggered.crossed_thresholds,
        "triggered_at": iso_utc(triggered.triggered_at),
    }


def alert_evaluate(*, alert: WalletAlert, actor: Actor, now: datetime) -> TriggeredAlert | None:
    """Compares the wallet's figure (read now) with the alert's previous value, the alert row
    locked so that two evaluations never record the same crossing twice; records the crossing,
    if any, and its `alert.triggered` outbox event; keeps the figure as the previous value."""
    with transaction.atomic():
        alert = lock_wallet_alert(alert.pk)
        if alert is None:
            return None
        wallet = Wallet.objects.select_related("customer").get(pk=alert.wallet_id)
        current = alert_value(alert.alert_type, wallet)
        previous = alert.previous_value
        if previous is not None and previous == current:
            return None
        crossed = crossed_thresholds(alert.thresholds, previous, current)
        triggered = None
        if crossed:
            triggered = TriggeredAlert.objects.create(
                organization_id=alert.organization_id,
                alert=alert,
                wallet=wallet,
                current_value=current,
                previous_value=previous,
                crossed_thresholds=crossed,
                triggered_at=now,
            )
            emit(
                event_type="alert.triggered",
                actor=actor,
                obj=triggered,
                payload=triggered_alert_payload(triggered),
            )
        alert.previous_value, alert.last_processed_at = current, now
        alert.save(update_fields=["previous_value", "last_processed_at", "updated_at"])
    return triggered


def evaluate_wallet_alerts(
    *, actor: Actor, now: datetime, wallet_ids: Iterable[UUID] | None = None
) -> list[TriggeredAlert]:
    """Evaluates the alerts of the given wallets (every wallet when None) whose figure moved
    since their last evaluation. A failing alert is logged; the others go on."""
    alerts = (
        WalletAlert.objects.filter(wallet__status=Wallet.Status.ACTIVE)
        .select_related("wallet__customer")
        .order_by("wallet_id", "pk")
    )
    if wallet_ids is not None:
        alerts = alerts.filter(wallet_id__in=list(wallet_ids))
    triggered: list[TriggeredAlert] = []
    wallets: dict[UUID, Wallet] = {}
    for alert in alerts:
        wallet = wallets.setdefault(alert.wallet_id, alert.wallet)
        if alert.previous_value is not None and alert.previous_value == alert_value(
            alert.alert_type, wallet
        ):
            continue
        try:
            result = alert_evaluate(alert=alert, actor=actor, now=now)
        except Exception:
            logger.exception("wallet alert %s evaluation failed", alert.pk)
            continue
        if result is not None:
            triggered.append(result)
    return triggered
