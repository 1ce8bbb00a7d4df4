"""Row locks of the tenancy core, held until the caller's transaction ends (STYLE §7).

Every helper locks its own table only (`of=("self",)` where a join could spread the lock) and,
for several rows, in primary-key order, so two writers never wait on each other in a circle.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from django.db import transaction

from billing.models import ApiKey, BillingEntity, Membership, Organization, OutboxEvent


def lock_organization(pk: UUID, *, no_key: bool = False) -> Organization:
    """The organization row. `no_key` takes FOR NO KEY UPDATE, which rows referencing the
    organization (their FOR KEY SHARE) do not wait for: enough to serialize writers that
    only need the organization as a mutex."""
    return Organization.objects.select_for_update(no_key=no_key).get(pk=pk)


def lock_billing_entity(pk: UUID) -> BillingEntity:
    """The billing entity row."""
    return BillingEntity.objects.select_for_update().get(pk=pk)


def lock_api_key(pk: UUID) -> ApiKey:
    """The API key row."""
    return ApiKey.objects.select_for_update().get(pk=pk)


def lock_membership(*, organization: Organization, user) -> Membership | None:
    """A user's membership of an organization, locked (None when they have none)."""
    return (
        Membership.objects.select_for_update().filter(organization=organization, user=user).first()
    )


def lock_other_usable_api_keys(api_key: ApiKey, *, now: datetime) -> list[ApiKey]:
    """The organization's other keys still usable at `now`, in pk order: two revocations
    at once must not both see the other key as the survivor."""
    return list(
        ApiKey.objects.usable(now)
        .filter(organization_id=api_key.organization_id)
        .exclude(pk=api_key.pk)
        .order_by("pk")
        .select_for_update()
    )


def free_pending_outbox_event_exists() -> bool:
    """Whether an unprocessed outbox row is held by no drain (looked at under a lock skipping
    held rows, released at once): a drain looking for more work must not spin on rows another
    drain is processing."""
    with transaction.atomic():
        return bool(
            OutboxEvent.objects.filter(processed_at__isnull=True)
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)[:1]
        )


def lock_pending_outbox_events(*, limit: int) -> list[OutboxEvent]:
    """Up to `limit` unprocessed outbox rows, oldest first, skipping rows another consumer
    holds: two drains at once take disjoint batches, and a drain that dies releases its own."""
    return list(
        OutboxEvent.objects.filter(processed_at__isnull=True)
        .order_by("created_at", "id")
        .select_for_update(skip_locked=True)[:limit]
    )
