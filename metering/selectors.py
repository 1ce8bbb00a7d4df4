"""Read queries of the usage monitoring (lifetime usage, usage alerts), scoped by organization."""

from __future__ import annotations

from django.db.models import QuerySet

from billing.errors import NotFound
from billing.models import Organization
from customers.models import Subscription
from metering.models import UsageAlert


def subscription_for_monitoring(
    *, organization: Organization, external_id: str, status: str | None = None
) -> Subscription:
    """The subscription an external id names for its alerts and lifetime usage: the active
    one, else the latest of the others (pending, terminated); canceled ones never. `status`
    (Lago's `subscription_status` parameter) picks that status only."""
    candidates = (
        Subscription.objects.for_organization(organization)
        .filter(external_id=external_id)
        .exclude(status=Subscription.Status.CANCELED)
        .select_related("customer", "plan")
    )
    if status:
        candidates = candidates.filter(status=status)
    found = candidates.filter(status=Subscription.Status.ACTIVE).first()
    if found is None:
        found = candidates.order_by("-created_at", "-id").first()
    if found is None:
        raise NotFound("subscription")
    return found


def usage_alert_list(*, organization: Organization, external_subscription_id: str) -> QuerySet:
    return (
        UsageAlert.objects.for_organization(organization)
        .filter(external_subscription_id=external_subscription_id)
        .select_related("billable_metric")
        .order_by("created_at", "id")
    )
