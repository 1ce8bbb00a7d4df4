"""The API log (`/api_logs`): write calls made with an API key, bodies with secrets redacted;
and the daily purge of both audit logs past each organization's retention."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command

from billing.actors import SYSTEM
from billing.models import ActivityLog, ApiRequestLog
from customers.services.customers import customer_create

pytestmark = pytest.mark.django_db


def _post_customer(api, external_id: str = "c1", request_id: str | None = None, **extra):
    headers = {} if request_id is None else {"HTTP_X_REQUEST_ID": request_id}
    return api.post(
        "/api/v1/customers",
        {"customer": {"external_id": external_id, "name": "Jane", **extra}},
        format="json",
        HTTP_USER_AGENT="lago-python-client/1.0",
        HTTP_ORIGIN="https://app.example.com",
        **headers,
    )


def test_a_write_call_is_logged_with_its_bodies_as_lago_api_log(api, api_key):
    response = _post_customer(api)

    body = api.get("/api/v1/api_logs").json()

    [log] = body["api_logs"]
    assert log["request_id"] == response["X-Request-Id"]
    assert log["http_method"] == "post"
    assert log["http_status"] == 200
    assert log["request_path"] == "/api/v1/customers"
    assert log["api_version"] == "v1"
    assert log["client"] == "lago-python-client/1.0"
    assert log["request_origin"] == "https://app.example.com"
    assert log["api_key_id"] == str(api_key[0].pk)
    assert log["request_body"] == {"customer": {"external_id": "c1", "name": "Jane"}}
    assert log["request_response"]["customer"]["external_id"] == "c1"
    assert body["meta"]["total_count"] == 1


def test_read_calls_are_not_in_the_api_log(api):
    api.get("/api/v1/customers")

    assert api.get("/api/v1/api_logs").json()["api_logs"] == []


def test_secrets_in_request_bodies_are_never_stored(api):
    _post_customer(api, stripe_secret_key="sk_live_do_not_keep", password="hunter2")

    log = ApiRequestLog.objects.get(method="POST")
    assert log.request_body["customer"]["stripe_secret_key"] == "[FILTERED]"
    assert log.request_body["customer"]["password"] == "[FILTERED]"
    stored = ApiRequestLog.objects.filter(request_body__icontains="sk_live_do_not_keep")
    assert not stored.exists()


def test_the_api_key_of_a_call_is_never_stored(api, api_key):
    _post_customer(api)

    raw_key = api_key[1]
    for log in ApiRequestLog.objects.all():
        assert raw_key not in str(log.request_body)
        assert raw_key not in str(log.request_response)
        assert raw_key not in log.path


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param({"http_methods[]": "put"}, ["PUT 200"], id="method"),
        pytest.param({"http_statuses[]": "404"}, ["DELETE 404"], id="status-code"),
        pytest.param({"http_statuses[]": "failed"}, ["DELETE 404"], id="failed"),
        pytest.param({"http_statuses[]": "succeeded"}, ["PUT 200", "POST 200"], id="succeeded"),
        pytest.param({"request_paths": "/api/v1/billing_entities"}, ["PUT 200"], id="path"),
        pytest.param({"api_version": "v2"}, [], id="version"),
        pytest.param({"from_date": "2100-01-01"}, [], id="from-date"),
        pytest.param({"to_date": "2000-01-01"}, [], id="to-date"),
    ],
)
def test_api_log_filters(api, params, expected):
    _post_customer(api)
    api.put("/api/v1/billing_entities/default", {"billing_entity": {"name": "J"}}, format="json")
    api.delete("/api/v1/customers/missing")

    logs = api.get("/api/v1/api_logs", params).json()["api_logs"]

    assert [f"{log['http_method'].upper()} {log['http_status']}" for log in logs] == expected


def test_one_call_by_its_request_id(api):
    request_id = _post_customer(api)["X-Request-Id"]

    response = api.get(f"/api/v1/api_logs/{request_id}")

    assert response.status_code == 200
    assert response.json()["api_log"]["request_id"] == request_id


def test_a_request_id_sent_twice_answers_the_newest_call(api):
    _post_customer(api, "c1", request_id="retry-1")
    _post_customer(api, "c2", request_id="retry-1")

    response = api.get("/api/v1/api_logs/retry-1")

    assert response.status_code == 200
    assert response.json()["api_log"]["request_body"]["customer"]["external_id"] == "c2"


@pytest.mark.parametrize("sent", ["x" * 37, "bad id; drop table", ""])
def test_a_request_id_that_cannot_be_stored_is_replaced_and_the_call_still_logged(api, sent):
    response = _post_customer(api, request_id=sent)

    request_id = response["X-Request-Id"]
    assert request_id != sent
    assert api.get(f"/api/v1/api_logs/{request_id}").status_code == 200


def test_another_organizations_calls_are_never_visible(api, other_api):
    request_id = _post_customer(api)["X-Request-Id"]

    response = other_api.get(f"/api/v1/api_logs/{request_id}")

    assert response.status_code == 404
    assert response.json()["code"] == "api_log_not_found"
    assert other_api.get("/api/v1/api_logs").json()["api_logs"] == []


# --- retention -------------------------------------------------------------------------------


def _entries_at(organization, when: dt.datetime, external_id: str) -> None:
    with time_machine.travel(when, tick=False):
        customer_create(
            organization=organization, values={"external_id": external_id}, actor=SYSTEM
        )
        ApiRequestLog.objects.create(
            organization=organization, method="POST", path="/api/v1/customers", status=200,
            duration_ms=1, request_id=external_id,
        )  # fmt: skip


@pytest.fixture
def aged_logs(organization, other_organization):
    organization.audit_logs_retention_days = 30
    organization.save()
    other_organization.audit_logs_retention_days = 90
    other_organization.save()
    now = dt.datetime.now(dt.UTC)
    _entries_at(organization, now - dt.timedelta(days=31), "old")
    _entries_at(organization, now - dt.timedelta(days=29), "recent")
    _entries_at(other_organization, now - dt.timedelta(days=31), "kept-by-longer-retention")


def test_the_purge_job_drops_entries_past_each_organizations_retention(aged_logs):
    call_command("jobs", "run", "purge_audit_logs")

    assert sorted(ActivityLog.objects.values_list("external_customer_id", flat=True)) == [
        "kept-by-longer-retention",
        "recent",
    ]
    assert sorted(ApiRequestLog.objects.values_list("request_id", flat=True)) == [
        "kept-by-longer-retention",
        "recent",
    ]


def test_the_purge_job_dry_run_deletes_nothing(aged_logs):
    call_command("jobs", "run", "purge_audit_logs", "--dry-run")

    assert ActivityLog.objects.count() == 3
    assert ApiRequestLog.objects.count() == 3


def _event(transaction_id: str) -> dict:
    return {"transaction_id": transaction_id, "external_subscription_id": "s1", "code": "calls"}


def test_a_successful_event_batch_is_logged_without_its_bodies(api):
    response = api.post("/api/v1/events/batch", {"events": [_event("t1")]}, format="json")

    assert response.status_code == 200
    log = ApiRequestLog.objects.get(path="/api/v1/events/batch")
    assert (log.status, log.request_body, log.request_response) == (200, None, None)


def test_a_refused_event_call_keeps_its_bodies(api):
    response = api.post("/api/v1/events", {"event": {"code": "calls"}}, format="json")

    assert response.status_code == 422
    log = ApiRequestLog.objects.get(path="/api/v1/events")
    assert log.request_body == {"event": {"code": "calls"}}
    assert log.request_response["code"] == "validation_errors"


def test_deleting_an_organization_deletes_its_api_log(api, organization, other_api):
    # the log's keys are not checked by the database: Django cascades the deletion itself
    api.get("/api/v1/customers")
    other_api.get("/api/v1/customers")
    organization.delete()

    assert not ApiRequestLog.objects.filter(organization_id=organization.pk).exists()
    assert ApiRequestLog.objects.count() == 1  # the other organization's call


def test_deleting_an_api_key_keeps_its_calls_without_the_key(api, api_key):
    _post_customer(api)
    api_key[0].delete()

    log = ApiRequestLog.objects.get()
    assert (log.api_key_id, log.key_name) == (None, "tests")
