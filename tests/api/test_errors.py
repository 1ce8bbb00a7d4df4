"""Every error class of spec §1.3 answers Lago's envelope."""

import pytest
from django.test import override_settings
from rest_framework.exceptions import ParseError

from billing.api.errors import lago_exception_handler

pytestmark = pytest.mark.django_db


def test_malformed_json_is_400_envelope(api):
    response = api.put("/api/v1/organizations", data="{bad json", content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400
    assert body["error"].startswith("BadRequest: ")


def test_missing_root_key_is_400(api):
    response = api.post("/api/v1/billing_entities", {"name": "x"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "error": "BadRequest: param is missing or the value is empty: billing_entity",
    }


def test_unknown_api_route_is_404_envelope(api):
    response = api.get("/api/v1/does_not_exist")
    assert response.status_code == 404
    assert response.json() == {"status": 404, "error": "Not Found", "code": "route_not_found"}


def test_unknown_object_is_404_with_resource_code(api):
    response = api.get("/api/v1/billing_entities/nope")
    assert response.status_code == 404
    assert response.json() == {
        "status": 404,
        "error": "Not Found",
        "code": "billing_entity_not_found",
    }


def test_unsupported_method_is_405_envelope(api):
    response = api.delete("/api/v1/billing_entities/default")
    assert response.status_code == 405
    assert response.json() == {
        "status": 405,
        "error": "Method Not Allowed",
        "code": "method_not_allowed",
    }


def test_invalid_field_is_422_with_error_details(api):
    response = api.post(
        "/api/v1/billing_entities",
        {"billing_entity": {"code": "eu", "name": "EU", "default_currency": "XXX"}},
        format="json",
    )
    assert response.status_code == 422
    assert response.json() == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": {"default_currency": ["value_is_invalid"]},
    }


def test_duplicate_code_is_422_value_already_exist(api):
    payload = {"billing_entity": {"code": "default", "name": "Again"}}
    response = api.post("/api/v1/billing_entities", payload, format="json")
    assert response.status_code == 422
    assert response.json()["error_details"] == {"code": ["value_already_exist"]}


@override_settings(API_RATE_LIMITS={"default": 2, "events": 500, "usage": 200})
def test_rate_limit_is_429_with_headers(api):
    responses = [api.get("/api/v1/organizations") for _ in range(5)]
    limited = [r for r in responses if r.status_code == 429]
    assert limited, [r.status_code for r in responses]
    assert limited[0].json() == {
        "status": 429,
        "error": "Too Many Requests",
        "code": "too_many_requests",
    }
    assert limited[0]["X-RateLimit-Limit"] == "2"
    assert limited[0]["X-RateLimit-Remaining"] == "0"
    assert int(limited[0]["X-RateLimit-Reset"]) > 0


def test_successful_responses_carry_rate_limit_headers(api):
    response = api.get("/api/v1/organizations")
    assert response["X-RateLimit-Limit"] == "50"  # spec §1.4 default bucket


def test_unexpected_exception_is_500_envelope_without_traceback(rf):
    request = rf.get("/api/v1/anything")
    request.request_id = "req-123"
    response = lago_exception_handler(RuntimeError("boom"), {"request": request})
    assert response.status_code == 500
    assert response.data == {
        "status": 500,
        "error": "Internal Server Error",
        "code": "internal_error",
        "request_id": "req-123",
    }


def test_parse_error_from_drf_maps_to_400(rf):
    response = lago_exception_handler(ParseError("nope"), {"request": rf.get("/")})
    assert response.status_code == 400


def test_every_response_has_a_request_id(api):
    assert api.get("/api/v1/organizations")["X-Request-Id"]
