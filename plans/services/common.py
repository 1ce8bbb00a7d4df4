"""Lookups shared by the catalog services."""

from __future__ import annotations

from collections.abc import Iterable

from billing.errors import Invalid
from billing.models import Organization
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
