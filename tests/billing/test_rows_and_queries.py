"""`billing.rows.insert_rows` (several models in one statement) and `billing.queries.
ReusableQuery` (a queryset compiled once, run with other values)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from billing.models import BillingEntity, Organization
from billing.queries import ReusableQuery
from billing.rows import insert_rows

pytestmark = pytest.mark.django_db


def test_insert_rows_writes_what_save_writes_for_parents_and_children_in_one_statement():
    organization = Organization(
        name="Rows 'quoted' 100% \\ ünïcode",
        default_currency="EUR",
        webhook_secret="f" * 64,
        document_number_prefix="ROW",
    )
    entity = BillingEntity(
        organization=organization, code="main", name="Main", document_number_prefix="ROW-1"
    )

    with CaptureQueriesContext(connection) as queries:
        insert_rows([organization], [entity])

    assert len(queries.captured_queries) == 1
    assert not organization._state.adding
    saved = Organization.objects.get(pk=organization.pk)
    assert model_to_dict(saved) == model_to_dict(organization)
    assert saved.created_at == organization.created_at
    assert model_to_dict(BillingEntity.objects.get(pk=entity.pk)) == model_to_dict(entity)


def test_a_reusable_query_answers_as_its_queryset_for_each_value():
    first, second = Organization(name="First"), Organization(name="Second")
    first.save(), second.save()
    read = ReusableQuery(
        lambda pk, since: Organization.objects.filter(pk=pk, created_at__gte=since),
        pk=uuid.UUID,
        since=datetime,
    )
    epoch = datetime(2000, 1, 1, tzinfo=UTC)

    assert [row.name for row in read(pk=first.pk, since=epoch)] == ["First"]
    assert [row.name for row in read(pk=second.pk, since=epoch)] == ["Second"]
    assert read(pk=second.pk, since=datetime(2999, 1, 1, tzinfo=UTC)) == []


def test_a_reusable_query_refuses_a_parameter_it_cannot_find():
    read = ReusableQuery(lambda pk: Organization.objects.filter(name="x"), pk=uuid.UUID)

    with pytest.raises(TypeError, match="pk"):
        read(pk=uuid.uuid4())
