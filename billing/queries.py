"""A queryset built and compiled once, run again with other values for its parameters: for the
reads a billing run makes once per customer (Django spends more CPU building and compiling a
query with `EXISTS` subqueries than PostgreSQL spends answering it).

    read = ReusableQuery(lambda customer_id: Subscription.objects.filter(customer_id=customer_id))
    rows = read(customer_id=customer.pk)          # model instances, annotations as attributes

The query is built with marker values for the named parameters (a fresh UUID, a datetime one
microsecond off an unlikely instant), compiled, and each parameter position holding a marker
is remembered; a call substitutes the values and runs the SQL with `Model.objects.raw`. Only
for querysets that return model rows without `select_related`, whose named parameters appear
as plain values (equality or comparison filters, not lists). Compiled when first called (inside
the caller's transaction: a locking read compiles only there).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Model, QuerySet

_EPOCH = datetime(1901, 2, 3, 4, 5, 6, tzinfo=UTC)


def _marker(kind: type) -> Any:
    if kind is uuid.UUID:
        return uuid.uuid4()
    if kind is datetime:
        return _EPOCH + timedelta(microseconds=uuid.uuid4().int % 1_000_000_000)
    raise TypeError(f"ReusableQuery: no marker for {kind.__name__}")


class ReusableQuery:
    """`build(**parameters)` compiled once, run by `__call__(**values)`."""

    def __init__(self, build: Callable[..., QuerySet], **kinds: type) -> None:
        self._build = build
        self._kinds = kinds or {}
        self._compiled: tuple[type[Model], str, list, dict[int, str]] | None = None

    def _compile(self) -> tuple[type[Model], str, list, dict[int, str]]:
        markers = {name: _marker(kind) for name, kind in self._kinds.items()}
        queryset = self._build(**markers)
        if queryset.query.select_related:
            raise TypeError("ReusableQuery: no select_related")
        sql, params = queryset.query.sql_with_params()
        positions = {}
        for index, value in enumerate(params):
            for name, marker in markers.items():
                if type(value) is type(marker) and value == marker:
                    positions[index] = name
        missing = set(markers) - set(positions.values())
        if missing:
            raise TypeError(f"ReusableQuery: parameters not found in the SQL: {sorted(missing)}")
        return queryset.model, sql, list(params), positions

    def __call__(self, **values: Any) -> list[Model]:
        if self._compiled is None:
            self._compiled = self._compile()
        model, sql, params, positions = self._compiled
        bound = list(params)
        for index, name in positions.items():
            bound[index] = values[name]
        return list(model._default_manager.raw(sql, bound))
