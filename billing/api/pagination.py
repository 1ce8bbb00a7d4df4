"""Lago pagination: `page`, `per_page`, and `meta` on every list (spec §1.2)."""

from __future__ import annotations

import math

from django.db.models import QuerySet
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response

from billing.errors import BadRequest

DEFAULT_PER_PAGE = 100
MAX_PER_PAGE = 1000
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


class LagoPagination(BasePagination):
    """Page-number pagination answering `{<plural>: [...], meta: {...}}`."""

    def paginate_queryset(self, queryset: QuerySet, request: Request, view=None) -> list:
        if isinstance(queryset, QuerySet) and not queryset.ordered:
            raise RuntimeError("LagoPagination refuses an unordered queryset")
        self.page = positive_int(request.query_params.get("page"), "page", 1)
        self.per_page = min(
            positive_int(request.query_params.get("per_page"), "per_page", DEFAULT_PER_PAGE),
            MAX_PER_PAGE,
        )
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
