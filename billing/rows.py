"""Inserting many new rows of one or several models in one statement, cheaper than
`bulk_create` for the hot paths of the billing run (fees, their taxes, invoice taxes).

`bulk_create` compiles every field of every row through Django's SQL compiler (about a quarter
of a billing run's CPU). Here each model's column list and field preparation are compiled once
per process; a row costs its fields' `pre_save` (the `auto_now` instants) and
`get_db_prep_save` (what Django sends for them), nothing else. Rows of several models go out as
one statement (`INSERT`s chained in a `WITH` on PostgreSQL: one round trip, foreign keys checked
at the end of the statement), children after their parents in the order given.

Only for models whose primary key is set in Python (the UUID `default`), without multi-table
inheritance, and for instances that are not saved yet; nothing is returned from the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache

from django.db import connections, router
from django.db.models import Field, Model


@cache
def _columns(model: type[Model]) -> tuple[str, tuple[Field, ...]]:
    """The `INSERT INTO table (columns)` of a model and the fields in that order."""
    meta = model._meta
    if meta.parents or meta.pk is None or not getattr(meta.pk, "has_default", lambda: False)():
        raise TypeError(f"{model.__name__}: insert_rows needs a primary key set in Python")
    fields = tuple(field for field in meta.concrete_fields if not field.generated)
    quote = connections["default"].ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    return f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ", fields


# psycopg sends at most 65,535 parameters with a statement; stay well below
_MAX_PARAMS = 30_000


def _statements(groups: Iterable[Iterable[Model]], alias_hint: str | None = None):
    """(alias, [(sql, params)], saved rows): one INSERT per group, split to stay under
    `_MAX_PARAMS`."""
    inserts: list[tuple[str, list]] = []
    saved: list[Model] = []
    alias = alias_hint
    for group in groups:
        rows: Sequence[Model] = list(group)
        if not rows:
            continue
        model = type(rows[0])
        alias = alias or router.db_for_write(model)
        connection = connections[alias]
        prefix, fields = _columns(model)
        placeholder = "(" + ", ".join(["%s"] * len(fields)) + ")"
        size = max(_MAX_PARAMS // len(fields), 1)
        for start in range(0, len(rows), size):
            batch = rows[start : start + size]
            params: list = []
            for row in batch:
                if type(row) is not model:
                    raise TypeError("insert_rows: one model per group")
                if row.pk is None:
                    row.pk = model._meta.pk.get_default()
                params.extend(
                    field.get_db_prep_save(field.pre_save(row, True), connection)
                    for field in fields
                )
            inserts.append((prefix + ", ".join([placeholder] * len(batch)), params))
        saved.extend(rows)
    return alias, inserts, saved


def insert_rows(*groups: Iterable[Model]) -> None:
    """Inserts the unsaved instances of each group (one model per group), in the order given,
    in as few statements as the parameter limit allows (one for an invoice's rows); empty
    groups are left out. The instances are saved afterwards (`auto_now` fields set,
    `_state.adding` False)."""
    alias, inserts, saved = _statements(groups)
    if not inserts:
        return
    assert alias is not None
    connection = connections[alias]
    chained = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        pending: list[tuple[str, list]] = []
        for insert in [*inserts, None]:
            if pending and (
                insert is None
                or not chained
                or sum(len(params) for _, params in pending) + len(insert[1]) > _MAX_PARAMS
            ):
                *firsts, (sql, params) = pending
                if firsts:
                    ctes = ", ".join(
                        f"_rows_{n} AS ({first})" for n, (first, _) in enumerate(firsts)
                    )
                    sql = f"WITH {ctes} {sql}"
                    params = [value for _, values in firsts for value in values] + params
                cursor.execute(sql, params)
                pending = []
            if insert is not None:
                pending.append(insert)
    for row in saved:
        row._state.adding = False
        row._state.db = alias
