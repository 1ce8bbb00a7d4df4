"""Hand-made bad inputs answer a 4xx Lago envelope, never a 500: one row per cause found."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

BIG = int("1" + "0" * 100)
# (id, method, path, body (dict: JSON; str: raw text) or None, status, code, error_details keys)
CASES = [
    # an applied coupon without its customer or coupon (KeyError in the view)
    (
        "applied_coupon_empty",
        "POST",
        "/api/v1/applied_coupons",
        {"applied_coupon": {}},
        422,
        "validation_errors",
        {"external_customer_id", "coupon_code"},
    ),
    (
        "applied_coupon_no_coupon",
        "POST",
        "/api/v1/applied_coupons",
        {"applied_coupon": {"external_customer_id": "c1"}},
        422,
        "validation_errors",
        {"coupon_code"},
    ),
    (
        "applied_coupon_no_customer",
        "POST",
        "/api/v1/applied_coupons",
        {"applied_coupon": {"coupon_code": "c1"}},
        422,
        "validation_errors",
        {"external_customer_id"},
    ),
    # NUL in the URL: PostgreSQL refuses it in text (a DataError on the lookup)
    ("nul_in_path", "GET", "/api/v1/customers/a%00b", None, 400, None, None),
    ("nul_in_query", "GET", "/api/v1/customers?external_id=a%00b", None, 400, None, None),
    ("nul_in_query_key", "GET", "/api/v1/invoices?a%00b=1", None, 400, None, None),
    # the JSON parser: NUL and lone surrogates in any string or key, depth, size, 1e400
    (
        "nul_in_event_code",
        "POST",
        "/api/v1/events",
        {"event": {"transaction_id": "t1", "external_subscription_id": "s", "code": "a\u0000b"}},
        400,
        "bad_request",
        None,
    ),
    (
        "nul_in_metadata_key",
        "POST",
        "/api/v1/customers",
        {"customer": {"external_id": "c", "metadata": [{"key": "a\u0000", "value": "v"}]}},
        400,
        "bad_request",
        None,
    ),
    (
        "nul_in_property_key",
        "POST",
        "/api/v1/events",
        {
            "event": {
                "transaction_id": "t1",
                "external_subscription_id": "s",
                "code": "c",
                "properties": {"a\u0000": 1},
            }
        },
        400,
        "bad_request",
        None,
    ),
    (
        "lone_surrogate",
        "POST",
        "/api/v1/events",
        '{"event": {"transaction_id": "t1", "external_subscription_id": "s", "code": "c",'
        ' "properties": {"v": "\\ud800"}}}',
        400,
        "bad_request",
        None,
    ),
    ("nested_65_deep", "POST", "/api/v1/customers", "[" * 65 + "]" * 65, 400, "bad_request", None),
    (
        "nested_past_recursion",
        "POST",
        "/api/v1/customers",
        "[" * 5000 + "]" * 5000,
        400,
        "bad_request",
        None,
    ),
    (
        "body_over_limit",
        "POST",
        "/api/v1/customers",
        '{"customer": {"external_id": "' + "a" * 3_000_000 + '"}}',
        413,
        "payload_too_large",
        None,
    ),
    (
        "infinite_event_property",
        "POST",
        "/api/v1/events",
        '{"event": {"transaction_id": "t1", "external_subscription_id": "s", "code": "c",'
        ' "properties": {"v": 1e400}}}',
        422,
        "validation_errors",
        {"properties.v"},
    ),
    # instants PostgreSQL (offsets past ±15:59) or a time zone conversion (9999-12-31) refuse
    (
        "filter_offset_16h",
        "GET",
        "/api/v1/fees?created_at_from=2024-01-01T00:00:00%2B16:00",
        None,
        422,
        "validation_errors",
        {"created_at_from"},
    ),
    (
        "filter_year_1_east",
        "GET",
        "/api/v1/fees?created_at_to=0001-01-01T00:00:00%2B05:00",
        None,
        422,
        "validation_errors",
        {"created_at_to"},
    ),
    (
        "filter_last_instant",
        "GET",
        "/api/v1/fees?failed_at_to=9999-12-31T23:59:59Z",
        None,
        422,
        "validation_errors",
        {"failed_at_to"},
    ),
    (
        "events_offset_16h",
        "GET",
        "/api/v1/events?timestamp_from=2024-01-01T00:00:00%2B16:00",
        None,
        400,
        None,
        None,
    ),
    (
        "events_last_instant",
        "GET",
        "/api/v1/events?timestamp_to=9999-12-31T23:59:59Z",
        None,
        400,
        None,
        None,
    ),
    (
        "subscription_at_last_instant",
        "POST",
        "/api/v1/subscriptions",
        {
            "subscription": {
                "external_customer_id": "c",
                "plan_code": "p",
                "subscription_at": "9999-12-31T23:59:59Z",
            }
        },
        422,
        "validation_errors",
        {"subscription_at"},
    ),
    (
        "subscription_at_year_10000",
        "POST",
        "/api/v1/subscriptions",
        {
            "subscription": {
                "external_customer_id": "c",
                "plan_code": "p",
                "subscription_at": "10000-01-01T00:00:00Z",
            }
        },
        422,
        "validation_errors",
        {"subscription_at"},
    ),
    # offsets past ±15:59 in request bodies, as in query filters
    (
        "subscription_at_offset_16h",
        "POST",
        "/api/v1/subscriptions",
        {
            "subscription": {
                "external_customer_id": "c",
                "plan_code": "p",
                "subscription_at": "2024-01-01T00:00:00+16:00",
            }
        },
        422,
        "validation_errors",
        {"subscription_at"},
    ),
    (
        "coupon_expiration_at_offset_16h",
        "POST",
        "/api/v1/coupons",
        {
            "coupon": {
                "name": "c",
                "code": "c",
                "coupon_type": "fixed_amount",
                "amount_cents": 100,
                "amount_currency": "EUR",
                "frequency": "once",
                "expiration": "time_limit",
                "expiration_at": "2124-01-01T00:00:00-16:30",
            }
        },
        422,
        "validation_errors",
        {"expiration_at"},
    ),
    (
        "wallet_expiration_at_offset_16h",
        "POST",
        "/api/v1/wallets",
        {
            "wallet": {
                "external_customer_id": "c",
                "currency": "EUR",
                "rate_amount": "1",
                "paid_credits": "1",
                "expiration_at": "2124-01-01T00:00:00+23:00",
            }
        },
        422,
        "validation_errors",
        {"expiration_at"},
    ),
    # page/per_page past bigint (the OFFSET overflowed in PostgreSQL)
    (
        "page_past_bigint",
        "GET",
        "/api/v1/customers?page=9223372036854775807",
        None,
        400,
        None,
        None,
    ),
    ("page_huge", "GET", "/api/v1/customers?page=" + "9" * 30, None, 400, None, None),
    # TRACE is no API method (a view method named `trace` answered it)
    ("trace_on_list", "TRACE", "/api/v1/customers", None, 405, "method_not_allowed", None),
    (
        "trace_on_funding_traces",
        "TRACE",
        "/api/v1/wallet_transactions/x/fundings",
        None,
        405,
        "method_not_allowed",
        None,
    ),
    # null inside a list of objects (many=True handed allow_null to the items)
    (
        "null_recurring_rule",
        "POST",
        "/api/v1/wallets",
        {
            "wallet": {
                "external_customer_id": "c",
                "currency": "EUR",
                "rate_amount": "1",
                "recurring_transaction_rules": [None],
            }
        },
        422,
        "validation_errors",
        {"recurring_transaction_rules.0"},
    ),
    (
        "null_plan_charge",
        "POST",
        "/api/v1/plans",
        {
            "plan": {
                "code": "p",
                "name": "p",
                "interval": "monthly",
                "amount_cents": 0,
                "amount_currency": "EUR",
                "charges": [None],
            }
        },
        422,
        "validation_errors",
        {"charges.0"},
    ),
    # numbers past their column: 422 naming the field (bigint / numeric(30, 5) overflowed)
    (
        "net_payment_term_huge",
        "POST",
        "/api/v1/customers",
        {"customer": {"external_id": "d", "net_payment_term": 10**13}},
        422,
        "validation_errors",
        {"net_payment_term"},
    ),
    (
        "plan_amount_cents_100_digits",
        "POST",
        "/api/v1/plans",
        {
            "plan": {
                "code": "p",
                "name": "p",
                "interval": "monthly",
                "amount_cents": BIG,
                "amount_currency": "EUR",
            }
        },
        422,
        "validation_errors",
        {"amount_cents"},
    ),
    (
        "add_on_amount_cents_100_digits",
        "POST",
        "/api/v1/add_ons",
        {"add_on": {"code": "a", "name": "a", "amount_cents": BIG, "amount_currency": "EUR"}},
        422,
        "validation_errors",
        {"amount_cents"},
    ),
    (
        "wallet_paid_credits_100_digits",
        "POST",
        "/api/v1/wallets",
        {
            "wallet": {
                "external_customer_id": "c",
                "currency": "EUR",
                "rate_amount": "1",
                "paid_credits": str(BIG),
            }
        },
        422,
        "validation_errors",
        {"paid_credits"},
    ),
    (
        "wallet_granted_credits_100_digits",
        "POST",
        "/api/v1/wallets",
        {
            "wallet": {
                "external_customer_id": "c",
                "currency": "EUR",
                "rate_amount": "1",
                "granted_credits": BIG,
            }
        },
        422,
        "validation_errors",
        {"granted_credits"},
    ),
    (
        "wallet_granted_credits_1e400",
        "POST",
        "/api/v1/wallets",
        {
            "wallet": {
                "external_customer_id": "c",
                "currency": "EUR",
                "rate_amount": "1",
                "granted_credits": "1e400",
            }
        },
        422,
        "validation_errors",
        {"granted_credits"},
    ),
    (
        "wallet_rate_100_digits",
        "POST",
        "/api/v1/wallets",
        {
            "wallet": {
                "external_customer_id": "c",
                "currency": "EUR",
                "rate_amount": str(BIG),
                "granted_credits": "1",
            }
        },
        422,
        "validation_errors",
        {"rate_amount"},
    ),
]

RATES = {"default": 100000, "events": 100000, "usage": 100000}


def _call(api, method: str, path: str, body: object):
    if body is None:
        return api.generic(method, path)
    data = body if isinstance(body, str) else json.dumps(body)
    return api.generic(method, path, data, content_type="application/json")


@override_settings(API_RATE_LIMITS=RATES)
@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "fields"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_answers_the_lago_envelope(
    api, organization, method, path, body, status, code, fields
):
    CustomerFactory(organization=organization, external_id="c")  # what wallet rows reach
    response = _call(api, method, path, body)
    assert response.status_code == status, response.content[:300]
    payload = response.json()
    assert payload["status"] == status
    assert payload["error"]
    assert payload.get("code") == code
    if fields is not None:
        assert set(payload["error_details"]) == fields


def test_huge_per_page_is_clamped_to_the_largest_page_size(api, organization):
    CustomerFactory(organization=organization, external_id="c")
    response = api.get("/api/v1/customers", {"per_page": "9" * 30})
    assert response.status_code == 200
    assert response.json()["meta"]["total_count"] == 1


def test_request_data_too_big_renders_413_envelope(rf):
    from django.core.exceptions import RequestDataTooBig

    from billing.api.errors import lago_exception_handler

    response = lago_exception_handler(RequestDataTooBig(), {"request": rf.post("/api/v1/x")})
    assert response.status_code == 413
    assert response.data["code"] == "payload_too_large"


@override_settings(API_RATE_LIMITS=RATES)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/wallets/x1",
        "/api/v1/customers/x1/wallets/x1",
        "/api/v1/customers/x1/wallets/x1/alerts/x1",
        "/api/v1/wallet_transactions/x1/fundings",
        "/api/v1/customers",
    ],
)
def test_options_answers_without_reading_the_object(api, path):
    response = api.options(path)
    assert response.status_code == 200
    assert response.json()["name"]
    assert "TRACE" not in response["Allow"]


def test_a_500_is_logged_with_its_traceback_and_request_id(rf, caplog):
    from billing.api.errors import lago_exception_handler

    request = rf.get("/api/v1/anything")
    request.request_id = "req-500"
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        with caplog.at_level("ERROR", logger="billing.api"):
            lago_exception_handler(exc, {"request": request})
    (record,) = [r for r in caplog.records if r.name == "billing.api"]
    assert record.exc_info[1].args == ("boom",)
    assert record.request_id == "req-500"
    assert "req-500" in record.getMessage()
