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
On PostgreSQL the values are quoted here, as psycopg's client-side binding (Django's default)
quotes them, because psycopg re-parses the placeholders of a long statement on every call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from uuid import UUID

from django.db import connections, router
from django.db.models import DateTimeField, Field, Model


@cache
def _columns(model: type[Model]) -> tuple[str, tuple[Field, ...]]:
    """The `INSERT INTO table (columns) VALUES ` of a model and the fields in that order."""
    meta = model._meta
    if meta.parents or meta.pk is None or not getattr(meta.pk, "has_default", lambda: False)():
        raise TypeError(f"{model.__name__}: insert_rows needs a primary key set in Python")
    fields = tuple(field for field in meta.concrete_fields if not field.generated)
    quote = connections["default"].ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    return f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ", fields


# Values of these exact types that Django sends to PostgreSQL unchanged for these fields
# (`get_db_prep_save` returns an equal value): passed as they are. Anything else (None aside),
# e.g. a choices enum in a CharField or a JSON value, goes through `get_db_prep_save`.
_AS_IS = {
    "CharField": (str,), "TextField": (str,), "SlugField": (str,), "EmailField": (str,),
    "URLField": (str,), "IntegerField": (int,), "BigIntegerField": (int,),
    "SmallIntegerField": (int,), "PositiveIntegerField": (int,),
    "PositiveSmallIntegerField": (int,), "PositiveBigIntegerField": (int,),
    "BooleanField": (bool,), "UUIDField": (UUID,), "DecimalField": (Decimal,),
    "DateField": (date,),
}  # fmt: skip


@cache
def _plan(model: type[Model], vendor: str) -> tuple[tuple[Field, str, bool, tuple], ...]:
    """(field, attname, calls `pre_save`, types sent as they are) per column; nothing is sent
    as it is off PostgreSQL."""
    _, fields = _columns(model)
    plan = []
    for field in fields:
        target = field.target_field if field.is_relation else field
        as_is = _AS_IS.get(target.get_internal_type(), ()) if vendor == "postgresql" else ()
        stamped = isinstance(field, DateTimeField) and (field.auto_now or field.auto_now_add)
        plan.append((field, field.attname, stamped, as_is))
    return tuple(plan)


def _instant(field: Field, value: object) -> bool:
    # an aware datetime in a DateTimeField: sent unchanged to PostgreSQL
    return type(value) is datetime and value.tzinfo is not None and isinstance(field, DateTimeField)


def _values(plan, row: Model, connection, postgres: bool) -> list:
    """The row's values as Django sends them (`pre_save`, `get_db_prep_save`)."""
    values = []
    for field, attname, stamped, as_is in plan:
        value = field.pre_save(row, True) if stamped else getattr(row, attname)
        if value is None or type(value) in as_is or (postgres and _instant(field, value)):
            values.append(value)
        else:
            values.append(field.get_db_prep_save(value, connection))
    return values


# psycopg sends at most 65,535 parameters with a statement; stay well below
_MAX_PARAMS = 30_000


def _inserts(groups: Iterable[Iterable[Model]]):
    """(alias, [(INSERT prefix, rows of values)], saved instances): one INSERT per group, split
    to stay under `_MAX_PARAMS` values."""
    inserts: list[tuple[str, list[list]]] = []
    saved: list[Model] = []
    alias = None
    for group in groups:
        rows: Sequence[Model] = list(group)
        if not rows:
            continue
        model = type(rows[0])
        alias = alias or router.db_for_write(model)
        connection = connections[alias]
        postgres = connection.vendor == "postgresql"
        prefix, fields = _columns(model)
        plan = _plan(model, connection.vendor)
        size = max(_MAX_PARAMS // len(fields), 1)
        for start in range(0, len(rows), size):
            values = []
            for row in rows[start : start + size]:
                if type(row) is not model:
                    raise TypeError("insert_rows: one model per group")
                if row.pk is None:
                    row.pk = model._meta.pk.get_default()
                values.append(_values(plan, row, connection, postgres))
            inserts.append((prefix, values))
        saved.extend(rows)
    return alias, inserts, saved


def _sql(connection, prefix: str, rows: list[list]) -> tuple[str, list | None]:
    """One INSERT of the rows: on PostgreSQL with the values quoted here, else placeholders."""
    if connection.vendor == "postgresql":
        from psycopg.adapt import Transformer

        literal = Transformer(connection.connection).as_literal
        text = ", ".join(
            "(" + b", ".join(b"NULL" if v is None else literal(v) for v in row).decode() + ")"
            for row in rows
        )
        return prefix + text, None
    placeholder = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
    return prefix + ", ".join([placeholder] * len(rows)), [v for row in rows for v in row]


def insert_rows(*groups: Iterable[Model]) -> None:
    """Inserts the unsaved instances of each group (one model per group), in the order given,
    in as few statements as the parameter limit allows (one for an invoice's rows); empty
    groups are left out. The instances are saved afterwards (`auto_now` fields set,
    `_state.adding` False)."""
    alias, inserts, saved = _inserts(groups)
    if not inserts:
        return
    assert alias is not None
    connection = connections[alias]
    connection.ensure_connection()
    chained = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        pending: list[tuple[str, list[list]]] = []
        count = 0
        for insert in [*inserts, None]:
            size = 0 if insert is None else len(insert[1]) * len(insert[1][0])
            if pending and (insert is None or not chained or count + size > _MAX_PARAMS):
                statements = [_sql(connection, prefix, rows) for prefix, rows in pending]
                *firsts, (sql, params) = statements
                if firsts:  # PostgreSQL only: no parameters
                    ctes = ", ".join(
                        f"_rows_{n} AS ({first})" for n, (first, _) in enumerate(firsts)
                    )
                    sql = f"WITH {ctes} {sql}"
                cursor.execute(sql, params)
                pending, count = [], 0
            if insert is not None:
                pending.append(insert)
                count += size
    for row in saved:
        row._state.adding = False
        row._state.db = alias
