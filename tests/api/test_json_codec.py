"""The API's JSON reading and writing (`billing.api.parsers`, `billing.api.renderers`): orjson
where it reads and writes the same document as the `json` module, `json` elsewhere."""

import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest
from rest_framework.exceptions import ParseError
from rest_framework.renderers import JSONRenderer

from billing.api.parsers import LagoJSONParser
from billing.api.renderers import LagoJSONRenderer

pytestmark = pytest.mark.django_db


def _event(properties: dict) -> dict:
    return {
        "event": {
            "transaction_id": "tr_codec",
            "external_subscription_id": "sub_codec",
            "code": "unknown_metric",
            "timestamp": 1700000000,
            "properties": properties,
        }
    }


def test_an_integer_past_64_bits_is_read_and_echoed_exactly(api):
    big = 123456789012345678901234567890
    body = json.dumps(_event({"big": big, "negative": -big}))
    response = api.post("/api/v1/events", body, content_type="application/json")
    assert response.status_code == 200
    assert json.loads(response.content)["event"]["properties"] == {"big": big, "negative": -big}


def test_line_and_paragraph_separators_are_escaped_in_answers(api):
    body = json.dumps(_event({"text": "a\u2028b\u2029c"}), ensure_ascii=False)
    response = api.post("/api/v1/events", body.encode(), content_type="application/json")
    assert response.status_code == 200
    assert b"a\\u2028b\\u2029c" in response.content
    assert response.json()["event"]["properties"] == {"text": "a\u2028b\u2029c"}


def test_non_ascii_text_is_written_as_utf8(api):
    body = json.dumps(_event({"city": "Zürich"}), ensure_ascii=False)
    response = api.post("/api/v1/events", body.encode(), content_type="application/json")
    assert "Zürich".encode() in response.content


@pytest.mark.parametrize(
    "data",
    [
        pytest.param({"at": datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)}, id="datetime"),
        pytest.param({"amount": Decimal("1.50")}, id="decimal"),
        pytest.param({"id": UUID(int=7), "n": [1, 2.5, None, True]}, id="uuid-and-json-types"),
    ],
)
def test_answers_are_the_bytes_drf_writes(data):
    assert LagoJSONRenderer().render(data) == JSONRenderer().render(data)


def _nested(depth: int, inner: str = "1") -> bytes:
    """`depth` containers, alternating lists and objects, around `inner`."""
    text = inner
    for level in range(depth):
        text = f'{{"k": {text}}}' if level % 2 else f"[{text}]"
    return text.encode()


def _parse(body: bytes) -> object:
    return LagoJSONParser().parse(io.BytesIO(body), "application/json")


@pytest.mark.parametrize("body", [_nested(64), _nested(63, "{}"), _nested(63, "[]")])
def test_a_document_64_containers_deep_is_read(body):
    assert _parse(body) is not None


@pytest.mark.parametrize("body", [_nested(65), _nested(64, "{}"), _nested(64, "[]")])
def test_a_document_65_containers_deep_is_refused(body):
    with pytest.raises(ParseError, match="deeper than 64"):
        _parse(body)
