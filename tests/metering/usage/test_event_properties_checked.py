"""Ingestion refuses an event whose properties the store could not keep, naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from metering.services.ingestion import build_event_input

NOW = datetime(2024, 3, 5, 12, tzinfo=UTC)
EVENT = {"transaction_id": "t", "external_subscription_id": "s", "code": "c"}


@pytest.mark.parametrize(
    "properties",
    [
        pytest.param({"a\x00": 1}, id="nul-in-key"),
        pytest.param({"a": ["b", {"c": "\x00"}]}, id="nested-nul"),
        pytest.param({"a": float("nan")}, id="nan"),
        pytest.param({"a": [float("inf")]}, id="infinity"),
    ],
)
def test_unstorable_properties_are_value_is_invalid(properties):
    event, errors = build_event_input({**EVENT, "properties": properties}, metrics={}, now=NOW)
    assert event is None
    assert errors == {"properties": ["value_is_invalid"]}


def test_usual_properties_are_kept_as_sent():
    properties = {"user_id": "u_1", "amount": 12, "ratio": 0.5, "tags": ["a", None, True]}
    event, errors = build_event_input({**EVENT, "properties": properties}, metrics={}, now=NOW)
    assert errors == {}
    assert event.properties == properties
