"""Row locks of the catalog, held until the caller's transaction ends (STYLE §7).

Own table only (`of=("self",)`) and, for several rows, primary-key order, so two writers never
wait on each other in a circle.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.db.models import QuerySet

from plans.models import (
    AddOn,
    BillableMetric,
    BillableMetricFilter,
    Charge,
    ChargeFilter,
    Coupon,
    CouponExpiration,
    Feature,
    FixedCharge,
    Plan,
    Tax,
)


def lock_plan(pk: UUID) -> Plan:
    """The plan row."""
    return Plan.objects.select_for_update(of=("self",)).get(pk=pk)


def lock_charge(pk: UUID) -> Charge:
    """The charge row (its plan is read along, not locked)."""
    return Charge.objects.select_related("plan").select_for_update(of=("self",)).get(pk=pk)


def lock_fixed_charge(pk: UUID) -> FixedCharge:
    """The fixed charge row (its plan is read along, not locked)."""
    return FixedCharge.objects.select_related("plan").select_for_update(of=("self",)).get(pk=pk)


def lock_charge_filter(pk: UUID) -> ChargeFilter:
    """The charge filter row."""
    return ChargeFilter.objects.select_for_update(of=("self",)).get(pk=pk)


def lock_charge_filters_of_metric(billable_metric: BillableMetric) -> QuerySet[ChargeFilter]:
    """The live filters of the live charges pricing a metric, in pk order."""
    return (
        ChargeFilter.objects.alive()
        .filter(charge__billable_metric=billable_metric, charge__deleted_at__isnull=True)
        .order_by("pk")
        .select_for_update(of=("self",))
    )


def lock_billable_metric(pk: UUID) -> BillableMetric:
    """The billable metric row."""
    return BillableMetric.objects.select_for_update(of=("self",)).get(pk=pk)


def lock_billable_metric_filters(billable_metric: BillableMetric) -> list[BillableMetricFilter]:
    """The metric's live filters, in pk order."""
    return list(billable_metric.filters.alive().order_by("pk").select_for_update(of=("self",)))


def lock_coupon(pk: UUID) -> Coupon:
    """The coupon row."""
    return Coupon.objects.select_for_update(of=("self",)).get(pk=pk)


def lock_expired_coupons(now: datetime) -> QuerySet[Coupon]:
    """Active time-limited coupons past their `expiration_at`, in pk order; rows another run
    holds are skipped (it terminates them)."""
    return (
        Coupon.objects.alive()
        .filter(
            status=Coupon.Status.ACTIVE,
            expiration=CouponExpiration.TIME_LIMIT,
            expiration_at__lt=now,
        )
        .order_by("pk")
        .select_for_update(of=("self",), skip_locked=True)
    )


def lock_tax(pk: UUID) -> Tax:
    """The tax row."""
    return Tax.objects.select_for_update(of=("self",)).get(pk=pk)


def lock_add_on(pk: UUID) -> AddOn:
    """The add-on row."""
    return AddOn.objects.select_for_update(of=("self",)).get(pk=pk)


def lock_feature(pk: UUID) -> Feature:
    """The feature row (its privileges change with it)."""
    return Feature.objects.select_for_update(of=("self",)).get(pk=pk)
