"""The usage event row (spec §5.1, §29), registered under the `billing` app."""

from __future__ import annotations

from decimal import Decimal
from typing import Self

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from billing.models import OrganizationQuerySet

# numeric(40, 15), like Lago's `precise_total_amount_cents` and our fee units.
NUMERIC = {"max_digits": 40, "decimal_places": 15}
# Lago's identifiers are unbounded strings; ingestion refuses longer ones (422), the store too.
IDENTIFIER_MAX_LENGTH = 255


class EventQuerySet(OrganizationQuerySet):
    def alive(self) -> Self:
        """Events not discarded (a deleted billable metric discards its events, spec §4.1)."""
        return self.filter(deleted_at__isnull=True)


class Event(models.Model):
    """One usage event as received; written and aggregated only through the event store."""

    # The big table: a bigint key, and no foreign key to customers (billing is leftmost).
    id = models.BigAutoField(primary_key=True)
    # no single-column index: every index below starts with the organization
    organization = models.ForeignKey(
        "billing.Organization", models.CASCADE, related_name="+", db_index=False
    )
    transaction_id = models.CharField(max_length=IDENTIFIER_MAX_LENGTH)
    external_subscription_id = models.CharField(max_length=IDENTIFIER_MAX_LENGTH)
    code = models.CharField(max_length=IDENTIFIER_MAX_LENGTH)
    timestamp = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    precise_total_amount_cents = models.DecimalField(**NUMERIC, default=Decimal(0))
    # The metric field's value as evaluated at ingestion (after the expression). Null when the
    # metric was unknown or the value does not fit numeric(40, 15): aggregation then reads
    # `properties[field_name]` (docs/event-store.md "Values").
    value = models.DecimalField(**NUMERIC, null=True, blank=True)
    subscription_id = models.UUIDField(null=True, blank=True)  # lago_subscription_id
    customer_id = models.UUIDField(null=True, blank=True)  # lago_customer_id
    created_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        app_label = "billing"
        ordering = ("-timestamp", "-id")
        constraints = [
            # spec §5.2/§5.3: the PostgreSQL store's dedup key; write_batch relies on it.
            models.UniqueConstraint(
                fields=["organization", "external_subscription_id", "transaction_id"],
                name="billing_event_transaction_unique",
            ),
        ]
        indexes = [
            # every aggregation: one subscription's events of one code over a time window
            models.Index(
                fields=["organization", "external_subscription_id", "code", "timestamp"],
                name="billing_event_aggregation_idx",
            ),
            # GET /events (newest first) and GET /events/{transaction_id}
            models.Index(
                fields=["organization", "-timestamp", "-id"], name="billing_event_list_idx"
            ),
            models.Index(fields=["organization", "transaction_id"], name="billing_event_txn_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.transaction_id}"

    @property
    def lago_id(self) -> str:
        return str(self.id)
