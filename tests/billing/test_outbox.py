"""The outbox writer: one row per recorded event, carrying who caused it."""

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from rest_framework.request import ForcedAuthentication, Request

from billing.actors import SYSTEM, Actor
from billing.models import ActivityLog, ActorType, OutboxEvent
from billing.outbox import emit, emit_many, object_type_of
from billing.services import billing_entity_create

pytestmark = pytest.mark.django_db


def test_emit_records_the_event_with_its_actor(organization, api_key):
    actor = Actor.for_api_key(api_key[0])

    row = emit(
        event_type="customer.created",
        actor=actor,
        organization_id=organization.pk,
        object_type="customer",
        object_id="c-1",
        payload={"external_id": "c-1"},
    )

    stored = OutboxEvent.objects.get(pk=row.pk)
    assert (stored.event_type, stored.object_type, stored.object_id, stored.payload) == (
        "customer.created",
        "customer",
        "c-1",
        {"external_id": "c-1"},
    )
    assert (stored.actor_type, stored.actor_id, stored.actor_name) == (
        "api_key",
        str(api_key[0].pk),
        "tests (" + api_key[0].prefix + "…)",
    )


def test_emit_takes_organization_type_and_id_from_the_object(organization):
    entity = organization.default_billing_entity()

    row = emit(event_type="billing_entity.updated", actor=SYSTEM, obj=entity, payload={})

    assert (row.organization_id, row.object_type, row.object_id) == (
        organization.pk,
        "billing_entity",
        str(entity.pk),
    )
    assert (row.actor_type, row.actor_id) == ("system", "system")


def test_emit_without_object_nor_ids_is_refused(organization):
    with pytest.raises(TypeError):
        emit(event_type="x", actor=SYSTEM, organization_id=organization.pk, payload={})


def test_emit_many_records_one_row_per_object_in_one_insert(
    organization, django_assert_num_queries
):
    entities = [
        organization.default_billing_entity(),
        billing_entity_create(organization=organization, code="second", name="Second"),
    ]

    # one insert of outbox rows, one of activity entries; the other three read the entities to
    # render them as the API does (the activity object)
    with django_assert_num_queries(5):
        rows = emit_many(
            event_type="billing_entity.updated",
            actor=SYSTEM,
            objs=entities,
            payload=lambda entity: {"code": entity.code},
        )

    assert [r.payload for r in rows] == [{"code": "default"}, {"code": "second"}]
    assert OutboxEvent.objects.count() == 2
    assert ActivityLog.objects.filter(activity_type="billing_entity.updated").count() == 2


def test_object_type_is_the_snake_case_model_name(organization):
    assert object_type_of(organization.default_billing_entity()) == "billing_entity"


def test_actor_of_an_api_call_is_its_api_key(api_key):
    request = Request(
        RequestFactory().post("/api/v1/customers"),
        authenticators=[ForcedAuthentication(None, api_key[0])],
    )

    actor = Actor.from_request(request)

    assert actor == Actor(ActorType.API_KEY, str(api_key[0].pk), str(api_key[0]))


def test_actor_of_an_admin_request_is_the_staff_user(db):
    user = get_user_model().objects.create_user("fin", "fin@example.com", "pw-123456")
    request = RequestFactory().post("/admin/")
    request.user = user

    actor = Actor.from_request(request)

    assert actor == Actor(ActorType.USER, str(user.pk), "fin")


def test_an_anonymous_request_has_no_actor():
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().post("/admin/")
    request.user = AnonymousUser()

    with pytest.raises(ValueError, match="no actor"):
        Actor.from_request(request)


def test_system_actors_are_named_for_their_job():
    job = "bill_due_task"
    assert Actor.system(job) == Actor(ActorType.SYSTEM, job, job)
    assert SYSTEM.kind == ActorType.SYSTEM
