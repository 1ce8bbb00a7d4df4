"""Coupon writes (spec §15.1): create, update, delete, and termination at expiration."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction

from billing.activity import record_activity
from billing.actors import Actor
from billing.errors import Invalid, NotAllowed, NotFound
from billing.models import Organization
from billing.money import CURRENCIES
from plans.locks import lock_coupon, lock_expired_coupons
from plans.models import (
    BillableMetric,
    Coupon,
    CouponExpiration,
    CouponFrequency,
    CouponType,
    Plan,
)
from plans.selectors import coupon_is_applied
from plans.services.common import name_and_code_errors, percentage, save_with_unique_code

COUPON_FIELDS = (
    "name", "code", "description", "coupon_type", "amount_cents", "amount_currency",
    "percentage_rate", "frequency", "frequency_duration", "reusable", "expiration",
    "expiration_at",
)  # fmt: skip
# spec §15.1: once applied to a customer, only these stay editable.
EDITABLE_ONCE_APPLIED = ("name", "description", "expiration", "expiration_at")
_MAX_CENTS = 2**63 - 1


def coupon_errors(
    *, organization: Organization, values: dict, now: datetime, instance: Coupon | None = None
) -> dict[str, list[str]]:
    """Lago's validation codes for a coupon with these values; empty when valid."""
    values = _normalized(values)
    errors: dict[str, list[str]] = {}

    def add(field: str, code: str) -> None:
        errors.setdefault(field, []).append(code)

    errors.update(
        name_and_code_errors(
            queryset=Coupon.objects.for_organization(organization).alive(),
            values=values,
            instance=instance,
        )
    )
    coupon_type = values.get("coupon_type")
    if coupon_type not in CouponType.values:
        add("coupon_type", "value_is_invalid")
    elif coupon_type == CouponType.FIXED_AMOUNT:
        cents, currency = values.get("amount_cents"), values.get("amount_currency")
        if cents is None:
            add("amount_cents", "value_is_mandatory")
        elif isinstance(cents, bool) or not isinstance(cents, int) or not 0 < cents <= _MAX_CENTS:
            add("amount_cents", "value_is_invalid")
        if not currency:
            add("amount_currency", "value_is_mandatory")
        elif currency not in CURRENCIES:
            add("amount_currency", "value_is_invalid")
    else:
        rate = values.get("percentage_rate")
        if rate is None or rate == "":
            add("percentage_rate", "value_is_mandatory")
        elif percentage(rate) is None:
            add("percentage_rate", "value_is_invalid")
    frequency = values.get("frequency")
    if frequency not in CouponFrequency.values:
        add("frequency", "value_is_invalid")
    elif frequency == CouponFrequency.RECURRING:
        duration = values.get("frequency_duration")
        if duration is None:
            add("frequency_duration", "value_is_mandatory")
        elif isinstance(duration, bool) or not isinstance(duration, int) or duration < 1:
            add("frequency_duration", "value_is_invalid")
    expiration = values.get("expiration")
    if expiration not in CouponExpiration.values:
        add("expiration", "value_is_invalid")
    elif expiration == CouponExpiration.TIME_LIMIT:
        expiration_at = values.get("expiration_at")
        if expiration_at is None:
            add("expiration_at", "value_is_mandatory")
        elif expiration_at.astimezone(UTC).date() < now.astimezone(UTC).date():
            # Lago compares UTC dates: an expiration later today is allowed
            add("expiration_at", "invalid_date")
    return errors


def _normalized(values: dict) -> dict:
    out = dict(values)
    for field in ("name", "code"):
        if isinstance(out.get(field), str):
            out[field] = out[field].strip()
    out["description"] = out.get("description") or ""
    if out.get("reusable") is None:
        out["reusable"] = True
    if out.get("expiration") is None:
        out["expiration"] = CouponExpiration.NO_EXPIRATION
    # Fields of the other kind are dropped, so the stored coupon says one thing.
    if out.get("coupon_type") == CouponType.FIXED_AMOUNT:
        out["percentage_rate"] = None
    elif out.get("coupon_type") == CouponType.PERCENTAGE:
        out["amount_cents"], out["amount_currency"] = None, ""
    if out.get("frequency") != CouponFrequency.RECURRING:
        out["frequency_duration"] = None
    if out.get("expiration") == CouponExpiration.NO_EXPIRATION:
        out["expiration_at"] = None
    out["amount_currency"] = out.get("amount_currency") or ""
    return out


def _limitations(
    *, organization: Organization, applies_to: dict
) -> tuple[list[Plan], list[BillableMetric]]:
    """Plans and metrics named by `applies_to` (404 for an unknown code, 405 for both kinds)."""
    plan_codes = list(dict.fromkeys(c for c in applies_to.get("plan_codes") or [] if c))
    metric_codes = list(
        dict.fromkeys(c for c in applies_to.get("billable_metric_codes") or [] if c)
    )
    plans = list(
        Plan.objects.for_organization(organization)
        .alive()
        .filter(parent__isnull=True, code__in=plan_codes)
    )
    if len(plans) != len(plan_codes):
        raise NotFound("plans")  # Lago: 404 plans_not_found
    metrics = list(
        BillableMetric.objects.for_organization(organization).alive().filter(code__in=metric_codes)
    )
    if len(metrics) != len(metric_codes):
        raise NotFound("billable_metrics")
    if plans and metrics:
        raise NotAllowed("only_one_limitation_type_per_coupon_allowed")
    return plans, metrics


