"""Plans (spec §6): create, update (with Lago's replace semantics for nested charges), delete,
metadata, and overrides, the hidden per-subscription child plans (§6.3) with their cascade.

Payloads are Lago's wire dicts (`amount_cents`, `tax_codes`, `charges[]`, ...), as the API
serializers and the admin forms build them.
"""

from __future__ import annotations

import copy
import uuid
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction

from billing.activity import record_activity
from billing.actors import Actor
from billing.errors import Invalid, NotFound
from billing.models import Organization
from billing.money import CURRENCIES
from billing.outbox import emit
from billing.periods import Interval
from plans.locks import lock_plan
from plans.models import (
    Charge,
    ChargeFilter,
    FixedCharge,
    MinimumCommitment,
    Plan,
    UsageThreshold,
)
from plans.services import charges as charge_services
from plans.services.charges import (
    ChargeState,
    FixedChargeState,
    as_uuid,
    cascade_charge_creation,
    cascade_charge_removal,
    cascade_charge_update,
    cascade_fixed_charge_creation,
    cascade_fixed_charge_removal,
    cascade_fixed_charge_update,
    charge_apply,
    charge_build,
    charge_discard,
    charge_errors,
    check_chargeables,
    clone,
    filter_properties,
    filters_replace,
    fixed_charge_apply,
    fixed_charge_build,
    fixed_charge_discard,
    fixed_charge_errors,
    merge_errors,
    plan_charge_filter_rows,
    raise_if,
    taxes_for,
)

# spec §6.2: what a plan with subscriptions can no longer change (Lago ignores these silently)
LOCKED_FIELDS = ("code", "interval", "pay_in_advance", "amount_currency", "trial_period")
ALWAYS_EDITABLE = ("name", "invoice_display_name", "description", "amount_cents")
# spec §6.1: bill_charges_monthly only means something for yearly and semiannual plans
MONTHLY_BILLABLE_INTERVALS = (Interval.YEARLY, Interval.SEMIANNUAL)
METADATA_KEY_MAX, METADATA_VALUE_MAX = 100, 255
# spec §6.3: what an override may change on its plan
OVERRIDABLE_FIELDS = (
    "amount_cents",
    "amount_currency",
    "description",
    "invoice_display_name",
    "name",
    "trial_period",
)


def plan_has_subscriptions(plan: Plan) -> bool:
    """Whether subscriptions use the plan (spec §6.2); see `charges.plan_has_subscriptions`."""
    return charge_services.plan_has_subscriptions(plan)


def plan_field_errors(values: dict, *, creating: bool) -> dict[str, list[str]]:
    """Lago's codes for the plan's own fields; on update only the fields present are checked."""
    errors: dict[str, list[str]] = {}

    def checked(field: str) -> bool:
        return creating or field in values

    for field in ("name", "code"):
        if checked(field) and not values.get(field):
            errors[field] = ["value_is_mandatory"]
    if checked("interval") and values.get("interval") not in Interval.values:
        errors["interval"] = ["value_is_invalid"]
    if checked("amount_cents"):
        amount = values.get("amount_cents")
        if amount is None:
            errors["amount_cents"] = ["value_is_mandatory"]
        elif isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            errors["amount_cents"] = ["value_is_invalid"]
    if checked("amount_currency") and values.get("amount_currency") not in CURRENCIES:
        errors["amount_currency"] = ["value_is_invalid"]
    trial = values.get("trial_period")
    if trial is not None and Decimal(trial) < 0:
        errors["trial_period"] = ["value_is_invalid"]
    if values.get("metadata") is not None and not _metadata_valid(values["metadata"]):
        errors["metadata"] = ["value_is_invalid"]
    return errors


def plan_code_taken(*, organization: Organization, code: str, exclude: Plan | None = None) -> bool:
    """Another live base plan of the organization has `code` (overrides share their parent's)."""
    plans = (
        Plan.objects.for_organization(organization).alive().filter(parent__isnull=True, code=code)
    )
    if exclude is not None:
        plans = plans.exclude(pk=exclude.pk)
    return plans.exists()


