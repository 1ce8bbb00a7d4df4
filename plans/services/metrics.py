"""Billable metric writes (spec §4.1): create, update (with the filter edit rule), delete."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from billing.actors import Actor
from billing.errors import Invalid
from billing.models import Organization
from billing.outbox import emit
from plans.expressions import (
    EvaluationError,
    InvalidExpression,
    evaluate_expression,
    validate_expression,
)
from plans.locks import (
    lock_billable_metric,
    lock_billable_metric_filters,
    lock_charge_filters_of_metric,
)
from plans.models import (
    AggregationType,
    BillableMetric,
    BillableMetricFilter,
    Charge,
    ChargeFilter,
    RoundingFunction,
)
from plans.selectors import billable_metric_is_used
from plans.services.common import name_and_code_errors, save_with_unique_code

# spec §4.1: recurring only makes sense for values that carry over from period to period.
NOT_RECURRING = {AggregationType.COUNT, AggregationType.MAX, AggregationType.LATEST}
WEIGHTED_INTERVALS = {"seconds"}
EDITABLE_ONCE_USED = ("name", "description")  # Lago: a metric priced by a plan keeps its maths
METRIC_FIELDS = (
    "name", "code", "description", "aggregation_type", "field_name", "expression", "recurring",
    "rounding_function", "rounding_precision", "weighted_interval",
)  # fmt: skip


def billable_metric_errors(
    *,
    organization: Organization,
    values: dict,
    instance: BillableMetric | None = None,
) -> dict[str, list[str]]:
    """Lago's validation codes for a metric with these field values; empty when valid.

    Shared by the API and the admin form (which shows them next to the fields).
    """
    values = _normalized(values)
    errors: dict[str, list[str]] = {}

    def add(field: str, code: str) -> None:
        errors.setdefault(field, []).append(code)

    errors.update(
        name_and_code_errors(
            queryset=BillableMetric.objects.for_organization(organization).alive(),
            values=values,
            instance=instance,
        )
    )
    aggregation_type = values.get("aggregation_type")
    if aggregation_type not in AggregationType.values:
        add("aggregation_type", "value_is_invalid")  # Lago: unknown or missing type
    elif aggregation_type != AggregationType.COUNT and not values.get("field_name"):
        add("field_name", "value_is_mandatory")
    if values.get("recurring") and aggregation_type in NOT_RECURRING:
        add("recurring", "not_compatible_with_aggregation_type")
    interval = values.get("weighted_interval")
    # spec §4.1: weighted sums need `seconds`; any other type may only leave it empty
    weighted = aggregation_type == AggregationType.WEIGHTED_SUM
    if interval not in WEIGHTED_INTERVALS and (weighted or interval is not None):
        add("weighted_interval", "value_is_invalid")
    rounding = values.get("rounding_function")
    if rounding is not None and rounding not in RoundingFunction.values:
        add("rounding_function", "value_is_invalid")
    precision = values.get("rounding_precision")
    if precision is not None and (isinstance(precision, bool) or not isinstance(precision, int)):
        add("rounding_precision", "value_is_invalid")
    expression = values.get("expression") or ""
    if expression and not validate_expression(expression):
        add("expression", "invalid_expression")
    return errors


def _normalized(values: dict) -> dict:
    out = dict(values)
    for field in ("name", "code", "expression", "description", "field_name"):
        if isinstance(out.get(field), str):
            out[field] = out[field].strip()
    out["description"] = out.get("description") or ""
    out["expression"] = out.get("expression") or ""
    out["recurring"] = bool(out.get("recurring"))
    if out.get("aggregation_type") == AggregationType.COUNT:
        # spec §4.1: count has no field; an expression would have nowhere to store its result
        out["field_name"], out["expression"] = None, ""
    out["field_name"] = out.get("field_name") or None
    return out


def _filters_from(filters: Iterable[dict]) -> dict[str, list[str]]:
    """{key: values}, values de-duplicated in order; a repeated key: the last one wins (Lago)."""
    errors: dict[str, list[str]] = {}
    by_key: dict[str, list[str]] = {}
    for index, item in enumerate(filters):
        key = str(item.get("key") or "").strip()
        values = [str(v) for v in item.get("values") or []]
        if not key:
            errors[f"filters.{index}.key"] = ["value_is_mandatory"]
        if not values:
            errors[f"filters.{index}.values"] = ["value_is_mandatory"]
        by_key[key] = list(dict.fromkeys(values))
    if errors:
        raise Invalid(errors)
    return by_key


def _set_filters(
    *, billable_metric: BillableMetric, filters: Iterable[dict], now: datetime | None
) -> None:
    """Replaces the metric's filters; removed values leave the charge filters (spec §4.1).

    Values kept in both lists stay as they are; values (or whole keys) removed from the metric
    are removed from every live charge filter of the metric's charges, a charge filter left
    without any value is deleted; new values are not added to charges.
    """
    wanted = _filters_from(filters)
    current = {f.key: f for f in lock_billable_metric_filters(billable_metric)}
    removed: dict[str, set[str] | None] = {}  # key -> removed values (None: the whole key)
    for key, existing in current.items():
        if key not in wanted:
            removed[key] = None
            existing.deleted_at = now
            existing.save(update_fields=["deleted_at", "updated_at"])
        elif gone := set(existing.values) - set(wanted[key]):
            removed[key] = gone
    for key, values in wanted.items():
        existing = current.get(key)
        if existing is None:
            BillableMetricFilter.objects.create(
                organization=billable_metric.organization,
                billable_metric=billable_metric,
                key=key,
                values=values,
            )
        elif existing.values != values:
            existing.values = values
            existing.save(update_fields=["values", "updated_at"])
    if removed:
        _prune_charge_filters(billable_metric=billable_metric, removed=removed, now=now)


def _prune_charge_filters(
    *, billable_metric: BillableMetric, removed: dict[str, set[str] | None], now: datetime | None
) -> None:
    for charge_filter in lock_charge_filters_of_metric(billable_metric):
        values = {key: list(v) for key, v in (charge_filter.values or {}).items()}
        for key, gone in removed.items():
            if key not in values:
                continue
            kept = [] if gone is None else [v for v in values[key] if v not in gone]
            if kept:
                values[key] = kept
            else:
                del values[key]
        if values == charge_filter.values:
            continue
        if values:
            charge_filter.values = values
            charge_filter.save(update_fields=["values", "updated_at"])
        else:
            charge_filter.deleted_at = now
            charge_filter.save(update_fields=["deleted_at", "updated_at"])


def _record(metric: BillableMetric, event_type: str, *, actor: Actor) -> None:
    """Outbox row of a `billable_metric.*` webhook, in the caller's transaction."""
    emit(
        event_type=event_type,
        actor=actor,
        obj=metric,
        payload={"lago_id": str(metric.pk), "code": metric.code},
    )


