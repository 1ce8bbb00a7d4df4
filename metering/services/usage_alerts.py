"""Usage alerts of subscriptions: thresholds watched on a usage figure, `alert.triggered` when
the figure rises past one of them (Lago `UsageMonitoring::Alert`).

One alert per type (per billable metric for the metric types) and subscription external id;
each type watches one figure, read by the refresh pass (`metering.services.refresh`):

    current_usage_amount                   current usage amount of the period (cents, pre-tax)
    billable_metric_current_usage_amount   largest fee amount of the metric's charges (cents)
    billable_metric_current_usage_units    largest fee units of the metric's charges
    lifetime_usage_amount                  lifetime usage total (cents)

Thresholds are increasing one-time values (up to 20) plus at most one recurring step that
repeats above the largest one-time value (or above 0 without one). An evaluation compares the
figure with `previous_value` (0 at creation, as Lago): each threshold value v with
previous < v <= current is crossed; one evaluation records at most one `TriggeredUsageAlert`
listing them, with its `alert.triggered` outbox event, then keeps the figure as
`previous_value` (a new period's usage starts lower, so the thresholds are crossed again as it
grows).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction

from billing.activity import record_activity
from billing.actors import Actor
from billing.bulk import bulk_set
from billing.errors import Invalid, NotFound
from billing.money import decimal_string
from billing.outbox import emit, emit_many
from billing.periods import iso_utc
from customers.models import Subscription
from metering.locks import lock_usage_alert, lock_usage_alerts
from metering.models import LifetimeUsage, SubscriptionActivity, TriggeredUsageAlert, UsageAlert
from metering.usage import ChargeUsage
from plans.models import BillableMetric

AlertType = UsageAlert.AlertType
MAX_THRESHOLDS = 20


# --------------------------------------------------------------------------------------------
# The watched figure and the crossing (pure)


def alert_value(
    alert: UsageAlert, usages: Iterable[ChargeUsage], lifetime_usage: LifetimeUsage | None
) -> Decimal | None:
    """The figure the alert watches, from the subscription's current usage (every charge, pay
    in advance included, as `/current_usage` shows it) and lifetime usage; None when it has no
    value (a metric no charge of the plan prices: nothing to evaluate)."""
    if alert.alert_type == AlertType.LIFETIME_USAGE_AMOUNT:
        return None if lifetime_usage is None else Decimal(lifetime_usage.total_amount_cents)
    usages = list(usages)
    if alert.alert_type == AlertType.CURRENT_USAGE_AMOUNT:
        return Decimal(sum(u.amount_cents for u in usages))
    of_metric = [u for u in usages if u.charge.billable_metric_id == alert.billable_metric_id]
    if not of_metric:
        return None
    # Lago takes the largest fee of the metric's charges (one fee per charge filter and group)
    if alert.alert_type == AlertType.BILLABLE_METRIC_CURRENT_USAGE_UNITS:
        return max(u.units for u in of_metric)
    return Decimal(max(u.amount_cents for u in of_metric))


def crossed_thresholds(thresholds: list[dict], previous: Decimal, current: Decimal) -> list[dict]:
    """The thresholds crossed by a rise from `previous` to `current`: every one-time value and
    every step of the recurring threshold v with previous < v <= current, by increasing
    value (one-time thresholds first at equal values)."""
    if current <= previous:
        return []
    one_time = sorted(
        (t for t in thresholds if not t.get("recurring")), key=lambda t: Decimal(t["value"])
    )
    recurring = next((t for t in thresholds if t.get("recurring")), None)
    crossed = [
        {"code": t.get("code"), "value": decimal_string(Decimal(t["value"])), "recurring": False}
        for t in one_time
        if previous < Decimal(t["value"]) <= current
    ]
    if recurring is not None:
        step = Decimal(recurring["value"])
        base = Decimal(one_time[-1]["value"]) if one_time else Decimal(0)
        if step > 0 and current >= base + step:
            # steps base + k * step (k >= 1) strictly above previous, up to current
            first = max(1, math.floor((previous - base) / step) + 1)
            last = math.floor((current - base) / step)
            crossed += [
                {
                    "code": recurring.get("code"),
                    "value": decimal_string(base + k * step),
                    "recurring": True,
                }
                for k in range(first, last + 1)
            ]
    return crossed


# --------------------------------------------------------------------------------------------
# Validation


def _parse_value(raw: object) -> Decimal | None:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float | Decimal):
        return None
    try:
        value = Decimal(repr(raw) if isinstance(raw, float) else str(raw).strip())
    except (InvalidOperation, ValueError):
        return None
    # numeric(30, 5) holds the values: refuse what it cannot store
    if not value.is_finite() or abs(value) >= Decimal(10) ** 25:
        return None
    return value


def clean_thresholds(raw: object) -> list[dict]:
    """Validated thresholds: one-time ones by increasing value, then the recurring one."""
    if not isinstance(raw, list) or not raw:
        raise Invalid({"thresholds": ["value_is_mandatory"]})
    if len(raw) > MAX_THRESHOLDS:
        raise Invalid({"thresholds": ["too_many_thresholds"]})
    cleaned: list[dict] = []
    for item in raw:
        if not isinstance(item, dict):
            raise Invalid({"thresholds": ["value_is_invalid"]})
        if item.get("value") in (None, ""):
            raise Invalid({"thresholds:value": ["value_is_mandatory"]})
        value = _parse_value(item.get("value"))
        if value is None:
            raise Invalid({"thresholds:value": ["value_is_invalid"]})
        code = item.get("code")
        if code is not None and (not isinstance(code, str) or len(code) > 255):
            raise Invalid({"thresholds:code": ["value_is_invalid"]})
        recurring = item.get("recurring", False)
        if recurring is None:
            recurring = False
        if not isinstance(recurring, bool):
            raise Invalid({"thresholds:recurring": ["value_is_invalid"]})
        cleaned.append({"code": code or None, "value": value, "recurring": recurring})
    keys = [(t["value"], t["recurring"]) for t in cleaned]
    if len(keys) != len(set(keys)):
        raise Invalid({"thresholds": ["duplicate_threshold_values"]})
    one_time = [t for t in cleaned if not t["recurring"]]
    recurring = [t for t in cleaned if t["recurring"]]
    if len(recurring) > 1:
        raise Invalid({"thresholds": ["too_many_recurring_thresholds"]})
    if recurring and recurring[0]["value"] <= 0:
        raise Invalid({"thresholds:value": ["recurring_value_is_negative"]})
    ordered = sorted(one_time, key=lambda t: t["value"]) + recurring
    return [{**t, "value": decimal_string(t["value"])} for t in ordered]


def _clean_code(code: object) -> str:
    if code is None or (isinstance(code, str) and not code.strip()):
        raise Invalid({"code": ["value_is_mandatory"]})
    if not isinstance(code, str) or len(code) > 255 or "\x00" in code:
        raise Invalid({"code": ["value_is_invalid"]})
    return code


def _clean_name(name: object) -> str:
    if name is None:
        return ""
    if not isinstance(name, str) or len(name) > 255 or "\x00" in name:
        raise Invalid({"name": ["value_is_invalid"]})
    return name


def _billable_metric(subscription: Subscription, values: dict) -> BillableMetric | None:
    metrics = BillableMetric.objects.filter(
        organization_id=subscription.organization_id, deleted_at__isnull=True
    )
    if values.get("billable_metric_id"):
        metric = metrics.filter(pk=_uuid_or_none(values["billable_metric_id"])).first()
    elif values.get("billable_metric_code"):
        code = values["billable_metric_code"]
        metric = metrics.filter(code=code).first() if isinstance(code, str) else None
    else:
        return None
    if metric is None:
        raise NotFound("billable_metric")
    return metric


def _uuid_or_none(value: object) -> str | None:
    from uuid import UUID

    try:
        return str(UUID(str(value)))
    except ValueError:
        return None


def _save(alert: UsageAlert, *, creating: bool) -> UsageAlert:
    try:
        with transaction.atomic():
            alert.save(force_insert=creating)
    except IntegrityError as exc:
        if "metering_usagealert_code_unique" in str(exc):
            raise Invalid({"code": ["value_already_exist"]}) from None
        if "metering_usagealert_type_once" in str(exc):
            raise Invalid({"base": ["alert_already_exists"]}) from None
        raise
    return alert


def flag_subscription(subscription: Subscription, *, now: datetime) -> None:
    """Asks the next refresh pass to evaluate the subscription (an alert created or changed)."""
    if subscription.status != Subscription.Status.ACTIVE:
        return
    SubscriptionActivity.objects.bulk_create(
        [
            SubscriptionActivity(
                subscription_id=subscription.pk,
                organization_id=subscription.organization_id,
                flagged_at=now,
            )
        ],
        ignore_conflicts=True,
    )


# --------------------------------------------------------------------------------------------
# CRUD


def usage_alert_create(
    *, subscription: Subscription, values: object, actor: Actor, now: datetime
) -> UsageAlert:
    """A new alert on the subscription's external id; evaluated by the next refresh pass."""
    if not isinstance(values, dict):
        raise Invalid({"alert": ["value_is_invalid"]})
    alert_type = values.get("alert_type")
    if alert_type in (None, ""):
        raise Invalid({"alert_type": ["value_is_mandatory", "value_is_invalid"]})
    if alert_type not in AlertType.values:
        raise Invalid({"alert_type": ["invalid_type"]})
    code = _clean_code(values.get("code"))
    name = _clean_name(values.get("name"))
    thresholds = clean_thresholds(values.get("thresholds"))
    metric = _billable_metric(subscription, values)
    if alert_type in UsageAlert.METRIC_TYPES and metric is None:
        raise Invalid({"billable_metric": ["value_is_mandatory"]})
    if alert_type not in UsageAlert.METRIC_TYPES and metric is not None:
        raise Invalid({"billable_metric": ["value_must_be_blank"]})
    with transaction.atomic():
        alert = _save(
            UsageAlert(
                organization_id=subscription.organization_id,
                external_subscription_id=subscription.external_id,
                alert_type=alert_type,
                billable_metric=metric,
                code=code,
                name=name,
                thresholds=thresholds,
            ),
            creating=True,
        )
        record_activity(activity_type="usage_alert.created", actor=actor, obj=alert)
        flag_subscription(subscription, now=now)
    return alert


