"""Tax writes (spec §14): taxes, and the default taxes of billing entities."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction

from billing.activity import record_activity
from billing.actors import Actor
from billing.errors import Invalid
from billing.models import BillingEntity, Organization
from billing.services import billing_entity_create, billing_entity_update
from plans.locks import lock_tax
from plans.models import BillingEntityTax, Tax
from plans.services.common import (
    name_and_code_errors,
    percentage,
    save_with_unique_code,
    taxes_from_codes,
)

TAX_FIELDS = ("name", "code", "rate", "description", "applied_to_organization")


def tax_errors(
    *, organization: Organization, values: dict, instance: Tax | None = None
) -> dict[str, list[str]]:
    """Lago's validation codes for a tax with these values; empty when valid."""
    errors = name_and_code_errors(
        queryset=Tax.objects.for_organization(organization), values=values, instance=instance
    )
    if values.get("rate") is None or values.get("rate") == "":
        errors["rate"] = ["value_is_mandatory"]
    elif percentage(values["rate"]) is None:
        errors["rate"] = ["value_is_invalid"]
    return errors


def entity_tax_codes(entity: BillingEntity) -> list[str] | None:
    """The codes of a billing entity's default taxes, as its activity compares them."""
    codes = BillingEntityTax.objects.filter(billing_entity=entity).values_list(
        "tax__code", flat=True
    )
    return sorted(codes) or None


def _record_entity_taxes(entity: BillingEntity, before: list[str] | None, actor: Actor) -> None:
    """`billing_entity.updated` for a change of the entity's default taxes (rows of their own,
    which its columns do not show), unless they are the same."""
    after = entity_tax_codes(entity)
    if after != before:
        record_activity(
            activity_type="billing_entity.updated",
            actor=actor,
            obj=entity,
            extra_changes={"tax_codes": [before, after]},
        )


def _apply_to_default_entity(tax: Tax, actor: Actor) -> None:
    """`applied_to_organization` (deprecated by Lago) = a default tax of the default entity."""
    entity = tax.organization.default_billing_entity()
    if entity is None:
        return
    before = entity_tax_codes(entity)
    if tax.applied_to_organization:
        BillingEntityTax.objects.get_or_create(
            organization=tax.organization, billing_entity=entity, tax=tax
        )
    else:
        BillingEntityTax.objects.filter(billing_entity=entity, tax=tax).delete()
    _record_entity_taxes(entity, before, actor)


@transaction.atomic
def tax_create(
    *,
    organization: Organization,
    name: str | None = None,
    code: str | None = None,
    rate: Decimal | str | None = None,
    description: str | None = "",
    applied_to_organization: bool | None = False,
    actor: Actor,
) -> Tax:
    """A new tax rate (spec §14)."""
    values = {"name": name, "code": code, "rate": rate}
    errors = tax_errors(organization=organization, values=values)
    if errors:
        raise Invalid(errors)
    tax = Tax(
        organization=organization,
        name=name.strip(),
        code=code.strip(),
        rate=percentage(rate),
        description=description or "",
        applied_to_organization=bool(applied_to_organization),
    )
    save_with_unique_code(tax)
    if tax.applied_to_organization:
        _apply_to_default_entity(tax, actor)
    record_activity(activity_type="tax.created", actor=actor, obj=tax)
    return tax


@transaction.atomic
def tax_update(*, tax: Tax, values: dict, actor: Actor) -> Tax:
    """Only the given fields change; draft and future invoices see the new rate (spec §14)."""
    tax = lock_tax(tax.pk)
    merged = {field: getattr(tax, field) for field in TAX_FIELDS}
    merged.update({k: v for k, v in values.items() if k in TAX_FIELDS})
    errors = tax_errors(organization=tax.organization, values=merged, instance=tax)
    if errors:
        raise Invalid(errors)
    tax.name, tax.code = merged["name"].strip(), merged["code"].strip()
    tax.rate = percentage(merged["rate"])
    tax.description = merged["description"] or ""
    flag_changed = bool(merged["applied_to_organization"]) != tax.applied_to_organization
    tax.applied_to_organization = bool(merged["applied_to_organization"])
    save_with_unique_code(tax)
    if flag_changed:
        _apply_to_default_entity(tax, actor)
    record_activity(activity_type="tax.updated", actor=actor, obj=tax)
    return tax