@transaction.atomic
def billable_metric_create(
    *,
    organization: Organization,
    name: str | None = None,
    code: str | None = None,
    aggregation_type: str | None = None,
    description: str | None = "",
    field_name: str | None = None,
    expression: str | None = "",
    recurring: bool | None = False,
    rounding_function: str | None = None,
    rounding_precision: int | None = None,
    weighted_interval: str | None = None,
    filters: list[dict] | None = None,
    actor: Actor,
) -> BillableMetric:
    """A new billable metric with its filters (spec §4.1)."""
    values = _normalized(
        {
            "name": name, "code": code, "aggregation_type": aggregation_type,
            "description": description, "field_name": field_name, "expression": expression,
            "recurring": recurring, "rounding_function": rounding_function,
            "rounding_precision": rounding_precision, "weighted_interval": weighted_interval,
        }
    )  # fmt: skip
    errors = billable_metric_errors(organization=organization, values=values)
    if errors:
        raise Invalid(errors)
    metric = BillableMetric(organization=organization, **values)
    save_with_unique_code(metric)
    if filters:
        _set_filters(billable_metric=metric, filters=filters, now=None)
    _record(metric, "billable_metric.created", actor=actor)
    return metric


@transaction.atomic
def billable_metric_update(
    *, billable_metric: BillableMetric, values: dict, actor: Actor, now: datetime
) -> BillableMetric:
    """PUT semantics of Lago: only given fields change; filters are replaced when given.

    Once a live charge prices the metric, only name, description and filters change (Lago's
    UpdateService ignores the other fields).
    """
    metric = lock_billable_metric(billable_metric.pk)
    editable = EDITABLE_ONCE_USED if billable_metric_is_used(metric) else METRIC_FIELDS
    merged = {field: getattr(metric, field) for field in METRIC_FIELDS}
    merged.update({k: v for k, v in values.items() if k in editable})
    merged = _normalized(merged)
    errors = billable_metric_errors(
        organization=metric.organization, values=merged, instance=metric
    )
    if errors:
        raise Invalid(errors)
    for field, value in merged.items():
        setattr(metric, field, value)
    save_with_unique_code(metric)
    if "filters" in values and values["filters"] is not None:
        _set_filters(billable_metric=metric, filters=values["filters"], now=now)
    _record(metric, "billable_metric.updated", actor=actor)
    return metric


@transaction.atomic
def billable_metric_destroy(
    *, billable_metric: BillableMetric, actor: Actor, now: datetime
) -> BillableMetric:
    """Soft delete: the metric, its filters, and the charges pricing it leave the catalog
    (spec §4.1; its events are no longer aggregated since no live charge reads them)."""
    metric = lock_billable_metric(billable_metric.pk)
    metric.deleted_at = now
    metric.save(update_fields=["deleted_at", "updated_at"])
    metric.filters.alive().update(deleted_at=now, updated_at=now)
    charges = Charge.objects.alive().filter(billable_metric=metric)
    ChargeFilter.objects.alive().filter(charge__in=charges).update(deleted_at=now, updated_at=now)
    charges.update(deleted_at=now, updated_at=now)
    _record(metric, "billable_metric.deleted", actor=actor)
    return metric


def billable_metric_evaluate_expression(
    *, expression: str, event: Mapping, now: datetime
) -> Decimal | str:
    """The value of an expression on a sample event (`POST /billable_metrics/
    evaluate_expression`); an event without timestamp is dated `now`, as at ingestion."""
    if not expression.strip():
        raise Invalid({"expression": ["value_is_mandatory"]})
    if not validate_expression(expression):
        raise Invalid({"expression": ["invalid_expression"]})
    sample = dict(event)
    if sample.get("timestamp") in (None, ""):
        sample["timestamp"] = now
    try:
        return evaluate_expression(expression, sample)
    except (InvalidExpression, EvaluationError) as exc:
        raise Invalid({"event": ["invalid_event"]}) from exc
