"""Applying coupons to customers and terminating them (spec §15.2)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Q

from billing.activity import record_activity
from billing.actors import Actor
from billing.errors import Invalid, NotAllowed, NotFound
from billing.money import CURRENCIES
from customers.locks import lock_applied_coupon, lock_customer
from customers.models import AppliedCoupon, Customer
from customers.selectors import customer_is_editable
from plans.models import Charge, Coupon, CouponFrequency, CouponType

ONE_HUNDRED = Decimal(100)


def _applicable_coupon(coupon: Coupon, now: datetime) -> Coupon:
    """The coupon as stored now, if it can still be applied; else 404 `coupon_not_found`."""
    fresh = (
        Coupon.objects.alive()
        .filter(pk=coupon.pk, status=Coupon.Status.ACTIVE, terminated_at__isnull=True)
        .filter(Q(expiration_at__isnull=True) | Q(expiration_at__gt=now))
        .first()
    )
    if fresh is None:
        raise NotFound("coupon")
    return fresh


def _overlaps_a_limited_coupon(customer: Customer, coupon: Coupon) -> bool:
    """Lago `plan_limitation_overlapping?`: an active limited coupon of the customer already
    targets one of these plans, one of these metrics, or a plan/metric linked by a charge."""
    if not coupon.limited_plans and not coupon.limited_billable_metrics:
        return False
    plan_ids = list(coupon.plans.values_list("pk", flat=True))
    metric_ids = list(coupon.billable_metrics.values_list("pk", flat=True))
    charges = Charge.objects.alive()
    plans_of_metrics = charges.filter(billable_metric_id__in=metric_ids).values("plan_id")
    metrics_of_plans = charges.filter(plan_id__in=plan_ids).values("billable_metric_id")
    return (
        customer.applied_coupons.filter(status=AppliedCoupon.Status.ACTIVE)
        .filter(
            Q(coupon__plans__in=plan_ids)
            | Q(coupon__billable_metrics__in=metric_ids)
            | Q(coupon__plans__in=plans_of_metrics)
            | Q(coupon__billable_metrics__in=metrics_of_plans)
        )
        .exists()
    )


def _validate_terms(terms: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if terms["amount_cents"] is not None and terms["amount_cents"] < 0:
        errors["amount_cents"] = ["value_is_out_of_range"]
    if terms["amount_currency"] and terms["amount_currency"] not in CURRENCIES:
        errors["amount_currency"] = ["value_is_invalid"]
    rate = terms["percentage_rate"]
    if rate is not None and not Decimal(0) <= rate <= ONE_HUNDRED:
        errors["percentage_rate"] = ["value_is_out_of_range"]
    if terms["frequency"] not in CouponFrequency.values:
        errors["frequency"] = ["value_is_invalid"]
    elif terms["frequency"] == CouponFrequency.RECURRING:
        if terms["frequency_duration"] is None:
            errors["frequency_duration"] = ["value_is_mandatory"]
        elif terms["frequency_duration"] <= 0:
            errors["frequency_duration"] = ["value_is_out_of_range"]
    return errors


@transaction.atomic
def applied_coupon_create(
    *,
    customer: Customer,
    coupon: Coupon,
    actor: Actor,
    now: datetime,
    amount_cents: int | None = None,
    amount_currency: str | None = None,
    percentage_rate: Decimal | None = None,
    frequency: str | None = None,
    frequency_duration: int | None = None,
) -> AppliedCoupon:
    """Applies a coupon to a customer, with optional per-customer terms (spec §15.2)."""
    # Under the customer lock: two concurrent applications of a non-reusable coupon, or of two
    # overlapping limited coupons, cannot both pass the checks below.
    customer = lock_customer(customer.pk)
    if customer.deleted_at is not None:
        raise NotFound("customer")
    coupon = _applicable_coupon(coupon, now)
    if _overlaps_a_limited_coupon(customer, coupon):
        raise NotAllowed("plan_overlapping")
    if not coupon.reusable and customer.applied_coupons.filter(coupon=coupon).exists():
        raise Invalid({"coupon": ["coupon_is_not_reusable"]})
    terms = {
        "amount_cents": amount_cents if amount_cents is not None else coupon.amount_cents,
        "amount_currency": amount_currency or coupon.amount_currency or "",
        "percentage_rate": (
            percentage_rate if percentage_rate is not None else coupon.percentage_rate
        ),
        "frequency": frequency or coupon.frequency,
        "frequency_duration": (
            frequency_duration if frequency_duration is not None else coupon.frequency_duration
        ),
    }
    errors = _validate_terms(terms)
    if errors:
        raise Invalid(errors)
    if coupon.coupon_type == CouponType.FIXED_AMOUNT:
        # spec §3.1: a fixed coupon gives an unset customer currency, else must match it.
        currency = terms["amount_currency"]
        if customer.currency != currency:
            if customer.currency or not customer_is_editable(customer=customer):
                raise Invalid({"currency": ["currencies_does_not_match"]})
            customer.currency = currency
            customer.save(update_fields=["currency", "updated_at"])
    applied_coupon = AppliedCoupon.objects.create(
        organization_id=customer.organization_id,
        customer=customer,
        coupon=coupon,
        frequency_duration_remaining=terms["frequency_duration"],
        **terms,
    )
    record_activity(activity_type="applied_coupon.created", actor=actor, obj=applied_coupon)
    return applied_coupon


@transaction.atomic
def applied_coupon_terminate(
    *, applied_coupon: AppliedCoupon, actor: Actor, now: datetime
) -> AppliedCoupon:
    """Stops a coupon from applying to future invoices; terminating twice changes nothing."""
    applied_coupon = lock_applied_coupon(applied_coupon.pk)
    if applied_coupon.status != AppliedCoupon.Status.TERMINATED:
        applied_coupon.status = AppliedCoupon.Status.TERMINATED
        applied_coupon.terminated_at = applied_coupon.terminated_at or now
        applied_coupon.save(update_fields=["status", "terminated_at", "updated_at"])
    record_activity(activity_type="applied_coupon.deleted", actor=actor, obj=applied_coupon)
    return applied_coupon
