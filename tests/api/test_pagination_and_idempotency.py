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


# Lago reads `page` and `per_page` through Kaminari: `.page(n)` starts at page 1 whatever is
# below it, `.per(n)` keeps Kaminari's default of 25 for what it cannot use (see
# billing.api.pagination for `per_page=0`).


@pytest.mark.parametrize("page", ["0", "-2", "zero", ""])
def test_a_page_below_one_or_not_a_number_is_the_first_page(api, organization, page):
    BillingEntityFactory.create_batch(2, organization=organization)
    response = api.get(f"/api/v1/billing_entities?per_page=2&page={page}")
    assert response.status_code == 200
    body = response.json()
    assert body["meta"]["current_page"] == 1
    assert body["meta"]["next_page"] == 2
    assert len(body["billing_entities"]) == 2


@pytest.mark.parametrize("per_page", ["0", "-5", "many", "+5", ""])
def test_an_unusable_per_page_falls_back_to_25(api, organization, per_page):
    BillingEntityFactory.create_batch(25, organization=organization)
    response = api.get(f"/api/v1/billing_entities?per_page={per_page}")
    assert response.status_code == 200
    body = response.json()
    assert len(body["billing_entities"]) == 25
    assert body["meta"]["total_pages"] == 2


def test_a_per_page_starting_with_digits_reads_them_as_ruby_does(api, organization):
    BillingEntityFactory.create_batch(3, organization=organization)
    body = api.get("/api/v1/billing_entities?per_page=2abc&page=2x").json()
    assert body["meta"]["current_page"] == 2
    assert len(body["billing_entities"]) == 2


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
