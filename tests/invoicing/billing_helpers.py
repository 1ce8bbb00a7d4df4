"""Builders shared by the subscription-invoice tests (generation, lifecycle, billing run)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from billing.actors import SYSTEM
from billing.models import BillingEntity
from customers.models import Customer, Subscription
from invoicing.models import Fee, Invoice, InvoiceSubscription
from invoicing.services.billing_run import CustomerBilling, bill_customer
from metering.services.ingestion import event_create
from plans.models import Plan, Tax
from tests.customers.factories import CustomerFactory, SubscriptionFactory
from tests.plans.factories import PlanFactory, TaxFactory


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def entity(organization) -> BillingEntity:
    return organization.default_billing_entity()


def set_entity(organization, **values) -> BillingEntity:
    billing_entity = entity(organization)
    for key, value in values.items():
        setattr(billing_entity, key, value)
    billing_entity.save()
    return billing_entity


def customer(organization, **values) -> Customer:
    values.setdefault("timezone", "UTC")
    values.setdefault("currency", "EUR")
    return CustomerFactory(organization=organization, **values)


def plan(organization, **values) -> Plan:
    values.setdefault("amount_cents", 100)
    return PlanFactory(organization=organization, **values)


def tax(organization, code: str, rate: str) -> Tax:
    return TaxFactory(organization=organization, code=code, name=code, rate=Decimal(rate))


def subscribe(organization, for_customer, on_plan, at: datetime, **values) -> Subscription:
    """An active subscription row (no hook fired: the tests call the services themselves)."""
    values.setdefault("subscription_at", at)
    values.setdefault("started_at", at)
    return SubscriptionFactory(
        organization=organization, customer=for_customer, plan=on_plan, **values
    )


def bill(for_customer, day: date, now: datetime | None = None) -> CustomerBilling:
    now = now or datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return bill_customer(customer=for_customer, billing_date=day, actor=SYSTEM, now=now)


def separate_drafts(organization, count: int, amount_cents: int) -> list[Invoice]:
    """`count` draft invoices of one customer ("acme"), one subscription fee of `amount_cents`
    each: as many plans subscribed on 2024-01-01, not consolidated, billed on 2024-02-01 with
    a grace period of three days."""
    set_entity(organization, invoice_grace_period=3)
    acme = customer(organization, external_id="acme")
    for _ in range(count):
        subscribe(
            organization,
            acme,
            plan(organization, amount_cents=amount_cents),
            utc(2024, 1, 1),
            consolidate_invoice=False,
        )
    drafts = list(bill(acme, date(2024, 2, 1)).invoices)
    assert len(drafts) == count
    return drafts


def only_invoice(result: CustomerBilling) -> Invoice:
    assert len(result.invoices) == 1, result
    return result.invoices[0]


def fees(invoice: Invoice, fee_type: str | None = None) -> list[Fee]:
    rows = Fee.objects.filter(invoice=invoice).order_by("created_at", "id")
    if fee_type:
        rows = rows.filter(fee_type=fee_type)
    return list(rows)


def fee_amounts(invoice: Invoice, fee_type: str | None = None) -> list[int]:
    return [fee.amount_cents for fee in fees(invoice, fee_type)]


def rows(invoice: Invoice) -> list[InvoiceSubscription]:
    # by period: rows written in one statement may share their created_at
    return list(invoice.invoice_subscriptions.order_by("from_datetime", "invoicing_reason"))


def send_event(organization, subscription: Subscription, code: str, at: datetime, **properties):
    """Stores one event through ingestion (no after-commit work in non-transactional tests)."""
    payload = {
        "transaction_id": f"tx-{code}-{at.isoformat()}-{sorted(properties.items())}",
        "external_subscription_id": subscription.external_id,
        "code": code,
        "timestamp": at.timestamp(),
        "properties": {key: str(value) for key, value in properties.items()},
    }
    return event_create(organization=organization, payload=payload, actor=SYSTEM, now=at)
