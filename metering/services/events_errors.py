"""Hourly post-validation of ingested events (spec §5.2 "events.errors", §27 hourly :05).

Ingestion stores events whose code matches no metric, which miss the aggregated property or
carry filter values the metric does not declare (spec §5.2: only what is needed to store them is
checked synchronously). Once an hour each organization with such events gets one
`events.errors` outbox row (the webhook, for integrations to deliver) listing their transaction
ids under `invalid_code`, `missing_aggregation_property` and `invalid_filter_values`.

Every check is a query in the database (no loop over events in Python); each list is capped.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection
from django.db.models import DecimalField, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.fields.json import KeyTextTransform

from billing.actors import Actor
from billing.models import Organization, OutboxEvent
from billing.outbox import emit
from metering.models import Event
from metering.store import get_event_store
from metering.store.aggregation import json_text, number_sql, read_number
from plans.models import AggregationType, BillableMetric, BillableMetricFilter

# aggregations that read the property as a number: a value the store cannot read is unusable
_NUMERIC_AGGREGATIONS = frozenset(
    {AggregationType.SUM, AggregationType.MAX, AggregationType.LATEST, AggregationType.WEIGHTED_SUM}
)

REPORT_WINDOW = timedelta(hours=1)
MAX_TRANSACTION_IDS = 1000  # per list and organization: enough to act on, bounded payload


def _ingested_between(organization: Organization, since: datetime, until: datetime) -> QuerySet:
    # The store lists events by timestamp; the report needs them by ingestion time, so the
    # PostgreSQL store's queryset is narrowed on `created_at` (a ClickHouse store would answer
    # the same question on its ingestion column).
    return (
        get_event_store()
        .list_events(organization.id)
        .filter(created_at__gte=since, created_at__lt=until)
    )


def _ids(events: QuerySet) -> list[str]:
    return list(
        events.order_by("created_at", "id").values_list("transaction_id", flat=True)[
            :MAX_TRANSACTION_IDS
        ]
    )


def _unusable_numbers(events: QuerySet, field_name: str) -> list[str]:
    """Events whose `field_name` the store skips when aggregating it as a number (text, null,
    a number beyond the store's range: docs/event-store.md "Values"). Ingestion refuses the
    numbers beyond the range; such a row can still be stored by an older version or a script,
    and is then skipped by every aggregation and listed here."""
    candidates = events.filter(properties__has_key=field_name, value__isnull=True)
    if connection.vendor == "postgresql":
        params: list = []

        def param(value: object) -> str:
            params.append(value)
            return "%s"

        column = f'"{Event._meta.db_table}"."properties"'
        sql = number_sql(lambda: f"({column} ->> {param(field_name)})", param)
        number = RawSQL(sql, params, output_field=DecimalField())
        return _ids(candidates.annotate(number=number).filter(number__isnull=True))
    # the portable store (SQLite trial volumes): read in Python, as the store does
    unusable = [
        transaction_id
        for transaction_id, properties in candidates.order_by("created_at", "id").values_list(
            "transaction_id", "properties"
        )
        if read_number(json_text(properties.get(field_name))) is None
    ]
    return unusable[:MAX_TRANSACTION_IDS]


def events_errors(*, organization: Organization, since: datetime, until: datetime) -> dict:
    """The three lists of spec §5.2 for the events ingested in [since, until)."""
    events = _ingested_between(organization, since, until)
    metrics = list(BillableMetric.objects.for_organization(organization).alive())
    invalid_code = _ids(events.exclude(code__in=[m.code for m in metrics]))
    missing: list[str] = []
    invalid_filter_values: list[str] = []
    filters = BillableMetricFilter.objects.alive().filter(billable_metric__in=metrics)
    declared: dict[str, list[BillableMetricFilter]] = {}
    for metric_filter in filters:
        declared.setdefault(metric_filter.billable_metric_id, []).append(metric_filter)
    for metric in metrics:
        of_metric = events.filter(code=metric.code)
        if metric.aggregation_type != AggregationType.COUNT and metric.field_name:
            missing += _ids(of_metric.exclude(properties__has_key=metric.field_name))
            if metric.aggregation_type in _NUMERIC_AGGREGATIONS and not metric.expression:
                missing += _unusable_numbers(of_metric, metric.field_name)
        for metric_filter in declared.get(metric.id, []):
            # a property named like a filter key must carry one of the declared values
            undeclared = (
                of_metric.filter(properties__has_key=metric_filter.key)
                .annotate(filter_value=KeyTextTransform(metric_filter.key, "properties"))
                .exclude(filter_value__in=[str(v) for v in metric_filter.values])
            )
            invalid_filter_values += _ids(undeclared)
    return {
        "invalid_code": invalid_code,
        "missing_aggregation_property": sorted(set(missing))[:MAX_TRANSACTION_IDS],
        "invalid_filter_values": sorted(set(invalid_filter_values))[:MAX_TRANSACTION_IDS],
    }


def events_errors_report(*, actor: Actor, now: datetime) -> list[OutboxEvent]:
    """One `events.errors` outbox row per organization with invalid events ingested during the
    last whole hour. The hour is the row's `object_id`: a rerun reports nothing twice."""
    until = now.replace(minute=0, second=0, microsecond=0)
    since = until - REPORT_WINDOW
    hour = f"{since:%Y-%m-%dT%H:%M:%SZ}"
    rows = []
    for organization in Organization.objects.order_by("id"):
        reported = OutboxEvent.objects.for_organization(organization).filter(
            event_type="events.errors", object_id=hour
        )
        if reported.exists():
            continue
        errors = events_errors(organization=organization, since=since, until=until)
        if not any(errors.values()):
            continue
        rows.append(
            emit(
                event_type="events.errors",
                actor=actor,
                organization_id=organization.pk,
                object_type="events_errors",
                object_id=hour,
                payload={"ingested_from": hour, **errors},
            )
        )
    return rows
