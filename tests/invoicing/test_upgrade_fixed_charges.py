"""Upgrades between plans with pay-in-advance prorated fixed charges (spec §8, §9.4): the new
plan's first fee for an add-on the old plan already billed in advance deducts what the old fee
paid for the days that are left. Lago's upgrade scenario "when there are fixed charges"
(`spec/scenarios/subscriptions/upgrade_spec.rb`), replayed through the API: two monthly plans
in arrears (1.00 and 100.00), calendar billing, UTC customer,
- old plan: add-on A 10 units x 1.00, add-on B 5 units x 3.00;
- new plan: add-on B 10 units x 10.00, add-on C 1 unit x 20.00;
all fixed charges pay in advance (prorated unless a test says otherwise)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine

from invoicing.tasks import bill_customers_task

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_pdf(settings):
    settings.INVOICE_PDF_ON_FINALIZE = False


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Scenario:
    """The catalog and the customer of Lago's scenario, driven through the API."""

    def __init__(self, api, capture, *, prorated: bool = True) -> None:
        self.api, self.capture = api, capture
        add_ons = {}
        for code in ("a", "b", "c"):
            response = api.post(
                "/api/v1/add_ons",
                {
                    "add_on": {
                        "name": code.upper(),
                        "code": code,
                        "amount_cents": 0,
                        "amount_currency": "EUR",
                    }
                },
                format="json",
            )
            assert response.status_code == 200, response.json()
            add_ons[code] = response.json()["add_on"]["lago_id"]

        def fixed(add_on: str, amount: str, units: str) -> dict:
            return {
                "add_on_id": add_ons[add_on],
                "charge_model": "standard",
                "properties": {"amount": amount},
                "units": units,
                "pay_in_advance": True,
                "prorated": prorated,
            }

        self.plan("basic", 100, [fixed("a", "1", "10"), fixed("b", "3", "5")])
        self.plan("premium", 10000, [fixed("b", "10", "10"), fixed("c", "20", "1")])
        response = api.post(
            "/api/v1/customers",
            {"customer": {"external_id": "cust_1", "currency": "EUR", "timezone": "UTC"}},
            format="json",
        )
        assert response.status_code == 200, response.json()

    def plan(self, code: str, amount_cents: int, fixed_charges: list[dict]) -> None:
        payload = {
            "name": code,
            "code": code,
            "interval": "monthly",
            "amount_cents": amount_cents,
            "amount_currency": "EUR",
            "pay_in_advance": False,
            "fixed_charges": fixed_charges,
        }
        response = self.api.post("/api/v1/plans", {"plan": payload}, format="json")
        assert response.status_code == 200, response.json()

    def subscribe(self, plan_code: str, now: str) -> dict:
        """POST /subscriptions at `now`, running what it triggers after commit."""
        payload = {
            "external_customer_id": "cust_1",
            "external_id": "sub_1",
            "plan_code": plan_code,
            "billing_time": "calendar",
        }
        with time_machine.travel(at(now), tick=False), self.capture(execute=True):
            response = self.api.post(
                "/api/v1/subscriptions", {"subscription": payload}, format="json"
            )
        assert response.status_code == 200, response.json()
        return response.json()["subscription"]

    def bill(self, now: str) -> None:
        with time_machine.travel(at(now), tick=False), self.capture(execute=True):
            bill_customers_task()

    def invoices(self) -> list[dict]:
        """The customer's invoices with their fees, oldest first."""
        listing = self.api.get("/api/v1/invoices", {"external_customer_id": "cust_1"}).json()
        details = [
            self.api.get(f"/api/v1/invoices/{row['lago_id']}").json()["invoice"]
            for row in listing["invoices"]
        ]
        return sorted(details, key=lambda invoice: invoice["created_at"])

    def last_invoice(self) -> dict:
        return self.invoices()[-1]


def fixed_fees(invoice: dict) -> dict[str, int]:
    """Add-on code -> amount of the invoice's fixed-charge fees."""
    return {
        fee["item"]["code"]: fee["amount_cents"]
        for fee in invoice["fees"]
        if fee["item"]["type"] == "fixed_charge"
    }


def subscription_fees(invoice: dict) -> list[int]:
    return [fee["amount_cents"] for fee in invoice["fees"] if fee["item"]["type"] == "subscription"]


