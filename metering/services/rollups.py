"""Rebuilding the event store's pre-aggregated rows from the events (docs/event-store.md,
"Pre-aggregation"): after events were written or changed around the store (a script, a re-fill
of the `value` column)."""

from __future__ import annotations

from billing.models import Organization
from metering.store.rollups import rebuild_rollups
from plans.models import BillableMetric


def rebuild_event_rollups(
    organization: Organization, *, external_subscription_id: str | None = None
) -> int:
    """Recompute the organization's pre-aggregated rows with each live metric's current field
    and aggregation type (property states for unique counts only); returns the rollup rows
    written."""
    metrics = list(
        BillableMetric.objects.filter(
            organization=organization, deleted_at__isnull=True
        ).values_list("code", "field_name", "aggregation_type")
    )
    return rebuild_rollups(
        organization.id,
        {code: field for code, field, _ in metrics},
        aggregation_types={code: kind for code, _, kind in metrics},
        external_subscription_id=external_subscription_id,
    )
