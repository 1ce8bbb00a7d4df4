"""Usage events and the cached aggregations of pay-in-advance charges (spec §5.1, §7.14, §29).

Both tables keep the names they had before metering became its own app (`billing_event`,
`customers_cachedaggregation`): existing databases keep their rows as they are.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Self

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext_lazy as _

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

    # The big table: a bigint key and no foreign key to customers, so that a column store can
    # take it over (DESIGN "Scale path").
    id = models.BigAutoField(primary_key=True)
    # no single-column index: every index below starts with the organization. No database
    # constraint either: only the store writes events, with the organization of the API key,
    # and the check it made on every inserted row was ~7 % of a batch's insert (the ORM still
    # deletes an organization's events with it)
    organization = models.ForeignKey(
        "billing.Organization",
        models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
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
        db_table = "billing_event"
        ordering = ("-timestamp", "-id")
        constraints = [
            # spec §5.2/§5.3: the PostgreSQL store's dedup key; write_batch relies on it. The
            # transaction id before the subscription, so that the same index also finds an
            # event by its transaction id alone (GET /events/{transaction_id})
            models.UniqueConstraint(
                fields=["organization", "transaction_id", "external_subscription_id"],
                name="billing_event_transaction_unique",
            ),
        ]
        indexes = [
            # every aggregation: one subscription's events of one code over a time window
            models.Index(
                fields=["organization", "external_subscription_id", "code", "timestamp"],
                name="billing_event_aggregation_idx",
            ),
            # GET /events (newest first)
            models.Index(
                fields=["organization", "-timestamp", "-id"], name="billing_event_list_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.transaction_id}"

    @property
    def lago_id(self) -> str:
        return str(self.id)


class CachedAggregation(models.Model):
    """The running aggregation of a pay-in-advance charge after one event (spec §7.14, §29):
    one row per event, charge and charge filter, keyed for the next event of the same charge,
    filter, pricing group, subscription and period to resume from instead of re-aggregating
    the period (`metering.usage.in_advance_fees`). A derived cache: deleting rows only makes
    the next events re-read more of the event store."""

    # a row per billed event and charge: a bigint key and no `created_at` index. Subscriptions
    # and charges are never deleted (soft deletes), so their foreign keys need no index of
    # their own (the lookup index below starts with the charge).
    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(
        "billing.Organization", models.CASCADE, related_name="+", db_index=False
    )
    subscription = models.ForeignKey(
        "customers.Subscription", models.CASCADE, related_name="+", db_index=False
    )
    charge = models.ForeignKey("plans.Charge", models.CASCADE, related_name="+", db_index=False)
    charge_filter = models.ForeignKey(
        "plans.ChargeFilter", models.CASCADE, null=True, blank=True, related_name="+"
    )
    grouped_by = models.JSONField(default=dict, blank=True)  # pricing group values (§7.13)
    # charge filter and pricing group in one non-null text, so that the lookup is equalities
    # only (`charge_filter IS NULL` would keep PostgreSQL from reading the index in order)
    bucket_key = models.TextField()
    # what the state depends on besides the events (filter scopes, metric field, aggregation):
    # a row of another configuration is never resumed from
    scope_digest = models.CharField(max_length=32)
    period_from = models.DateTimeField()  # charges_from_datetime of the usage window
    # the event the state ends with: events are ordered by (timestamp, id) in the store
    event_id = models.BigIntegerField()
    event_transaction_id = models.CharField(max_length=255)
    event_timestamp = models.DateTimeField()
    # running total after the event (recurring metrics: since the subscription's start)
    current_aggregation = models.DecimalField(max_digits=60, decimal_places=30)
    # period maximum of the running total (sum and unique count bill its increase)
    max_aggregation = models.DecimalField(max_digits=60, decimal_places=30)
    events_count = models.PositiveIntegerField()  # events of the period, this one included
    precise_total_amount_cents = models.DecimalField(max_digits=60, decimal_places=15)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        db_table = "customers_cachedaggregation"
        constraints = [
            # a task run twice (or twice at once) stores one state per event; led by the
            # transaction id so that it never competes with the lookup index below
            models.UniqueConstraint(
                fields=["event_transaction_id", "subscription", "charge", "charge_filter"],
                name="customers_cachedaggregation_event_unique",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            # the latest state of a key before an event: the first entry of one index range
            models.Index(
                fields=[
                    "charge",
                    "subscription",
                    "bucket_key",
                    "period_from",
                    "-event_timestamp",
                    "-event_id",
                ],
                name="customers_cachedagg_latest_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.charge_id} {self.event_transaction_id}: {self.max_aggregation}"


# --------------------------------------------------------------------------------------------
# Usage monitoring: the refresh loop's flags, lifetime usage, usage alerts


class SubscriptionActivity(models.Model):
    """A subscription received usage since the last refresh pass (Lago
    `usage_monitoring_subscription_activities`): written by ingestion with one
    `INSERT ... ON CONFLICT DO NOTHING`, claimed and deleted by the pass
    (`metering.services.refresh`)."""

    subscription = models.OneToOneField(
        "customers.Subscription", models.CASCADE, primary_key=True, related_name="+"
    )
    organization = models.ForeignKey(
        "billing.Organization", models.CASCADE, related_name="+", db_index=False
    )
    flagged_at = models.DateTimeField()

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["flagged_at"], name="metering_activity_flagged_idx")]

    def __str__(self) -> str:
        return f"{self.subscription_id} @ {self.flagged_at:%Y-%m-%d %H:%M:%S}"


class LifetimeUsage(models.Model):
    """What a subscription consumed over its whole life: usage billed before Lago (historical),
    charge fees of its finalized invoices (invoiced, the upgrade chain included) and the usage of
    the current period not invoiced yet (current), each pre-tax, in-arrears charges only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    subscription = models.OneToOneField(
        "customers.Subscription", models.CASCADE, related_name="lifetime_usage"
    )
    historical_usage_amount_cents = models.BigIntegerField(default=0)
    invoiced_usage_amount_cents = models.BigIntegerField(default=0)
    current_usage_amount_cents = models.BigIntegerField(default=0)
    # set when an invoice of the subscription is finalized: the next pass re-reads the invoices
    recalculate_invoiced_usage = models.BooleanField(default=False)
    invoiced_usage_amount_refreshed_at = models.DateTimeField(null=True, blank=True)
    current_usage_amount_refreshed_at = models.DateTimeField(null=True, blank=True)
    # start of the usage window of the last refresh: a new period means invoices were drafted
    current_usage_from_datetime = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(historical_usage_amount_cents__gte=0),
                name="metering_lifetimeusage_historical_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id}: {self.total_amount_cents}"

    @property
    def lago_id(self) -> str:
        return str(self.id)

    @property
    def total_amount_cents(self) -> int:
        return (
            self.historical_usage_amount_cents
            + self.invoiced_usage_amount_cents
            + self.current_usage_amount_cents
        )


