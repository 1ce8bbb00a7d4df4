"""The plan and billable metric wire objects other apps send (webhooks), and the charge,
charge filter and fixed charge objects the subscription API answers, rendered as the plan API
answers them (`billing.wire_objects`)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Prefetch

from billing.activity import register_activity_object
from billing.models import BillingEntity
from billing.wire_objects import register_wire_object
from plans.api.catalog_serializers import (
    AddOnSerializer,
    BillableMetricSerializer,
    CouponSerializer,
    TaxSerializer,
)
from plans.api.plan_serializers import (
    ChargeFilterSerializer,
    PlanChargeSerializer,
    PlanFixedChargeSerializer,
    PlanSerializer,
)
from plans.api.plan_views import plans_rendered
from plans.api.tenancy_serializers import BillingEntitySerializer
from plans.models import (
    AddOn,
    BillableMetric,
    BillableMetricFilter,
    Charge,
    ChargeFilter,
    Coupon,
    Feature,
    FixedCharge,
    Plan,
    Tax,
)
from plans.services.entitlements import feature_payload


def plans_for_wire(ids: Sequence[str]) -> list[Plan]:
    """Plans of these ids, deleted ones included, with what PlanSerializer reads."""
    return list(plans_rendered().filter(pk__in=ids))


def billable_metrics_for_wire(ids: Sequence[str]) -> list[BillableMetric]:
    """Metrics of these ids, deleted ones included, with their live filters."""
    return list(
        BillableMetric.objects.filter(pk__in=ids).prefetch_related(
            Prefetch(
                "filters", queryset=BillableMetricFilter.objects.alive(), to_attr="live_filters"
            )
        )
    )


def charges_for_wire(ids: Sequence[str]) -> list[Charge]:
    """Charges of these ids with their metric, taxes and live filters."""
    return list(
        Charge.objects.filter(pk__in=ids)
        .select_related("billable_metric")
        .prefetch_related("taxes", Prefetch("filters", queryset=ChargeFilter.objects.alive()))
    )


def charge_filters_for_wire(ids: Sequence[str]) -> list[ChargeFilter]:
    return list(ChargeFilter.objects.filter(pk__in=ids).select_related("charge"))


def fixed_charges_for_wire(ids: Sequence[str]) -> list[FixedCharge]:
    return list(
        FixedCharge.objects.filter(pk__in=ids).select_related("add_on").prefetch_related("taxes")
    )


def register() -> None:
    """Declares the plan and billable metric wire objects (called at start-up)."""
    register_wire_object(
        "plan", load=plans_for_wire, render=lambda rows: PlanSerializer(rows, many=True).data
    )
    register_wire_object(
        "billable_metric",
        load=billable_metrics_for_wire,
        render=lambda rows: BillableMetricSerializer(rows, many=True).data,
    )
    register_wire_object(
        "charge",
        load=charges_for_wire,
        render=lambda rows: PlanChargeSerializer(rows, many=True).data,
    )
    register_wire_object(
        "charge_filter",
        load=charge_filters_for_wire,
        render=lambda rows: ChargeFilterSerializer(rows, many=True).data,
    )
    register_wire_object(
        "fixed_charge",
        load=fixed_charges_for_wire,
        render=lambda rows: PlanFixedChargeSerializer(rows, many=True).data,
    )


def register_activity() -> None:
    """Declares how the activity log renders the catalog objects no webhook sends: as their
    API answers them."""
    register_activity_object(
        "coupon",
        load=lambda ids: Coupon.objects.filter(pk__in=ids).prefetch_related(
            "plans", "billable_metrics"
        ),
        render=lambda rows: CouponSerializer(rows, many=True).data,
    )
    register_activity_object(
        "add_on",
        load=lambda ids: AddOn.objects.filter(pk__in=ids).prefetch_related("taxes"),
        render=lambda rows: AddOnSerializer(rows, many=True).data,
    )
    register_activity_object(
        "tax",
        load=lambda ids: Tax.objects.filter(pk__in=ids),
        render=lambda rows: TaxSerializer(rows, many=True).data,
    )
    register_activity_object(
        "billing_entity",
        load=lambda ids: BillingEntity.objects.filter(pk__in=ids).select_related("organization"),
        render=lambda rows: BillingEntitySerializer(rows, many=True).data,
    )
    register_activity_object(
        "feature",
        load=lambda ids: Feature.objects.filter(pk__in=ids),
        render=lambda rows: [feature_payload(row) for row in rows],
    )
