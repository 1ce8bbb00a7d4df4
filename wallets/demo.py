"""Demo wallets for `manage.py seed_demo`: created once, through the same services as the API.

- Bergmann (EUR): a general wallet with welcome credits granted and a prepaid pack purchased;
  the pack's credit invoice is paid by the invoicing demo, which runs after this one (wallets
  may not call invoicing), and the purchase settles through the payment as in production.
  A threshold rule tops it up when it runs low.
- Marie Dupont (EUR): API credits applied first (priority 1), limited to the `api_calls`
  metric, worth 1 cent each; part of the trial grant has been voided, so the ledger shows what
  an outbound transaction drew from.

Invoices consume the credits when they are finalized (billing runs); this seed never draws
for an invoice itself, as that would leave the invoice's prepaid credit amount untouched.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime, timedelta
from decimal import Decimal

from billing.actors import SYSTEM
from billing.errors import DomainError
from billing.models import Organization
from customers.models import Customer
from plans.models import BillableMetric
from wallets.models import Wallet
from wallets.services.transactions import wallet_top_up
from wallets.services.wallets import wallet_create

DEMO_WALLETS: tuple[dict, ...] = (
    {
        "customer": "demo_bergmann_de",
        "values": {
            "name": "Prepaid credits",
            "code": "prepaid_credits",
            "currency": "EUR",
            "rate_amount": "1",
            "granted_credits": "100",
            "transaction_name": "Welcome credits",
            "paid_top_up_min_amount_cents": 5_000,
            "purchase_order_number": "PO-BM-2026-17",
            "metadata": {"contract": "MSA-2026-004"},
            "recurring_transaction_rules": [
                {
                    "trigger": "threshold",
                    "threshold_credits": "50",
                    "paid_credits": "250",
                    "transaction_name": "Automatic top-up",
                }
            ],
        },
        # (paid credits, transaction name) bought after the creation
        "purchase": ("500", "Annual prepaid pack"),
    },
    {
        "customer": "demo_marie_dupont",
        "metric": "api_calls",
        "values": {
            "name": "API credits",
            "code": "api_credits",
            "currency": "EUR",
            "rate_amount": "0.01",
            "priority": 1,
            "granted_credits": "2000",
            "transaction_name": "Trial API credits",
            "applies_to": {"billable_metric_codes": ["api_calls"]},
        },
        # (voided credits, transaction name)
        "void": ("500", "Unused trial credits expired"),
        "expires_in_days": 180,
    },
)


def seed(*, organization: Organization, now: datetime) -> str:
    """Creates the demo wallets that do not exist yet (any status); re-running changes nothing."""
    created = skipped = 0
    for demo in DEMO_WALLETS:
        customer = (
            Customer.objects.for_organization(organization)
            .alive()
            .filter(external_id=demo["customer"])
            .first()
        )
        if customer is None:
            skipped += 1  # the customers demo did not run
            continue
        values = demo["values"]
        if Wallet.objects.filter(customer=customer, code=values["code"]).exists():
            continue
        metric = demo.get("metric")
        if (
            metric
            and not (
                BillableMetric.objects.for_organization(organization).alive().filter(code=metric)
            ).exists()
        ):
            skipped += 1  # the catalog demo did not run
            continue
        values = dict(values)
        if "expires_in_days" in demo:
            values["expiration_at"] = now + timedelta(days=demo["expires_in_days"])
        wallet = wallet_create(customer=customer, values=values, actor=SYSTEM, now=now)
        if "purchase" in demo:
            credits, name = demo["purchase"]
            with suppress(DomainError):  # no invoicing installed: no purchase in the demo
                wallet_top_up(
                    wallet=wallet,
                    paid_credits=Decimal(credits),
                    name=name,
                    invoice_requires_successful_payment=False,
                    actor=SYSTEM,
                    now=now,
                )
        if "void" in demo:
            credits, name = demo["void"]
            wallet_top_up(
                wallet=wallet, voided_credits=Decimal(credits), name=name, actor=SYSTEM, now=now
            )
        created += 1
    return f"{created} wallets created" + (f", {skipped} skipped" if skipped else "")
