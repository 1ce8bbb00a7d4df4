"""The plan and billable metric wire objects other apps send (webhooks), rendered as the API
answers them (`billing.wire_objects`)."""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Prefetch

from billing.wire_objects import register_wire_object
from plans.api.catalog_serializers import BillableMetricSerializer
from plans.api.plan_serializers import PlanSerializer
from plans.api.plan_views import plans_rendered
from plans.models import BillableMetric, BillableMetricFilter, Plan


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
