"""`billing.db.prepared_cursor`: the hottest statements are prepared once per connection,
Django's own queries never are, and the setting turns preparing off (poolers)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.db import prepared_cursor
from billing.models import Organization

pytestmark = pytest.mark.django_db


def _prepared(marker: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", [f"%{marker}%"]
        )
        return cursor.fetchone()[0]


def _run_three_times(marker: str) -> list:
    results = []
    for value in range(3):
        with prepared_cursor() as cursor:
            cursor.execute(f"SELECT %s::int + 1 AS {marker}", [value])
            results.append(cursor.fetchone()[0])
    return results


def test_a_statement_is_prepared_once_per_connection():
    assert _run_three_times("probe_once") == [1, 2, 3]
    assert _prepared("probe_once") == 1


def test_prepared_statements_can_be_turned_off(settings):
    settings.DB_PREPARED_STATEMENTS = False
    assert _run_three_times("probe_off") == [1, 2, 3]
    assert _prepared("probe_off") == 0


def test_django_queries_are_not_prepared():
    _run_three_times("probe_first")
    for _ in range(10):
        list(Organization.objects.filter(name="never_prepared_marker"))
    assert _prepared("never_prepared_marker") == 0


def test_captured_queries_show_their_sql_with_values():
    """While queries are logged (DEBUG, `CaptureQueriesContext`), Django's cursor runs them."""
    with CaptureQueriesContext(connection) as queries:
        _run_three_times("probe_logged")
    assert "SELECT 2::int + 1 AS probe_logged" in queries[-1]["sql"]
    assert _prepared("probe_logged") == 0
