"""The OpenAPI document as the API's contract: what every operation answers, errors included.

drf-spectacular describes the 2xx bodies from each view's `extend_schema`; two project-wide rules
are applied here rather than on every view:

- `LagoAutoSchema`: creates and deletes answer 200 with the object, as Lago's controllers do
  (drf-spectacular would document 201, and 204 without a body);
- `lago_postprocess` (a postprocessing hook): every operation documents the error statuses it
  can answer, each with Lago's error envelope (`billing.api.errors`), and lists only the path
  parameters its path has; a preview's objects have null ids.
"""

from __future__ import annotations

import re
import typing
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import is_basic_type, is_higher_order_type_hint, is_serializer
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

ERROR_COMPONENT = "ApiError"
HTTP_METHODS = ("get", "post", "put", "patch", "delete")

# Lago's error envelope; `code` is absent from some 400s and 401s, `error_details` is nested
# by field (and by array index in `/events/batch`), `request_id` comes with a 500.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Lago's error envelope.",
    "properties": {
        "status": {"type": "integer", "example": 422},
        "error": {"type": "string", "example": "Unprocessable Entity"},
        "code": {"type": "string", "example": "validation_errors"},
        "error_details": {
            "type": "object",
            "additionalProperties": True,
            "example": {"code": ["value_already_exist"]},
        },
        "provider": {"type": "object", "additionalProperties": True},
        "request_id": {"type": "string"},
    },
    "required": ["status", "error"],
}

_DESCRIPTIONS = {
    "400": "Bad request: malformed JSON, a missing root key, or a malformed parameter.",
    "401": "Unauthorized: no API key, or an unknown, revoked or expired one.",
    "403": "Forbidden: the API key lacks the permission, or the feature is unavailable.",
    "404": "Not found: `<resource>_not_found` (another organization's objects included).",
    "405": "Not allowed: a business rule refuses the action (Lago's business code).",
    "413": "Payload too large.",
    "415": "Unsupported media type: the body must be JSON.",
    "422": "Validation errors: `error_details` maps each field to Lago's codes.",
    "429": "Too many requests: the organization's rate limit (see `Retry-After`).",
}
_WRITES = ("post", "put", "patch", "delete")
_PATH_PARAMETER = re.compile(r"{([^}]+)}")


def _model_field_is_nullable(field: serializers.Field) -> bool:
    """Whether an output field of a ModelSerializer reads a column that may be null."""
    parent = getattr(field, "parent", None)
    model = getattr(getattr(parent, "Meta", None), "model", None)
    source = getattr(field, "source", None)
    if model is None or not source or "." in source or source == "*":
        return False
    try:
        column = model._meta.get_field(source)
    except FieldDoesNotExist:
        return False
    return bool(getattr(column, "null", False))


def _method_may_return_none(field: serializers.Field) -> bool:
    """Whether a SerializerMethodField's method is annotated as returning None sometimes."""
    if not isinstance(field, serializers.SerializerMethodField) or field.parent is None:
        return False
    method = getattr(field.parent, field.method_name, None)
    try:
        hint = typing.get_type_hints(method).get("return") if method else None
    except Exception:
        return False
    return hint is not None and type(None) in typing.get_args(hint)


class LagoAutoSchema(AutoSchema):
    """Creates and deletes answer 200 with the object (Lago renders them without a status); an
    output field reading a nullable column is documented nullable."""

    def _get_serializer_field_meta(self, field: object, direction: str) -> dict:
        meta = super()._get_serializer_field_meta(field, direction)
        if direction == "response" and (
            _model_field_is_nullable(field) or _method_may_return_none(field)
        ):
            meta["nullable"] = True
        return meta

    def _get_response_bodies(self, direction: str = "response") -> dict:
        responses = self.get_response_serializers()
        single = (
            is_serializer(responses)
            or is_basic_type(responses)
            or is_higher_order_type_hint(responses)
            or isinstance(responses, OpenApiResponse)
        )
        if single and (self.method == "DELETE" or self._is_create_operation()):
            return {"200": self._get_response_for_code(responses, "200", direction=direction)}
        return super()._get_response_bodies(direction)


def _error_statuses(method: str, path: str, operation: dict) -> list[str]:
    has_body = "requestBody" in operation
    has_path_parameters = bool(_PATH_PARAMETER.search(path))
    has_query = any(p.get("in") == "query" for p in operation.get("parameters", []))
    statuses = ["400", "401", "403"]
    if has_path_parameters or has_query or method in _WRITES:
        statuses.append("404")  # the object addressed, or one the body or a filter refers to
    if method in _WRITES:
        statuses.append("405")
    if has_body or method in _WRITES:
        statuses += ["413", "415"]
    if has_body or has_query or has_path_parameters or method in _WRITES:
        statuses.append("422")
    statuses.append("429")
    return statuses


# Previews compute objects without saving them: their ids are null (Lago's preview answers too)
PREVIEW_OPERATIONS = {("/api/v1/invoices/preview", "post")}
_ID = re.compile(r"^lago_(\w+_)?id$")


def _with_null_ids(result: dict, schema: dict, depth: int = 0) -> dict:
    """`schema` inlined (references resolved) with every `lago_id` / `lago_*_id` nullable."""
    if depth > 12:
        return schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _with_null_ids(result, result["components"]["schemas"][name], depth + 1)
    copied = dict(schema)
    if "properties" in copied:
        copied["properties"] = {
            name: (
                {**_with_null_ids(result, value, depth + 1), "nullable": True}
                if _ID.match(name)
                else _with_null_ids(result, value, depth + 1)
            )
            for name, value in copied["properties"].items()
        }
    for key in ("items", "additionalProperties"):
        if isinstance(copied.get(key), dict):
            copied[key] = _with_null_ids(result, copied[key], depth + 1)
    for key in ("allOf", "anyOf", "oneOf"):
        if key in copied:
            copied[key] = [_with_null_ids(result, part, depth + 1) for part in copied[key]]
    return copied


def lago_postprocess(result: dict, generator: object, request: object, public: bool) -> dict:
    """Error statuses with the envelope on every operation; no path parameter outside the
    path."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components[ERROR_COMPONENT] = ERROR_SCHEMA
    reference = {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}
    for path, item in result.get("paths", {}).items():
        in_path = set(_PATH_PARAMETER.findall(path))
        for method in HTTP_METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            if "parameters" in operation:
                operation["parameters"] = [
                    parameter
                    for parameter in operation["parameters"]
                    if parameter.get("in") != "path" or parameter.get("name") in in_path
                ]
            if operation.get("security"):  # the global scheme and the extension's: once
                operation["security"] = [
                    scheme
                    for index, scheme in enumerate(operation["security"])
                    if scheme not in operation["security"][:index]
                ]
            responses = operation.setdefault("responses", {})
            if (path, method) in PREVIEW_OPERATIONS and "200" in responses:
                content = responses["200"].get("content", {}).get("application/json", {})
                if "schema" in content:
                    content["schema"] = _with_null_ids(result, content["schema"])
            for status in _error_statuses(method, path, operation):
                responses.setdefault(
                    status,
                    {
                        "description": _DESCRIPTIONS[status],
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