class UsageAlert(models.Model):
    """Thresholds watched on a subscription's usage (Lago `UsageMonitoring::Alert`), keyed by
    the subscription's external id so that it follows upgrades and downgrades."""

    class AlertType(models.TextChoices):
        CURRENT_USAGE_AMOUNT = "current_usage_amount", _("Current usage amount")
        BILLABLE_METRIC_CURRENT_USAGE_AMOUNT = (
            "billable_metric_current_usage_amount",
            _("Billable metric current usage amount"),
        )
        BILLABLE_METRIC_CURRENT_USAGE_UNITS = (
            "billable_metric_current_usage_units",
            _("Billable metric current usage units"),
        )
        LIFETIME_USAGE_AMOUNT = "lifetime_usage_amount", _("Lifetime usage amount")

    METRIC_TYPES = frozenset(
        {
            AlertType.BILLABLE_METRIC_CURRENT_USAGE_AMOUNT,
            AlertType.BILLABLE_METRIC_CURRENT_USAGE_UNITS,
        }
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    external_subscription_id = models.CharField(max_length=IDENTIFIER_MAX_LENGTH)
    alert_type = models.CharField(max_length=48, choices=AlertType.choices)
    billable_metric = models.ForeignKey(
        "plans.BillableMetric", models.CASCADE, null=True, blank=True, related_name="+"
    )
    code = models.CharField(max_length=255)
    name = models.CharField(max_length=255, blank=True, default="")
    direction = models.CharField(max_length=16, default="increasing")
    # [{code, value (decimal string), recurring}]: one-time values increasing, then the
    # recurring one if any
    thresholds = models.JSONField(default=list)
    previous_value = models.DecimalField(max_digits=30, decimal_places=5, default=Decimal(0))
    last_processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("created_at", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "external_subscription_id", "code"],
                name="metering_usagealert_code_unique",
            ),
            models.UniqueConstraint(
                fields=["organization", "external_subscription_id", "alert_type"],
                condition=models.Q(billable_metric__isnull=True),
                name="metering_usagealert_type_once",
            ),
            models.UniqueConstraint(
                fields=[
                    "organization",
                    "external_subscription_id",
                    "alert_type",
                    "billable_metric",
                ],
                condition=models.Q(billable_metric__isnull=False),
                name="metering_usagealert_type_once_per_metric",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(
                        alert_type__in=[
                            "billable_metric_current_usage_amount",
                            "billable_metric_current_usage_units",
                        ],
                        billable_metric__isnull=False,
                    )
                    | models.Q(
                        alert_type__in=["current_usage_amount", "lifetime_usage_amount"],
                        billable_metric__isnull=True,
                    )
                ),
                name="metering_usagealert_metric_iff_metric_type",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def lago_id(self) -> str:
        return str(self.id)


