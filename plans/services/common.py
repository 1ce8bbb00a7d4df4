"""Lookups shared by the catalog services."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Model, QuerySet

from billing.errors import Invalid, NotFound
from billing.models import Organization
from billing.money import parse_decimal
from plans.models import Tax


def taxes_from_codes(
    *, organization: Organization, codes: Iterable[str] | None, field: str = "tax_codes"
) -> list[Tax]:
    """The organization's taxes for `codes`, in the given order; unknown codes are a 422."""
    codes = list(dict.fromkeys(codes or []))
    if not codes:
        return []
    found = {t.code: t for t in Tax.objects.for_organization(organization).filter(code__in=codes)}
    if any(code not in found for code in codes):
        raise Invalid({field: ["tax_not_found"]})
    return [found[code] for code in codes]


def taxes_for(*, organization: Organization, codes: Iterable[str] | None) -> list[Tax]:
    """The taxes of `codes` for an object that applies them (plan, charge, add-on, customer): an
    unknown code is Lago's 404 `tax_not_found` (its ApplyTaxesService of each object)."""
    try:
        return taxes_from_codes(organization=organization, codes=codes)
    except Invalid as exc:
        raise NotFound("tax") from exc


def name_and_code_errors(
    *, queryset: QuerySet, values: dict, instance: Model | None = None
) -> dict[str, list[str]]:
    """`name` and `code` mandatory, `code` unique among `queryset` (the live rows of the
    organization) — the first rules of every catalog object (spec §4.1, §14, §15.1, §16)."""
    errors: dict[str, list[str]] = {}
    if not (values.get("name") or "").strip():
        errors["name"] = ["value_is_mandatory"]
    code = (values.get("code") or "").strip()
    if not code:
        errors["code"] = ["value_is_mandatory"]
    else:
        taken = queryset.filter(code=code)
        if instance is not None:
            taken = taken.exclude(pk=instance.pk)
        if taken.exists():
            errors["code"] = ["value_already_exist"]
    return errors


def save_with_unique_code(obj: Model) -> None:
    """Saves a catalog row; a concurrent create that took the code first is a 422."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise Invalid({"code": ["value_already_exist"]}) from exc


def percentage(value: object, *, digits: int = 12, places: int = 5) -> Decimal | None:
    """A non-negative percent that fits DECIMAL(digits, places) (tax and coupon rates), or None."""
    try:
        rate = parse_decimal(value)
    except ValueError:
        return None
    if rate < 0 or -rate.as_tuple().exponent > places:
        return None
    if rate.adjusted() >= digits - places:
        return None
    return rate
