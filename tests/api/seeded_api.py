"""One organization's worth of objects created through the API, so that every route with a
path parameter can reach a real object (the Schemathesis tests pin path parameters to them)."""

from __future__ import annotations

from dataclasses import dataclass, field

CODE = "st"  # every resource addressed by code uses this one
CUSTOMER = "cust_st"
SUBSCRIPTION = "sub_st"
TRANSACTION = "tx_st"
METADATA_KEY = "st"


@dataclass
class Seeded:
    """Identifiers of the seeded objects, by path parameter name (and `lago_id` by route)."""

    by_name: dict[str, str] = field(default_factory=dict)
    lago_ids: dict[str, str] = field(default_factory=dict)  # route prefix -> lago_id

    def value(self, path: str, name: str) -> str | None:
        if name == "lago_id":
            for prefix, lago_id in self.lago_ids.items():
                if path.startswith(prefix):
                    return lago_id
            return None
        return self.by_name.get(name)


def _ok(response, root: str) -> dict:
    assert response.status_code == 200, (response.status_code, response.content[:500])
    return response.json()[root]


def seed(api) -> Seeded:
    """Creates a tax, an add-on, a metric with a filter, a plan with a charge (and its filter)
    and a fixed charge, a coupon, a billing entity, a customer with a subscription, an applied
    coupon, a wallet with a transaction and an alert, an event and a one-off invoice."""

    def post(path: str, body: dict, root: str) -> dict:
        return _ok(api.post(path, body, format="json"), root)

    post("/api/v1/taxes", {"tax": {"name": "VAT", "code": CODE, "rate": "20"}}, "tax")
    add_on = post(
        "/api/v1/add_ons",
        {"add_on": {"name": "Setup", "code": CODE, "amount_cents": 1000, "amount_currency": "EUR"}},
        "add_on",
    )
    metric = post(
        "/api/v1/billable_metrics",
        {
            "billable_metric": {
                "name": "Storage",
                "code": CODE,
                "aggregation_type": "sum_agg",
                "field_name": "gb",
                "filters": [{"key": "region", "values": ["eu", "us"]}],
            }
        },
        "billable_metric",
    )
    plan = post(
        "/api/v1/plans",
        {
            "plan": {
                "name": "Standard",
                "code": CODE,
                "interval": "monthly",
                "amount_cents": 1000,
                "amount_currency": "EUR",
                "charges": [
                    {
                        "billable_metric_id": metric["lago_id"],
                        "code": CODE,
                        "charge_model": "standard",
                        "properties": {"amount": "1"},
                        "filters": [
                            {"values": {"region": ["eu"]}, "properties": {"amount": "2"}},
                        ],
                    }
                ],
                "fixed_charges": [
                    {
                        "add_on_id": add_on["lago_id"],
                        "code": CODE,
                        "charge_model": "standard",
                        "properties": {"amount": "5"},
                        "units": "1",
                    }
                ],
            }
        },
        "plan",
    )
    api.post(f"/api/v1/plans/{CODE}/metadata", {"metadata": {METADATA_KEY: "v"}}, format="json")
    post(
        "/api/v1/coupons",
        {
            "coupon": {
                "name": "Welcome",
                "code": CODE,
                "coupon_type": "fixed_amount",
                "amount_cents": 100,
                "amount_currency": "EUR",
                "frequency": "once",
                "expiration": "no_expiration",
            }
        },
        "coupon",
    )
    post(
        "/api/v1/billing_entities",
        {"billing_entity": {"name": "Second entity", "code": CODE}},
        "billing_entity",
    )
    post(
        "/api/v1/customers",
        {"customer": {"external_id": CUSTOMER, "name": "Schema Test", "currency": "EUR"}},
        "customer",
    )
    post(
        "/api/v1/subscriptions",
        {
            "subscription": {
                "external_customer_id": CUSTOMER,
                "plan_code": CODE,
                "external_id": SUBSCRIPTION,
            }
        },
        "subscription",
    )
    applied = post(
        "/api/v1/applied_coupons",
        {"applied_coupon": {"external_customer_id": CUSTOMER, "coupon_code": CODE}},
        "applied_coupon",
    )
    wallet = post(
        "/api/v1/wallets",
        {
            "wallet": {
                "external_customer_id": CUSTOMER,
                "code": CODE,
                "name": "Prepaid",
                "currency": "EUR",
                "rate_amount": "1",
                "granted_credits": "10",
            }
        },
        "wallet",
    )
    api.post(
        f"/api/v1/wallets/{wallet['lago_id']}/metadata",
        {"metadata": {METADATA_KEY: "v"}},
        format="json",
    )
    transactions = api.get(f"/api/v1/wallets/{wallet['lago_id']}/wallet_transactions").json()
    post(
        f"/api/v1/customers/{CUSTOMER}/wallets/{CODE}/alerts",
        {
            "alert": {
                "code": CODE,
                "alert_type": "wallet_balance_amount",
                "thresholds": [{"value": "500", "code": "low"}],
            }
        },
        "alert",
    )
    post(
        "/api/v1/events",
        {
            "event": {
                "transaction_id": TRANSACTION,
                "external_subscription_id": SUBSCRIPTION,
                "code": CODE,
                "properties": {"gb": 3, "region": "eu"},
            }
        },
        "event",
    )
    invoice = post(
        "/api/v1/invoices",
        {
            "invoice": {
                "external_customer_id": CUSTOMER,
                "currency": "EUR",
                "fees": [{"add_on_code": CODE, "units": 1}],
            }
        },
        "invoice",
    )
    fees = api.get("/api/v1/fees").json()["fees"]
    charge_filters = api.get(f"/api/v1/plans/{CODE}/charges/{CODE}/filters").json()
    [charge] = plan["charges"]
    filter_id = (
        charge_filters["filters"][0]["lago_id"]
        if charge_filters.get("filters")
        else charge.get("filters", [{}])[0].get("lago_id", "")
    )
    return Seeded(
        by_name={
            "code": CODE,
            "external_customer_id": CUSTOMER,
            "external_id": SUBSCRIPTION,
            "wallet_code": CODE,
            "charge_code": CODE,
            "fixed_charge_code": CODE,
            "filter_id": filter_id,
            "applied_coupon_id": applied["lago_id"],
            "transaction_id": TRANSACTION,
            "key": METADATA_KEY,
        },
        lago_ids={
            "/api/v1/invoices/": invoice["lago_id"],
            "/api/v1/fees/": fees[0]["lago_id"],
            "/api/v1/wallet_transactions/": transactions["wallet_transactions"][0]["lago_id"],
            "/api/v1/wallets/": wallet["lago_id"],
        },
    )