@transaction.atomic
def usage_alert_create_batch(
    *, subscription: Subscription, alerts: object, actor: Actor, now: datetime
) -> list[UsageAlert]:
    """Several alerts at once, all or none (`POST .../alerts` with `alerts: [...]`); errors
    are keyed by the index of the failing alert."""
    if not isinstance(alerts, list) or not alerts:
        raise Invalid({"alerts": ["value_is_mandatory"]})
    created = []
    for index, values in enumerate(alerts):
        try:
            created.append(
                usage_alert_create(subscription=subscription, values=values, actor=actor, now=now)
            )
        except Invalid as exc:
            raise Invalid({str(index): exc.details}) from None  # type: ignore[dict-item]
    return created


@transaction.atomic
def usage_alert_update(
    *, alert: UsageAlert, subscription: Subscription, values: object, actor: Actor, now: datetime
) -> UsageAlert:
    """`code`, `name`, `thresholds` (replaced when given) and the billable metric of a metric
    type; the type never changes."""
    if not isinstance(values, dict):
        raise Invalid({"alert": ["value_is_invalid"]})
    alert = lock_usage_alert(alert.pk)
    if alert is None:
        raise NotFound("alert")
    before = {name: getattr(alert, name) for name in _EDITABLE}
    if "code" in values:
        alert.code = _clean_code(values["code"])
    if "name" in values:
        alert.name = _clean_name(values["name"])
    if values.get("thresholds") is not None:
        alert.thresholds = clean_thresholds(values["thresholds"])
    if alert.alert_type in UsageAlert.METRIC_TYPES:
        metric = _billable_metric(subscription, values)
        if metric is not None:
            alert.billable_metric = metric
    _save(alert, creating=False)
    record_activity(
        activity_type="usage_alert.updated",
        actor=actor,
        obj=alert,
        # an alert row keeps no loaded values: its editable fields are compared here
        extra_changes={name: [value, getattr(alert, name)] for name, value in before.items()},
    )
    flag_subscription(subscription, now=now)
    return alert


