"""`/api/v1/subscriptions/{external_id}/alerts[/{code}]`: Lago's wire shape, validation codes,
tenancy, and the lago-python-client calls that exist for it."""

from __future__ import annotations

import pytest
from lago_python_client.models.alert import Alert, AlertsList, AlertThreshold, AlertThresholdList

from metering.models import SubscriptionActivity, UsageAlert
from tests.metering.monitoring.helpers import calls_billing

pytestmark = pytest.mark.django_db
URL = "/api/v1/subscriptions/sub_1/alerts"


@pytest.fixture
def billing(api, organization):
    return calls_billing(api, organization)


def create(api, **fields):
    body = {
        "alert_type": "current_usage_amount",
        "code": "usage",
        "name": "Usage",
        "thresholds": [{"code": "warn", "value": 1000}, {"value": "2000.5"}],
        **fields,
    }
    return api.post(URL, {"alert": body}, format="json")


def test_create_answers_the_alert_as_lago_renders_it(api, billing, organization):
    response = create(api)

    assert response.status_code == 200, response.json()
    body = response.json()["alert"]
    alert = UsageAlert.objects.get()
    assert body == {
        "lago_id": str(alert.pk),
        "lago_organization_id": str(organization.pk),
        "subscription_external_id": "sub_1",
        "external_subscription_id": "sub_1",
        "lago_wallet_id": None,
        "wallet_code": None,
        "alert_type": "current_usage_amount",
        "code": "usage",
        "name": "Usage",
        "direction": "increasing",
        "previous_value": "0.0",
        "last_processed_at": None,
        "thresholds": [
            {"code": "warn", "value": "1000.0", "recurring": False},
            {"code": None, "value": "2000.5", "recurring": False},
        ],
        "created_at": body["created_at"],
        "billable_metric": None,
    }


def test_create_flags_the_subscription_for_the_next_pass(api, billing):
    create(api)

    assert SubscriptionActivity.objects.filter(subscription=billing.subscription).exists()


def test_a_metric_alert_renders_its_billable_metric(api, billing):
    response = create(
        api, alert_type="billable_metric_current_usage_units", billable_metric_code="calls"
    )

    assert response.status_code == 200, response.json()
    metric = response.json()["alert"]["billable_metric"]
    assert (metric["code"], metric["aggregation_type"], metric["filters"]) == (
        "calls",
        "count_agg",
        [],
    )