@transaction.atomic
def tax_destroy(*, tax: Tax, actor: Actor) -> Tax:
    """Deletes the tax and detaches it everywhere (Lago deletes taxes for good)."""
    tax_id = tax.pk
    entities = [
        (link.billing_entity, entity_tax_codes(link.billing_entity))
        for link in BillingEntityTax.objects.filter(tax_id=tax_id).select_related("billing_entity")
    ]
    Tax.objects.filter(pk=tax_id).delete()
    for entity, before in entities:  # the entities it was a default tax of lose it
        _record_entity_taxes(entity, before, actor)
    tax.id = tax_id  # the answer still names the deleted tax by its lago_id
    record_activity(activity_type="tax.deleted", actor=actor, obj=tax)
    return tax


@transaction.atomic
def billing_entity_set_taxes(
    *, billing_entity: BillingEntity, tax_codes: Iterable[str]
) -> BillingEntity:
    """Replaces the default taxes of a billing entity (`tax_codes` of POST/PUT
    /billing_entities); unknown codes are a 422 `tax_codes: tax_not_found`."""
    organization = billing_entity.organization
    taxes = taxes_from_codes(organization=organization, codes=tax_codes)
    wanted = {tax.pk for tax in taxes}
    current = BillingEntityTax.objects.filter(billing_entity=billing_entity)
    current.exclude(tax_id__in=wanted).delete()
    present = set(current.values_list("tax_id", flat=True))
    BillingEntityTax.objects.bulk_create(
        BillingEntityTax(organization=organization, billing_entity=billing_entity, tax=tax)
        for tax in taxes
        if tax.pk not in present
    )
    if billing_entity.is_default:
        # keep Lago's deprecated flag in step with the default entity's taxes
        organization_taxes = Tax.objects.for_organization(organization)
        organization_taxes.filter(pk__in=wanted).update(applied_to_organization=True)
        organization_taxes.exclude(pk__in=wanted).update(applied_to_organization=False)
    return billing_entity


@transaction.atomic
def billing_entity_create_with_taxes(
    *,
    organization: Organization,
    code: str,
    tax_codes: list[str] | None = None,
    actor: Actor,
    **values: object,
) -> BillingEntity:
    """POST /billing_entities: the entity and its default taxes, all or nothing (spec §2.2)."""
    entity = billing_entity_create(organization=organization, code=code, **values)
    if tax_codes is not None:
        billing_entity_set_taxes(billing_entity=entity, tax_codes=tax_codes)
    record_activity(
        activity_type="billing_entity.created",
        actor=actor,
        obj=entity,
        extra_changes={"tax_codes": [None, entity_tax_codes(entity)]},
    )
    return entity


@transaction.atomic
def billing_entity_update_with_taxes(
    *,
    billing_entity: BillingEntity,
    values: dict,
    tax_codes: list[str] | None = None,
    actor: Actor,
) -> BillingEntity:
    """PUT /billing_entities/{code}: settings and default taxes, all or nothing (spec §2.2)."""
    entity = billing_entity_update(billing_entity=billing_entity, values=values)
    before = entity_tax_codes(entity)
    if tax_codes is not None:
        billing_entity_set_taxes(billing_entity=entity, tax_codes=tax_codes)
    record_activity(
        activity_type="billing_entity.updated",
        actor=actor,
        obj=entity,
        extra_changes={"tax_codes": [before, entity_tax_codes(entity)]},
    )
    return entity
