"""Request id on every request (and every log line it writes); API calls are logged (method,
path, status, duration, key)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from billing.api.errors import json_error_for_status
from billing.logs import request_id_var

logger = logging.getLogger("billing.api")


class RequestIdMiddleware:
    """Gives each request an id (echoed as `X-Request-Id`) and records API calls."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.request_id = request.headers.get("X-Request-Id") or str(uuid.uuid4())
        started = time.perf_counter()
        bound = request_id_var.set(request.request_id)
        try:
            response = self.get_response(request)
            response["X-Request-Id"] = request.request_id
            if settings.API_REQUEST_LOG and request.path.startswith("/api/v1/"):
                self._log(request, response, (time.perf_counter() - started) * 1000)
        finally:
            request_id_var.reset(bound)
        return response

    @staticmethod
    def _log(request: HttpRequest, response: HttpResponse, duration_ms: float) -> None:
        from billing.models import ApiRequestLog

        api_key = getattr(request, "api_key", None)
        try:
            ApiRequestLog.objects.create(
                organization_id=api_key.organization_id if api_key else None,
                api_key=api_key,
                key_name=api_key.name if api_key else "",
                method=request.method or "",
                path=request.get_full_path()[:512],
                status=response.status_code,
                duration_ms=Decimal(f"{duration_ms:.2f}"),
                request_id=request.request_id,
            )
        except DatabaseError:  # the log must never break the call it describes
            logger.warning("api request log not written", exc_info=True)


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