class TriggeredUsageAlert(models.Model):
    """A recorded crossing of a usage alert's thresholds; the `alert.triggered` outbox event is
    recorded with it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("billing.Organization", models.CASCADE, related_name="+")
    alert = models.ForeignKey(UsageAlert, models.CASCADE, related_name="triggered")
    subscription = models.ForeignKey(
        "customers.Subscription", models.CASCADE, related_name="+", db_index=False
    )
    current_value = models.DecimalField(max_digits=30, decimal_places=5)
    previous_value = models.DecimalField(max_digits=30, decimal_places=5)
    crossed_thresholds = models.JSONField(default=list)  # [{code, value, recurring}]
    triggered_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = OrganizationQuerySet.as_manager()

    class Meta:
        ordering = ("-triggered_at", "-id")

    def __str__(self) -> str:
        return f"{self.alert_id} @ {self.triggered_at:%Y-%m-%d %H:%M}"


# --------------------------------------------------------------------------------------------
# Pre-aggregation of the PostgreSQL event store (docs/event-store.md "Pre-aggregation")


class UnboundedDecimalField(models.DecimalField):
    """PostgreSQL `numeric` without precision or scale: sums of event values are kept exactly
    (a property read as a number may carry more decimals than numeric(40, 15))."""

    def db_type(self, connection):  # type: ignore[no-untyped-def]
        if connection.vendor == "postgresql":
            return "numeric"
        return super().db_type(connection)


def _unbounded(**kwargs: object) -> UnboundedDecimalField:
    return UnboundedDecimalField(max_digits=1000, decimal_places=500, **kwargs)  # type: ignore[arg-type]


class EventRollup(models.Model):
    """One hour of one subscription's events of one code sharing the same properties apart from
    the metric's field (`dims`): counts, sums, max and last value, kept current by the
    PostgreSQL store in the transaction that writes the events. `field_name` is the field the
    values were read from at ingestion ('' when the metric was unknown: then `dims` is the whole
    properties and only counts are pre-aggregated). Derived data: `rebuild_rollups` recomputes
    it from the events."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(
        "billing.Organization", models.CASCADE, related_name="+", db_index=False
    )
    external_subscription_id = models.CharField(max_length=IDENTIFIER_MAX_LENGTH)
    code = models.CharField(max_length=IDENTIFIER_MAX_LENGTH)
    bucket = models.DateTimeField()  # start of the UTC hour
    field_name = models.CharField(max_length=IDENTIFIER_MAX_LENGTH, blank=True, default="")
    dims_hash = models.UUIDField()  # md5 of the jsonb text of `dims`
    dims = models.JSONField(default=dict, blank=True)
    n = models.BigIntegerField()  # events
    ptac = _unbounded()  # their precise_total_amount_cents
    nv = models.BigIntegerField()  # events with a value
    ptac_v = _unbounded()
    sv = _unbounded()  # sum of values
    tv = _unbounded()  # sum of value x epoch seconds of the timestamp (weighted sum)
    mx = _unbounded(null=True, blank=True)
    lv_ts = models.DateTimeField(null=True, blank=True)  # the last event with a value
    lv_id = models.BigIntegerField(null=True, blank=True)
    lv = _unbounded(null=True, blank=True)
    n_prop = models.BigIntegerField()  # events carrying the field (unique count)
    ptac_prop = _unbounded()
    # of the `n_prop` events, those whose property state was not kept (not ingested for a
    # unique count): a unique count of the hour cannot trust the states. 0 for the rows written
    # before states were kept for unique counts only (every event kept its state then).
    n_stateless = models.BigIntegerField(db_default=0)

    class Meta:
        db_table = "metering_event_rollup"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "organization",
                    "external_subscription_id",
                    "code",
                    "bucket",
                    "field_name",
                    "dims_hash",
                ],
                name="metering_event_rollup_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_subscription_id} {self.code} {self.bucket:%Y-%m-%d %H:00}: {self.n}"


class EventPropertyState(models.Model):
    """For each distinct properties of one subscription's events of one code carrying the field,
    among the events ingested for a unique-count metric: the first and the last event (by
    timestamp, id). Unique counts read the last operation of each value here. (Earlier versions
    kept a state for every event, whatever its metric; `EventRollup.n_stateless` tells which
    hours have events without one.)"""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey(
        "billing.Organization", models.CASCADE, related_name="+", db_index=False
    )
    external_subscription_id = models.CharField(max_length=IDENTIFIER_MAX_LENGTH)
    code = models.CharField(max_length=IDENTIFIER_MAX_LENGTH)
    field_name = models.CharField(max_length=IDENTIFIER_MAX_LENGTH, blank=True, default="")
    dims_hash = models.UUIDField()
    prop_hash = models.UUIDField()  # md5 of the field's text (or of its absence)
    dims = models.JSONField(default=dict, blank=True)
    prop = models.TextField(null=True, blank=True)  # `properties ->> field_name`
    first_ts = models.DateTimeField()
    last_ts = models.DateTimeField()
    last_id = models.BigIntegerField()

    class Meta:
        db_table = "metering_event_property_state"
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "organization",
                    "external_subscription_id",
                    "code",
                    "field_name",
                    "dims_hash",
                    "prop_hash",
                ],
                name="metering_event_property_state_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.external_subscription_id} {self.code} {self.prop}"
