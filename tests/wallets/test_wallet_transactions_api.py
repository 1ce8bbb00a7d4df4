"""Wallet transactions: top-up service and `/wallet_transactions` API (spec §17.2, §17.3)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from billing.actors import SYSTEM
from billing.errors import Invalid
from billing.models import OutboxEvent
from tests.wallets.factories import WalletFactory, fund_wallet
from wallets import ports
from wallets.models import WalletTransaction
from wallets.services import ledger
from wallets.services.transactions import wallet_top_up
from wallets.services.wallets import wallet_create, wallet_terminate

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
Tx = WalletTransaction


def test_granted_top_up_settles_at_once(organization):
    wallet = WalletFactory(organization=organization)
    [tx] = wallet_top_up(wallet=wallet, granted_credits="10", actor=SYSTEM, now=NOW)
    wallet.refresh_from_db()
    assert (tx.status, tx.transaction_status, tx.transaction_type) == (
        "settled", "granted", "inbound",
    )  # fmt: skip
    assert (wallet.balance_cents, wallet.credits_balance) == (1_000, Decimal("10"))


def test_V86_granted_credits_settle_at_once_as_17_97(organization):
    wallet = WalletFactory(organization=organization)
    [tx] = wallet_top_up(
        wallet=wallet, granted_credits="17.9699999999999988631316", actor=SYSTEM, now=NOW
    )
    wallet.refresh_from_db()
    assert (tx.credit_amount, tx.amount, tx.status) == (
        Decimal("17.97"), Decimal("17.97"), "settled",
    )  # fmt: skip
    assert (wallet.credits_balance, wallet.balance_cents) == (Decimal("17.97"), 1_797)


def test_paid_top_up_without_invoicing_is_refused_and_rolled_back(organization, monkeypatch):
    wallet = WalletFactory(organization=organization)
    monkeypatch.setattr(ports.create_paid_credits_invoice, "_impl", None)  # invoicing absent
    with pytest.raises(ports.PortNotBound):
        wallet_top_up(wallet=wallet, paid_credits="10", granted_credits="5", actor=SYSTEM, now=NOW)
    assert not Tx.objects.filter(wallet=wallet).exists()


def test_voided_credits_draw_on_the_balance(organization):
    wallet = WalletFactory(organization=organization)
    fund_wallet(wallet, "10")
    [tx] = wallet_top_up(wallet=wallet, voided_credits="4", actor=SYSTEM, now=NOW)
    wallet.refresh_from_db()
    assert (tx.transaction_type, tx.transaction_status, tx.amount_cents) == (
        "outbound", "voided", 400,
    )  # fmt: skip
    assert wallet.balance_cents == 600
    assert ledger.wallet_drifts(wallet) == []


def test_voided_credits_above_the_balance_are_refused(organization):
    wallet = WalletFactory(organization=organization)
    fund_wallet(wallet, "3")
    with pytest.raises(Invalid) as raised:
        wallet_top_up(wallet=wallet, voided_credits="4", actor=SYSTEM, now=NOW)
    assert raised.value.details == {"voided_credits": ["insufficient_credits"]}


def test_terminate_voids_the_remaining_credits(organization):
    wallet = WalletFactory(organization=organization)
    fund_wallet(wallet, "7.5")
    wallet = wallet_terminate(wallet=wallet, actor=SYSTEM, now=NOW)
    assert (wallet.status, wallet.balance_cents, wallet.terminated_at) == ("terminated", 0, NOW)
    voided = Tx.objects.get(wallet=wallet, transaction_status="voided")
    assert voided.amount_cents == 750
    assert ledger.wallet_drifts(wallet) == []


def test_create_with_granted_credits(organization):
    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(organization=organization, currency="")
    wallet = wallet_create(
        customer=customer,
        values={
            "name": "Prepaid",
            "rate_amount": "1.5",
            "currency": "USD",
            "granted_credits": "10",
        },
        actor=SYSTEM,
        now=NOW,
    )
    customer.refresh_from_db()
    assert (wallet.code, wallet.currency, customer.currency) == ("prepaid", "USD", "USD")
    assert (wallet.balance_cents, wallet.credits_balance) == (1_500, Decimal("10"))


# --------------------------------------------------------------------------------------------
# API: POST /wallet_transactions


@pytest.fixture
def wallet(organization):
    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(organization=organization, external_id="acme", currency="EUR")
    return WalletFactory(organization=organization, customer=customer)


def top_up(api, wallet, **fields):
    body = {"wallet_id": str(wallet.pk), **fields}
    return api.post("/api/v1/wallet_transactions", {"wallet_transaction": body}, format="json")


def errors(response, status=422):
    assert response.status_code == status, response.json()
    body = response.json()
    return body.get("error_details", body.get("code"))


def test_api_granted_top_up_renders_the_lago_transaction(api, wallet):
    response = top_up(api, wallet, granted_credits="10", name="Gift",
                      metadata=[{"key": "k", "value": "v"}])  # fmt: skip
    assert response.status_code == 200, response.json()
    [tx] = response.json()["wallet_transactions"]
    assert set(tx) >= {
        "lago_id", "lago_wallet_id", "lago_invoice_id", "lago_credit_note_id",
        "lago_voided_invoice_id", "status", "source", "transaction_status", "transaction_type",
        "amount", "credit_amount", "remaining_amount_cents", "remaining_credit_amount",
        "priority", "settled_at", "failed_at", "created_at", "invoice_requires_successful_payment",
        "metadata", "name", "payment_method", "purchase_order_number",
    }  # fmt: skip
    assert (tx["status"], tx["transaction_status"], tx["transaction_type"], tx["source"]) == (
        "settled", "granted", "inbound", "manual",
    )  # fmt: skip
    assert (tx["amount"], tx["credit_amount"], tx["remaining_amount_cents"]) == (
        "10.0", "10.0", 1_000,
    )  # fmt: skip
    assert (tx["name"], tx["metadata"], tx["priority"]) == (
        "Gift",
        [{"key": "k", "value": "v"}],
        50,
    )
    assert tx["lago_wallet_id"] == str(wallet.pk)
    assert tx["settled_at"].endswith("Z")


def test_an_api_top_up_records_its_transaction_event_with_the_api_key(api, api_key, wallet):
    [tx] = top_up(api, wallet, granted_credits="10").json()["wallet_transactions"]
    event = OutboxEvent.objects.get(
        event_type="wallet_transaction.created", object_id=tx["lago_id"]
    )
    assert (event.actor_type, event.actor_id) == ("api_key", str(api_key[0].pk))


def test_V86_paid_top_up_rounds_to_whole_cents_and_settles_when_paid(api, wallet):
    from invoicing.models import Invoice

    response = top_up(api, wallet, paid_credits="17.9699999999999988631316",
                      invoice_requires_successful_payment=False,
                      metadata=[{"key": "transaction_id", "value": "123"}])  # fmt: skip
    assert response.status_code == 200, response.json()
    [tx] = response.json()["wallet_transactions"]
    assert (tx["status"], tx["transaction_status"]) == ("pending", "purchased")
    assert (tx["credit_amount"], tx["amount"]) == ("17.97", "17.97")
    assert tx["invoice_requires_successful_payment"] is False
    assert tx["metadata"] == [{"key": "transaction_id", "value": "123"}]
    invoice = Invoice.objects.get(pk=tx["lago_invoice_id"])
    assert (invoice.invoice_type, invoice.status, invoice.payment_status) == (
        "credit", "finalized", "pending",
    )  # fmt: skip
    assert invoice.total_amount_cents == 1_797
    wallet.refresh_from_db()
    assert wallet.balance_cents == 0  # nothing until the invoice is paid
    paid = api.put(
        f"/api/v1/invoices/{invoice.pk}",
        {"invoice": {"payment_status": "succeeded"}},
        format="json",
    )
    assert paid.status_code == 200, paid.json()
    settled = api.get(f"/api/v1/wallet_transactions/{tx['lago_id']}").json()["wallet_transaction"]
    assert settled["status"] == "settled"
    assert settled["settled_at"] is not None
    wallet.refresh_from_db()
    assert (wallet.credits_balance, wallet.balance_cents) == (Decimal("17.97"), 1_797)
    assert ledger.wallet_drifts(wallet) == []


def test_V86_conversion_rate_1_5(api, organization):
    from tests.customers.factories import CustomerFactory

    customer = CustomerFactory(organization=organization, currency="EUR")
    wallet = WalletFactory(organization=organization, customer=customer, rate_amount=Decimal("1.5"))
    [tx] = top_up(api, wallet, granted_credits="10").json()["wallet_transactions"]
    assert (tx["credit_amount"], tx["amount"], tx["remaining_amount_cents"]) == (
        "10.0", "15.0", 1_500,
    )  # fmt: skip


def test_V89_transaction_priority(api, wallet):
    response = top_up(api, wallet, paid_credits="100", granted_credits="50", priority=5)
    assert response.status_code == 200, response.json()
    transactions = response.json()["wallet_transactions"]
    assert [(t["transaction_status"], t["priority"]) for t in transactions] == [
        ("purchased", 5), ("granted", 5),
    ]  # fmt: skip
    [default] = top_up(api, wallet, granted_credits="1").json()["wallet_transactions"]
    assert default["priority"] == 50


def test_V89_priority_orders_the_consumption(organization, wallet):
    older_default = fund_wallet(wallet, "5")
    newer_first = fund_wallet(wallet, "5", priority=1)
    drawn = ledger.draw(
        wallet=wallet, amount_cents=600, transaction_status="invoiced", actor=SYSTEM, now=NOW
    )
    funders = drawn.transaction.consumptions_made.order_by("created_at", "id")
    assert {c.inbound_wallet_transaction_id: c.consumed_amount_cents for c in funders} == {
        newer_first.pk: 500,
        older_default.pk: 100,
    }


def test_one_request_creates_paid_granted_and_voided(api, wallet):
    fund_wallet(wallet, "5")
    response = top_up(api, wallet, paid_credits="1", granted_credits="2", voided_credits="3")
    assert [t["transaction_status"] for t in response.json()["wallet_transactions"]] == [
        "purchased", "granted", "voided",
    ]  # fmt: skip
    wallet.refresh_from_db()
    assert wallet.balance_cents == 400  # 5 + 2 granted - 3 voided (the purchase is pending)


def test_zero_amounts_create_nothing(api, wallet):
    response = top_up(api, wallet, paid_credits="0", granted_credits="0")
    assert response.json() == {"wallet_transactions": []}


def test_voided_top_up_is_outbound(api, wallet):
    fund_wallet(wallet, "10")
    [tx] = top_up(api, wallet, voided_credits="2.5").json()["wallet_transactions"]
    assert (tx["transaction_type"], tx["status"], tx["amount"]) == ("outbound", "settled", "2.5")
    assert (tx["remaining_amount_cents"], tx["remaining_credit_amount"]) == (None, None)


def test_voided_credits_above_the_balance_are_422(api, wallet):
    fund_wallet(wallet, "1")
    assert errors(top_up(api, wallet, voided_credits="2")) == {
        "voided_credits": ["insufficient_credits"]
    }


@pytest.mark.parametrize("field", ["paid_credits", "granted_credits", "voided_credits"])
@pytest.mark.parametrize("value", ["abc", "-1", "NaN"])
def test_invalid_credits_are_422(api, wallet, field, value):
    assert errors(top_up(api, wallet, **{field: value})) == {
        field: [f"invalid_{field}", "invalid_amount"]
    }


def test_unknown_wallet_is_wallet_not_found(api, wallet, other_organization):
    from tests.customers.factories import CustomerFactory

    foreign = WalletFactory(
        organization=other_organization,
        customer=CustomerFactory(organization=other_organization),
    )
    for wallet_id in ("0b1e1d6c-9c1f-4c43-9b39-2f9a8d5b7e11", "nope", str(foreign.pk)):
        response = api.post(
            "/api/v1/wallet_transactions",
            {"wallet_transaction": {"wallet_id": wallet_id, "granted_credits": "1"}},
            format="json",
        )
        assert errors(response) == {"wallet_id": ["wallet_not_found"]}
    assert not Tx.objects.filter(wallet=foreign).exists()


def test_terminated_wallet_is_refused(api, wallet):
    wallet_terminate(wallet=wallet, actor=SYSTEM, now=NOW)
    assert errors(top_up(api, wallet, granted_credits="1")) == {
        "wallet_id": ["wallet_is_terminated"]
    }


def test_paid_top_up_limits(api, wallet):
    wallet.paid_top_up_min_amount_cents, wallet.paid_top_up_max_amount_cents = 500, 2_000
    wallet.save()
    assert errors(top_up(api, wallet, paid_credits="4.99")) == {
        "paid_credits": ["amount_below_minimum"]
    }
    assert errors(top_up(api, wallet, paid_credits="20.01")) == {
        "paid_credits": ["amount_above_maximum"]
    }
    assert top_up(api, wallet, paid_credits="20").status_code == 200
    ignored = top_up(api, wallet, paid_credits="1", ignore_paid_top_up_limits=True)
    assert ignored.status_code == 200
    assert top_up(api, wallet, granted_credits="1").status_code == 200  # grants have no limit


def test_name_too_long_is_422(api, wallet):
    assert errors(top_up(api, wallet, granted_credits="1", name="x" * 256)) == {
        "name": ["too_long"]
    }


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ([{"key": "k" * 21, "value": "v"}], "key_too_long"),
        ([{"key": "k", "value": "v" * 101}], "value_too_long"),
        ([{"key": "k", "value": {"nested": "v"}}], "nested_structure_not_allowed"),
        ([{"key": str(n), "value": "v"} for n in range(11)], "too_many_keys"),
    ],
)
def test_invalid_metadata_is_422(api, wallet, metadata, code):
    response = top_up(api, wallet, granted_credits="1", metadata=metadata)
    assert errors(response) == {"metadata": [code]}


def test_error_envelopes(api, wallet):
    invalid = top_up(api, wallet, granted_credits="abc").json()
    assert invalid == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": {"granted_credits": ["invalid_granted_credits", "invalid_amount"]},
    }
    missing = api.get("/api/v1/wallet_transactions/0b1e1d6c-9c1f-4c43-9b39-2f9a8d5b7e11").json()
    assert missing == {
        "status": 404,
        "error": "Not Found",
        "code": "wallet_transaction_not_found",
    }
    wallet_terminate(wallet=wallet, actor=SYSTEM, now=NOW)
    refused = api.put(f"/api/v1/wallets/{wallet.pk}", {"wallet": {"name": "x"}}, format="json")
    assert refused.json() == {
        "status": 405,
        "error": "Method Not Allowed",
        "code": "wallet_not_active",
    }


def test_priority_out_of_range_is_422(api, wallet):
    assert errors(top_up(api, wallet, granted_credits="1", priority=51)) == {
        "priority": ["value_is_invalid"]
    }


def test_missing_root_is_400(api, wallet):
    response = api.post("/api/v1/wallet_transactions", {"granted_credits": "1"}, format="json")
    assert response.status_code == 400


# --------------------------------------------------------------------------------------------
# API: reads


def test_list_filters_and_paginates(api, wallet):
    fund_wallet(wallet, "10")
    fund_wallet(wallet, "5")
    top_up(api, wallet, voided_credits="1")
    url = f"/api/v1/wallets/{wallet.pk}/wallet_transactions"
    everything = api.get(url).json()
    assert everything["meta"]["total_count"] == 3
    assert [t["transaction_type"] for t in api.get(url, {"transaction_type": "inbound"}).json()[
        "wallet_transactions"
    ]] == ["inbound", "inbound"]  # fmt: skip
    voided = api.get(url, {"transaction_status": "voided"}).json()["wallet_transactions"]
    assert [t["transaction_status"] for t in voided] == ["voided"]
    assert api.get(url, {"status": "pending"}).json()["wallet_transactions"] == []
    page = api.get(url, {"per_page": 2, "page": 1}).json()
    assert len(page["wallet_transactions"]) == 2
    assert page["meta"] == {
        "current_page": 1, "next_page": 2, "prev_page": None, "total_pages": 2, "total_count": 3,
    }  # fmt: skip


def test_list_with_an_invalid_filter_is_422(api, wallet):
    response = api.get(f"/api/v1/wallets/{wallet.pk}/wallet_transactions", {"status": "done"})
    assert errors(response) == {"status": ["value_is_invalid"]}


def test_list_of_an_unknown_or_foreign_wallet_is_404(api, other_api, wallet):
    assert (
        errors(
            api.get("/api/v1/wallets/0b1e1d6c-9c1f-4c43-9b39-2f9a8d5b7e11/wallet_transactions"), 404
        )
        == "wallet_not_found"
    )
    assert errors(other_api.get(f"/api/v1/wallets/{wallet.pk}/wallet_transactions"), 404) == (
        "wallet_not_found"
    )


def test_retrieve_and_tenancy(api, other_api, wallet):
    tx = fund_wallet(wallet, "1")
    assert api.get(f"/api/v1/wallet_transactions/{tx.pk}").json()["wallet_transaction"][
        "lago_id"
    ] == str(tx.pk)
    assert errors(other_api.get(f"/api/v1/wallet_transactions/{tx.pk}"), 404) == (
        "wallet_transaction_not_found"
    )
    assert errors(api.get("/api/v1/wallet_transactions/nope"), 404) == (
        "wallet_transaction_not_found"
    )


def test_consumptions_and_fundings(api, other_api, wallet):
    granted = fund_wallet(wallet, "3")
    purchased = fund_wallet(wallet, "5", status=Tx.TransactionStatus.PURCHASED)
    drawn = ledger.draw(
        wallet=wallet, amount_cents=400, transaction_status="invoiced", actor=SYSTEM, now=NOW
    )
    out = drawn.transaction
    fundings = api.get(f"/api/v1/wallet_transactions/{out.pk}/fundings").json()
    assert [
        (f["wallet_transaction"]["lago_id"], f["amount_cents"], f["credit_amount"])
        for f in fundings["wallet_transaction_fundings"]
    ] == [(str(granted.pk), 300, "3.0"), (str(purchased.pk), 100, "1.0")]
    assert fundings["meta"]["total_count"] == 2
    consumptions = api.get(f"/api/v1/wallet_transactions/{purchased.pk}/consumptions").json()
    [consumption] = consumptions["wallet_transaction_consumptions"]
    assert consumption["wallet_transaction"]["lago_id"] == str(out.pk)
    assert (consumption["amount_cents"], consumption["credit_amount"]) == (100, "1.0")
    assert set(consumption) == {
        "lago_id",
        "amount_cents",
        "credit_amount",
        "created_at",
        "wallet_transaction",
    }
    assert errors(api.get(f"/api/v1/wallet_transactions/{out.pk}/consumptions")) == {
        "transaction_type": ["invalid_transaction_type"]
    }
    assert errors(api.get(f"/api/v1/wallet_transactions/{granted.pk}/fundings")) == {
        "transaction_type": ["invalid_transaction_type"]
    }
    assert errors(other_api.get(f"/api/v1/wallet_transactions/{out.pk}/fundings"), 404) == (
        "wallet_transaction_not_found"
    )


# --------------------------------------------------------------------------------------------
# API: payment_url (no payment provider integrated)


def test_payment_url_of_a_pending_purchase_without_provider(api, wallet):
    [tx] = top_up(api, wallet, paid_credits="5").json()["wallet_transactions"]
    response = api.post(f"/api/v1/wallet_transactions/{tx['lago_id']}/payment_url")
    assert errors(response) == {"base": ["no_linked_payment_provider"]}


def test_payment_url_with_a_provider_but_no_integration(api, wallet):
    customer = wallet.customer
    customer.billing_configuration = {"payment_provider": "stripe"}
    customer.save()
    [tx] = top_up(api, wallet, paid_credits="5").json()["wallet_transactions"]
    response = api.post(f"/api/v1/wallet_transactions/{tx['lago_id']}/payment_url")
    assert errors(response) == {"base": ["missing_payment_provider"]}


def test_payment_url_of_a_granted_transaction(api, wallet):
    tx = fund_wallet(wallet, "1")
    response = api.post(f"/api/v1/wallet_transactions/{tx.pk}/payment_url")
    assert errors(response) == {"base": ["wallet_transaction_not_purchased"]}


def test_payment_url_of_a_settled_purchase(api, wallet):
    tx = fund_wallet(wallet, "1", status=Tx.TransactionStatus.PURCHASED)
    response = api.post(f"/api/v1/wallet_transactions/{tx.pk}/payment_url")
    assert errors(response) == {"base": ["wallet_transaction_already_settled"]}


def test_payment_url_of_an_unknown_transaction(api, other_api, wallet):
    tx = fund_wallet(wallet, "1")
    assert errors(other_api.post(f"/api/v1/wallet_transactions/{tx.pk}/payment_url"), 404) == (
        "wallet_transaction_not_found"
    )


def test_wallet_transaction_permission(organization, wallet):
    from billing.services import api_key_create
    from tests.conftest import client_for

    _, raw = api_key_create(
        organization=organization, name="ro", permissions={"wallet_transaction": ["read"]}
    )
    client = client_for(raw)
    assert client.get(f"/api/v1/wallets/{wallet.pk}/wallet_transactions").status_code == 200
    assert top_up(client, wallet, granted_credits="1").status_code == 403
