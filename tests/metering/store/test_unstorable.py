"""The one check of event properties before they are stored (`metering.store.unstorable`)."""

from __future__ import annotations

from collections import OrderedDict

import pytest

from metering.store import unstorable

NUL = "NUL characters"
OUT_OF_RANGE = "out of range floats (not JSON compliant)"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({}, id="empty"),
        pytest.param({"user_id": "u_1", "amount": 12, "ok": True, "none": None}, id="usual"),
        pytest.param({"v": 1.5, "big": 10**30, "n": [1, "a", {"x": -0.0}]}, id="nested"),
        pytest.param({1: "int key", 2.5: "float key"}, id="non-string-keys"),
        pytest.param(("a", 1, 2.0), id="tuple"),
        pytest.param(OrderedDict(a="b"), id="dict-subclass"),
    ],
)
def test_storable_values_pass(value):
    assert unstorable(value) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param({"a\x00": 1}, NUL, id="nul-in-key"),
        pytest.param({"a": "b\x00"}, NUL, id="nul-in-value"),
        pytest.param({"a": [{"b": ["c", "\x00"]}]}, NUL, id="nul-nested"),
        pytest.param({"a": float("nan")}, OUT_OF_RANGE, id="nan"),
        pytest.param({"a": [1, float("-inf")]}, OUT_OF_RANGE, id="infinity-in-list"),
        pytest.param({float("inf"): "x"}, OUT_OF_RANGE, id="infinite-key"),
        pytest.param(OrderedDict(a="\x00"), NUL, id="dict-subclass"),
        pytest.param(("ok", ("\x00",)), NUL, id="nested-tuple"),
    ],
)
def test_unstorable_values_are_named(value, reason):
    assert unstorable(value) == reason
