"""Database plumbing the ORM does not offer: prepared statements for the hottest queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorWrapper

try:  # psycopg 3 (the project's driver); psycopg 2 has no prepared statements
    from django.db.backends.postgresql.base import ServerBindingCursor
except ImportError:  # pragma: no cover - another database driver
    ServerBindingCursor = None


if ServerBindingCursor is not None:

    class _PreparingCursor(ServerBindingCursor):
        """Binds server-side and prepares every statement it runs (once per connection)."""

        def execute(self, query, params=None, *, prepare=None, binary=None):  # type: ignore[no-untyped-def]
            return super().execute(query, params, prepare=True, binary=binary)


@contextmanager
def prepared_cursor() -> Iterator[CursorWrapper]:
    """A cursor whose statements PostgreSQL parses and plans once per connection, then only
    executes: for the large statements run on every ingestion request (the write of a batch
    with its pre-aggregation is ~5 KB of SQL, parsed and planned again each time by Django's
    client-side binding). Django's own cursor elsewhere: another database,
    `DB_PREPARED_STATEMENTS=0` (behind a pooler in transaction mode, where a prepared
    statement does not follow its connection), or while queries are logged (`DEBUG`, tests
    capturing queries: Django can show a prepared statement's SQL only without its values)."""
    if (
        connection.vendor != "postgresql"
        or ServerBindingCursor is None
        or not settings.DB_PREPARED_STATEMENTS
        or connection.queries_logged
    ):
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = connection.connection
        if raw.prepare_threshold is None:
            # Django turns preparing off; its client-side cursors never prepare anyway, so a
            # threshold no statement reaches lets only these cursors (prepare=True) prepare
            raw.prepare_threshold = 2**31
        cursor = connection._prepare_cursor(_PreparingCursor(raw))
    with cursor:
        yield cursor
