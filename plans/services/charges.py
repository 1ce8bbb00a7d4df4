"""Charges, charge filters and fixed charges of a plan (spec §7, §8), and their cascade to the
plan's overrides (spec §6.3).

Property validation is `plans.charge_models.validate_properties` (spec §7.2 matrix and §7.3);
this module only shapes the properties the way Lago stores them and reports the codes.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction

from billing.activity import record_activity
from billing.actors import Actor
from billing.errors import Invalid, NotFound
from billing.models import Organization
from billing.money import parse_decimal
from plans.charge_models import CHARGE_LEVEL_FIELDS, validate_properties
from plans.locks import lock_charge, lock_charge_filter, lock_fixed_charge
from plans.models import (
    AddOn,
    BillableMetric,
    Charge,
    ChargeFilter,
    ChargeModel,
    FixedCharge,
    FixedChargeModel,
    Plan,
)
from plans.services.common import taxes_for

ALL_FILTER_VALUES = ChargeFilter.ALL_VALUES

# Lago's ChargeModels::FilterPropertiesService: the keys each model keeps, the rest is dropped.
CHARGE_PROPERTY_KEYS: dict[str, tuple[str, ...]] = {
    ChargeModel.STANDARD: ("amount",),
    ChargeModel.GRADUATED: ("graduated_ranges",),
    ChargeModel.GRADUATED_PERCENTAGE: ("graduated_percentage_ranges",),
    ChargeModel.PACKAGE: ("amount", "free_units", "package_size"),
    ChargeModel.PERCENTAGE: (
        "rate",
        "fixed_amount",
        "free_units_per_events",
        "free_units_per_total_aggregation",
        "per_transaction_min_amount",
        "per_transaction_max_amount",
    ),
    ChargeModel.VOLUME: ("volume_ranges",),
    ChargeModel.DYNAMIC: (),
}

_OPEN_RANGE = {"from_value": 0, "to_value": None, "per_unit_amount": "0", "flat_amount": "0"}

# Lago's ChargeModels::BuildDefaultPropertiesService: used when a charge comes without properties.
DEFAULT_PROPERTIES: dict[str, dict] = {
    ChargeModel.STANDARD: {"amount": "0"},
    ChargeModel.GRADUATED: {"graduated_ranges": [_OPEN_RANGE]},
    ChargeModel.GRADUATED_PERCENTAGE: {
        "graduated_percentage_ranges": [
            {"from_value": 0, "to_value": None, "rate": "0", "flat_amount": "0"}
        ]
    },
    ChargeModel.PACKAGE: {"amount": "0", "free_units": 0, "package_size": 1},
    ChargeModel.PERCENTAGE: {"rate": "0"},
    ChargeModel.VOLUME: {"volume_ranges": [_OPEN_RANGE]},
    ChargeModel.DYNAMIC: {},
}


# spec §7.2 reports `billable_metric: invalid_value` on the charge itself, not under properties
_CHARGE_FIELDS = CHARGE_LEVEL_FIELDS | {"billable_metric"}


def wire_error_details(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """Lago's `error_details` of a charge: property-level codes are reported under `properties`."""
    details: dict[str, list[str]] = {}
    for field, codes in errors.items():
        merge_errors(details, {field if field in _CHARGE_FIELDS else "properties": codes})
    return details


def plan_has_subscriptions(plan: Plan) -> bool:
    """Whether subscriptions use the plan, which locks its core settings (spec §6.2).

    Subscriptions belong to the customers app, to the right of the catalog: the reverse relation
    `plan.subscriptions` (declared by `customers.Subscription.plan`) answers without importing it.
    Override children carry their own subscriptions: a parent is locked only by its direct ones.
    """
    related = getattr(plan, "subscriptions", None)
    if related is None:  # the customers app is not installed
        return False
    return related.exists()


def plan_is_locked(plan: Plan) -> bool:
    """Core settings frozen (spec §6.2): a plan with subscriptions, or an override, whose
    subscription always exists (so the charge model of an override never changes, §6.3)."""
    return plan.parent_id is not None or plan_has_subscriptions(plan)


# --------------------------------------------------------------------------------------------
# Shared helpers


