"""Schemathesis against our own OpenAPI document: every operation, its examples, the coverage
phase and a short fuzzing phase, through the WSGI app, with real objects behind the path
parameters. A 500 or an answer that its documented schema does not describe fails.

Bounded: a fixed seed, deterministic generation, a handful of fuzzed examples per operation.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

from billing.wsgi import application
from tests.api.seeded_api import Seeded, seed

CHECKS = [not_a_server_error, response_schema_conformance]


def _document() -> dict:
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))


CONFIG = schemathesis.config.SchemathesisConfig.from_dict(
    {
        "seed": 20261207,
        "generation": {
            "max-examples": 2,
            "deterministic": True,
            "database": "none",
            "allow-x00": True,
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)

schema = schemathesis.openapi.from_dict(_document(), config=CONFIG)
schema.app = application


@pytest.fixture
def seeded(api, settings) -> Seeded:
    # the calls come faster than an organization's rate limit: the limit is tested elsewhere
    settings.API_RATE_LIMITS = {"events": 10**6, "usage": 10**6, "default": 10**6}
    return seed(api)


@pytest.fixture
def wsgi_in_the_test_transaction(seeded):
    """The WSGI handler closes the database connection when a request ends (Django's test
    client unhooks that around its own requests, seeding included, then hooks it back): the
    test's transaction must outlive each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _pin_path_parameters(case, seeded: Seeded) -> None:
    """Positive cases address the seeded objects; negative ones keep their generated values."""
    meta = case.meta
    path_info = meta.components.get(ParameterLocation.PATH) if meta is not None else None
    if path_info is not None and path_info.mode == GenerationMode.NEGATIVE:
        return
    for name in list(case.path_parameters or {}):
        value = seeded.value(case.operation.path, name)
        if value is not None:
            case.path_parameters[name] = value


@pytest.mark.django_db
@schema.parametrize()
@settings(
    deadline=None,
    suppress_health_check=list(HealthCheck),
    max_examples=2,
    derandomize=True,
    database=None,
)
def test_every_operation_answers_what_its_schema_documents(
    case, seeded, wsgi_in_the_test_transaction, api_key
):
    _pin_path_parameters(case, seeded)
    case.call_and_validate(
        app=application,
        headers={"Authorization": f"Bearer {api_key[1]}"},
        checks=CHECKS,
    )