_EDITABLE = ("code", "name", "thresholds", "billable_metric_id")


def usage_alert_delete(*, alert: UsageAlert, actor: Actor) -> UsageAlert:
    """Deletes the alert and its recorded crossings (the outbox keeps the events sent)."""
    alert_id = alert.pk
    record_activity(activity_type="usage_alert.deleted", actor=actor, obj=alert)
    alert.delete()
    alert.pk = alert_id  # the response still renders its lago_id
    return alert


@transaction.atomic
def usage_alert_delete_all(*, subscription: Subscription, actor: Actor) -> list[UsageAlert]:
    alerts = list(
        UsageAlert.objects.filter(
            organization_id=subscription.organization_id,
            external_subscription_id=subscription.external_id,
        ).order_by("created_at", "id")
    )
    for alert in alerts:
        record_activity(activity_type="usage_alert.deleted", actor=actor, obj=alert)
    UsageAlert.objects.filter(pk__in=[a.pk for a in alerts]).delete()
    return alerts


# --------------------------------------------------------------------------------------------
# Evaluation


def triggered_alert_payload(triggered: TriggeredUsageAlert) -> dict:
    """The `alert.triggered` webhook object (Lago `TriggeredAlertSerializer`)."""
    alert, subscription = triggered.alert, triggered.subscription
    return {
        "lago_id": str(triggered.pk),
        "lago_organization_id": str(triggered.organization_id),
        "lago_alert_id": str(alert.pk),
        "lago_subscription_id": str(subscription.pk),
        "external_subscription_id": alert.external_subscription_id,
        "lago_wallet_id": None,
        "external_customer_id": subscription.customer.external_id,
        "billable_metric_code": alert.billable_metric.code if alert.billable_metric else None,
        "alert_name": alert.name or None,
        "alert_code": alert.code,
        "alert_type": alert.alert_type,
        "current_value": decimal_string(triggered.current_value),
        "previous_value": decimal_string(triggered.previous_value),
        "crossed_thresholds": triggered.crossed_thresholds,
        "triggered_at": iso_utc(triggered.triggered_at),
        "subscription_external_id": alert.external_subscription_id,
        "customer_external_id": subscription.customer.external_id,
    }


