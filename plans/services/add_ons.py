"""Add-on writes (spec §16)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction

from billing.activity import record_activity
from billing.actors import Actor
from billing.errors import Invalid
from billing.models import Organization
from billing.money import CURRENCIES
from plans.locks import lock_add_on
from plans.models import AddOn, FixedCharge
from plans.services.common import name_and_code_errors, save_with_unique_code, taxes_for

ADD_ON_FIELDS = (
    "name", "invoice_display_name", "code", "amount_cents", "amount_currency", "description",
)  # fmt: skip
_MAX_CENTS = 2**63 - 1  # BigIntegerField


def add_on_errors(
    *, organization: Organization, values: dict, instance: AddOn | None = None
) -> dict[str, list[str]]:
    """Lago's validation codes for an add-on with these values; empty when valid."""
    errors = name_and_code_errors(
        queryset=AddOn.objects.for_organization(organization).alive(),
        values=values,
        instance=instance,
    )
    cents = values.get("amount_cents")
    if cents is None:
        errors["amount_cents"] = ["value_is_mandatory"]
    elif isinstance(cents, bool) or not isinstance(cents, int) or not 0 <= cents <= _MAX_CENTS:
        errors["amount_cents"] = ["value_is_invalid"]
    currency = values.get("amount_currency")
    if not currency:
        errors["amount_currency"] = ["value_is_mandatory"]
    elif currency not in CURRENCIES:
        errors["amount_currency"] = ["value_is_invalid"]
    return errors


@transaction.atomic
def add_on_create(
    *,
    organization: Organization,
    name: str | None = None,
    code: str | None = None,
    amount_cents: int | None = None,
    amount_currency: str | None = None,
    invoice_display_name: str | None = "",
    description: str | None = "",
    tax_codes: Iterable[str] | None = None,
    actor: Actor,
) -> AddOn:
    """A new catalogue item, billable by one-off invoices and fixed charges (spec §16)."""
    values = {
        "name": name, "code": code, "amount_cents": amount_cents,
        "amount_currency": amount_currency,
    }  # fmt: skip
    errors = add_on_errors(organization=organization, values=values)
    if errors:
        raise Invalid(errors)
    taxes = taxes_for(organization=organization, codes=tax_codes)
    add_on = AddOn(
        organization=organization,
        name=name.strip(),
        code=code.strip(),
        amount_cents=amount_cents,
        amount_currency=amount_currency,
        invoice_display_name=invoice_display_name or "",
        description=description or "",
    )
    save_with_unique_code(add_on)
    add_on.taxes.set(taxes)
    record_activity(activity_type="add_on.created", actor=actor, obj=add_on)
    return add_on


@transaction.atomic
def add_on_update(*, add_on: AddOn, values: dict, actor: Actor) -> AddOn:
    """Only the given fields change; `tax_codes`, when given, replaces the add-on's taxes."""
    add_on = lock_add_on(add_on.pk)
    merged = {field: getattr(add_on, field) for field in ADD_ON_FIELDS}
    merged.update({k: v for k, v in values.items() if k in ADD_ON_FIELDS})
    errors = add_on_errors(organization=add_on.organization, values=merged, instance=add_on)
    if errors:
        raise Invalid(errors)
    taxes = None
    if values.get("tax_codes") is not None:
        taxes = taxes_for(organization=add_on.organization, codes=values["tax_codes"])
    for field in ADD_ON_FIELDS:
        value = merged[field]
        setattr(add_on, field, value.strip() if field in ("name", "code") else value)
    add_on.invoice_display_name = add_on.invoice_display_name or ""
    add_on.description = add_on.description or ""
    save_with_unique_code(add_on)
    if taxes is not None:
        add_on.taxes.set(taxes)
    record_activity(activity_type="add_on.updated", actor=actor, obj=add_on)
    return add_on


@transaction.atomic
def add_on_destroy(*, add_on: AddOn, actor: Actor, now: datetime) -> AddOn:
    """Soft delete; the fixed charges billing it leave their plans (spec §16), issued invoices
    keep their fees."""
    add_on = lock_add_on(add_on.pk)
    add_on.deleted_at = now
    add_on.save(update_fields=["deleted_at", "updated_at"])
    FixedCharge.objects.alive().filter(add_on=add_on).update(deleted_at=now, updated_at=now)
    record_activity(activity_type="add_on.deleted", actor=actor, obj=add_on)
    return add_on
