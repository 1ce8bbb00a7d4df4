"""Logs: each line says which request or Celery task wrote it; one JSON object per line in
production, plain text in development (settings.LOGGING, billing/logs.py)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from celery import shared_task
from celery.app.log import Logging
from django.http import HttpRequest, HttpResponse
from django.urls import path

from billing.celery import app
from billing.logs import JsonFormatter

ROOT = Path(__file__).resolve().parents[2]
logger = logging.getLogger("tests.billing.test_logs")


def logging_view(request: HttpRequest) -> HttpResponse:
    logger.warning("inside the view")
    return HttpResponse("ok")


def unavailable_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("down", status=503)  # django.request logs it after the middleware


urlpatterns = [path("logging/", logging_view), path("unavailable/", unavailable_view)]


@shared_task(name="tests.billing.test_logs.child_task")
def child_task() -> None:
    logger.warning("inside the child")


@shared_task(name="tests.billing.test_logs.parent_task", bind=True)
def parent_task(self) -> str:
    logger.warning("parent before")
    child = child_task.delay()
    logger.warning("parent after")
    return child.id


@pytest.fixture
def console():
    """Lines written by the configured console handler (its own filter and formatter)."""
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer
    handler.setStream(previous)


@pytest.fixture
def json_console(console):
    """The console handler as production configures it: one JSON object per line."""
    handler = next(h for h in logging.getLogger().handlers if h.name == "console")
    previous = handler.formatter
    handler.setFormatter(JsonFormatter())
    yield console
    handler.setFormatter(previous)


def lines_with(buffer: io.StringIO, text: str) -> list[str]:
    return [line for line in buffer.getvalue().splitlines() if text in line]


def entries(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


# --------------------------------------------------------------------------------------------
# Request id


@pytest.mark.urls(__name__)
def test_a_requests_log_lines_carry_its_request_id(client, console):
    response = client.get("/logging/")

    [line] = lines_with(console, "inside the view")
    assert f"request_id={response['X-Request-Id']} " in line


@pytest.mark.urls(__name__)
def test_the_request_id_sent_by_the_client_is_the_one_logged(client, console):
    client.get("/logging/", headers={"X-Request-Id": "caller-chosen-id"})

    [line] = lines_with(console, "inside the view")
    assert "request_id=caller-chosen-id " in line


@pytest.mark.urls(__name__)
def test_djangos_error_response_line_carries_the_request_id(client, console):
    response = client.get("/unavailable/")

    [line] = lines_with(console, "Service Unavailable: /unavailable/")
    assert f"request_id={response['X-Request-Id']} " in line


@pytest.mark.urls(__name__)
def test_lines_after_the_request_carry_no_request_id(client, console):
    client.get("/logging/")
    logger.warning("after the request")

    [line] = lines_with(console, "after the request")
    assert "request_id=" not in line


# --------------------------------------------------------------------------------------------
# Task id


def test_a_tasks_log_lines_carry_its_task_id(console):
    result = child_task.delay()

    [line] = lines_with(console, "inside the child")
    assert f"task_id={result.id} " in line


def test_a_sub_task_logs_its_own_id_and_its_parent_gets_its_own_back(console):
    result = parent_task.delay()
    logger.warning("after the task")

    child_id = result.result
    assert f"task_id={result.id} " in lines_with(console, "parent before")[0]
    assert f"task_id={child_id} " in lines_with(console, "inside the child")[0]
    assert f"task_id={result.id} " in lines_with(console, "parent after")[0]
    assert "task_id=" not in lines_with(console, "after the task")[0]


# --------------------------------------------------------------------------------------------
# JSON lines


@pytest.mark.urls(__name__)
def test_json_lines_are_one_object_each_with_time_level_logger_message_and_ids(
    client, json_console
):
    response = client.get("/logging/")

    [entry] = [e for e in entries(json_console) if e["message"] == "inside the view"]
    assert entry == {
        "time": entry["time"],
        "level": "WARNING",
        "logger": "tests.billing.test_logs",
        "message": "inside the view",
        "request_id": response["X-Request-Id"],
        "task_id": None,
    }
    assert datetime.fromisoformat(entry["time"]).utcoffset().total_seconds() == 0


def test_json_lines_of_a_task_carry_its_task_id(json_console):
    result = child_task.delay()

    [entry] = [e for e in entries(json_console) if e["message"] == "inside the child"]
    assert (entry["task_id"], entry["request_id"]) == (result.id, None)


def test_a_traceback_and_a_multi_line_message_stay_on_one_json_line(json_console):
    try:
        raise ValueError("broken\nledger")
    except ValueError:
        logger.exception("first line\nsecond line", extra={"customer_id": "c-1"})

    [entry] = entries(json_console)
    assert entry["message"] == "first line\nsecond line"
    assert "ValueError: broken\nledger" in entry["exception"]
    assert entry["customer_id"] == "c-1"


@pytest.mark.parametrize(
    ("environment", "is_json"),
    [
        pytest.param({"DEBUG": "0"}, True, id="production-default-json"),
        pytest.param({"DEBUG": "0", "LOG_FORMAT": "text"}, False, id="text-on-demand"),
        pytest.param({"DEBUG": "1", "LOG_FORMAT": "json"}, True, id="json-in-development"),
    ],
)
def test_log_format_follows_debug_unless_log_format_says_otherwise(environment, is_json):
    script = (
        "import django, logging; django.setup()\n"
        "logging.getLogger('billing.check').warning('hello')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LOG_FORMAT"} | environment
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )

    [line] = done.stderr.splitlines()
    if is_json:
        assert json.loads(line)["message"] == "hello"
    else:
        assert line.endswith(" WARNING billing.check hello")


# --------------------------------------------------------------------------------------------
# Celery worker and beat


def test_celery_keeps_the_configured_handlers_when_a_worker_sets_up_logging(monkeypatch):
    root = logging.getLogger()
    handlers = list(root.handlers)
    monkeypatch.setattr(Logging, "_setup", False)
    for name in ("_MP_FORK_LOGLEVEL_", "_MP_FORK_LOGFILE_", "_MP_FORK_LOGFORMAT_"):
        monkeypatch.setenv(name, "")  # restored once the test is over

    app.log.setup_logging_subsystem(loglevel="INFO")

    assert root.handlers == handlers