def _record_crossing(
    alert: UsageAlert,
    subscription: Subscription,
    previous: Decimal,
    value: Decimal,
    *,
    actor: Actor,
    now: datetime,
) -> TriggeredUsageAlert | None:
    crossed = crossed_thresholds(alert.thresholds, previous, value)
    if not crossed:
        return None
    triggered = TriggeredUsageAlert.objects.create(
        organization_id=alert.organization_id,
        alert=alert,
        subscription=subscription,
        current_value=value,
        previous_value=previous,
        crossed_thresholds=crossed,
        triggered_at=now,
    )
    emit(
        event_type="alert.triggered",
        actor=actor,
        obj=triggered,
        object_type="triggered_alert",
        payload=triggered_alert_payload(triggered),
    )
    return triggered


def usage_alert_evaluate(
    *,
    alert: UsageAlert,
    subscription: Subscription,
    value: Decimal,
    actor: Actor,
    now: datetime,
) -> TriggeredUsageAlert | None:
    """Moves the alert's previous value to `value` and records the thresholds crossed between
    them, if any, with their `alert.triggered` outbox event. The move is a conditional UPDATE
    from the previous value the caller read: of two evaluations at once only one moves it from
    that value, the other re-reads the row under its lock, so a crossing is recorded once. An
    unchanged value writes nothing."""
    value = value.quantize(Decimal("0.00001"))
    previous = alert.previous_value
    if value == previous:
        return None
    with transaction.atomic(savepoint=False):
        moved = UsageAlert.objects.filter(pk=alert.pk, previous_value=previous).update(
            previous_value=value, last_processed_at=now, updated_at=now
        )
        if not moved:  # changed since the caller read it (or deleted): decide under the lock
            alert = lock_usage_alert(alert.pk)
            if alert is None or alert.previous_value == value:
                return None
            previous = alert.previous_value
            UsageAlert.objects.filter(pk=alert.pk).update(
                previous_value=value, last_processed_at=now, updated_at=now
            )
        alert.previous_value, alert.last_processed_at = value, now
        return _record_crossing(alert, subscription, previous, value, actor=actor, now=now)


def usage_alerts_evaluate(
    *,
    evaluations: Iterable[tuple[UsageAlert, Subscription, Decimal]],
    actor: Actor,
    now: datetime,
) -> list[TriggeredUsageAlert]:
    """`usage_alert_evaluate` of many (alert, subscription, value) at once, in the caller's
    transaction: the alerts whose value changed locked in one statement (in key order: two
    batches never deadlock) and decided on their locked previous value, their moves written in
    one UPDATE, the crossings' `TriggeredUsageAlert` rows in one INSERT and their
    `alert.triggered` outbox events in another. An evaluation waiting on another one's lock
    then sees the value it stored, so a crossing is recorded once. Returns the crossings."""
    moves = []
    for alert, subscription, value in evaluations:
        value = value.quantize(Decimal("0.00001"))
        if value != alert.previous_value:
            moves.append((alert, subscription, value))
    if not moves:
        return []
    with transaction.atomic(savepoint=False):
        locked = lock_usage_alerts([alert.pk for alert, _, _ in moves])
        moved, crossings = [], []
        for alert, subscription, value in moves:
            row = locked.get(alert.pk)
            if row is None or row.previous_value == value:  # deleted, or moved there since
                continue
            previous = row.previous_value
            row.previous_value, row.last_processed_at, row.updated_at = value, now, now
            alert.previous_value, alert.last_processed_at = value, now
            moved.append(row)
            crossed = crossed_thresholds(row.thresholds, previous, value)
            if crossed:
                crossings.append(
                    TriggeredUsageAlert(
                        organization_id=row.organization_id,
                        alert=row,
                        subscription=subscription,
                        current_value=value,
                        previous_value=previous,
                        crossed_thresholds=crossed,
                        triggered_at=now,
                    )
                )
        bulk_set(UsageAlert, moved, ["previous_value", "last_processed_at", "updated_at"])
        if crossings:
            TriggeredUsageAlert.objects.bulk_create(crossings)
            emit_many(
                event_type="alert.triggered",
                actor=actor,
                objs=crossings,
                payload=triggered_alert_payload,
                object_type="triggered_alert",
            )
    return crossings