def test_create_many_at_once(api, billing):
    response = api.post(
        URL,
        {
            "alerts": [
                {"alert_type": "current_usage_amount", "code": "a", "thresholds": [{"value": 1}]},
                {"alert_type": "lifetime_usage_amount", "code": "b", "thresholds": [{"value": 1}]},
            ]
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert [a["code"] for a in response.json()["alerts"]] == ["a", "b"]


def test_create_many_is_all_or_nothing(api, billing):
    response = api.post(
        URL,
        {
            "alerts": [
                {"alert_type": "current_usage_amount", "code": "a", "thresholds": [{"value": 1}]},
                {"alert_type": "current_usage_amount", "code": "b", "thresholds": [{"value": 1}]},
            ]
        },
        format="json",
    )

    assert response.status_code == 422
    assert response.json()["error_details"] == {"1": {"base": ["alert_already_exists"]}}
    assert not UsageAlert.objects.exists()


@pytest.mark.parametrize(
    ("fields", "details"),
    [
        pytest.param(
            {"alert_type": None},
            {"alert_type": ["value_is_mandatory", "value_is_invalid"]},
            id="no-type",
        ),
        pytest.param(
            {"alert_type": "wallet_balance_amount"},
            {"alert_type": ["invalid_type"]},
            id="wallet-type",
        ),
        pytest.param({"code": ""}, {"code": ["value_is_mandatory"]}, id="no-code"),
        pytest.param(
            {"thresholds": []}, {"thresholds": ["value_is_mandatory"]}, id="no-thresholds"
        ),
        pytest.param(
            {"thresholds": [{"value": i} for i in range(21)]},
            {"thresholds": ["too_many_thresholds"]},
            id="too-many",
        ),
        pytest.param(
            {"thresholds": [{"value": "10"}, {"value": 10}]},
            {"thresholds": ["duplicate_threshold_values"]},
            id="duplicates",
        ),
        pytest.param(
            {"thresholds": [{"value": 5, "recurring": True}, {"value": 6, "recurring": True}]},
            {"thresholds": ["too_many_recurring_thresholds"]},
            id="two-recurring",
        ),
        pytest.param(
            {"thresholds": [{"value": -5, "recurring": True}]},
            {"thresholds:value": ["recurring_value_is_negative"]},
            id="negative-recurring",
        ),
        pytest.param(
            {"thresholds": [{"value": "abc"}]},
            {"thresholds:value": ["value_is_invalid"]},
            id="not-a-number",
        ),
        pytest.param(
            {"thresholds": [{"value": None}]},
            {"thresholds:value": ["value_is_mandatory"]},
            id="no-value",
        ),
        pytest.param(
            {"alert_type": "billable_metric_current_usage_amount"},
            {"billable_metric": ["value_is_mandatory"]},
            id="metric-type-without-metric",
        ),
    ],
)
def test_create_refuses_bad_input_with_lagos_codes(api, billing, fields, details):
    response = create(api, **fields)

    assert response.status_code == 422, response.json()
    assert response.json()["error_details"] == details
    assert not UsageAlert.objects.exists()


def test_an_unknown_billable_metric_is_a_404(api, billing):
    response = create(
        api, alert_type="billable_metric_current_usage_units", billable_metric_code="nope"
    )

    assert response.status_code == 404
    assert response.json()["code"] == "billable_metric_not_found"


def test_one_alert_per_type_and_unique_codes(api, billing):
    create(api)

    assert create(api, code="other").json()["error_details"] == {"base": ["alert_already_exists"]}
    assert create(api, alert_type="lifetime_usage_amount").json()["error_details"] == {
        "code": ["value_already_exist"]
    }


def test_one_metric_alert_per_metric(api, billing):
    billing.metric("storage", "sum_agg", field_name="gb")
    metric_alert = {"alert_type": "billable_metric_current_usage_units"}

    assert create(api, code="a", billable_metric_code="calls", **metric_alert).status_code == 200
    assert create(api, code="b", billable_metric_code="storage", **metric_alert).status_code == 200
    again = create(api, code="c", billable_metric_code="calls", **metric_alert)
    assert again.json()["error_details"] == {"base": ["alert_already_exists"]}


def test_list_get_update_and_delete_by_code(api, billing):
    create(api)

    assert [a["code"] for a in api.get(URL).json()["alerts"]] == ["usage"]
    assert api.get(f"{URL}/usage").json()["alert"]["name"] == "Usage"
    updated = api.put(
        f"{URL}/usage",
        {"alert": {"name": "Spend", "code": "spend", "thresholds": [{"value": 5}]}},
        format="json",
    )
    assert updated.status_code == 200, updated.json()
    assert updated.json()["alert"]["thresholds"] == [
        {"code": None, "value": "5.0", "recurring": False}
    ]
    assert api.get(f"{URL}/usage").status_code == 404
    deleted = api.delete(f"{URL}/spend")
    assert (deleted.status_code, deleted.json()["alert"]["code"]) == (200, "spend")
    assert not UsageAlert.objects.exists()


def test_delete_all_answers_the_deleted_alerts(api, billing):
    create(api)
    create(api, alert_type="lifetime_usage_amount", code="life")

    response = api.delete(URL)

    assert [a["code"] for a in response.json()["alerts"]] == ["usage", "life"]
    assert not UsageAlert.objects.exists()


def test_an_unknown_subscription_or_alert_is_a_404(api, billing):
    assert api.get("/api/v1/subscriptions/nope/alerts").json()["code"] == "subscription_not_found"
    assert api.get(f"{URL}/nope").json()["code"] == "alert_not_found"


def test_another_organization_cannot_see_or_touch_the_alerts(api, other_api, billing):
    create(api)

    assert other_api.get(URL).status_code == 404
    assert other_api.get(f"{URL}/usage").status_code == 404
    assert other_api.delete(f"{URL}/usage").status_code == 404
    assert other_api.delete(URL).status_code == 404
    assert UsageAlert.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_through_the_lago_client(lago, api, organization):
    calls_billing(api, organization)
    thresholds = AlertThresholdList(__root__=[AlertThreshold(code="warn", value="100")])
    alerts = AlertsList(
        alerts=[
            Alert(alert_type="current_usage_amount", code="usage", thresholds=thresholds),
            Alert(
                alert_type="billable_metric_current_usage_units",
                code="units",
                billable_metric_code="calls",
                thresholds=thresholds,
            ),
        ]
    )

    created = lago.subscriptions.create_alerts("sub_1", alerts)

    assert [a.code for a in created["alerts"]] == ["usage", "units"]
    assert created["alerts"][1].billable_metric.code == "calls"
    assert created["alerts"][0].thresholds.__root__[0].value == "100.0"
    lago.subscriptions.delete_alerts("sub_1")
    assert not UsageAlert.objects.exists()
