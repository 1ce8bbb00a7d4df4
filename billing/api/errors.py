"""Lago's error envelope (spec §1.3): the one place that builds error JSON."""

from __future__ import annotations

import logging
from http import HTTPStatus

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework.response import Response

from billing.errors import BadRequest, Forbidden, Invalid, NotAllowed, NotFound, ProviderError

logger = logging.getLogger("billing.api")

# DRF field error codes -> Lago's snake_case validation tokens.
_DRF_CODE_MAP = {
    "required": "value_is_mandatory",
    "null": "value_is_mandatory",
    "blank": "value_is_mandatory",
    "invalid": "value_is_invalid",
    "invalid_choice": "value_is_invalid",
    "max_length": "value_is_invalid",
    "min_length": "value_is_invalid",
    "max_value": "value_is_invalid",
    "min_value": "value_is_invalid",
    "max_digits": "value_is_invalid",
    "max_decimal_places": "value_is_invalid",
    "max_whole_digits": "value_is_invalid",
    "not_a_list": "value_is_invalid",
    "not_a_dict": "value_is_invalid",
    "empty": "value_is_mandatory",
    "date": "invalid_date",
    "datetime": "invalid_date",
    "unique": "value_already_exist",
}


def envelope(status: int, error: str, code: str | None = None, **extra: object) -> dict:
    body: dict = {"status": status, "error": error}
    if code is not None:
        body["code"] = code
    body.update(extra)
    return body


def lago_codes(detail: object, prefix: str = "") -> dict[str, list[str]]:
    """Flattens DRF's nested error codes into Lago's `{field: [code]}` (nested as `a.b`)."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "base" if key == "non_field_errors" else str(key)
            out.update(lago_codes(value, f"{prefix}{name}" if not prefix else f"{prefix}.{name}"))
    elif isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            out[prefix or "base"] = sorted({_DRF_CODE_MAP.get(c, c) for c in detail})
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(lago_codes(item, f"{prefix}.{index}" if prefix else str(index)))
    elif isinstance(detail, str):
        out[prefix or "base"] = [_DRF_CODE_MAP.get(detail, detail)]
    return out


def request_id_of(request: HttpRequest | None) -> str:
    return getattr(request, "request_id", "") if request is not None else ""


def render(exc: Exception, request: HttpRequest | None = None) -> tuple[int, dict, dict]:
    """An exception -> (status, body, headers), every class of spec §1.3."""
    headers: dict[str, str] = {}
    match exc:
        case NotFound():
            return 404, envelope(404, "Not Found", f"{exc.resource}_not_found"), headers
        case NotAllowed():
            return 405, envelope(405, "Method Not Allowed", exc.code), headers
        case Invalid():
            body = envelope(422, "Unprocessable Entity", "validation_errors")
            body["error_details"] = exc.details
            return 422, body, headers
        case ProviderError():
            body = envelope(422, "Unprocessable Entity", "provider_error")
            body["provider"] = {"code": exc.provider}
            body["error_details"] = exc.details
            return 422, body, headers
        case Forbidden():
            return 403, envelope(403, "Forbidden", exc.code), headers
        case BadRequest():
            return 400, envelope(400, f"BadRequest: {exc.message}"), headers
        case drf.ValidationError():
            body = envelope(422, "Unprocessable Entity", "validation_errors")
            body["error_details"] = lago_codes(exc.get_codes())
            return 422, body, headers
        case RequestDataTooBig():
            return 413, envelope(413, "Payload Too Large", "payload_too_large"), headers
        case drf.ParseError():
            return 400, envelope(400, f"BadRequest: {exc.detail}", "bad_request"), headers
        case drf.UnsupportedMediaType():
            return 415, envelope(415, "Unsupported Media Type", "unsupported_media_type"), headers
        case drf.NotAuthenticated() | drf.AuthenticationFailed():
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
            return 401, envelope(401, "Unauthorized"), headers
        case drf.PermissionDenied() | DjangoPermissionDenied():
            code = getattr(exc, "default_code", "forbidden")
            detail_code = exc.get_codes() if isinstance(exc, drf.APIException) else None
            if isinstance(detail_code, str) and detail_code != "permission_denied":
                code = detail_code
            return 403, envelope(403, "Forbidden", code), headers
        case drf.NotFound() | Http404():
            return 404, envelope(404, "Not Found", "not_found"), headers
        case drf.MethodNotAllowed():
            return 405, envelope(405, "Method Not Allowed", "method_not_allowed"), headers
        case drf.NotAcceptable():
            return 406, envelope(406, "Not Acceptable", "not_acceptable"), headers
        case drf.Throttled():
            headers.update(getattr(exc, "rate_limit_headers", {}))
            if exc.wait is not None:
                headers["Retry-After"] = str(max(1, int(exc.wait)))
            return 429, envelope(429, "Too Many Requests", "too_many_requests"), headers
        case drf.APIException():
            status = exc.status_code
            return status, envelope(status, str(exc.detail), exc.default_code), headers
    logger.error(
        "unhandled error in API request %s",
        request_id_of(request),
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={"request_id": request_id_of(request)},
    )
    body = envelope(500, "Internal Server Error", "internal_error")
    body["request_id"] = request_id_of(request)
    return 500, body, headers


def lago_exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: every error, expected or not, answers the envelope."""
    request = context.get("request")
    status, body, headers = render(exc, getattr(request, "_request", request))
    return Response(body, status=status, headers=headers)


@csrf_exempt  # an API client has no CSRF token: any method must reach the 404, not a 403 page
def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """Unknown routes under /api/ answer the 404 envelope, not Django's HTML page."""
    return JsonResponse(envelope(404, "Not Found", "route_not_found"), status=404)


def json_error_for_status(request: HttpRequest, status: int) -> JsonResponse:
    """The envelope of a bare HTTP status, for errors answered outside DRF (Django's pages)."""
    if status == 500:
        return json_server_error(request)
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    code = phrase.lower().replace(" ", "_").replace("-", "_")
    return JsonResponse(envelope(status, phrase, code), status=status)


def json_server_error(request: HttpRequest) -> JsonResponse:
    """handler500 for API paths reached outside DRF (middleware errors)."""
    body = envelope(500, "Internal Server Error", "internal_error")
    body["request_id"] = request_id_of(request)
    return JsonResponse(body, status=500)