def as_uuid(value: object) -> uuid.UUID | None:
    """A lago_id from the wire, or None when it is not one (Lago: an unknown id finds nothing)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise Invalid(errors)


def merge_errors(errors: dict[str, list[str]], more: dict[str, list[str]]) -> None:
    for field, codes in more.items():
        target = errors.setdefault(field, [])
        target.extend(code for code in codes if code not in target)


def billable_metric_for(*, organization: Organization, values: dict) -> BillableMetric:
    """The metric a charge payload names by `billable_metric_id` (or `billable_metric_code`)."""
    metrics = BillableMetric.objects.for_organization(organization).alive()
    metric = None
    if values.get("billable_metric_id"):
        metric_id = as_uuid(values["billable_metric_id"])
        metric = metrics.filter(id=metric_id).first() if metric_id else None
    elif values.get("billable_metric_code"):
        metric = metrics.filter(code=values["billable_metric_code"]).first()
    if metric is None:
        raise NotFound("billable_metric")
    return metric


def add_on_for(*, organization: Organization, values: dict) -> AddOn:
    """The add-on a fixed charge payload names by `add_on_id` or `add_on_code` (spec §8)."""
    add_ons = AddOn.objects.for_organization(organization).alive()
    add_on = None
    if values.get("add_on_id"):
        add_on_id = as_uuid(values["add_on_id"])
        add_on = add_ons.filter(id=add_on_id).first() if add_on_id else None
    elif values.get("add_on_code"):
        add_on = add_ons.filter(code=values["add_on_code"]).first()
    if add_on is None:
        raise NotFound("add_on")
    return add_on


def check_chargeables(*, organization: Organization, values: dict) -> None:
    """Every metric and add-on a plan payload names exists, checked before any write (Lago's
    Plans::ChargeablesValidationService answers 404 ahead of field validation)."""
    for charge in values.get("charges") or []:
        if charge.get("billable_metric_id") or charge.get("billable_metric_code"):
            billable_metric_for(organization=organization, values=charge)
    for fixed_charge in values.get("fixed_charges") or []:
        if fixed_charge.get("add_on_id") or fixed_charge.get("add_on_code"):
            add_on_for(organization=organization, values=fixed_charge)


def unique_code(existing: Iterable[str], base: str) -> str:
    """`base`, or `base_<n>` past the highest suffix in use (Charges::GenerateCodeService)."""
    existing = set(existing)
    if base not in existing:
        return base
    pattern = re.compile(rf"^{re.escape(base)}_(\d+)$")
    suffixes = [int(match.group(1)) for code in existing if (match := pattern.match(code))]
    return f"{base}_{max(suffixes, default=1) + 1}"


def filter_properties(
    charge_model: str, properties: dict | None, *, group_keys: bool = True
) -> dict:
    """Only the keys of the model (Lago drops the others); `grouped_by` stored as
    `pricing_group_keys` without empty keys (spec §7.13). Values are kept as given."""
    if not isinstance(properties, dict):
        return properties  # type: ignore[return-value]  # left for validation to refuse
    kept = {
        key: copy.deepcopy(properties[key])
        for key in CHARGE_PROPERTY_KEYS.get(charge_model, ())
        if key in properties
    }
    if group_keys:
        pricing = properties.get("pricing_group_keys") or properties.get("grouped_by")
        if pricing:
            kept["pricing_group_keys"] = (
                [key for key in pricing if key != ""] if isinstance(pricing, list) else pricing
            )
        if properties.get("presentation_group_keys"):
            kept["presentation_group_keys"] = copy.deepcopy(properties["presentation_group_keys"])
    return kept


def default_properties(charge_model: str) -> dict:
    return copy.deepcopy(DEFAULT_PROPERTIES.get(charge_model, {}))


def _properties_or_default(charge_model: str, properties: object) -> object:
    # Lago: `params[:properties].presence || default`, so {} and null both take the default
    return properties if properties else default_properties(charge_model)


def _normalized(value: object) -> object:
    """Properties compared the way Lago's cascade does: numeric strings by value."""
    if isinstance(value, dict):
        return {key: _normalized(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalized(item) for item in value]
    if isinstance(value, str):
        try:
            return parse_decimal(value)
        except ValueError:
            return value
    return value


def same_properties(left: object, right: object) -> bool:
    return _normalized(left) == _normalized(right)


def _cascade_group_keys(target: dict, source: dict) -> None:
    # Group keys are structural (how events are bucketed), so they cascade even onto
    # customized properties (Lago's cascade_pricing_group_keys).
    for key in ("pricing_group_keys", "presentation_group_keys"):
        if source.get(key):
            target[key] = copy.deepcopy(source[key])
        else:
            target.pop(key, None)
    target.pop("grouped_by", None)


def clone(obj: Charge | FixedCharge, **overrides: object) -> Charge | FixedCharge:
    """An unsaved copy of a row's columns (new id, new timestamps) with `overrides` applied."""
    data = {
        field.attname: copy.deepcopy(getattr(obj, field.attname))
        for field in obj._meta.concrete_fields
        if not field.primary_key and field.attname not in ("created_at", "updated_at")
    }
    data.update(overrides)
    return type(obj)(**data)


def _save_unique(obj: Charge | FixedCharge) -> None:
    """Saves a row whose code is unique in its plan; a lost race is Lago's `value_already_exist`."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise Invalid({"code": ["value_already_exist"]}) from exc


# --------------------------------------------------------------------------------------------
# Charge filters (spec §7.12)


def _filter_values_errors(charge: Charge, values: object) -> dict[str, list[str]]:
    """Keys must be filters of the metric and values among its declared values (or ALL)."""
    if not values or not isinstance(values, dict):
        return {"values": ["value_is_mandatory"]}
    declared = {f.key: f.values for f in charge.billable_metric.filters.alive()}
    for key, accepted in values.items():
        valid = (
            key in declared
            and isinstance(accepted, list)
            and bool(accepted)
            and (accepted == [ALL_FILTER_VALUES] or all(v in declared[key] for v in accepted))
        )
        if not valid:
            return {"values": ["value_is_invalid"]}
    return {}


def charge_filter_errors(charge: Charge, values: object, properties: dict) -> dict[str, list[str]]:
    """Lago's codes for one filter of `charge`: its values, and its properties for the model."""
    errors = _filter_values_errors(charge, values)
    merge_errors(errors, wire_error_details(validate_properties(charge.charge_model, properties)))
    return errors


def _same_values(left: dict, right: dict) -> bool:
    return {k: list(v) for k, v in left.items()} == {k: list(v) for k, v in right.items()}


def _filter_save(charge_filter: ChargeFilter, charge: Charge, params: dict) -> ChargeFilter:
    charge_filter.invoice_display_name = params.get("invoice_display_name") or ""
    charge_filter.values = {key: list(v) for key, v in (params.get("values") or {}).items()}
    charge_filter.properties = filter_properties(charge.charge_model, params.get("properties"))
    raise_if(charge_filter_errors(charge, params.get("values"), charge_filter.properties))
    charge_filter.save()
    return charge_filter


def filters_replace(charge: Charge, filters_params: list[dict], now: datetime) -> None:
    """The charge's filters become `filters_params`: a filter with the same values is updated,
    others created, the rest soft-deleted (Lago's ChargeFilters::CreateOrUpdateBatchService)."""
    existing = list(ChargeFilter.objects.alive().filter(charge=charge))
    kept: list[uuid.UUID] = []
    for params in filters_params:
        match = next(
            (
                f
                for f in existing
                if f.id not in kept and _same_values(f.values, params.get("values") or {})
            ),
            None,
        )
        target = match or ChargeFilter(organization_id=charge.organization_id, charge=charge)
        kept.append(_filter_save(target, charge, params).id)
    for charge_filter in existing:
        if charge_filter.id not in kept:
            charge_filter.deleted_at = now
            charge_filter.save(update_fields=["deleted_at", "updated_at"])


def _filters_cascade(
    child: Charge,
    old_parent_filters: list[tuple[dict, dict]],
    new_parent_filters: list[ChargeFilter],
    now: datetime,
) -> None:
    """Parent filters onto a child charge: filters the child customized keep their properties;
    inherited ones follow the parent, appear or disappear with it (Lago's cascade batch)."""
    existing = list(ChargeFilter.objects.alive().filter(charge=child))
    kept: list[uuid.UUID] = []

    def old_properties(values: dict) -> dict | None:
        return next(
            (props for vals, props in old_parent_filters if _same_values(vals, values)), None
        )

    for parent_filter in new_parent_filters:
        match = next((f for f in existing if _same_values(f.values, parent_filter.values)), None)
        inherited = old_properties(parent_filter.values)
        if match and (inherited is None or not same_properties(inherited, match.properties)):
            _cascade_group_keys(match.properties, parent_filter.properties)
            match.save(update_fields=["properties", "updated_at"])
            kept.append(match.id)
            continue
        target = match or ChargeFilter(
            organization_id=child.organization_id, charge=child, values=parent_filter.values
        )
        target.invoice_display_name = parent_filter.invoice_display_name
        target.properties = copy.deepcopy(parent_filter.properties)
        target.save()
        kept.append(target.id)
    for charge_filter in existing:
        if charge_filter.id not in kept and old_properties(charge_filter.values) is not None:
            charge_filter.deleted_at = now
            charge_filter.save(update_fields=["deleted_at", "updated_at"])


# --------------------------------------------------------------------------------------------
# Charges (spec §7.1-7.3)


def charge_errors(charge: Charge) -> dict[str, list[str]]:
    """Lago's `error_details` of a charge: the §7.2 matrix and the §7.3 properties."""
    if not charge.charge_model:
        return {"charge_model": ["value_is_mandatory"]}
    metric = charge.billable_metric
    errors = validate_properties(
        charge.charge_model,
        charge.properties,
        billable_metric_aggregation=metric.aggregation_type,
        billable_metric_recurring=metric.recurring,
        pay_in_advance=charge.pay_in_advance,
        invoiceable=charge.invoiceable,
        regroup_paid_fees=charge.regroup_paid_fees,
        prorated=charge.prorated,
        min_amount_cents=charge.min_amount_cents,
    )
    details = wire_error_details(errors)
    if (
        charge.code
        and Charge.objects.alive()
        .filter(plan_id=charge.plan_id, code=charge.code)
        .exclude(pk=charge.pk)
        .exists()
    ):
        merge_errors(details, {"code": ["value_already_exist"]})
    return details


@dataclass(frozen=True)
class ChargeState:
    """A parent charge before an update: what its children are compared with (cascade)."""

    charge_model: str
    properties: dict
    filters: list[tuple[dict, dict]]

    @classmethod
    def of(cls, charge: Charge) -> ChargeState:
        filters = ChargeFilter.objects.alive().filter(charge=charge)
        return cls(
            charge.charge_model,
            copy.deepcopy(charge.properties),
            [(copy.deepcopy(f.values), copy.deepcopy(f.properties)) for f in filters],
        )


def charge_build(
    *, plan: Plan, values: dict, now: datetime, parent: Charge | None = None
) -> Charge:
    """Creates one charge of `plan` from a Lago charge payload (no transaction of its own)."""
    metric = billable_metric_for(organization=plan.organization, values=values)
    charge_model = values.get("charge_model") or ""
    invoiceable = values.get("invoiceable")
    charge = Charge(
        organization_id=plan.organization_id,
        plan=plan,
        billable_metric=metric,
        parent=parent,
        charge_model=charge_model,
        invoice_display_name=values.get("invoice_display_name") or "",
        pay_in_advance=bool(values.get("pay_in_advance")),
        prorated=bool(values.get("prorated")),
        invoiceable=True if invoiceable is None else invoiceable,
        regroup_paid_fees=values.get("regroup_paid_fees"),
        min_amount_cents=values.get("min_amount_cents") or 0,
        properties=filter_properties(
            charge_model, _properties_or_default(charge_model, values.get("properties"))
        ),
    )
    charge.code = values.get("code") or unique_code(
        Charge.objects.alive().filter(plan=plan).values_list("code", flat=True), metric.code
    )
    raise_if(charge_errors(charge))
    taxes = taxes_for(organization=plan.organization, codes=values.get("tax_codes"))
    _save_unique(charge)
    charge.taxes.set(taxes)
    if values.get("filters"):
        filters_replace(charge, values["filters"], now)
    return charge


def charge_apply(charge: Charge, values: dict, *, now: datetime) -> Charge:
    """Updates a charge from a Lago charge payload (Charges::UpdateService, no cascade).

    Properties and the display name are replaced (absent = default / blank); with
    subscriptions on the plan (or on an override) only properties, filters, taxes and the name
    change (spec §6.2, §6.3).
    """
    locked = plan_is_locked(charge.plan)
    if not locked and values.get("charge_model"):
        charge.charge_model = values["charge_model"]
    charge.invoice_display_name = values.get("invoice_display_name") or ""
    charge.properties = filter_properties(
        charge.charge_model, _properties_or_default(charge.charge_model, values.get("properties"))
    )
    if not locked:
        if values.get("billable_metric_id") or values.get("billable_metric_code"):
            charge.billable_metric = billable_metric_for(
                organization=charge.plan.organization, values=values
            )
        for flag in ("pay_in_advance", "prorated", "invoiceable"):
            if values.get(flag) is not None:
                setattr(charge, flag, values[flag])
        if "regroup_paid_fees" in values:
            charge.regroup_paid_fees = values["regroup_paid_fees"]
        charge.min_amount_cents = values.get("min_amount_cents") or 0
        if values.get("code"):
            charge.code = values["code"]
    raise_if(charge_errors(charge))
    taxes = None
    if values.get("tax_codes") is not None:
        taxes = taxes_for(organization=charge.plan.organization, codes=values["tax_codes"])
    _save_unique(charge)
    if values.get("filters") is not None:
        filters_replace(charge, values["filters"], now)
    if taxes is not None:
        charge.taxes.set(taxes)
    return charge


def charge_discard(charge: Charge, now: datetime) -> Charge:
    """Soft-deletes a charge with its filters."""
    ChargeFilter.objects.alive().filter(charge=charge).update(deleted_at=now, updated_at=now)
    charge.deleted_at = now
    charge.save(update_fields=["deleted_at", "updated_at"])
    return charge


def _alive_children(charge: Charge | FixedCharge) -> list:
    return list(charge.children.filter(deleted_at__isnull=True, plan__deleted_at__isnull=True))


def cascade_charge_creation(charge: Charge, values: dict, now: datetime) -> None:
    """A new parent charge appears on every override of its plan (CreateChildrenService)."""
    for child_plan in charge.plan.children.alive():
        charge_build(
            plan=child_plan, values={**values, "code": charge.code}, now=now, parent=charge
        )


def cascade_charge_update(charge: Charge, old: ChargeState, now: datetime) -> None:
    """Children that kept the parent's old properties take the new ones; customized ones keep
    theirs (but follow group keys); a changed charge model is never cascaded."""
    new_filters = list(ChargeFilter.objects.alive().filter(charge=charge))
    for child in _alive_children(charge):
        if child.charge_model != charge.charge_model:
            continue
        if old.charge_model == child.charge_model and same_properties(
            old.properties, child.properties
        ):
            child.properties = copy.deepcopy(charge.properties)
        else:
            _cascade_group_keys(child.properties, charge.properties)
        child.save(update_fields=["properties", "updated_at"])
        _filters_cascade(child, old.filters, new_filters, now)


def cascade_charge_removal(charge: Charge, now: datetime) -> None:
    for child in _alive_children(charge):
        charge_discard(child, now)


def _filter_row(charge_filter: ChargeFilter) -> dict:
    return {
        "values": charge_filter.values,
        "properties": charge_filter.properties,
        "invoice_display_name": charge_filter.invoice_display_name or None,
    }


def charge_filter_rows(charge: Charge) -> list[dict] | None:
    """A charge's live filters, as its activity compares them."""
    rows = ChargeFilter.objects.alive().filter(charge=charge).order_by("created_at", "id")
    return [_filter_row(row) for row in rows] or None


def plan_charge_filter_rows(plan: Plan) -> dict[str, list[dict]] | None:
    """`{charge_code: filters}` of a plan's live charges with filters, as the plan's activity
    compares them (Lago logs filters through their plan's `plan.updated`)."""
    rows: dict[str, list[dict]] = {}
    for charge_filter in (
        ChargeFilter.objects.alive()
        .filter(charge__plan=plan, charge__deleted_at__isnull=True)
        .select_related("charge")
        .order_by("charge__code", "created_at", "id")
    ):
        rows.setdefault(charge_filter.charge.code, []).append(_filter_row(charge_filter))
    return rows or None


def _record_filters(charge: Charge, before: list[dict] | None, actor: Actor) -> None:
    """`charge.updated` for a change of the charge's filters (rows of their own)."""
    record_activity(
        activity_type="charge.updated",
        actor=actor,
        obj=charge,
        extra_changes={"filters": [before, charge_filter_rows(charge)]},
    )


@transaction.atomic
def charge_create(*, plan: Plan, values: dict, actor: Actor, now: datetime) -> Charge:
    """Adds a charge to a plan; `cascade_updates` adds it to the plan's overrides too."""
    charge = charge_build(plan=plan, values=values, now=now)
    if values.get("cascade_updates"):
        cascade_charge_creation(charge, values, now)
    record_activity(
        activity_type="charge.created",
        actor=actor,
        obj=charge,
        extra_changes={"filters": [None, charge_filter_rows(charge)]},
    )
    return charge


@transaction.atomic
def charge_update(*, charge: Charge, values: dict, actor: Actor, now: datetime) -> Charge:
    """Updates a charge (Lago semantics, see `charge_apply`); `cascade_updates` follows §6.3."""
    charge = lock_charge(charge.pk)
    old = ChargeState.of(charge)
    filters_before = charge_filter_rows(charge)
    charge_apply(charge, values, now=now)
    if values.get("cascade_updates"):
        cascade_charge_update(charge, old, now)
    record_activity(
        activity_type="charge.updated",
        actor=actor,
        obj=charge,
        extra_changes={"filters": [filters_before, charge_filter_rows(charge)]},
    )
    return charge


@transaction.atomic
def charge_delete(*, charge: Charge, actor: Actor, now: datetime, cascade: bool = False) -> Charge:
    """Soft-deletes a charge and its filters; with `cascade`, its overrides' copies too."""
    charge = lock_charge(charge.pk)
    charge_discard(charge, now)
    if cascade:
        cascade_charge_removal(charge, now)
    record_activity(activity_type="charge.deleted", actor=actor, obj=charge)
    return charge


def charge_override_apply(charge: Charge, values: dict, *, now: datetime) -> Charge:
    """Changes what an override (a charge of a subscription's own child plan, spec §6.3) may
    change, for the keys present only: properties (of its unchanged charge model), spending
    minimum, display name, filters (replaced as a set) and taxes. No transaction of its own."""
    if "properties" in values:
        charge.properties = filter_properties(
            charge.charge_model,
            _properties_or_default(charge.charge_model, values["properties"]),
        )
    if "min_amount_cents" in values:
        charge.min_amount_cents = values["min_amount_cents"] or 0
    if "invoice_display_name" in values:
        charge.invoice_display_name = values["invoice_display_name"] or ""
    raise_if(charge_errors(charge))
    taxes = None
    if values.get("tax_codes") is not None:
        taxes = taxes_for(organization=charge.plan.organization, codes=values["tax_codes"])
    charge.save()
    if values.get("filters") is not None:
        filters_replace(charge, values["filters"], now)
    if taxes is not None:
        charge.taxes.set(taxes)
    return charge


def charge_filter_matching(charge: Charge, values: dict) -> ChargeFilter | None:
    """The live filter of `charge` with these values (keys and value lists), if any."""
    return next(
        (
            f
            for f in ChargeFilter.objects.alive().filter(charge=charge)
            if _same_values(f.values, values)
        ),
        None,
    )


def _child_filters(charge: Charge, values: dict) -> list[ChargeFilter]:
    return [
        f
        for child in _alive_children(charge)
        for f in ChargeFilter.objects.alive().filter(charge=child)
        if _same_values(f.values, values)
    ]


@transaction.atomic
def charge_filter_create(
    *, charge: Charge, values: dict, actor: Actor, now: datetime
) -> ChargeFilter:
    """Adds a filter to a charge (ChargeFilters::CreateService); `cascade_updates` adds it to
    the overrides' charges that do not have it yet."""
    before = charge_filter_rows(charge)
    charge_filter = _filter_save(
        ChargeFilter(organization_id=charge.organization_id, charge=charge), charge, values
    )
    if values.get("cascade_updates"):
        for child in _alive_children(charge):
            if not any(
                _same_values(f.values, charge_filter.values)
                for f in ChargeFilter.objects.alive().filter(charge=child)
            ):
                ChargeFilter.objects.create(
                    organization_id=child.organization_id,
                    charge=child,
                    values=copy.deepcopy(charge_filter.values),
                    properties=copy.deepcopy(charge_filter.properties),
                    invoice_display_name=charge_filter.invoice_display_name,
                )
    _record_filters(charge, before, actor)
    return charge_filter


@transaction.atomic
def charge_filter_update(
    *, charge_filter: ChargeFilter, values: dict, actor: Actor, now: datetime
) -> ChargeFilter:
    """Changes a filter's name and properties (its values identify it and stay);
    `cascade_updates` updates the overrides' copies that were not customized."""
    charge_filter = lock_charge_filter(charge_filter.pk)
    charge = charge_filter.charge
    before = charge_filter_rows(charge)
    old_properties = copy.deepcopy(charge_filter.properties)
    if "invoice_display_name" in values:
        charge_filter.invoice_display_name = values["invoice_display_name"] or ""
    if "properties" in values:
        charge_filter.properties = filter_properties(charge.charge_model, values["properties"])
    raise_if(charge_filter_errors(charge, charge_filter.values, charge_filter.properties))
    charge_filter.save()
    if values.get("cascade_updates"):
        for child_filter in _child_filters(charge, charge_filter.values):
            if same_properties(child_filter.properties, old_properties):
                child_filter.properties = copy.deepcopy(charge_filter.properties)
                child_filter.invoice_display_name = charge_filter.invoice_display_name
            else:
                _cascade_group_keys(child_filter.properties, charge_filter.properties)
            child_filter.save()
    _record_filters(charge, before, actor)
    return charge_filter


@transaction.atomic
def charge_filter_delete(
    *, charge_filter: ChargeFilter, actor: Actor, now: datetime, cascade: bool = False
) -> ChargeFilter:
    """Soft-deletes a filter; with `cascade`, the overrides' copies too."""
    charge_filter = lock_charge_filter(charge_filter.pk)
    before = charge_filter_rows(charge_filter.charge)
    targets = [charge_filter]
    if cascade:
        targets += _child_filters(charge_filter.charge, charge_filter.values)
    for target in targets:
        target.deleted_at = now
        target.save(update_fields=["deleted_at", "updated_at"])
    _record_filters(charge_filter.charge, before, actor)
    return charge_filter


# --------------------------------------------------------------------------------------------
# Fixed charges (spec §8)


def _units(value: object) -> Decimal | None:
    try:
        units = parse_decimal(value)
    except ValueError:
        return None
    return units if units >= 0 else None


def fixed_charge_errors(fixed_charge: FixedCharge) -> dict[str, list[str]]:
    """Lago's codes for a fixed charge: model among standard/graduated/volume, properties of
    that model (spec §7.3), units >= 0, code unique in the plan."""
    if not fixed_charge.charge_model:
        return {"charge_model": ["value_is_mandatory"]}
    if fixed_charge.charge_model not in FixedChargeModel.values:
        return {"charge_model": ["value_is_invalid"]}
    details = wire_error_details(
        validate_properties(fixed_charge.charge_model, fixed_charge.properties)
    )
    if _units(fixed_charge.units) is None:
        merge_errors(details, {"units": ["value_is_invalid"]})
    if (
        fixed_charge.code
        and FixedCharge.objects.alive()
        .filter(plan_id=fixed_charge.plan_id, code=fixed_charge.code)
        .exclude(pk=fixed_charge.pk)
        .exists()
    ):
        merge_errors(details, {"code": ["value_already_exist"]})
    return details


def _fixed_properties(charge_model: str, properties: object) -> dict:
    return filter_properties(
        charge_model, _properties_or_default(charge_model, properties), group_keys=False
    )


def fixed_charge_build(
    *, plan: Plan, values: dict, parent: FixedCharge | None = None
) -> FixedCharge:
    """Creates one fixed charge of `plan` from a Lago payload (no transaction of its own)."""
    add_on = add_on_for(organization=plan.organization, values=values)
    charge_model = values.get("charge_model") or ""
    units = values.get("units")
    fixed_charge = FixedCharge(
        organization_id=plan.organization_id,
        plan=plan,
        add_on=add_on,
        parent=parent,
        charge_model=charge_model,
        invoice_display_name=values.get("invoice_display_name") or "",
        pay_in_advance=bool(values.get("pay_in_advance")),
        prorated=bool(values.get("prorated")),
        units=Decimal(0) if units is None else units,
        properties=_fixed_properties(charge_model, values.get("properties")),
    )
    fixed_charge.code = values.get("code") or unique_code(
        FixedCharge.objects.alive().filter(plan=plan).values_list("code", flat=True), add_on.code
    )
    raise_if(fixed_charge_errors(fixed_charge))
    taxes = taxes_for(organization=plan.organization, codes=values.get("tax_codes"))
    _save_unique(fixed_charge)
    fixed_charge.taxes.set(taxes)
    return fixed_charge


def fixed_charge_apply(fixed_charge: FixedCharge, values: dict) -> FixedCharge:
    """Updates a fixed charge (FixedCharges::UpdateService): model (unless subscribed), name,
    units and properties; `pay_in_advance`, `prorated` and the add-on never change."""
    locked = plan_is_locked(fixed_charge.plan)
    if not locked and values.get("charge_model"):
        fixed_charge.charge_model = values["charge_model"]
    fixed_charge.invoice_display_name = values.get("invoice_display_name") or ""
    if values.get("units") is not None:
        fixed_charge.units = values["units"]
    fixed_charge.properties = _fixed_properties(fixed_charge.charge_model, values.get("properties"))
    raise_if(fixed_charge_errors(fixed_charge))
    taxes = None
    if not locked and values.get("tax_codes") is not None:
        taxes = taxes_for(organization=fixed_charge.plan.organization, codes=values["tax_codes"])
    _save_unique(fixed_charge)
    if taxes is not None:
        fixed_charge.taxes.set(taxes)
    return fixed_charge


def fixed_charge_discard(fixed_charge: FixedCharge, now: datetime) -> FixedCharge:
    fixed_charge.deleted_at = now
    fixed_charge.save(update_fields=["deleted_at", "updated_at"])
    return fixed_charge


def fixed_charge_override_apply(fixed_charge: FixedCharge, values: dict) -> FixedCharge:
    """Changes what an override of a fixed charge may change (spec §6.3), for the keys
    present only: units, properties (of its unchanged model), display name and taxes."""
    if values.get("units") is not None:
        fixed_charge.units = values["units"]
    if "properties" in values:
        fixed_charge.properties = _fixed_properties(fixed_charge.charge_model, values["properties"])
    if "invoice_display_name" in values:
        fixed_charge.invoice_display_name = values["invoice_display_name"] or ""
    raise_if(fixed_charge_errors(fixed_charge))
    taxes = None
    if values.get("tax_codes") is not None:
        taxes = taxes_for(organization=fixed_charge.plan.organization, codes=values["tax_codes"])
    fixed_charge.save()
    if taxes is not None:
        fixed_charge.taxes.set(taxes)
    return fixed_charge


@dataclass(frozen=True)
class FixedChargeState:
    """A parent fixed charge before an update (cascade)."""

    charge_model: str
    properties: dict
    units: Decimal

    @classmethod
    def of(cls, fixed_charge: FixedCharge) -> FixedChargeState:
        return cls(
            fixed_charge.charge_model,
            copy.deepcopy(fixed_charge.properties),
            Decimal(fixed_charge.units),
        )


def cascade_fixed_charge_creation(fixed_charge: FixedCharge, values: dict) -> None:
    for child_plan in fixed_charge.plan.children.alive():
        fixed_charge_build(
            plan=child_plan, values={**values, "code": fixed_charge.code}, parent=fixed_charge
        )


def cascade_fixed_charge_update(fixed_charge: FixedCharge, old: FixedChargeState) -> None:
    """Children that still had the parent's old properties (units) take the new ones."""
    for child in _alive_children(fixed_charge):
        if child.charge_model != fixed_charge.charge_model:
            continue
        if old.charge_model == child.charge_model and same_properties(
            old.properties, child.properties
        ):
            child.properties = copy.deepcopy(fixed_charge.properties)
        if Decimal(child.units) == old.units:
            child.units = fixed_charge.units
        child.save(update_fields=["properties", "units", "updated_at"])


def cascade_fixed_charge_removal(fixed_charge: FixedCharge, now: datetime) -> None:
    for child in _alive_children(fixed_charge):
        fixed_charge_discard(child, now)


@transaction.atomic
def fixed_charge_create(*, plan: Plan, values: dict, actor: Actor) -> FixedCharge:
    """Adds a fixed charge to a plan; `cascade_updates` adds it to the overrides too."""
    fixed_charge = fixed_charge_build(plan=plan, values=values)
    if values.get("cascade_updates"):
        cascade_fixed_charge_creation(fixed_charge, values)
    record_activity(activity_type="fixed_charge.created", actor=actor, obj=fixed_charge)
    return fixed_charge


@transaction.atomic
def fixed_charge_update(*, fixed_charge: FixedCharge, values: dict, actor: Actor) -> FixedCharge:
    """Updates a fixed charge (see `fixed_charge_apply`); `cascade_updates` follows §6.3."""
    fixed_charge = lock_fixed_charge(fixed_charge.pk)
    old = FixedChargeState.of(fixed_charge)
    fixed_charge_apply(fixed_charge, values)
    if values.get("cascade_updates"):
        cascade_fixed_charge_update(fixed_charge, old)
    record_activity(activity_type="fixed_charge.updated", actor=actor, obj=fixed_charge)
    return fixed_charge


@transaction.atomic
def fixed_charge_delete(
    *, fixed_charge: FixedCharge, actor: Actor, now: datetime, cascade: bool = False
) -> FixedCharge:
    """Soft-deletes a fixed charge; with `cascade`, its overrides' copies too."""
    fixed_charge = lock_fixed_charge(fixed_charge.pk)
    fixed_charge_discard(fixed_charge, now)
    if cascade:
        cascade_fixed_charge_removal(fixed_charge, now)
    record_activity(activity_type="fixed_charge.deleted", actor=actor, obj=fixed_charge)
    return fixed_charge