def _percentage_or_none(value: object) -> Decimal | None:
    return None if value is None or value == "" else percentage(value)


@transaction.atomic
def coupon_create(
    *,
    organization: Organization,
    actor: Actor,
    now: datetime,
    name: str | None = None,
    code: str | None = None,
    coupon_type: str | None = None,
    description: str | None = "",
    amount_cents: int | None = None,
    amount_currency: str | None = None,
    percentage_rate: Decimal | str | None = None,
    frequency: str | None = None,
    frequency_duration: int | None = None,
    reusable: bool | None = True,
    expiration: str | None = None,
    expiration_at: datetime | None = None,
    applies_to: dict | None = None,
) -> Coupon:
    """A new coupon, optionally limited to plans or to billable metrics (spec §15.1)."""
    values = _normalized(
        {
            "name": name, "code": code, "coupon_type": coupon_type, "description": description,
            "amount_cents": amount_cents, "amount_currency": amount_currency,
            "percentage_rate": percentage_rate, "frequency": frequency,
            "frequency_duration": frequency_duration, "reusable": reusable,
            "expiration": expiration, "expiration_at": expiration_at,
        }
    )  # fmt: skip
    errors = coupon_errors(organization=organization, values=values, now=now)
    if errors:
        raise Invalid(errors)
    plans, metrics = _limitations(organization=organization, applies_to=applies_to or {})
    values["percentage_rate"] = _percentage_or_none(values["percentage_rate"])
    coupon = Coupon(
        organization=organization,
        limited_plans=bool(plans),
        limited_billable_metrics=bool(metrics),
        **values,
    )
    save_with_unique_code(coupon)
    coupon.plans.set(plans)
    coupon.billable_metrics.set(metrics)
    record_activity(activity_type="coupon.created", actor=actor, obj=coupon)
    return coupon


@transaction.atomic
def coupon_update(*, coupon: Coupon, values: dict, actor: Actor, now: datetime) -> Coupon:
    """Only the given fields change; `applies_to`, when given, replaces the limitations.

    Once the coupon is applied to a customer, only name, description and expiration change
    (spec §15.1; other fields are ignored, as Lago does).
    """
    coupon = lock_coupon(coupon.pk)
    applied = coupon_is_applied(coupon)
    editable = EDITABLE_ONCE_APPLIED if applied else COUPON_FIELDS
    merged = {field: getattr(coupon, field) for field in COUPON_FIELDS}
    merged.update({k: v for k, v in values.items() if k in editable})
    merged = _normalized(merged)
    errors = coupon_errors(
        organization=coupon.organization, values=merged, now=now, instance=coupon
    )
    if "expiration_at" not in values and merged["expiration_at"] == coupon.expiration_at:
        errors.pop("expiration_at", None)  # an already stored date may have passed since
    if errors:
        raise Invalid(errors)
    limitations = None
    if not applied and values.get("applies_to") is not None:
        limitations = _limitations(
            organization=coupon.organization, applies_to=values["applies_to"]
        )
    merged["percentage_rate"] = _percentage_or_none(merged["percentage_rate"])
    for field, value in merged.items():
        setattr(coupon, field, value)
    if limitations is not None:
        coupon.limited_plans, coupon.limited_billable_metrics = map(bool, limitations)
    save_with_unique_code(coupon)
    if limitations is not None:
        coupon.plans.set(limitations[0])
        coupon.billable_metrics.set(limitations[1])
    record_activity(activity_type="coupon.updated", actor=actor, obj=coupon)
    return coupon


@transaction.atomic
def coupon_destroy(*, coupon: Coupon, actor: Actor, now: datetime) -> Coupon:
    """Soft delete (spec §15.1); already applied coupons keep their history."""
    coupon = lock_coupon(coupon.pk)
    coupon.deleted_at = now
    coupon.save(update_fields=["deleted_at", "updated_at"])
    record_activity(activity_type="coupon.deleted", actor=actor, obj=coupon)
    return coupon


@transaction.atomic
def coupon_terminate(*, coupon: Coupon, actor: Actor, now: datetime) -> Coupon:
    """The coupon can no longer be applied; applied ones keep applying (spec §15.1)."""
    coupon = lock_coupon(coupon.pk)
    if coupon.status != Coupon.Status.TERMINATED:
        coupon.status = Coupon.Status.TERMINATED
        coupon.terminated_at = coupon.terminated_at or now
        coupon.save(update_fields=["status", "terminated_at", "updated_at"])
        record_activity(activity_type="coupon.terminated", actor=actor, obj=coupon)
    return coupon


@transaction.atomic
def coupon_terminate_expired(*, actor: Actor, now: datetime) -> list[Coupon]:
    """Terminates every active time-limited coupon whose `expiration_at` has passed (the hourly
    job of spec §27, :30); running it twice terminates nothing more."""
    expired = lock_expired_coupons(now)
    terminated = []
    for coupon in expired:
        coupon.status, coupon.terminated_at = Coupon.Status.TERMINATED, now
        coupon.save(update_fields=["status", "terminated_at", "updated_at"])
        record_activity(activity_type="coupon.terminated", actor=actor, obj=coupon)
        terminated.append(coupon)
    return terminated
