"""The usage alert as the activity log renders it: as the API answers it
(`billing.activity.register_activity_object`)."""

from __future__ import annotations

from billing.activity import register_activity_object
from metering.api.monitoring_serializers import UsageAlertSerializer
from metering.models import UsageAlert


def register_activity() -> None:
    """Declares the usage alert's rendering (called at start-up)."""
    register_activity_object(
        "usage_alert",
        load=lambda ids: UsageAlert.objects.filter(pk__in=ids).select_related("billable_metric"),
        render=lambda rows: UsageAlertSerializer(rows, many=True).data,
    )
