"""One subscription's prices, overridden without touching its plan (Lago's
`/subscriptions/{external_id}/charges[/{code}[/filters[/{id}]]]` and `/fixed_charges[/{code}]`).

Built on plan overrides (spec §6.3): the first override of a subscription gives it its own
hidden child plan (`plan_override_create`, a copy of every charge and fixed charge with
`parent_id`), and every override edits that child's copy. The catalog plan and the other
subscriptions on it are never changed; the subscription's current usage and its next invoices
read its own plan, so they follow at once. Charges are addressed by their code (the copies keep
their parent's code), filters by the id the subscription's current plan shows, and found again
on the copy by their values.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from billing.actors import Actor
from billing.errors import Invalid, NotFound
from customers.locks import lock_subscriptions
from customers.models import Subscription
from plans.models import Charge, ChargeFilter, FixedCharge, Plan
from plans.services.charges import (
    charge_filter_create,
    charge_filter_delete,
    charge_filter_matching,
    charge_filter_update,
    charge_override_apply,
    fixed_charge_override_apply,
)
from plans.services.plans import plan_override_create


def _own_plan(subscription: Subscription, *, actor: Actor, now: datetime) -> Plan:
    """The subscription's own child plan, created (and the subscription moved onto it) on the
    first override; under the subscription's row lock."""
    locked = lock_subscriptions([subscription.pk]).get(subscription.pk)
    if locked is None:
        raise NotFound("subscription")
    if locked.plan.parent_id is not None:
        subscription.plan = locked.plan
        return locked.plan
    child = plan_override_create(plan=locked.plan, values={}, actor=actor, now=now)
    locked.plan = child
    locked.save(update_fields=["plan", "updated_at"])
    subscription.plan = child
    return child


def _copy_on(plan: Plan, charge: Charge) -> Charge:
    """`charge` (of the subscription's plan when the call started) as found on its own plan."""
    if charge.plan_id == plan.pk:
        return charge
    parent_id = charge.parent_id or charge.pk
    copy = Charge.objects.alive().filter(plan=plan, parent_id=parent_id).first()
    if copy is None:  # the child plan lost it (a charge removed from the override)
        raise NotFound("charge")
    return copy


def _fixed_copy_on(plan: Plan, fixed_charge: FixedCharge) -> FixedCharge:
    if fixed_charge.plan_id == plan.pk:
        return fixed_charge
    parent_id = fixed_charge.parent_id or fixed_charge.pk
    copy = FixedCharge.objects.alive().filter(plan=plan, parent_id=parent_id).first()
    if copy is None:
        raise NotFound("fixed_charge")
    return copy


@transaction.atomic
def subscription_charge_override(
    *, subscription: Subscription, charge: Charge, values: dict, actor: Actor, now: datetime
) -> Charge:
    """Overrides one charge for this subscription only (Lago's
    `Subscriptions::UpdateOrOverrideChargeService`): properties, `min_amount_cents`,
    `invoice_display_name`, `filters` (the set, replaced) and `tax_codes`; never the model."""
    plan = _own_plan(subscription, actor=actor, now=now)
    return charge_override_apply(_copy_on(plan, charge), values, now=now)


@transaction.atomic
def subscription_charge_filter_create(
    *, subscription: Subscription, charge: Charge, values: dict, actor: Actor, now: datetime
) -> ChargeFilter:
    """Adds a filter to this subscription's copy of the charge; values already filtered there
    are Lago's 422 `values: value_already_exists`."""
    if not values.get("values"):
        raise Invalid({"values": ["value_is_mandatory"]})
    copy = _copy_on(_own_plan(subscription, actor=actor, now=now), charge)
    if charge_filter_matching(copy, values["values"]) is not None:
        raise Invalid({"values": ["value_already_exists"]})
    params = {k: values[k] for k in ("values", "properties", "invoice_display_name") if k in values}
    return charge_filter_create(charge=copy, values=params, actor=actor, now=now)


@transaction.atomic
def subscription_charge_filter_update(
    *,
    subscription: Subscription,
    charge: Charge,
    charge_filter: ChargeFilter,
    values: dict,
    actor: Actor,
    now: datetime,
) -> ChargeFilter:
    """Changes a filter's properties or display name for this subscription only: the copy's
    filter with the same values, created from the original when the copy lacks it."""
    copy = _copy_on(_own_plan(subscription, actor=actor, now=now), charge)
    target = charge_filter_matching(copy, charge_filter.values)
    params = {k: values[k] for k in ("properties", "invoice_display_name") if k in values}
    if target is None:
        return charge_filter_create(
            charge=copy,
            values={
                "values": charge_filter.values,
                "properties": params.get("properties", charge_filter.properties),
                "invoice_display_name": params.get(
                    "invoice_display_name", charge_filter.invoice_display_name
                ),
            },
            actor=actor,
            now=now,
        )
    return charge_filter_update(charge_filter=target, values=params, actor=actor, now=now)


@transaction.atomic
def subscription_charge_filter_delete(
    *,
    subscription: Subscription,
    charge: Charge,
    charge_filter: ChargeFilter,
    actor: Actor,
    now: datetime,
) -> ChargeFilter:
    """Removes a filter from this subscription's copy of the charge (the plan keeps it)."""
    copy = _copy_on(_own_plan(subscription, actor=actor, now=now), charge)
    target = charge_filter_matching(copy, charge_filter.values)
    if target is None:
        raise NotFound("charge_filter")
    return charge_filter_delete(charge_filter=target, actor=actor, now=now)


@transaction.atomic
def subscription_fixed_charge_override(
    *,
    subscription: Subscription,
    fixed_charge: FixedCharge,
    values: dict,
    actor: Actor,
    now: datetime,
) -> FixedCharge:
    """Overrides one fixed charge for this subscription only (Lago's
    `Subscriptions::UpdateOrOverrideFixedChargeService`): units, properties, display name,
    taxes. `apply_units_immediately` is accepted and not acted on (no mid-period re-billing
    of fixed charges here): the invoices read the new units from then on."""
    plan = _own_plan(subscription, actor=actor, now=now)
    return fixed_charge_override_apply(_fixed_copy_on(plan, fixed_charge), values)