def _metadata_valid(metadata: object) -> bool:
    # spec §6.1: keys <= 100 characters, values strings <= 255 characters or null
    return isinstance(metadata, dict) and all(
        isinstance(key, str)
        and 0 < len(key) <= METADATA_KEY_MAX
        and (value is None or (isinstance(value, str) and len(value) <= METADATA_VALUE_MAX))
        for key, value in metadata.items()
    )


def _monthly_flag(plan: Plan, values: dict, field: str) -> bool | None:
    if plan.interval not in MONTHLY_BILLABLE_INTERVALS:
        return None
    if values.get(field) is not None:
        return bool(values[field])
    return bool(getattr(plan, field))


def _save_plan(plan: Plan) -> None:
    try:
        with transaction.atomic():
            plan.save()
    except IntegrityError as exc:  # a concurrent plan took the code first
        raise Invalid({"code": ["value_already_exist"]}) from exc


# --------------------------------------------------------------------------------------------
# Usage thresholds (spec §21.1) and minimum commitment (spec §22)


def _threshold_errors(thresholds: list[dict]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    seen: set[tuple[int, bool]] = set()
    recurring = 0
    for threshold in thresholds:
        amount = threshold.get("amount_cents")
        if amount is None:
            merge_errors(errors, {"amount_cents": ["value_is_mandatory"]})
            continue
        if amount <= 0:
            merge_errors(errors, {"amount_cents": ["value_is_out_of_range"]})
        key = (amount, bool(threshold.get("recurring")))
        if key in seen:
            merge_errors(errors, {"amount_cents": ["value_already_exist"]})
        seen.add(key)
        recurring += key[1]
    if recurring > 1:  # at most one recurring threshold per plan
        merge_errors(errors, {"recurring": ["value_already_exist"]})
    return errors


def _thresholds_replace(plan: Plan, thresholds: list[dict], now: datetime) -> None:
    """The plan's thresholds become `thresholds`: matched by `id`, else by amount and
    recurrence; the others are soft-deleted (Plans::UpdateUsageThresholdsService)."""
    raise_if(_threshold_errors(thresholds))
    existing = {t.id: t for t in UsageThreshold.objects.alive().filter(plan=plan)}
    by_amount = {(t.amount_cents, t.recurring): t for t in existing.values()}
    plan_rows: list[tuple[UsageThreshold, dict]] = []
    for params in thresholds:
        key = (params["amount_cents"], bool(params.get("recurring")))
        row = existing.get(as_uuid(params.get("id"))) or by_amount.get(key)
        if row is not None and any(row is taken for taken, _ in plan_rows):
            row = None
        plan_rows.append(
            (row or UsageThreshold(organization_id=plan.organization_id, plan=plan), params)
        )
    kept = {row.id for row, _ in plan_rows if row.pk and not row._state.adding}
    for row in existing.values():
        if row.id not in kept:
            row.deleted_at = now
            row.save(update_fields=["deleted_at", "updated_at"])
    try:
        with transaction.atomic():
            for row, params in plan_rows:
                row.amount_cents = params["amount_cents"]
                row.recurring = bool(params.get("recurring"))
                row.threshold_display_name = params.get("threshold_display_name") or ""
                row.save()
    except IntegrityError as exc:  # two rows swapped amounts: the unique index refuses it
        raise Invalid({"amount_cents": ["value_already_exist"]}) from exc


def _commitment_set(plan: Plan, params: dict) -> None:
    """Creates, updates or (on `{}`) removes the plan's minimum commitment (spec §22)."""
    commitment = MinimumCommitment.objects.filter(plan=plan).first()
    if not params:
        if commitment is not None:
            commitment.delete()
        return
    if commitment is None:
        commitment = MinimumCommitment(organization_id=plan.organization_id, plan=plan)
    if "amount_cents" in params:
        commitment.amount_cents = params["amount_cents"]
    if "invoice_display_name" in params:
        commitment.invoice_display_name = params["invoice_display_name"] or ""
    if commitment.amount_cents is None:
        raise Invalid({"amount_cents": ["value_is_mandatory"]})
    if commitment.amount_cents < 0:
        raise Invalid({"amount_cents": ["value_is_invalid"]})
    taxes = None
    if params.get("tax_codes") is not None:
        taxes = taxes_for(organization=plan.organization, codes=params["tax_codes"])
    commitment.save()
    if taxes is not None:
        commitment.taxes.set(taxes)


# --------------------------------------------------------------------------------------------
# Plans


def _record(
    plan: Plan, event_type: str, *, actor: Actor, changes: dict[str, list] | None = None
) -> None:
    """Outbox row of a `plan.*` webhook, in the caller's transaction; `changes` adds to the
    activity what the plan's columns do not show (its charges' filters)."""
    emit(
        event_type=event_type,
        actor=actor,
        obj=plan,
        payload={"lago_id": str(plan.pk), "code": plan.code},
        changes=changes,
    )


@transaction.atomic
def plan_create(*, organization: Organization, values: dict, actor: Actor, now: datetime) -> Plan:
    """Creates a plan with its charges, fixed charges, thresholds and commitment (spec §6.1)."""
    check_chargeables(organization=organization, values=values)
    errors = plan_field_errors(values, creating=True)
    if values.get("code") and plan_code_taken(organization=organization, code=values["code"]):
        merge_errors(errors, {"code": ["value_already_exist"]})
    raise_if(errors)
    plan = Plan(
        organization=organization,
        name=values["name"],
        invoice_display_name=values.get("invoice_display_name") or "",
        code=values["code"],
        interval=values["interval"],
        description=values.get("description") or "",
        amount_cents=values["amount_cents"],
        amount_currency=values["amount_currency"],
        trial_period=values.get("trial_period") or 0,
        pay_in_advance=bool(values.get("pay_in_advance")),
        metadata=dict(values.get("metadata") or {}),
    )
    plan.bill_charges_monthly = _monthly_flag(plan, values, "bill_charges_monthly")
    plan.bill_fixed_charges_monthly = _monthly_flag(plan, values, "bill_fixed_charges_monthly")
    taxes = taxes_for(organization=organization, codes=values.get("tax_codes"))
    _save_plan(plan)
    plan.taxes.set(taxes)
    if values.get("usage_thresholds"):
        _thresholds_replace(plan, values["usage_thresholds"], now)
    for charge_values in values.get("charges") or []:
        charge_build(plan=plan, values=charge_values, now=now)
    for fixed_values in values.get("fixed_charges") or []:
        fixed_charge_build(plan=plan, values=fixed_values)
    if values.get("minimum_commitment"):
        _commitment_set(plan, values["minimum_commitment"])
    filters = [None, plan_charge_filter_rows(plan)]
    _record(plan, "plan.created", actor=actor, changes={"charge_filters": filters})
    return plan


def _match(rows: dict[uuid.UUID, Charge | FixedCharge], params: dict, used: set) -> object:
    row_id = as_uuid(params.get("id"))
    row = rows.get(row_id)
    if row is None and row_id is not None:
        # an override's charge is also found by its parent's id, the one clients know (§6.3)
        row = next((r for r in rows.values() if r.parent_id == row_id), None)
    if row is None and params.get("code"):
        row = next((r for r in rows.values() if r.code == params["code"]), None)
    return None if row is None or row.id in used else row


def _charges_replace(plan: Plan, charges: list[dict], *, cascade: bool, now: datetime) -> None:
    """Lago's process_charges: a charge named by `id` (or `code`) is updated, a new one created,
    the others soft-deleted; with `cascade`, the overrides follow (spec §6.2, §6.3)."""
    existing = {c.id: c for c in Charge.objects.alive().filter(plan=plan).select_related("plan")}
    used: set[uuid.UUID] = set()
    for params in charges:
        charge = _match(existing, params, used)
        if charge is not None:
            old = ChargeState.of(charge)
            charge_apply(charge, params, now=now)
            if cascade:
                cascade_charge_update(charge, old, now)
        else:
            charge = charge_build(plan=plan, values=params, now=now)
            if cascade:
                cascade_charge_creation(charge, params, now)
        used.add(charge.id)
    for charge in existing.values():
        if charge.id not in used:
            charge_discard(charge, now)
            if cascade:
                cascade_charge_removal(charge, now)


def _fixed_charges_replace(
    plan: Plan, fixed_charges: list[dict], *, cascade: bool, now: datetime
) -> None:
    """Same replace semantics as the charges, for fixed charges (Lago's process_fixed_charges)."""
    existing = {
        f.id: f for f in FixedCharge.objects.alive().filter(plan=plan).select_related("plan")
    }
    used: set[uuid.UUID] = set()
    for params in fixed_charges:
        fixed_charge = _match(existing, params, used)
        if fixed_charge is not None:
            old = FixedChargeState.of(fixed_charge)
            fixed_charge_apply(fixed_charge, params)
            if cascade:
                cascade_fixed_charge_update(fixed_charge, old)
        else:
            fixed_charge = fixed_charge_build(plan=plan, values=params)
            if cascade:
                cascade_fixed_charge_creation(fixed_charge, params)
        used.add(fixed_charge.id)
    for fixed_charge in existing.values():
        if fixed_charge.id not in used:
            fixed_charge_discard(fixed_charge, now)
            if cascade:
                cascade_fixed_charge_removal(fixed_charge, now)


@transaction.atomic
def plan_update(*, plan: Plan, values: dict, actor: Actor, now: datetime) -> Plan:
    """Updates a plan with Lago's semantics (Plans::UpdateService).

    Name, display name, description and amount always change; code, interval, pay_in_advance,
    currency and trial only while no subscription uses the plan (spec §6.2: silently kept). An
    override (child plan) takes only its overridable fields, and its charges are also found by
    their parent's id (§6.3).
    `charges`, `fixed_charges` and `usage_thresholds` replace the current ones when present;
    `minimum_commitment: {}` removes it. With `cascade_updates`, overrides follow (§6.3).
    """
    plan = lock_plan(plan.pk)
    check_chargeables(organization=plan.organization, values=values)
    filters_before = plan_charge_filter_rows(plan)
    locked = plan_has_subscriptions(plan)
    if plan.parent_id is not None:
        editable = OVERRIDABLE_FIELDS  # an override changes only what §6.3 lets it
    else:
        editable = ALWAYS_EDITABLE if locked else ALWAYS_EDITABLE + LOCKED_FIELDS
    changes = {field: values[field] for field in editable if field in values}
    errors = plan_field_errors({**changes, "metadata": values.get("metadata")}, creating=False)
    if changes.get("code") and plan_code_taken(
        organization=plan.organization, code=changes["code"], exclude=plan
    ):
        merge_errors(errors, {"code": ["value_already_exist"]})
    raise_if(errors)
    old_amount_cents = plan.amount_cents
    for field, value in changes.items():
        blankable = field in ("invoice_display_name", "description")
        setattr(plan, field, (value or "") if blankable else value)
    if not locked and plan.parent_id is None:
        plan.bill_charges_monthly = _monthly_flag(plan, values, "bill_charges_monthly")
        plan.bill_fixed_charges_monthly = _monthly_flag(plan, values, "bill_fixed_charges_monthly")
    if values.get("metadata") is not None:
        plan.metadata = dict(values["metadata"])
    taxes = None
    if values.get("tax_codes") is not None:
        taxes = taxes_for(organization=plan.organization, codes=values["tax_codes"])
    _save_plan(plan)
    if taxes is not None:
        plan.taxes.set(taxes)

    cascade = bool(values.get("cascade_updates")) and plan.children.alive().exists()
    if values.get("charges") is not None:
        _charges_replace(plan, values["charges"], cascade=cascade, now=now)
    if values.get("fixed_charges") is not None:
        _fixed_charges_replace(plan, values["fixed_charges"], cascade=cascade, now=now)
    if values.get("usage_thresholds") is not None:
        _thresholds_replace(plan, values["usage_thresholds"], now)
    if values.get("minimum_commitment") is not None:
        _commitment_set(plan, values["minimum_commitment"])
    if cascade and plan.amount_cents != old_amount_cents:
        # overrides that kept the old price follow it (Plans::UpdateAmountService)
        plan.children.alive().filter(amount_cents=old_amount_cents).update(
            amount_cents=plan.amount_cents, updated_at=now
        )
    filters = [filters_before, plan_charge_filter_rows(plan)]
    _record(plan, "plan.updated", actor=actor, changes={"charge_filters": filters})
    return plan


@transaction.atomic
def plan_delete(*, plan: Plan, actor: Actor, now: datetime) -> Plan:
    """Soft-deletes a plan; its code becomes free again (spec §6.2).

    Terminating the plan's subscriptions belongs to the customers app (to the right).
    """
    plan = lock_plan(plan.pk)
    plan.deleted_at = now
    plan.save(update_fields=["deleted_at", "updated_at"])
    _record(plan, "plan.deleted", actor=actor)
    return plan


# --------------------------------------------------------------------------------------------
# Metadata (POST replaces, PATCH merges, DELETE clears or drops a key)


def _set_metadata(plan: Plan, metadata: dict, *, actor: Actor) -> Plan:
    if not _metadata_valid(metadata):
        raise Invalid({"metadata": ["value_is_invalid"]})
    plan.metadata = metadata
    plan.save(update_fields=["metadata", "updated_at"])
    record_activity(activity_type="plan.updated", actor=actor, obj=plan)
    return plan


@transaction.atomic
def plan_metadata_replace(*, plan: Plan, metadata: dict, actor: Actor) -> Plan:
    """The plan's metadata becomes `metadata`."""
    plan = lock_plan(plan.pk)
    return _set_metadata(plan, dict(metadata), actor=actor)


@transaction.atomic
def plan_metadata_merge(*, plan: Plan, metadata: dict, actor: Actor) -> Plan:
    """`metadata` keys are added to or overwrite the plan's."""
    plan = lock_plan(plan.pk)
    return _set_metadata(plan, {**plan.metadata, **metadata}, actor=actor)


@transaction.atomic
def plan_metadata_clear(*, plan: Plan, actor: Actor) -> Plan:
    """Removes every metadata key."""
    plan = lock_plan(plan.pk)
    return _set_metadata(plan, {}, actor=actor)


@transaction.atomic
def plan_metadata_key_delete(*, plan: Plan, key: str, actor: Actor) -> Plan:
    """Removes one key; a plan without metadata is Lago's 404 `metadata_not_found`."""
    plan = lock_plan(plan.pk)
    if not plan.metadata:
        raise NotFound("metadata")
    return _set_metadata(plan, {k: v for k, v in plan.metadata.items() if k != key}, actor=actor)


# --------------------------------------------------------------------------------------------
# Overrides (spec §6.3)


def _find(params_list: list[dict] | None, row_id: uuid.UUID) -> dict:
    return next((p for p in params_list or [] if as_uuid(p.get("id")) == row_id), {})


def _charge_override(charge: Charge, child_plan: Plan, params: dict, now: datetime) -> Charge:
    """The child plan's copy of `charge`, with the overridable attributes of `params` (never the
    charge model, spec §6.3)."""
    child = clone(charge, plan_id=child_plan.id, parent_id=charge.parent_id or charge.id)
    if "properties" in params:
        child.properties = filter_properties(charge.charge_model, params["properties"])
    else:
        child.properties = copy.deepcopy(charge.properties)
    if "min_amount_cents" in params:
        child.min_amount_cents = params["min_amount_cents"] or 0
    if "invoice_display_name" in params:
        child.invoice_display_name = params["invoice_display_name"] or ""
    raise_if(charge_errors(child))
    child.save()
    if "tax_codes" in params:
        child.taxes.set(taxes_for(organization=child_plan.organization, codes=params["tax_codes"]))
    else:
        child.taxes.set(charge.taxes.all())
    for charge_filter in ChargeFilter.objects.alive().filter(charge=charge):
        ChargeFilter.objects.create(
            organization_id=charge_filter.organization_id,
            charge=child,
            invoice_display_name=charge_filter.invoice_display_name,
            values=copy.deepcopy(charge_filter.values),
            properties=copy.deepcopy(charge_filter.properties),
        )
    if params.get("filters") is not None:
        filters_replace(child, params["filters"], now)
    return child


def _fixed_charge_override(fixed_charge: FixedCharge, child_plan: Plan, params: dict) -> None:
    child = clone(
        fixed_charge, plan_id=child_plan.id, parent_id=fixed_charge.parent_id or fixed_charge.id
    )
    if params.get("units") is not None:
        child.units = params["units"]
    if "properties" in params:
        child.properties = filter_properties(
            fixed_charge.charge_model, params["properties"], group_keys=False
        )
    else:
        child.properties = copy.deepcopy(fixed_charge.properties)
    if "invoice_display_name" in params:
        child.invoice_display_name = params["invoice_display_name"] or ""
    raise_if(fixed_charge_errors(child))
    child.save()
    if "tax_codes" in params:
        child.taxes.set(taxes_for(organization=child_plan.organization, codes=params["tax_codes"]))
    else:
        child.taxes.set(fixed_charge.taxes.all())


@transaction.atomic
def plan_override_create(*, plan: Plan, values: dict, actor: Actor, now: datetime) -> Plan:
    """A hidden child plan of `plan` for one subscription (spec §6.3, Plans::OverrideService).

    `values` are Lago's `plan_overrides`: the plan's price fields, `tax_codes`, `charges[]` and
    `fixed_charges[]` addressed by the parent's lago `id`, `usage_thresholds`,
    `minimum_commitment`, `metadata`. What is not overridden is copied from `plan` (taxes,
    thresholds and commitment included), so the child bills like its parent. Later edits of
    the child go through `plan_update`; of the parent, reach it with `cascade_updates`.
    """
    changes = {field: values[field] for field in OVERRIDABLE_FIELDS if field in values}
    raise_if(plan_field_errors({**changes, "metadata": values.get("metadata")}, creating=False))
    child = Plan(
        organization_id=plan.organization_id,
        parent_id=plan.parent_id or plan.id,
        code=plan.code,
        interval=plan.interval,
        pay_in_advance=plan.pay_in_advance,
        bill_charges_monthly=plan.bill_charges_monthly,
        bill_fixed_charges_monthly=plan.bill_fixed_charges_monthly,
        metadata=copy.deepcopy(plan.metadata),
        **{field: getattr(plan, field) for field in OVERRIDABLE_FIELDS},
    )
    for field, value in changes.items():
        blankable = field in ("invoice_display_name", "description")
        setattr(child, field, (value or "") if blankable else value)
    if values.get("metadata") is not None:
        child.metadata = dict(values["metadata"])
    child.save()
    if values.get("tax_codes") is not None:
        child.taxes.set(taxes_for(organization=plan.organization, codes=values["tax_codes"]))
    else:
        child.taxes.set(plan.taxes.all())

    for charge in Charge.objects.alive().filter(plan=plan).select_related("billable_metric"):
        _charge_override(charge, child, _find(values.get("charges"), charge.id), now)
    for fixed_charge in FixedCharge.objects.alive().filter(plan=plan):
        _fixed_charge_override(
            fixed_charge, child, _find(values.get("fixed_charges"), fixed_charge.id)
        )

    thresholds = values.get("usage_thresholds")
    if thresholds is None:
        thresholds = [
            {"amount_cents": t.amount_cents, "recurring": t.recurring,
             "threshold_display_name": t.threshold_display_name}
            for t in UsageThreshold.objects.alive().filter(plan=plan)
        ]  # fmt: skip
    if thresholds:
        _thresholds_replace(child, thresholds, now)

    commitment = MinimumCommitment.objects.filter(plan=plan).first()
    if values.get("minimum_commitment"):
        _commitment_set(child, values["minimum_commitment"])
    elif commitment is not None:
        _commitment_set(
            child,
            {
                "amount_cents": commitment.amount_cents,
                "invoice_display_name": commitment.invoice_display_name,
                "tax_codes": list(commitment.taxes.values_list("code", flat=True)),
            },
        )
    return child
