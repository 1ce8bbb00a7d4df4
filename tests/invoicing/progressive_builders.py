"""Builders shared by the progressive billing tests: the V92 / V94 billing (plan 3,100 a month
in arrears, 0.0002 per unit of `total`, subscription from 2022-12-01), usage and its refresh
pass, and the termination and upgrade that bill the period early."""

from __future__ import annotations

import time_machine
from django.test import TestCase

from billing.actors import SYSTEM
from customers.services.subscriptions import subscription_create, subscription_terminate
from invoicing.models import Invoice
from metering.services.refresh import refresh_usage
from plans.models import UsageThreshold
from tests.metering.usage.conftest import Billing, at, make_billing
from tests.plans.factories import ChargeFactory, PlanFactory

PROGRESSIVE = Invoice.InvoiceType.PROGRESSIVE_BILLING


def v92_billing(api, organization, thresholds: list[tuple[int, bool]]) -> Billing:
    """Plan monthly 3,100 in arrears; standard charge 0.0002 on the sum of `total`; the
    subscription started 2022-12-01 (V92); `thresholds`: (amount_cents, recurring)."""
    billing = make_billing(
        api, organization, started_at="2022-12-01", plan_fields={"amount_cents": 3100}
    )
    metric = billing.metric("total", "sum_agg", field_name="total")
    billing.usage_charge = billing.charge(metric, properties={"amount": "0.0002"})  # type: ignore[attr-defined]
    for amount, recurring in thresholds:
        UsageThreshold.objects.create(
            organization=organization, plan=billing.plan, amount_cents=amount, recurring=recurring
        )
    return billing


def usage(billing: Billing, when: str, total: int = 1_000_000) -> None:
    """One event of `total` at `when`, then the refresh pass a minute later (its hooks run)."""
    with time_machine.travel(at(when), tick=False):
        billing.send("total", properties={"total": str(total)})
    later = at(when).replace(minute=1)
    with time_machine.travel(later, tick=False), TestCase.captureOnCommitCallbacks(execute=True):
        refresh_usage(actor=SYSTEM, now=later)


def progressive_invoices(billing: Billing) -> list[Invoice]:
    return list(
        Invoice.objects.filter(customer=billing.customer, invoice_type=PROGRESSIVE).order_by(
            "created_at"
        )
    )


def subscription_invoice(billing: Billing) -> Invoice:
    """The customer's one subscription invoice (a termination's or an upgrade's)."""
    return Invoice.objects.get(
        customer=billing.customer, invoice_type=Invoice.InvoiceType.SUBSCRIPTION
    )


def terminate(billing: Billing, when: str) -> Invoice:
    """Terminates the subscription at `when` (its hooks run); its termination invoice."""
    terminate_at = at(when)
    with (
        time_machine.travel(terminate_at, tick=False),
        TestCase.captureOnCommitCallbacks(execute=True),
    ):
        subscription_terminate(subscription=billing.subscription, actor=SYSTEM, now=terminate_at)
    return subscription_invoice(billing)


def upgrade(billing: Billing, when: str) -> Invoice:
    """Moves the subscription at `when` to a plan of 10,000 a month with the same usage charge
    (its hooks run); the invoice that closes the previous plan."""
    bigger = PlanFactory(organization=billing.organization, amount_cents=10_000)
    ChargeFactory(
        organization=billing.organization,
        plan=bigger,
        billable_metric=billing.usage_charge.billable_metric,  # type: ignore[attr-defined]
        properties={"amount": "0.0002"},
    )
    upgrade_at = at(when)
    with (
        time_machine.travel(upgrade_at, tick=False),
        TestCase.captureOnCommitCallbacks(execute=True),
    ):
        subscription_create(
            organization=billing.organization,
            external_customer_id=billing.customer.external_id,
            plan_code=bigger.code,
            external_id=billing.subscription.external_id,
            actor=SYSTEM,
            now=upgrade_at,
        )
    return subscription_invoice(billing)
