"""Request id on every request (and every log line it writes); API calls are logged (method,
path, status, duration, key; for write calls also the bodies, secrets redacted: Lago's API
log)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from billing.activity import redact
from billing.api.errors import json_error_for_status
from billing.db import prepared_cursor
from billing.logs import request_id_var

logger = logging.getLogger("billing.api")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
BODY_LOG_LIMIT = 64 * 1024  # bytes of a body kept in the API log; larger ones are summarized
# Usage-event ingestion, the hot path: a call that succeeded is logged without its bodies (the
# events are the stored record; parsing, redacting and storing both bodies again cost more than
# the ingestion's own insert). Lago does not log these calls at all. Failed calls keep theirs.
BODYLESS_WHEN_SUCCESSFUL = frozenset({"/api/v1/events", "/api/v1/events/batch"})


def _logged_body(raw: bytes) -> object:
    """A body as the API log keeps it: its JSON with secrets redacted; never the raw text of
    a body that is not JSON (it could hold anything)."""
    if not raw:
        return None
    if len(raw) > BODY_LOG_LIMIT:
        return {"omitted": f"body of {len(raw)} bytes"}
    try:
        return redact(json.loads(raw))
    except (ValueError, UnicodeDecodeError):
        return {"omitted": "not a JSON body"}
    except RecursionError:  # nested past Python's limit: the view refuses it too
        return {"omitted": "JSON nested too deeply"}


# a caller's id is kept when it fits the log's column and a URL path segment
_CALLER_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,36}")


def _request_id(sent: str | None) -> str:
    """The caller's `X-Request-Id` when it can be stored and looked up as is, else a new one."""
    if sent and _CALLER_REQUEST_ID.fullmatch(sent):
        return sent
    return str(uuid.uuid4())


class RequestIdMiddleware:
    """Gives each request an id (echoed as `X-Request-Id`) and records API calls."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = _request_id(request.headers.get("X-Request-Id"))
        started = time.perf_counter()
        bound = request_id_var.set(request.request_id)
        logged = settings.API_REQUEST_LOG and request.path.startswith("/api/v1/")
        raw: bytes | dict | None = None
        if logged and request.method in WRITE_METHODS:
            # read before the view: Django keeps it for DRF's parsers, which would otherwise
            # consume the stream; parsed for the log once the status is known
            try:
                raw = request.body
            except RequestDataTooBig:  # the view answers it; the log notes no body
                raw = {"omitted": "body over the upload limit"}
        try:
            response = self.get_response(request)
            response["X-Request-Id"] = request.request_id
            if logged:
                self._log(request, response, (time.perf_counter() - started) * 1000, raw)
        finally:
            request_id_var.reset(bound)
        return response

    @staticmethod
    def _log(
        request: HttpRequest, response: HttpResponse, duration_ms: float, raw: bytes | dict | None
    ) -> None:
        from billing.models import ApiRequestLog

        api_key = getattr(request, "api_key", None)
        write = request.method in WRITE_METHODS
        body = answer = None
        bodyless = response.status_code < 400 and request.path in BODYLESS_WHEN_SUCCESSFUL
        if write and not bodyless:
            body = raw if isinstance(raw, dict) else (_logged_body(raw or b"") or {})
            if not response.streaming and "json" in response.get("Content-Type", ""):
                answer = _logged_body(response.content)
        fields = {
            "organization_id": api_key.organization_id if api_key else None,
            "api_key_id": api_key.pk if api_key else None,
            "key_name": api_key.name if api_key else "",
            "method": request.method or "",
            "path": request.get_full_path()[:512],
            "status": response.status_code,
            "duration_ms": Decimal(f"{duration_ms:.2f}"),
            "request_id": request.request_id,
            "client": request.headers.get("User-Agent", "")[:255],
            "request_origin": (
                request.headers.get("Origin") or request.headers.get("Referer") or ""
            )[:512],
        }
        try:
            if body is None and answer is None and connection.vendor == "postgresql":
                _insert_bodyless(fields)
            else:
                ApiRequestLog.objects.create(**fields, request_body=body, request_response=answer)
        except DatabaseError:  # the log must never break the call it describes
            logger.warning("api request log not written", exc_info=True)


def _insert_bodyless(fields: dict[str, object]) -> None:
    """A log row without bodies (most calls: every read, every successful event ingestion) in
    plain SQL: the ORM's INSERT building cost as much CPU as the rest of the log."""
    from billing.models import ApiRequestLog

    with prepared_cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {ApiRequestLog._meta.db_table} ({', '.join(fields)}, api_version, "
            f"created_at) VALUES ({', '.join(['%s'] * len(fields))}, 'v1', %s)",
            [*fields.values(), timezone.now()],
        )


class ApiErrorsAsJsonMiddleware:
    """Under /api/, an error Django or a renderer answered in another format (the CSRF page, a
    debug page, the docs view's 405) becomes the JSON envelope of the same status."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and is_api_path(request.path)
            and response.get("Content-Type", "").split(";")[0] != "application/json"
        ):
            replaced = json_error_for_status(request, response.status_code)
            for header in ("Allow", "WWW-Authenticate", "Retry-After"):
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")
