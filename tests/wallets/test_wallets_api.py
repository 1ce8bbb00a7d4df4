"""`/wallets` and `/customers/{id}/wallets` (spec §17.1, §17.6, §17.7, Appendix A)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.models import OutboxEvent
from tests.customers.factories import CustomerFactory
from tests.plans.factories import BillableMetricFactory
from tests.wallets.factories import RecurringTransactionRuleFactory, WalletFactory, fund_wallet
from wallets.models import RecurringTransactionRule, Wallet, WalletTransaction
from wallets.services import ledger

pytestmark = pytest.mark.django_db

Tx = WalletTransaction
FUTURE = "2099-01-01T00:00:00Z"


@pytest.fixture
def customer(organization):
    return CustomerFactory(organization=organization, external_id="acme", currency="EUR")


def create(api, **fields):
    body = {"external_customer_id": "acme", "rate_amount": "1", **fields}
    return api.post("/api/v1/wallets", {"wallet": body}, format="json")


def errors(response, status=422):
    assert response.status_code == status, response.json()
    body = response.json()
    return body.get("error_details", body.get("code"))


# --------------------------------------------------------------------------------------------
# Create


def test_create_renders_the_lago_wallet_object(api, customer):
    response = create(api, name="Prepaid", code="prepaid", rate_amount="1.5", granted_credits="10")
    assert response.status_code == 200, response.json()
    wallet = response.json()["wallet"]
    assert set(wallet) >= {
        "lago_id", "lago_customer_id", "external_customer_id", "billing_entity_code", "status",
        "currency", "name", "code", "priority", "rate_amount", "credits_balance",
        "balance_cents", "consumed_credits", "credits_ongoing_balance", "ongoing_balance_cents",
        "credits_ongoing_usage_balance", "ongoing_usage_balance_cents", "created_at",
        "expiration_at", "last_balance_sync_at", "last_consumed_credit_at", "terminated_at",
        "invoice_requires_successful_payment", "applies_to", "recurring_transaction_rules",
        "paid_top_up_min_amount_cents", "paid_top_up_max_amount_cents", "payment_method",
        "purchase_order_number", "metadata", "applied_invoice_custom_sections",
    }  # fmt: skip
    assert wallet["external_customer_id"] == "acme"
    assert wallet["lago_customer_id"] == str(customer.pk)
    assert (wallet["status"], wallet["currency"], wallet["code"]) == ("active", "EUR", "prepaid")
    assert (wallet["rate_amount"], wallet["priority"]) == ("1.5", 50)
    assert (wallet["credits_balance"], wallet["balance_cents"]) == ("10.0", 1_500)
    assert (wallet["credits_ongoing_balance"], wallet["ongoing_balance_cents"]) == ("10.0", 1_500)
    assert wallet["applies_to"] == {"fee_types": [], "billable_metric_codes": []}
    assert wallet["recurring_transaction_rules"] == []
    assert wallet["payment_method"] == {
        "payment_method_type": "provider",
        "payment_method_id": None,
    }
    assert wallet["metadata"] is None
    assert wallet["created_at"].endswith("Z")


def test_create_records_the_wallet_created_webhook(api, customer):
    lago_id = create(api, granted_credits="1").json()["wallet"]["lago_id"]
    events = OutboxEvent.objects.filter(object_id=lago_id).values_list("event_type", flat=True)
    assert "wallet.created" in events


def test_code_is_generated_from_the_name_and_kept_unique(api, customer):
    first = create(api, name="Prepaid Crédits").json()["wallet"]
    second = create(api, name="Prepaid Crédits").json()["wallet"]
    third = create(api).json()["wallet"]
    assert (first["code"], second["code"], third["code"]) == (
        "prepaid_credits", "prepaid_credits_2", "wallet",
    )  # fmt: skip


def test_duplicate_active_code_is_refused(api, customer):
    create(api, code="main")
    assert errors(create(api, code="main")) == {"code": ["value_already_exist"]}


def test_code_of_a_terminated_wallet_can_be_reused(api, customer):
    lago_id = create(api, code="main").json()["wallet"]["lago_id"]
    api.delete(f"/api/v1/wallets/{lago_id}")
    assert create(api, code="main").status_code == 200


def test_create_through_the_customer_route(api, customer):
    response = api.post(
        "/api/v1/customers/acme/wallets",
        {"wallet": {"rate_amount": "2", "code": "eu", "granted_credits": "3"}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert (response.json()["wallet"]["code"], response.json()["wallet"]["balance_cents"]) == (
        "eu", 600,
    )  # fmt: skip


def test_currency_sets_the_currency_of_a_customer_without_one(api, organization):
    customer = CustomerFactory(organization=organization, external_id="acme", currency="")
    response = create(api, currency="USD")
    assert response.json()["wallet"]["currency"] == "USD"
    customer.refresh_from_db()
    assert customer.currency == "USD"


def test_currency_must_match_the_customer_currency(api, customer):
    assert errors(create(api, currency="USD")) == {"currency": ["currencies_does_not_match"]}


def test_currency_is_mandatory_when_the_customer_has_none(api, organization):
    CustomerFactory(organization=organization, external_id="acme", currency="")
    assert errors(create(api)) == {"currency": ["value_is_mandatory"]}


def test_unknown_currency_is_invalid(api, organization):
    CustomerFactory(organization=organization, external_id="acme", currency="")
    assert errors(create(api, currency="XXX")) == {"currency": ["value_is_invalid"]}


@pytest.mark.parametrize(
    ("rate", "code"),
    [("0", "value_is_out_of_range"), ("-1", "value_is_out_of_range"), ("abc", "value_is_invalid")],
)
def test_rate_amount_must_be_positive(api, customer, rate, code):
    assert errors(create(api, rate_amount=rate)) == {"rate_amount": [code]}


def test_rate_amount_is_mandatory(api, customer):
    response = api.post(
        "/api/v1/wallets", {"wallet": {"external_customer_id": "acme"}}, format="json"
    )
    assert errors(response) == {"rate_amount": ["value_is_mandatory"]}


@pytest.mark.parametrize("priority", [0, 51])
def test_priority_is_between_1_and_50(api, customer, priority):
    assert errors(create(api, priority=priority)) == {"priority": ["value_is_invalid"]}


def test_priority_is_stored(api, customer):
    assert create(api, priority=1).json()["wallet"]["priority"] == 1


def test_wallet_limit_per_customer(api, customer, organization):
    organization.max_wallets = 2
    organization.save()
    create(api)
    create(api)
    assert errors(create(api)) == {"customer": ["wallet_limit_reached"]}


def test_terminated_wallets_do_not_count_in_the_limit(api, customer, organization):
    organization.max_wallets = 1
    organization.save()
    lago_id = create(api).json()["wallet"]["lago_id"]
    api.delete(f"/api/v1/wallets/{lago_id}")
    assert create(api).status_code == 200


def test_unknown_customer_is_404(api, customer):
    response = create(api, external_customer_id="nobody")
    assert errors(response, 404) == "customer_not_found"


def test_invalid_credits_answer_lago_codes(api, customer):
    response = create(api, paid_credits="abc", granted_credits="-1")
    assert errors(response) == {
        "paid_credits": ["invalid_paid_credits", "invalid_amount"],
        "granted_credits": ["invalid_granted_credits", "invalid_amount"],
    }


def test_expiration_at_must_be_in_the_future(api, customer):
    response = create(api, expiration_at="2020-01-01T00:00:00Z")
    assert errors(response) == {"expiration_at": ["invalid_date"]}


def test_expiration_at_is_stored(api, customer):
    assert create(api, expiration_at=FUTURE).json()["wallet"]["expiration_at"] == FUTURE


def test_applies_to_is_stored_and_rendered(api, customer, organization):
    BillableMetricFactory(organization=organization, code="api_calls")
    response = create(
        api,
        applies_to={
            "fee_types": ["charge", "subscription"],
            "billable_metric_codes": ["api_calls"],
        },
    )
    assert response.json()["wallet"]["applies_to"] == {
        "fee_types": ["charge", "subscription"],
        "billable_metric_codes": ["api_calls"],
    }


def test_applies_to_unknown_fee_type_is_invalid(api, customer):
    response = create(api, applies_to={"fee_types": ["coffee"]})
    assert errors(response) == {"applies_to": ["invalid_limitations"]}


def test_applies_to_metric_of_another_organization_is_invalid(api, customer, other_organization):
    BillableMetricFactory(organization=other_organization, code="api_calls")
    response = create(api, applies_to={"billable_metric_codes": ["api_calls"]})
    assert errors(response) == {"applies_to": ["invalid_limitations"]}


def test_paid_top_up_limits_are_stored(api, customer):
    wallet = create(
        api, paid_top_up_min_amount_cents=500, paid_top_up_max_amount_cents=10_000
    ).json()["wallet"]
    assert (wallet["paid_top_up_min_amount_cents"], wallet["paid_top_up_max_amount_cents"]) == (
        500, 10_000,
    )  # fmt: skip


def test_paid_top_up_max_below_min_is_invalid(api, customer):
    response = create(api, paid_top_up_min_amount_cents=500, paid_top_up_max_amount_cents=100)
    assert errors(response) == {
        "paid_top_up_max_amount_cents": ["must_be_greater_than_or_equal_min"]
    }


def test_initial_paid_credits_below_the_minimum_are_refused(api, customer):
    response = create(api, paid_credits="1", paid_top_up_min_amount_cents=500)
    assert errors(response) == {"paid_credits": ["amount_below_minimum"]}
    assert not Wallet.objects.exists()  # the whole creation is undone


def test_initial_paid_credits_limits_can_be_ignored(api, customer):
    response = create(
        api,
        paid_credits="1",
        paid_top_up_min_amount_cents=500,
        ignore_paid_top_up_limits_on_creation=True,
    )
    assert response.status_code == 200, response.json()
    [tx] = Tx.objects.filter(wallet_id=response.json()["wallet"]["lago_id"])
    assert (tx.transaction_status, tx.status, tx.amount_cents) == ("purchased", "pending", 100)


def test_initial_top_up_takes_transaction_name_and_metadata(api, customer):
    response = create(
        api,
        granted_credits="5",
        transaction_name="Welcome",
        transaction_metadata=[{"key": "source", "value": "signup"}],
    )
    [tx] = Tx.objects.filter(wallet_id=response.json()["wallet"]["lago_id"])
    assert (tx.name, tx.metadata) == ("Welcome", [{"key": "source", "value": "signup"}])


def test_metadata_is_stored(api, customer):
    response = create(api, metadata={"crm": "42", "empty": None})
    assert response.json()["wallet"]["metadata"] == {"crm": "42", "empty": None}


def test_invoice_requires_successful_payment_is_stored(api, customer):
    response = create(api, invoice_requires_successful_payment=True)
    assert response.json()["wallet"]["invoice_requires_successful_payment"] is True


# --------------------------------------------------------------------------------------------
# Recurring rules (stored here, executed by wallets.services.recurring)


def interval_rule(**fields):
    return {"trigger": "interval", "interval": "monthly", "granted_credits": "10", **fields}


def test_recurring_rule_is_stored_and_rendered(api, customer):
    response = create(
        api,
        recurring_transaction_rules=[
            interval_rule(paid_credits="5", transaction_name="Monthly", started_at=FUTURE)
        ],
    )
    [rule] = response.json()["wallet"]["recurring_transaction_rules"]
    assert (rule["trigger"], rule["method"], rule["interval"], rule["status"]) == (
        "interval", "fixed", "monthly", "active",
    )  # fmt: skip
    assert (rule["paid_credits"], rule["granted_credits"]) == ("5.0", "10.0")
    assert (rule["transaction_name"], rule["started_at"]) == ("Monthly", FUTURE)
    assert rule["lago_id"]


def test_fixed_rule_without_amounts_takes_the_wallet_top_up(api, customer):
    response = create(
        api,
        granted_credits="7",
        recurring_transaction_rules=[{"trigger": "interval", "interval": "weekly"}],
    )
    [rule] = response.json()["wallet"]["recurring_transaction_rules"]
    assert (rule["paid_credits"], rule["granted_credits"]) == ("0.0", "7.0")


def test_threshold_rule_with_target(api, customer):
    response = create(
        api,
        recurring_transaction_rules=[
            {"trigger": "threshold", "threshold_credits": "5", "method": "target",
             "target_ongoing_balance": "50"}
        ],
    )  # fmt: skip
    [rule] = response.json()["wallet"]["recurring_transaction_rules"]
    assert (rule["threshold_credits"], rule["target_ongoing_balance"]) == ("5.0", "50.0")


def test_more_than_one_recurring_rule_is_invalid(api, customer):
    response = create(api, recurring_transaction_rules=[interval_rule(), interval_rule()])
    assert errors(response) == {
        "recurring_transaction_rules": ["invalid_number_of_recurring_rules"]
    }


@pytest.mark.parametrize(
    "rule",
    [
        {"trigger": "interval"},  # no interval
        {"trigger": "interval", "interval": "daily"},
        {"trigger": "threshold"},  # no threshold
        {"trigger": "sometimes", "interval": "monthly"},
        {"trigger": "threshold", "threshold_credits": "5", "method": "target"},  # no target
        {
            "trigger": "threshold",
            "threshold_credits": "50",
            "method": "target",
            "target_ongoing_balance": "10",
        },  # target below threshold
        {"trigger": "interval", "interval": "monthly", "paid_credits": "-1"},
        {"trigger": "interval", "interval": "monthly", "expiration_at": "2020-01-01T00:00:00Z"},
        {"trigger": "interval", "interval": "monthly", "method": "double"},
    ],
)
def test_invalid_recurring_rule(api, customer, rule):
    response = create(api, recurring_transaction_rules=[rule])
    assert errors(response) == {"recurring_transaction_rules": ["invalid_recurring_rule"]}


def test_fixed_rule_paid_credits_must_respect_the_limits(api, customer):
    response = create(
        api,
        paid_top_up_max_amount_cents=1_000,
        recurring_transaction_rules=[interval_rule(paid_credits="20")],
    )
    assert errors(response) == {"recurring_transaction_rules": ["invalid_recurring_rule"]}


def test_update_replaces_terminates_and_creates_rules(api, organization, customer):
    lago_id = create(api, recurring_transaction_rules=[interval_rule()]).json()["wallet"]["lago_id"]
    rule = RecurringTransactionRule.objects.get(wallet_id=lago_id)
    response = api.put(
        f"/api/v1/wallets/{lago_id}",
        {
            "wallet": {
                "recurring_transaction_rules": [{"lago_id": str(rule.pk), "interval": "yearly"}]
            }
        },
        format="json",
    )
    assert response.status_code == 200, response.json()
    updated = response.json()["wallet"]
    assert [(r["lago_id"], r["interval"]) for r in updated["recurring_transaction_rules"]] == [
        (str(rule.pk), "yearly")
    ]
    replaced = api.put(
        f"/api/v1/wallets/{lago_id}",
        {"wallet": {"recurring_transaction_rules": [
            {"trigger": "threshold", "threshold_credits": "3", "granted_credits": "4"}
        ]}},
        format="json",
    ).json()["wallet"]  # fmt: skip
    [new] = replaced["recurring_transaction_rules"]
    assert new["lago_id"] != str(rule.pk)
    assert new["trigger"] == "threshold"
    rule.refresh_from_db()
    assert rule.status == "terminated"
    cleared = api.put(
        f"/api/v1/wallets/{lago_id}",
        {"wallet": {"recurring_transaction_rules": []}},
        format="json",
    ).json()["wallet"]
    assert cleared["recurring_transaction_rules"] == []


# --------------------------------------------------------------------------------------------
# Read, update, terminate


def test_retrieve_by_lago_id_and_by_customer_code(api, organization, customer):
    wallet = WalletFactory(organization=organization, customer=customer, code="main")
    by_id = api.get(f"/api/v1/wallets/{wallet.pk}")
    by_code = api.get("/api/v1/customers/acme/wallets/main")
    assert by_id.status_code == by_code.status_code == 200
    assert by_id.json() == by_code.json()


@pytest.mark.parametrize("lago_id", ["0b1e1d6c-9c1f-4c43-9b39-2f9a8d5b7e11", "not-a-uuid"])
def test_unknown_wallet_is_404(api, lago_id):
    assert errors(api.get(f"/api/v1/wallets/{lago_id}"), 404) == "wallet_not_found"
    assert errors(api.put(f"/api/v1/wallets/{lago_id}", {"wallet": {}}, format="json"), 404) == (
        "wallet_not_found"
    )
    assert errors(api.delete(f"/api/v1/wallets/{lago_id}"), 404) == "wallet_not_found"


def test_unknown_code_is_404(api, customer):
    assert errors(api.get("/api/v1/customers/acme/wallets/nope"), 404) == "wallet_not_found"


def test_wallet_of_another_organization_is_404(other_api, organization, customer):
    wallet = WalletFactory(organization=organization, customer=customer, code="main")
    assert errors(other_api.get(f"/api/v1/wallets/{wallet.pk}"), 404) == "wallet_not_found"
    assert errors(other_api.delete(f"/api/v1/wallets/{wallet.pk}"), 404) == "wallet_not_found"
    assert errors(other_api.get("/api/v1/customers/acme/wallets/main"), 404) == (
        "customer_not_found"
    )
    assert other_api.get("/api/v1/wallets").json()["wallets"] == []
    wallet.refresh_from_db()
    assert wallet.status == "active"


def test_update_changes_only_the_given_fields(api, organization, customer):
    wallet = WalletFactory(organization=organization, customer=customer, name="Old", priority=7)
    response = api.put(
        f"/api/v1/wallets/{wallet.pk}",
        {"wallet": {"name": "New", "expiration_at": FUTURE, "metadata": {"a": "b"}}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    body = response.json()["wallet"]
    assert (body["name"], body["priority"], body["expiration_at"], body["metadata"]) == (
        "New", 7, FUTURE, {"a": "b"},
    )  # fmt: skip
    assert "wallet.updated" in OutboxEvent.objects.filter(object_id=str(wallet.pk)).values_list(
        "event_type", flat=True
    )


def test_update_through_the_customer_route(api, organization, customer):
    WalletFactory(organization=organization, customer=customer, code="main")
    response = api.put(
        "/api/v1/customers/acme/wallets/main", {"wallet": {"priority": 3}}, format="json"
    )
    assert response.json()["wallet"]["priority"] == 3


def test_update_applies_to_errors_name_the_field(api, organization, customer):
    wallet = WalletFactory(organization=organization, customer=customer)
    response = api.put(
        f"/api/v1/wallets/{wallet.pk}",
        {"wallet": {"applies_to": {"fee_types": ["coffee"], "billable_metric_codes": ["nope"]}}},
        format="json",
    )
    assert errors(response) == {
        "allowed_fee_types": ["invalid_fee_types"],
        "billable_metrics": ["invalid_identifier"],
    }


def test_update_replaces_the_billable_metric_targets(api, organization, customer):
    BillableMetricFactory(organization=organization, code="a")
    BillableMetricFactory(organization=organization, code="b")
    wallet = create(api, applies_to={"billable_metric_codes": ["a"]}).json()["wallet"]
    response = api.put(
        f"/api/v1/wallets/{wallet['lago_id']}",
        {"wallet": {"applies_to": {"billable_metric_codes": ["b"]}}},
        format="json",
    )
    assert response.json()["wallet"]["applies_to"]["billable_metric_codes"] == ["b"]


def test_update_expiration_in_the_past_is_invalid(api, organization, customer):
    wallet = WalletFactory(organization=organization, customer=customer)
    response = api.put(
        f"/api/v1/wallets/{wallet.pk}",
        {"wallet": {"expiration_at": "2020-01-01T00:00:00Z"}},
        format="json",
    )
    assert errors(response) == {"expiration_at": ["invalid_date"]}


def test_update_of_a_terminated_wallet_is_405(api, organization, customer):
    wallet = WalletFactory(organization=organization, customer=customer)
    api.delete(f"/api/v1/wallets/{wallet.pk}")
    response = api.put(f"/api/v1/wallets/{wallet.pk}", {"wallet": {"name": "x"}}, format="json")
    assert errors(response, 405) == "wallet_not_active"


def test_destroy_terminates_and_voids_the_remaining_credits(api, organization, customer):
    wallet = WalletFactory(organization=organization, customer=customer)
    fund_wallet(wallet, "12.5")
    rule = RecurringTransactionRuleFactory(organization=organization, wallet=wallet)
    response = api.delete(f"/api/v1/wallets/{wallet.pk}")
    assert response.status_code == 200
    body = response.json()["wallet"]
    assert (body["status"], body["balance_cents"], body["credits_balance"]) == (
        "terminated", 0, "0.0",
    )  # fmt: skip
    assert body["terminated_at"] is not None
    assert body["recurring_transaction_rules"] == []
    voided = Tx.objects.get(wallet=wallet, transaction_status="voided")
    assert (voided.amount_cents, voided.credit_amount) == (1_250, Decimal("12.5"))
    rule.refresh_from_db()
    assert rule.status == "terminated"
    wallet.refresh_from_db()
    assert ledger.wallet_drifts(wallet) == []


def test_destroy_twice_returns_the_terminated_wallet(api, organization, customer):
    wallet = WalletFactory(organization=organization, customer=customer)
    first = api.delete(f"/api/v1/wallets/{wallet.pk}").json()
    second = api.delete(f"/api/v1/wallets/{wallet.pk}")
    assert second.status_code == 200
    assert second.json()["wallet"]["terminated_at"] == first["wallet"]["terminated_at"]


def test_destroy_through_the_customer_route(api, organization, customer):
    WalletFactory(organization=organization, customer=customer, code="main")
    response = api.delete("/api/v1/customers/acme/wallets/main")
    assert response.json()["wallet"]["status"] == "terminated"


# --------------------------------------------------------------------------------------------
# Lists


def test_list_with_pagination_meta(api, organization, customer):
    for _ in range(3):
        WalletFactory(organization=organization, customer=customer)
    response = api.get("/api/v1/wallets", {"per_page": 2, "page": 2})
    body = response.json()
    assert len(body["wallets"]) == 1
    assert body["meta"] == {
        "current_page": 2, "next_page": None, "prev_page": 1, "total_pages": 2, "total_count": 3,
    }  # fmt: skip


def test_list_filters_by_external_customer_id(api, organization, customer):
    mine = WalletFactory(organization=organization, customer=customer)
    WalletFactory(organization=organization)
    response = api.get("/api/v1/wallets", {"external_customer_id": "acme"})
    assert [w["lago_id"] for w in response.json()["wallets"]] == [str(mine.pk)]


def test_list_of_an_unknown_customer_is_404(api, customer):
    response = api.get("/api/v1/wallets", {"external_customer_id": "nobody"})
    assert errors(response, 404) == "customer_not_found"


def test_customer_wallets_list(api, organization, customer):
    mine = WalletFactory(organization=organization, customer=customer)
    WalletFactory(organization=organization)
    response = api.get("/api/v1/customers/acme/wallets")
    assert [w["lago_id"] for w in response.json()["wallets"]] == [str(mine.pk)]
    assert response.json()["meta"]["total_count"] == 1


# --------------------------------------------------------------------------------------------
# Metadata sub-resources


@pytest.mark.parametrize(
    "base", ["/api/v1/wallets/{lago_id}/metadata", "/api/v1/customers/acme/wallets/main/metadata"]
)
def test_metadata_replace_merge_delete(api, organization, customer, base):
    wallet = WalletFactory(organization=organization, customer=customer, code="main")
    url = base.format(lago_id=wallet.pk)
    replaced = api.post(url, {"metadata": {"a": "1", "b": "2"}}, format="json")
    assert replaced.json() == {"metadata": {"a": "1", "b": "2"}}
    merged = api.patch(url, {"metadata": {"b": "3", "c": None}}, format="json")
    assert merged.json() == {"metadata": {"a": "1", "b": "3", "c": None}}
    one_key = api.delete(f"{url}/a")
    assert one_key.json() == {"metadata": {"b": "3", "c": None}}
    cleared = api.delete(url)
    assert cleared.json() == {"metadata": None}
    assert errors(api.delete(f"{url}/b"), 404) == "metadata_not_found"


def test_invalid_metadata_is_422(api, organization, customer):
    wallet = WalletFactory(organization=organization, customer=customer)
    response = api.post(
        f"/api/v1/wallets/{wallet.pk}/metadata", {"metadata": {"a": {"nested": 1}}}, format="json"
    )
    assert errors(response) == {"metadata": ["value_is_invalid"]}


def test_metadata_of_another_organization_is_404(other_api, organization, customer):
    wallet = WalletFactory(organization=organization, customer=customer)
    response = other_api.post(
        f"/api/v1/wallets/{wallet.pk}/metadata", {"metadata": {"a": "1"}}, format="json"
    )
    assert errors(response, 404) == "wallet_not_found"


# --------------------------------------------------------------------------------------------
# API key permissions


def test_wallet_permission_is_enforced(organization, customer):
    from billing.services import api_key_create
    from tests.conftest import client_for

    _, raw = api_key_create(
        organization=organization, name="read only", permissions={"wallet": ["read"]}
    )
    client = client_for(raw)
    assert client.get("/api/v1/wallets").status_code == 200
    response = create(client)
    assert response.status_code == 403


def test_missing_root_is_400(api, customer):
    response = api.post("/api/v1/wallets", {"rate_amount": "1"}, format="json")
    assert response.status_code == 400


def test_wallet_with_expiration_in_the_past_terminated_by_job_renders_dates(
    api, organization, customer
):
    wallet = WalletFactory(
        organization=organization,
        customer=customer,
        expiration_at=dt.datetime(2030, 5, 1, 10, 30, tzinfo=dt.UTC),
    )
    body = api.get(f"/api/v1/wallets/{wallet.pk}").json()["wallet"]
    assert body["expiration_at"] == "2030-05-01T10:30:00Z"


@pytest.mark.parametrize("method", ["post", "patch"])
def test_metadata_that_is_a_list_is_422(api, organization, customer, method):
    wallet = WalletFactory(organization=organization, customer=customer)
    url = f"/api/v1/wallets/{wallet.pk}/metadata"
    response = getattr(api, method)(url, {"metadata": [None, None]}, format="json")
    assert errors(response) == {"metadata": ["value_is_invalid"]}