def test_upgrade_mid_period_deducts_the_old_fee_paid_for_the_days_left(
    api, django_capture_on_commit_callbacks
):
    scenario = Scenario(api, django_capture_on_commit_callbacks)
    scenario.subscribe("basic", "2023-07-19T12:12:00")
    # Jul 19..31 = 13 of 31 days, in advance: 1000 x 13/31, 1500 x 13/31
    assert fixed_fees(scenario.last_invoice()) == {"a": 419, "b": 629}
    scenario.bill("2023-08-01T00:00:00")
    assert fixed_fees(scenario.last_invoice()) == {"a": 1000, "b": 1500}

    scenario.subscribe("premium", "2023-08-21T12:00:00")

    upgrade = scenario.last_invoice()
    assert subscription_fees(upgrade) == [65]  # Aug 1..20 in arrears: 100 x 20/31
    # Aug 21..31 = 11 days: B's new fee 10000 x 11/31 = 3548 less the 1500 x 11/31 = 532 paid
    # for those days on Aug 1; C: 2000 x 11/31
    assert fixed_fees(upgrade) == {"b": 3548 - 532, "c": 710}


def test_upgrade_deduction_is_left_to_the_first_fee_of_the_new_plan(
    api, django_capture_on_commit_callbacks
):
    scenario = Scenario(api, django_capture_on_commit_callbacks)
    scenario.subscribe("basic", "2023-07-19T12:12:00")
    scenario.bill("2023-08-01T00:00:00")
    scenario.subscribe("premium", "2023-08-21T12:00:00")

    scenario.bill("2023-09-01T00:00:00")

    assert fixed_fees(scenario.last_invoice()) == {"b": 10000, "c": 2000}


def test_upgrade_the_day_of_the_start_deducts_the_whole_old_fee(
    api, django_capture_on_commit_callbacks
):
    scenario = Scenario(api, django_capture_on_commit_callbacks)
    scenario.subscribe("basic", "2025-12-22T12:12:00")
    # Dec 22..31 = 10 of 31 days: 1000 x 10/31, 1500 x 10/31
    assert fixed_fees(scenario.last_invoice()) == {"a": 323, "b": 484}

    scenario.subscribe("premium", "2025-12-22T13:12:00")

    # the old fee covered the same 10 days: all of it is deducted from 10000 x 10/31 = 3226
    assert fixed_fees(scenario.last_invoice()) == {"b": 3226 - 484, "c": 645}


def test_upgrade_after_a_prorated_first_fee_deducts_its_daily_price_for_the_days_left(
    api, django_capture_on_commit_callbacks
):
    scenario = Scenario(api, django_capture_on_commit_callbacks)
    scenario.subscribe("basic", "2025-12-10T12:12:00")
    # Dec 10..31 = 22 of 31 days: 1000 x 22/31, 1500 x 22/31
    assert fixed_fees(scenario.last_invoice()) == {"a": 710, "b": 1065}

    scenario.subscribe("premium", "2025-12-22T12:12:00")

    # Dec 22..31 = 10 days: 10000 x 10/31 = 3226 less the old fee's price of one day (over
    # its 22 days) times 10: 1065 x 10/22 = 484
    assert fixed_fees(scenario.last_invoice()) == {"b": 3226 - 484, "c": 645}


def test_upgrade_without_proration_bills_the_new_fixed_charges_in_full(
    api, django_capture_on_commit_callbacks
):
    scenario = Scenario(api, django_capture_on_commit_callbacks, prorated=False)
    scenario.subscribe("basic", "2023-07-19T12:12:00")
    assert fixed_fees(scenario.last_invoice()) == {"a": 1000, "b": 1500}
    scenario.bill("2023-08-01T00:00:00")

    scenario.subscribe("premium", "2023-08-21T12:00:00")

    upgrade = scenario.last_invoice()
    assert subscription_fees(upgrade) == [65]
    assert fixed_fees(upgrade) == {"b": 10000, "c": 2000}


def test_upgrade_deducts_nothing_for_an_old_fee_whose_invoice_was_voided(
    api, django_capture_on_commit_callbacks
):
    scenario = Scenario(api, django_capture_on_commit_callbacks)
    scenario.subscribe("basic", "2023-07-19T12:12:00")
    scenario.bill("2023-08-01T00:00:00")
    august = scenario.last_invoice()
    with time_machine.travel(at("2023-08-10T10:00:00"), tick=False):
        response = api.post(f"/api/v1/invoices/{august['lago_id']}/void", {}, format="json")
    assert response.status_code == 200, response.json()

    scenario.subscribe("premium", "2023-08-21T12:00:00")

    assert fixed_fees(scenario.last_invoice()) == {"b": 3548, "c": 710}  # 10000 x 11/31 in full
