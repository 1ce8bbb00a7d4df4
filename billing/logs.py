"""Log records that say which request or Celery task wrote them, as text or one JSON per line.

`RequestIdMiddleware` and the Celery task signals (`billing.celery`) set the ids in context
variables; `ContextFilter`, on the handlers of `settings.LOGGING`, copies them onto every record;
`JsonFormatter` writes each record as one JSON object on one line (production, `LOG_FORMAT=json`).
Standard library only: this module is imported with the Celery app, before Django is set up.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar, Token
from datetime import UTC, datetime

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("task_id", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "task_id",
    "log_context",
    "request",
}


class ContextFilter(logging.Filter):
    """Puts `request_id` and `task_id` on each record (None outside a request or task), and
    `log_context`, the same as `request_id=… task_id=… ` for text formats."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            # django.request logs a response's 4xx/5xx after the middleware returned; the
            # request travels on the record.
            request = getattr(record, "request", None)
            record.request_id = request_id_var.get() or getattr(request, "request_id", None)
        if not getattr(record, "task_id", None):
            record.task_id = task_id_var.get()
        record.log_context = "".join(
            f"{key}={value} "
            for key, value in (("request_id", record.request_id), ("task_id", record.task_id))
            if value
        )
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (UTC), level, logger, message, request_id,
    task_id, then the exception and any plain `extra=` values."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "task_id": getattr(record, "task_id", None),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            # objects passed as extra (django.request's HttpRequest) are not log fields
            if key not in _RECORD_ATTRIBUTES and key not in entry and _is_plain(value):
                entry[key] = value
        return json.dumps(entry, ensure_ascii=False, default=str)


def _is_plain(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


_task_tokens: dict[str, list[Token[str | None]]] = {}


def bind_task_id(task_id: str | None = None, **kwargs: object) -> None:
    """`task_prerun`: lines logged inside the task carry its id."""
    if task_id:
        _task_tokens.setdefault(task_id, []).append(task_id_var.set(task_id))


def unbind_task_id(task_id: str | None = None, **kwargs: object) -> None:
    """`task_postrun`: back to the enclosing task's id (an eager sub-task) or none."""
    tokens = _task_tokens.get(task_id or "")
    if not tokens:
        return
    token = tokens.pop()
    if not tokens:
        del _task_tokens[task_id or ""]
    try:
        task_id_var.reset(token)
    except ValueError:  # set in another context (a thread pool handing over): just clear it
        task_id_var.set(None)


def keep_django_logging(**kwargs: object) -> None:
    """`setup_logging`: a receiver stops Celery from replacing the handlers of
    `settings.LOGGING` (already configured by `django.setup()`) in the worker and beat."""
