"""Wallet alerts (wallets/services/alerts.py, wallets/api/alert_views.py, spec §17.8): CRUD
under `/customers/{id}/wallets/{code}/alerts`, validation, and one `TriggeredAlert` per crossing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction

from billing.actors import SYSTEM
from billing.models import OutboxEvent
from tests.customers.factories import CustomerFactory
from tests.wallets.factories import WalletFactory, fund_wallet
from wallets.models import TriggeredAlert, Wallet, WalletAlert
from wallets.services import ledger
from wallets.services.alerts import alert_create, crossed_thresholds, evaluate_wallet_alerts

D = Decimal
NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


# --------------------------------------------------------------------------------------------
# Crossing (pure)

LADDER = [
    {"code": "warn", "value": "5000", "recurring": False},
    {"code": "alert", "value": "2000", "recurring": False},
]
RECURRING = [*LADDER, {"code": "step", "value": "500", "recurring": True}]


def values(crossed: list[dict]) -> list[tuple]:
    return [(c["code"], D(c["value"]), c["recurring"]) for c in crossed]


@pytest.mark.parametrize(
    ("case", "thresholds", "previous", "current", "expected"),
    [
        ("down-through-one", LADDER, "10000", "4000", [("warn", 5000, False)]),
        ("down-onto-it", LADDER, "10000", "5000", [("warn", 5000, False)]),
        (
            "down-through-two",
            LADDER,
            "6000",
            "1000",
            [("warn", 5000, False), ("alert", 2000, False)],
        ),
        ("from-the-threshold-itself", LADDER, "5000", "4000", []),
        ("between-thresholds", LADDER, "4900", "2100", []),
        ("going-up", LADDER, "1000", "9000", []),
        ("unchanged", LADDER, "1000", "1000", []),
        ("first-observation", LADDER, None, "1000", []),
        (
            "recurring-steps-below-the-lowest",
            RECURRING,
            "2100",
            "800",
            [("alert", 2000, False), ("step", 1500, True), ("step", 1000, True)],
        ),
        ("recurring-from-a-step", RECURRING, "1500", "1200", []),
        ("recurring-onto-a-step", RECURRING, "1499", "1000", [("step", 1000, True)]),
        (
            "recurring-below-zero",
            RECURRING,
            "100",
            "-600",
            [("step", 0, True), ("step", -500, True)],
        ),
    ],
)
def test_crossed_thresholds(case, thresholds, previous, current, expected):
    crossed = crossed_thresholds(thresholds, None if previous is None else D(previous), D(current))
    assert values(crossed) == [(code, D(value), rec) for code, value, rec in expected]


# --------------------------------------------------------------------------------------------
# API

pytestmark = pytest.mark.django_db


@pytest.fixture
def wallet(organization) -> Wallet:
    customer = CustomerFactory(organization=organization, external_id="cust_1")
    wallet = WalletFactory(organization=organization, customer=customer, code="main")
    with transaction.atomic():  # the ledger locks the wallet (live-server tests autocommit)
        fund_wallet(wallet, "100")
    wallet.refresh_from_db()
    return wallet


URL = "/api/v1/customers/cust_1/wallets/main/alerts"


def alert_body(**fields) -> dict:
    body = {
        "alert_type": "wallet_balance_amount",
        "code": "low_balance",
        "name": "Low balance",
        "thresholds": [
            {"code": "alert", "value": "2000"},
            {"code": "warn", "value": 5000},
            {"code": "step", "value": "1000", "recurring": True},
        ],
    }
    return {"alert": {**body, **fields}}


def post(api, **fields):
    return api.post(URL, alert_body(**fields), format="json")


class TestAlertApi:
    def test_create_renders_the_lago_alert(self, api, organization, wallet):
        response = post(api)

        assert response.status_code == 200, response.json()
        alert = response.json()["alert"]
        assert alert["lago_wallet_id"] == str(wallet.pk)
        assert alert["lago_organization_id"] == str(organization.pk)
        assert (alert["wallet_code"], alert["external_customer_id"]) == ("main", "cust_1")
        assert (alert["alert_type"], alert["code"], alert["name"]) == (
            "wallet_balance_amount",
            "low_balance",
            "Low balance",
        )
        assert alert["thresholds"] == [  # decreasing, the recurring one last
            {"code": "warn", "value": "5000.0", "recurring": False},
            {"code": "alert", "value": "2000.0", "recurring": False},
            {"code": "step", "value": "1000.0", "recurring": True},
        ]
        assert alert["previous_value"] == "10000.0"  # the balance when created
        assert (alert["direction"], alert["billable_metric"]) == ("decreasing", None)
        assert alert["external_subscription_id"] is None

    def test_list_get_update_and_delete(self, api, wallet):
        post(api)
        post(api, alert_type="wallet_credits_balance", code="credits")

        listed = api.get(URL).json()
        assert [a["code"] for a in listed["alerts"]] == ["low_balance", "credits"]
        assert listed["meta"]["total_count"] == 2

        assert api.get(f"{URL}/credits").json()["alert"]["alert_type"] == "wallet_credits_balance"

        updated = api.put(
            f"{URL}/credits",
            {"alert": {"name": "Credits", "thresholds": [{"value": "10"}]}},
            format="json",
        ).json()["alert"]
        assert (updated["name"], updated["thresholds"]) == (
            "Credits",
            [{"code": None, "value": "10.0", "recurring": False}],
        )

        deleted = api.delete(f"{URL}/credits")
        assert deleted.status_code == 200
        assert deleted.json()["alert"]["code"] == "credits"
        assert api.get(f"{URL}/credits").status_code == 404

    def test_delete_all(self, api, wallet):
        post(api)
        post(api, alert_type="wallet_credits_balance", code="credits")

        response = api.delete(URL)

        assert response.status_code == 200
        assert len(response.json()["alerts"]) == 2
        assert not WalletAlert.objects.filter(wallet=wallet).exists()

    def test_batch_create_is_all_or_none(self, api, wallet):
        ok = {"alert_type": "wallet_credits_balance", "code": "a", "thresholds": [{"value": "5"}]}
        bad = {"alert_type": "wallet_credits_balance", "code": "b", "thresholds": [{"value": "1"}]}

        response = api.post(URL, {"alerts": [ok, bad]}, format="json")

        assert response.status_code == 422  # same type twice
        assert not WalletAlert.objects.exists()
        bad["alert_type"] = "wallet_ongoing_balance_amount"
        response = api.post(URL, {"alerts": [ok, bad]}, format="json")
        assert response.status_code == 200
        assert [a["code"] for a in response.json()["alerts"]] == ["a", "b"]

    @pytest.mark.parametrize(
        ("case", "fields", "field", "code"),
        [
            ("unknown-type", {"alert_type": "usage"}, "alert_type", "invalid_type"),
            ("no-code", {"code": ""}, "code", "value_is_mandatory"),
            ("no-thresholds", {"thresholds": []}, "thresholds", "value_is_mandatory"),
            (
                "21-thresholds",
                {"thresholds": [{"value": str(v)} for v in range(21)]},
                "thresholds",
                "too_many_thresholds",
            ),
            (
                "duplicate-values",
                {"thresholds": [{"value": "10"}, {"value": "10.0"}]},
                "thresholds",
                "duplicate_threshold_values",
            ),
            (
                "negative-balance",
                {"thresholds": [{"value": "-1"}]},
                "thresholds",
                "value_is_out_of_range",
            ),
            (
                "two-recurring",
                {
                    "thresholds": [
                        {"value": "10"},
                        {"value": "1", "recurring": True},
                        {"value": "2", "recurring": True},
                    ]
                },
                "thresholds",
                "too_many_recurring_thresholds",
            ),
            (
                "bad-value",
                {"thresholds": [{"value": "ten"}]},
                "thresholds",
                "invalid_value",
            ),
        ],
    )
    def test_validation(self, api, wallet, case, fields, field, code):
        response = post(api, **fields)

        assert response.status_code == 422, response.json()
        assert response.json()["error_details"] == {field: [code]}

    def test_twenty_thresholds_and_a_recurring_one_are_accepted(self, api, wallet):
        thresholds = [{"value": str(v)} for v in range(20)] + [{"value": "1", "recurring": True}]
        assert post(api, thresholds=thresholds).status_code == 200

    def test_ongoing_types_accept_negative_thresholds(self, api, wallet):
        response = post(
            api, alert_type="wallet_ongoing_balance_amount", thresholds=[{"value": "-500"}]
        )
        assert response.status_code == 200

    def test_one_alert_per_type_and_unique_codes(self, api, wallet):
        post(api)

        same_type = post(api, code="other")
        same_code = post(api, alert_type="wallet_credits_balance")

        assert same_type.json()["error_details"] == {"base": ["alert_already_exists"]}
        assert same_code.json()["error_details"] == {"code": ["value_already_exist"]}

    def test_unknown_wallet_or_alert_is_404(self, api, wallet):
        assert api.get("/api/v1/customers/cust_1/wallets/nope/alerts").status_code == 404
        assert api.get(f"{URL}/nope").json()["code"] == "alert_not_found"

    def test_other_organization_sees_nothing(self, api, other_api, wallet):
        post(api)
        assert other_api.get(URL).status_code == 404
        assert other_api.get(f"{URL}/low_balance").status_code == 404
        assert other_api.delete(URL).status_code == 404
        assert WalletAlert.objects.count() == 1


def test_lago_client_creates_and_lists_wallet_alerts(lago, wallet):
    from lago_python_client.models.alert import Alert, AlertThreshold, AlertThresholdList

    created = lago.customers.wallets.alerts.create(
        "cust_1",
        "main",
        Alert(
            alert_type="wallet_credits_balance",
            code="low",
            thresholds=AlertThresholdList(__root__=[AlertThreshold(value="20", code="warn")]),
        ),
    )

    assert (created.code, created.wallet_code, created.thresholds.__root__[0].value) == (
        "low",
        "main",
        "20.0",
    )
    listed = lago.customers.wallets.alerts.find_all("cust_1", "main")
    assert [alert.code for alert in listed["alerts"]] == ["low"]
    assert lago.customers.wallets.alerts.find("cust_1", "main", "low").alert_type == (
        "wallet_credits_balance"
    )


# --------------------------------------------------------------------------------------------
# Evaluation


def spend(wallet, cents: int) -> None:
    ledger.draw(
        wallet=wallet, amount_cents=cents, transaction_status="invoiced", actor=SYSTEM, now=NOW
    )


def balance_alert(wallet, thresholds=RECURRING, alert_type="wallet_balance_amount"):
    return alert_create(
        wallet=wallet,
        values={"alert_type": alert_type, "code": alert_type, "thresholds": thresholds},
        actor=SYSTEM,
        now=NOW,
    )


class TestEvaluation:
    def test_a_crossing_is_recorded_once(self, wallet):
        alert = balance_alert(wallet)
        spend(wallet, 6_000)  # 10,000 -> 4,000 cents

        [triggered] = evaluate_wallet_alerts(actor=SYSTEM, now=NOW)
        assert evaluate_wallet_alerts(actor=SYSTEM, now=NOW) == []

        assert (triggered.previous_value, triggered.current_value) == (D(10_000), D(4_000))
        assert triggered.crossed_thresholds == [
            {"code": "warn", "value": "5000.0", "recurring": False}
        ]
        alert.refresh_from_db()
        assert (alert.previous_value, alert.last_processed_at) == (D(4_000), NOW)

    def test_each_further_crossing_is_recorded(self, wallet):
        balance_alert(wallet)
        spend(wallet, 6_000)
        evaluate_wallet_alerts(actor=SYSTEM, now=NOW)

        spend(wallet, 3_500)  # 4,000 -> 500: 2,000, then recurring 1,500, 1,000, 500
        [triggered] = evaluate_wallet_alerts(actor=SYSTEM, now=NOW)

        assert [(c["value"], c["recurring"]) for c in triggered.crossed_thresholds] == [
            ("2000.0", False),
            ("1500.0", True),
            ("1000.0", True),
            ("500.0", True),
        ]

    def test_going_back_above_and_down_again_triggers_again(self, wallet):
        balance_alert(wallet, thresholds=LADDER)
        spend(wallet, 6_000)
        evaluate_wallet_alerts(actor=SYSTEM, now=NOW)
        fund_wallet(wallet, "20")  # 4,000 -> 6,000 cents
        evaluate_wallet_alerts(actor=SYSTEM, now=NOW)

        spend(wallet, 1_500)  # 6,000 -> 4,500

        [triggered] = evaluate_wallet_alerts(actor=SYSTEM, now=NOW)
        assert [c["code"] for c in triggered.crossed_thresholds] == ["warn"]
        assert TriggeredAlert.objects.count() == 2

    def test_alert_triggered_outbox_event(self, wallet):
        balance_alert(
            wallet, thresholds=[{"code": "low", "value": "50"}], alert_type="wallet_credits_balance"
        )
        spend(wallet, 6_000)  # 100 -> 40 credits

        [triggered] = evaluate_wallet_alerts(actor=SYSTEM, now=NOW)

        [event] = OutboxEvent.objects.filter(event_type="alert.triggered")
        assert event.object_id == str(triggered.pk)
        assert event.payload["lago_wallet_id"] == str(wallet.pk)
        assert (event.payload["alert_type"], event.payload["alert_code"]) == (
            "wallet_credits_balance",
            "wallet_credits_balance",
        )
        assert (event.payload["previous_value"], event.payload["current_value"]) == (
            "100.0",
            "40.0",
        )
        assert event.payload["crossed_thresholds"] == [
            {"code": "low", "value": "50.0", "recurring": False}
        ]
        assert event.payload["external_customer_id"] == "cust_1"

    def test_an_alert_created_below_its_threshold_waits_for_the_next_crossing(self, wallet):
        spend(wallet, 9_000)  # 1,000 cents left
        balance_alert(wallet, thresholds=LADDER)
        spend(wallet, 500)

        assert evaluate_wallet_alerts(actor=SYSTEM, now=NOW) == []

    def test_ongoing_balance_alert_follows_the_ongoing_balance(self, wallet):
        balance_alert(
            wallet,
            thresholds=[{"code": "negative", "value": "-100"}],
            alert_type="wallet_ongoing_balance_amount",
        )
        Wallet.objects.filter(pk=wallet.pk).update(ongoing_balance_cents=-200)

        [triggered] = evaluate_wallet_alerts(actor=SYSTEM, now=NOW, wallet_ids=[wallet.pk])

        assert triggered.current_value == D(-200)
