"""Lago pagination meta (spec §1.2) and Idempotency-Key replay on POST."""

import pytest

from billing.models import BillingEntity, IdempotencyRecord
from tests.billing.factories import BillingEntityFactory

pytestmark = pytest.mark.django_db


def test_pagination_meta_on_a_single_page(api):
    body = api.get("/api/v1/billing_entities").json()
    assert body["meta"] == {
        "current_page": 1,
        "next_page": None,
        "prev_page": None,
        "total_pages": 1,
        "total_count": 1,
    }


def test_pagination_meta_on_an_empty_page(api):
    body = api.get("/api/v1/billing_entities?page=3").json()
    assert body["billing_entities"] == []
    assert body["meta"]["current_page"] == 3
    assert body["meta"]["next_page"] is None
    assert body["meta"]["total_count"] == 1


def test_pagination_walks_a_multi_page_list(api, organization):
    BillingEntityFactory.create_batch(4, organization=organization)
    first = api.get("/api/v1/billing_entities?per_page=2").json()
    assert first["meta"] == {
        "current_page": 1,
        "next_page": 2,
        "prev_page": None,
        "total_pages": 3,
        "total_count": 5,
    }
    last = api.get("/api/v1/billing_entities?per_page=2&page=3").json()
    assert last["meta"]["prev_page"] == 2
    assert last["meta"]["next_page"] is None
    assert len(last["billing_entities"]) == 1
    seen = {
        e["code"]
        for page in (1, 2, 3)
        for e in api.get(f"/api/v1/billing_entities?per_page=2&page={page}").json()[
            "billing_entities"
        ]
    }
    assert len(seen) == 5


def test_bad_page_parameter_is_400(api):
    response = api.get("/api/v1/billing_entities?page=zero")
    assert response.status_code == 400
    assert response.json()["status"] == 400


PAYLOAD = {"billing_entity": {"code": "eu", "name": "EU entity"}}


def test_same_idempotency_key_and_body_replays_the_first_answer(api):
    first = api.post("/api/v1/billing_entities", PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    again = api.post("/api/v1/billing_entities", PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert BillingEntity.objects.filter(code="eu").count() == 1


def test_same_idempotency_key_with_another_body_is_422(api):
    api.post("/api/v1/billing_entities", PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    other = {"billing_entity": {"code": "us", "name": "US entity"}}
    response = api.post("/api/v1/billing_entities", other, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"idempotency_key": ["used_with_another_request"]}
    assert not BillingEntity.objects.filter(code="us").exists()


def test_idempotency_keys_are_per_organization(api, other_api):
    api.post("/api/v1/billing_entities", PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    response = other_api.post(
        "/api/v1/billing_entities", PAYLOAD, format="json", HTTP_IDEMPOTENCY_KEY="k1"
    )
    assert response.status_code == 200
    assert "Idempotent-Replayed" not in response
    assert IdempotencyRecord.objects.count() == 2


def test_without_idempotency_key_a_repeated_post_is_not_replayed(api):
    api.post("/api/v1/billing_entities", PAYLOAD, format="json")
    response = api.post("/api/v1/billing_entities", PAYLOAD, format="json")
    assert response.status_code == 422  # code already exists
