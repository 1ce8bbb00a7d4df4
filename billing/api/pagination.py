"""Lago pagination: `page`, `per_page`, and `meta` on every list (spec §1.2)."""

from __future__ import annotations

import math
import re

from django.db.models import QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from billing.errors import BadRequest

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000
# Kaminari's `default_per_page`, which Lago falls back on for an unusable `per_page`.
FALLBACK_PER_PAGE = 25
_RUBY_INTEGER = re.compile(r"\s*([+-]?\d+(?:_\d+)*)")
MAX_PAGE = 2**31 - 1  # the offset (page - 1) * per_page must stay a bigint


def positive_int(raw: str | None, name: str, default: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"{name} must be a positive integer") from exc
    if value < 1:
        raise BadRequest(f"{name} must be a positive integer")
    if value > MAX_PAGE:
        raise BadRequest(f"{name} must be at most {MAX_PAGE}")
    return value


def _ruby_to_i(raw: str) -> int:
    """Ruby's `String#to_i`: the leading integer, 0 when there is none."""
    match = _RUBY_INTEGER.match(raw)
    return int(match.group(1).replace("_", "")) if match else 0


def lago_page(raw: str | None) -> int:
    """Lago's `.page(params[:page])` (Kaminari): page 1 for anything below 1 or not a number;
    a page past MAX_PAGE is refused (its offset would overflow the database's bigint)."""
    page = max(_ruby_to_i(raw), 1) if raw is not None else 1
    if page > MAX_PAGE:
        raise BadRequest(f"page must be at most {MAX_PAGE}")
    return page


def lago_per_page(raw: str | None) -> int:
    """Lago's `.per(params[:per_page] || PER_PAGE)` (Kaminari), capped at MAX_PER_PAGE.

    Kaminari keeps its default of 25 for a negative value or one not starting with a digit. A
    zero limits the query to nothing, after which Kaminari's `current_page` divides by zero: a
    500 on any non-empty list. Lago's search-backed lists (`InvoicesQuery#per_page`) answer 25
    for every non-positive value instead; that observable 200 is the one followed here.
    """
    if raw is None:
        return DEFAULT_PER_PAGE
    value = _ruby_to_i(raw) if raw[:1].isdigit() else 0
    return min(value, MAX_PER_PAGE) if value > 0 else FALLBACK_PER_PAGE


class LagoPagination(BasePagination):
    """Page-number pagination answering `{<plural>: [...], meta: {...}}`."""

    def paginate_queryset(self, queryset: QuerySet, request: Request, view=None) -> list:
        if isinstance(queryset, QuerySet) and not queryset.ordered:
            raise RuntimeError("LagoPagination refuses an unordered queryset")
        self.page = lago_page(request.query_params.get("page"))
        self.per_page = lago_per_page(request.query_params.get("per_page"))
        self.total_count = queryset.count() if isinstance(queryset, QuerySet) else len(queryset)
        self.total_pages = math.ceil(self.total_count / self.per_page) if self.total_count else 0
        self.root_key = getattr(view, "root_key_plural", "data")
        offset = (self.page - 1) * self.per_page
        return list(queryset[offset : offset + self.per_page])

    def meta(self) -> dict:
        return {
            "current_page": self.page,
            "next_page": self.page + 1 if self.page < self.total_pages else None,
            "prev_page": self.page - 1 if self.page > 1 else None,
            "total_pages": self.total_pages,
            "total_count": self.total_count,
        }

    def get_paginated_response(self, data: list) -> Response:
        return Response({self.root_key: data, "meta": self.meta()})

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "properties": {
                "data": schema,
                "meta": {
                    "type": "object",
                    "properties": {
                        "current_page": {"type": "integer"},
                        "next_page": {"type": "integer", "nullable": True},
                        "prev_page": {"type": "integer", "nullable": True},
                        "total_pages": {"type": "integer"},
                        "total_count": {"type": "integer"},
                    },
                },
            },
        }
